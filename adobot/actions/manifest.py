"""Manifests: what a bot designer renders, generated from the actions' own models.

The runtime validates inputs with the same pydantic models, so the manifest and the behaviour
cannot disagree. ``adobot manifest --write`` (or ``make manifests``) writes ``manifests/``;
a test regenerates them and fails on any difference.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adobot.actions import registry
from adobot.actions.base import Action
from adobot import __version__

PACKAGE = "adobot"
SCHEMA = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "manifests"


def _schema(model: type, title: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation" if "Inputs" in model.__name__ else "serialization")
    _drop_titles(schema)
    schema.pop("title", None)
    return {"$schema": SCHEMA, "title": title, **schema}


def _drop_titles(node: Any) -> None:
    """pydantic's generated titles ("Organization Url") say nothing the names do not."""
    if isinstance(node, dict):
        if isinstance(node.get("title"), str) and "properties" not in node:
            node.pop("title")
        for key, value in list(node.items()):
            if key == "properties" and isinstance(value, dict):
                for prop in value.values():
                    _drop_titles(prop)
            else:
                _drop_titles(value)
    elif isinstance(node, list):
        for item in node:
            _drop_titles(item)


def manifest(action: Action) -> dict[str, Any]:
    inputs = _schema(action.inputs, f"{action.name} inputs")
    outputs = _schema(action.outputs, f"{action.name} outputs")
    return {
        "package": {"name": PACKAGE, "version": __version__},
        "name": action.name,
        "label": action.label,
        "description": action.description,
        "group": action.group,
        # What it does to Azure DevOps: nothing (read_only), and whether a repeat with the same
        # inputs has no further effect (idempotent).
        "read_only": action.read_only,
        "idempotent": action.idempotent,
        # ... and whether it may overwrite or remove what is there, not only add.
        "destructive": action.destructive,
        "inputs": inputs,
        "outputs": outputs,
        "errors": [{"code": code, "when": when} for code, when in action.errors.items()],
    }


def index() -> dict[str, Any]:
    return {"package": {"name": PACKAGE, "version": __version__}, "actions": [
        {"name": a.name, "label": a.label, "group": a.group, "description": a.description,
         "file": f"{a.name}.json"} for a in registry.all_actions()]}


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def files() -> dict[str, str]:
    """File name -> content of every manifest and the index."""
    out = {f"{a.name}.json": render(manifest(a)) for a in registry.all_actions()}
    out["index.json"] = render(index())
    return out


def write(folder: Path = DEFAULT_DIR) -> list[str]:
    """Write the manifests; remove stale ones. Returns the names written."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = files()
    for old in folder.glob("*.json"):
        if old.name not in wanted:
            old.unlink()
    for name, text in wanted.items():
        (folder / name).write_text(text, encoding="utf-8")
    return sorted(wanted)
