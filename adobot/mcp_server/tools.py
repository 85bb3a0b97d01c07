"""MCP tools made from the actions' own models: the same names, inputs, validation and errors.

An agent pays for every byte of every tool's schema in every conversation, so a tool's schema is
the action's input schema made compact: each input keeps its type (where its default or enum
does not show it), enum, default, whether it is required, and the first clause of its
description; patterns, lengths, bounds, examples, titles and the ``session`` input (the server
holds the session) are left out, since the models still check everything and name the input
they refuse. The output schema says the structured result is an object (of the outputs).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from adobot.actions import registry
from adobot.actions.base import Action

# Not tools: the server's own connection stands for the session, and bot files are not an
# agent's business. InvokeApi would let an assistant send anything the token allows, past
# what the modes promise (read-only lists only tools that change nothing; review shows what
# a change is): a builder's way out, not an assistant's.
NOT_TOOLS = ("Connect", "Disconnect", "RunBot", "ReadCsv", "InvokeApi")
# What a caller needs to form a valid call; the rest (patterns, lengths, bounds: the models
# check them all, and a refusal names the input and the rule) stays on the server.
_KEEP = ("type", "enum", "const", "required", "default")
TOOL_DESCRIPTION = 48   # characters of a tool's description
INPUT_DESCRIPTION = 36  # characters of an input's
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


def first_clause(description: str) -> str:
    """The first sentence (or clause, up to a ';' or ':') of a description, without asides."""
    text = _ASIDE.sub("", " ".join(description.replace("e.g.", "e\0g\0").split()))
    found = _SENTENCE.match(text)
    return (found.group(1) if found else text).rstrip(";:.,").replace("e\0g\0", "e.g.")


def short(description: str | None, limit: int = INPUT_DESCRIPTION) -> str | None:
    """A description's first clause; if that is longer than ``limit``, its longest run of
    whole comma-separated parts that fits (a word cut last). The actions' descriptions are
    written so that the first clause says what the name does not, within the limit."""
    if not description:
        return None
    first = first_clause(description)
    if len(first) <= limit:
        return first
    parts = first[:limit + 1].rsplit(",", 1)
    if len(parts) == 2 and parts[0]:
        return parts[0].rstrip()
    return first[:limit].rsplit(" ", 1)[0].rstrip(",;:")


def compact(schema: Any, root: dict[str, Any], depth: int = 0,
            typed: bool = False) -> Any:
    """``schema`` with $refs inlined and only what a caller needs kept."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target = root["$defs"][schema["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return compact(merged, root, depth, typed)
    kept: dict[str, Any] = {key: schema[key] for key in _KEEP if key in schema}
    if kept.get("default") is None:
        kept.pop("default", None)
    if depth == 1 and short(schema.get("description")):
        kept["description"] = short(schema.get("description"))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [compact(option, root, depth + 1, typed=True)
                       for option in schema[key] if option.get("type") != "null"]
            if len(options) == 1:
                kept = {**options[0], **kept}
            elif all(set(option) == {"type"} for option in options):
                # {"type": ["integer", "string"]}: the same, shorter
                types = list(dict.fromkeys(option["type"] for option in options))
                kept["type"] = types if len(types) > 1 else types[0]
            elif options:
                kept[key] = options
    if "items" in schema:
        items = compact(schema["items"], root, depth + 1)
        if items:  # {} (any text) says nothing
            kept["items"] = items
    if "properties" in schema:
        kept["properties"] = {name: compact(value, root, depth + 1)
                              for name, value in schema["properties"].items()}
    if depth and not typed and (kept.get("type") == "string" or "enum" in kept
                                or "default" in kept or "properties" in kept):
        # Said already: text is what an untyped input is taken as; an enum's or a default's
        # values show the type, and properties show an object.
        kept.pop("type", None)
    return kept


def input_schema(action: Action) -> dict[str, Any]:
    whole = action.inputs.model_json_schema()
    schema = compact({k: v for k, v in whole.items() if k != "description"}, whole)
    schema["properties"].pop("session", None)
    return schema


def output_schema(action: Action) -> dict[str, Any]:
    """The structured result is an object: the action's outputs, each under its own name. Their
    shapes are the manifest's, and the text result shows them; naming them here too (about 35
    bytes a tool) would cost every conversation more than it tells an agent, which reads the
    result itself."""
    return {"type": "object"}


@cache
def tool_specs() -> tuple[ToolSpec, ...]:
    """Every action that is a tool, with its schemas."""
    return tuple(ToolSpec(action, input_schema(action), output_schema(action))
                 for action in registry.all_actions() if action.name not in NOT_TOOLS)
