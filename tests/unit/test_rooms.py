"""Arrows point down: each room of the package imports only rooms below it (design.md), so no
room needs one above it. Lazy imports inside functions count too."""
from __future__ import annotations

import ast

from tests.conftest import ROOT

# Higher imports lower; rooms on one floor do not import each other.
FLOORS = {
    "__main__": 7,
    "cli": 6,
    "api": 5, "mcp_server": 5, "control_room": 5,
    "runs": 4.5,  # runs in the control room and on runners: they execute bots
    "runtime": 4, "sdk": 4,
    "actions": 3,
    "sandbox": 2.5,
    "credentials": 2, "sessions": 2,
    "store": 1.5,
    "rest": 1,
    "errors": 0,
}
# Imported from anywhere: the version, and the type that keeps a secret from printing.
ANYWHERE = {"adobot", "adobot.credentials.secret"}


def room_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def imports() -> list[tuple[str, str, str]]:
    found = []
    for file in (ROOT / "adobot").rglob("*.py"):
        parts = file.relative_to(ROOT).with_suffix("").parts
        source = room_of(".".join(parts))
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] if node.module != "adobot" else \
                    [f"adobot.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if target.startswith("adobot.") and target not in ANYWHERE:
                    found.append((source, target, str(file.relative_to(ROOT))))
    return found


def test_every_room_has_a_floor():
    rooms = {path.stem if path.is_file() else path.name
             for path in (ROOT / "adobot").iterdir()
             if (path.is_dir() and (path / "__init__.py").exists())
             or (path.suffix == ".py" and path.stem != "__init__")}
    assert rooms <= set(FLOORS) | {"version"}, rooms - set(FLOORS)


def upward(found: list[tuple[str, str, str]]) -> list[str]:
    return [f"{file}: {source} imports {target}" for source, target, file in found
            if room_of(target) != source
            and room_of(target) in FLOORS and FLOORS[room_of(target)] >= FLOORS[source]]


def test_arrows_point_down():
    assert upward(imports()) == []


def test_the_rule_reports_an_arrow_that_climbs_or_crosses_a_floor():
    assert upward([("rest", "adobot.runtime.runner", "x.py"),
                   ("credentials", "adobot.sessions.store", "y.py"),
                   ("runtime", "adobot.store.database", "z.py")]) == [
        "x.py: rest imports adobot.runtime.runner", "y.py: credentials imports adobot.sessions.store"]
