"""``${name}``, ``${name.field}``, ``${name[0].field}`` in bot values.

A value that is exactly one ``${...}`` keeps its type (list, map, number); inside longer text
it is rendered as text (lists and maps as JSON). ``$${`` writes a literal ``${``.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping

from adobot.credentials.secret import Secret
from adobot.errors import InvalidBot, InvalidInput

_EXPRESSION = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
_WHOLE = re.compile(r"^\$\{([^{}]*)\}$")
_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(-?\d+)\]|\[(['\"])(.*?)\3\]")
_NAME = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def whole_reference(value: Any) -> str | None:
    """The variable a value names when it is exactly ``${name}``, else None."""
    found = _WHOLE.match(value) if isinstance(value, str) else None
    name = found.group(1).strip() if found else ""
    return name if _PLAIN_NAME.fullmatch(name) else None


def interpolate(value: Any, variables: Mapping[str, Any], where: str = "value") -> Any:
    """Resolve every ``${...}`` in value (recursively through lists and maps)."""
    if isinstance(value, str):
        return _string(value, variables, where)
    if isinstance(value, list):
        return [interpolate(item, variables, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: interpolate(item, variables, f"{where}.{key}") for key, item in value.items()}
    return value


def _string(text: str, variables: Mapping[str, Any], where: str) -> Any:
    if "${" not in text:
        return text
    whole = _WHOLE.match(text)
    if whole:
        return lookup(whole.group(1), variables, where)

    def render(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        found = lookup(match.group(1), variables, where)
        if isinstance(found, Secret):
            raise InvalidInput(f"{where}: variable in ${{{match.group(1).strip()}}} holds a "
                               "secret and cannot be written into text", field=where)
        if isinstance(found, str):
            return found
        if found is None:
            return ""
        return json.dumps(found, default=str, ensure_ascii=False)

    return _EXPRESSION.sub(render, text)


def lookup(expression: str, variables: Mapping[str, Any], where: str = "value") -> Any:
    """The value that one expression (``name``, ``name.field``, ``name[0].field``) reads."""
    head = _NAME.match(expression)
    if not head:
        raise InvalidBot(f"{where}: ${{{expression}}} is not a variable reference",
                         "Write ${name}, ${name.field} or ${name[0].field}.")
    name = head.group(1)
    if name not in variables:
        raise InvalidBot(f"{where}: variable {name!r} is not defined",
                         f"Define it under 'variables:', pass --var {name}=VALUE, or map an "
                         "action output to it before this step.")
    value = variables[name]
    rest = expression[head.end():].rstrip()
    position = 0
    walked = name
    while position < len(rest):
        part = _PART.match(rest, position)
        if not part:
            raise InvalidBot(f"{where}: cannot read ${{{expression}}}: unexpected "
                             f"{rest[position:]!r}", "Write ${name.field} or ${name[0]}.")
        position = part.end()
        key, index, quoted = part.group(1), part.group(2), part.group(4)
        value, walked = _step(value, walked, key if key is not None else quoted,
                              int(index) if index is not None else None, expression, where)
    return value


def _step(value: Any, walked: str, key: str | None, index: int | None, expression: str,
          where: str) -> tuple[Any, str]:
    if index is not None:
        if not isinstance(value, list):
            raise InvalidInput(f"{where}: ${{{expression}}}: {walked} is not a list")
        if not -len(value) <= index < len(value):
            raise InvalidInput(f"{where}: ${{{expression}}}: {walked} has {len(value)} "
                               f"items, so [{index}] does not exist")
        return value[index], f"{walked}[{index}]"
    if isinstance(value, Mapping) and key in value:
        return value[key], f"{walked}.{key}"
    if isinstance(value, Mapping):
        keys = ", ".join(map(str, list(value)[:10])) or "none"
        raise InvalidInput(f"{where}: ${{{expression}}}: {walked} has no field {key!r} "
                           f"(fields: {keys})")
    raise InvalidInput(f"{where}: ${{{expression}}}: {walked} is "
                       f"{type(value).__name__}, not a mapping with field {key!r}")
