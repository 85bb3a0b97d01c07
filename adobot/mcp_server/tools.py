"""MCP tools made from the actions' own models: the same names, inputs, validation and errors.

An agent pays for every byte of every tool's schema in every conversation, so a tool's schema is
the action's input schema made compact: each input keeps its type, its rules (enum, pattern,
bounds, required) and the first sentence of its description; examples, titles and the
``session`` input (the server holds the session) are left out. The output schema keeps the
shape the structured result is validated against, without descriptions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from adobot.actions import registry
from adobot.actions.base import Action

# Not tools: the server's own connection stands for the session, and bot files are not an
# agent's business.
NOT_TOOLS = ("Connect", "Disconnect", "RunBot", "ReadCsv")
# What a caller needs to form a valid call; the rest (patterns, lengths: the models check
# them all, and a refusal names the input) stays on the server.
_KEEP = ("type", "enum", "const", "minimum", "maximum", "required", "default")
_SENTENCE = re.compile(r"^(.+?[.;:])(\s|$)")
_ASIDE = re.compile(r"\s*\([^()]*\)")


@dataclass(frozen=True)
class ToolSpec:
    action: Action
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]

    @property
    def name(self) -> str:
        return self.action.name

    @property
    def changes(self) -> bool:
        return not self.action.read_only


def short(description: str | None, limit: int = 36) -> str | None:
    """The first sentence (or clause) of a description without its asides, at most ``limit``
    characters (cut at a word)."""
    if not description:
        return None
    text = _ASIDE.sub("", " ".join(description.replace("e.g.", "eg").split()))
    found = _SENTENCE.match(text)
    first = found.group(1).rstrip(";:.,") if found else text.rstrip(".")
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0].rstrip(",;:")


def compact(schema: Any, root: dict[str, Any], describe: bool = True, depth: int = 0,
            typed: bool = False) -> Any:
    """``schema`` with $refs inlined and only what a caller needs kept."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target = root["$defs"][schema["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return compact(merged, root, describe, depth, typed)
    kept: dict[str, Any] = {key: schema[key] for key in _KEEP if key in schema}
    if kept.get("default") is None:
        kept.pop("default", None)
    if describe and depth == 1 and short(schema.get("description")):
        kept["description"] = short(schema.get("description"))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [compact(option, root, describe, depth + 1, typed=True)
                       for option in schema[key] if option.get("type") != "null"]
            if len(options) == 1:
                kept = {**options[0], **kept}
            elif all(set(option) == {"type"} or set(option) <= {"type", "minimum"}
                     for option in options):  # {"type": ["integer", "string"]}: the same, shorter
                kept["type"] = [option["type"] for option in options]
            elif options:
                kept[key] = options
    if "items" in schema:
        kept["items"] = compact(schema["items"], root, describe, depth + 1)
    if "properties" in schema:
        kept["properties"] = {name: compact(value, root, describe, depth + 1)
                              for name, value in schema["properties"].items()}
    if depth and not typed and kept.get("type") == "string" and "enum" not in kept:
        del kept["type"]  # text is what an untyped input is taken as: 16 bytes an input saved
    return kept


def input_schema(action: Action) -> dict[str, Any]:
    whole = action.inputs.model_json_schema()
    schema = compact({k: v for k, v in whole.items() if k != "description"}, whole)
    schema["properties"].pop("session", None)
    return schema


def output_schema(action: Action) -> dict[str, Any]:
    """Each output and its type: what the structured result is validated against."""
    whole = action.outputs.model_json_schema()
    properties = {}
    for name, value in whole["properties"].items():
        kept = compact(value, whole, describe=False)
        properties[name] = {"type": kept["type"]} if "type" in kept else {}  # {}: text
    return {"type": "object", "properties": properties}


@cache
def tool_specs() -> tuple[ToolSpec, ...]:
    """Every action that is a tool, with its schemas."""
    return tuple(ToolSpec(action, input_schema(action), output_schema(action))
                 for action in registry.all_actions() if action.name not in NOT_TOOLS)
