"""Bot files: YAML in, a checked ``Bot`` out, with the line of every step for messages."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from actions import registry
from rest.errors import AdobotError, InvalidBot

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
STEP_KEYS_ACTION = {"action", "inputs", "outputs", "name"}
STEP_KEYS_LOOP = {"for_each", "as", "steps", "name"}
BOT_KEYS = {"name", "description", "variables", "steps"}


@dataclass
class Step:
    path: str          # "3", or "3.1" for the first step inside step 3
    line: int
    name: str | None = None
    action: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    for_each: Any = None
    item_name: str = "item"
    steps: list["Step"] = field(default_factory=list)


@dataclass
class Bot:
    name: str
    file: Path
    variables: dict[str, Any]
    steps: list[Step]

    def all_steps(self) -> list[Step]:
        """Every step, depth first (steps inside for_each included)."""
        found: list[Step] = []

        def visit(steps: list[Step]) -> None:
            for step in steps:
                found.append(step)
                visit(step.steps)

        visit(self.steps)
        return found

    def _token_sources(self) -> list[tuple[Step, dict]]:
        return [(step, step.inputs["personal_access_token"]) for step in self.all_steps()
                if isinstance(step.inputs.get("personal_access_token"), dict)]

    def secret_variables(self) -> set[str]:
        """Variables that hold a token (named by a personal_access_token {variable: NAME})."""
        return {source["variable"] for _, source in self._token_sources()
                if isinstance(source.get("variable"), str)}

    def insecure_token_steps(self) -> list[Step]:
        """Steps whose token is written in the bot file ({insecure: VALUE})."""
        return [step for step, source in self._token_sources() if "insecure" in source]


class _LineDict(dict):
    line = 0


class _Loader(yaml.SafeLoader):
    """Safe YAML whose mappings remember their line and refuse duplicate keys."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    mapping = _LineDict()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise InvalidBot(f"line {key_node.start_mark.line + 1}: a mapping key must be text")
        if key in mapping:
            raise InvalidBot(f"line {key_node.start_mark.line + 1}: key {key!r} appears twice "
                             "in the same mapping")
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_bot(path: str | Path) -> Bot:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidBot(f"bot file {str(file)!r} does not exist",
                         "Check the path; it is relative to the current directory.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidBot(f"bot file {str(file)!r} cannot be read: {exc}") from None
    return parse_bot(text, file)


def parse_bot(text: str, file: Path = Path("<bot>")) -> Bot:
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except AdobotError as exc:
        exc.message = f"{file.name}: {exc.message}"
        exc.args = (exc.message,)
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidBot(f"{file.name} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise InvalidBot(f"{file.name} must be a mapping with 'name' and 'steps'",
                         "Start from examples/quickstart.yaml.")
    _check_keys(data, BOT_KEYS, f"{file.name}")
    name = data.get("name", file.stem)
    if not isinstance(name, str) or not name.strip():
        raise InvalidBot(f"{file.name}: 'name' must be text")
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise _at(file, data, "'variables' must be a mapping of names to values")
    for var in variables:
        if not isinstance(var, str) or not VARIABLE_NAME.match(var):
            raise _at(file, variables, f"variable name {var!r} is not valid (letters, digits "
                      "and '_', not starting with a digit)")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise _at(file, data, "'steps' must be a non-empty list of steps")
    return Bot(name=name, file=file, variables=dict(variables),
               steps=_parse_steps(steps, "", file))


def _parse_steps(raw_steps: list[Any], prefix: str, file: Path) -> list[Step]:
    return [_parse_step(raw, f"{prefix}{i}", file) for i, raw in enumerate(raw_steps, start=1)]


def _parse_step(raw: Any, path: str, file: Path) -> Step:
    if not isinstance(raw, dict):
        raise InvalidBot(f"{file.name}: step {path} must be a mapping with 'action' or 'for_each'")
    line = getattr(raw, "line", 0)
    where = f"{file.name}:{line}: step {path}"
    if "for_each" in raw:
        _check_keys(raw, STEP_KEYS_LOOP, where)
        item_name = raw.get("as", "item")
        if not isinstance(item_name, str) or not VARIABLE_NAME.match(item_name):
            raise InvalidBot(f"{where}: 'as' must be a variable name, not {item_name!r}")
        inner = raw.get("steps")
        if not isinstance(inner, list) or not inner:
            raise InvalidBot(f"{where}: a for_each step needs a non-empty list of 'steps'")
        return Step(path=path, line=line, name=raw.get("name"), for_each=raw["for_each"],
                    item_name=item_name, steps=_parse_steps(inner, f"{path}.", file))
    if "action" not in raw:
        raise InvalidBot(f"{where} has neither 'action' nor 'for_each'")
    _check_keys(raw, STEP_KEYS_ACTION, where)
    try:
        action = registry.get(raw["action"])
    except InvalidBot as exc:
        raise InvalidBot(f"{where}: {exc.message}", exc.hint, field="action") from None
    inputs = raw.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise InvalidBot(f"{where}: 'inputs' must be a mapping of input names to values")
    outputs = raw.get("outputs") or {}
    if not isinstance(outputs, dict):
        raise InvalidBot(f"{where}: 'outputs' must map output names to variable names")
    known = list(action.outputs.model_fields)
    for out, var in outputs.items():
        if out not in known:
            raise InvalidBot(f"{where}: {action.name} has no output {out!r}",
                             f"Its outputs: {', '.join(known) or 'none'}.")
        if not isinstance(var, str) or not VARIABLE_NAME.match(var):
            raise InvalidBot(f"{where}: output {out!r} must name a variable, not {var!r}")
    return Step(path=path, line=line, name=raw.get("name"), action=action.name,
                inputs=dict(inputs), outputs=dict(outputs))


def _check_keys(mapping: dict, allowed: set[str], where: str) -> None:
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        raise InvalidBot(f"{where}: unknown key {unknown[0]!r}",
                         f"Allowed here: {', '.join(sorted(allowed))}.")


def _at(file: Path, node: Any, message: str) -> InvalidBot:
    line = getattr(node, "line", 0)
    return InvalidBot(f"{file.name}:{line}: {message}" if line else f"{file.name}: {message}")
