"""``adobot actions`` and ``adobot manifest``: what the package offers."""
from __future__ import annotations

import argparse
import json


def register(commands: argparse._SubParsersAction) -> None:
    actions = commands.add_parser("actions", help="list the actions")
    actions.add_argument("--json", action="store_true", help="print JSON")
    actions.set_defaults(handler=_actions)

    manifest = commands.add_parser(
        "manifest", help="print (or write) the manifest of an action",
        description="Print the manifest JSON of an action (inputs and outputs as JSON Schema, "
                    "errors), of all actions (--all), or write manifests/ (--write).")
    chosen = manifest.add_mutually_exclusive_group(required=True)
    chosen.add_argument("action", nargs="?", help="action name, e.g. Connect")
    chosen.add_argument("--all", action="store_true", help="every manifest, as one JSON list")
    chosen.add_argument("--write", nargs="?", const="", metavar="DIR",
                        help="write one file per action and index.json (default: manifests/)")
    manifest.set_defaults(handler=_manifest)


def _manifest(args: argparse.Namespace) -> int:
    from adobot.actions import manifest, registry

    if args.write is not None:
        from pathlib import Path

        folder = Path(args.write) if args.write else manifest.DEFAULT_DIR
        written = manifest.write(folder)
        print(f"wrote {len(written)} files to {folder}")
        return 0
    if args.all:
        print(json.dumps([manifest.manifest(a) for a in registry.all_actions()], indent=2))
        return 0
    print(manifest.render(manifest.manifest(registry.get(args.action))), end="")
    return 0


def _actions(args: argparse.Namespace) -> int:
    from adobot.actions import registry

    actions = registry.all_actions()
    if args.json:
        print(json.dumps([{"name": a.name, "label": a.label, "group": a.group,
                           "description": a.description} for a in actions], indent=2))
        return 0
    width = max(len(a.name) for a in actions)
    for action in actions:
        print(f"{action.name:<{width}}  {action.group:<9} {action.description}")
    return 0
