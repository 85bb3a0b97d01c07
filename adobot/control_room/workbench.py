"""What the page offers bot builders: the action catalogue (the shipped manifests), checking a
bot as `adobot validate` does, and running it against a sandbox of its own.

A bot checked or run here is written to a private temporary folder of its own: RunBot and
ReadCsv see only that folder, the run gets no vault and no connections (so no admin's secret
can reach it), and every organization URL goes to a fresh sandbox, stopped after the run.
"""
from __future__ import annotations

import json
import re
import tempfile
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field

from adobot.errors import InvalidInput

MAX_BOT_BYTES = 256 * 1024
_LOCATED = re.compile(r"^([^:\s]+:\d+: step ([^:\s]+)): (.*)$", re.S)


class BotText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bot: str = Field(description="The bot file's text (YAML)", max_length=MAX_BOT_BYTES)
    file_name: str = Field("bot.yaml", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.ya?ml$",
                           description="The name the bot is checked under")
    variables: dict[str, str] = Field(default_factory=dict,
                                      description="Run: variables given to the bot (text), "
                                                  "like --var; masked in the result")


@cache
def catalogue() -> dict[str, Any]:
    """Every action's manifest, in the index's order, grouped as the manifests group them."""
    folder = resources.files("adobot").joinpath("manifests")
    index = json.loads(folder.joinpath("index.json").read_text(encoding="utf-8"))
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in index["actions"]:
        manifest = json.loads(folder.joinpath(entry["file"]).read_text(encoding="utf-8"))
        groups.setdefault(entry.get("group") or "Other", []).append(manifest)
    return {"package": index["package"],
            "groups": [{"name": name, "actions": actions} for name, actions in groups.items()]}


@contextmanager
def _written(body: BotText) -> Iterator[Path]:
    if not body.bot.strip():
        raise InvalidInput("the bot is empty", "Paste a bot file, or upload one.", field="bot")
    with tempfile.TemporaryDirectory(prefix="adobot-check-") as folder:
        path = Path(folder) / body.file_name
        path.write_text(body.bot, encoding="utf-8")
        yield path


def check(body: BotText) -> dict[str, Any]:
    """What `adobot validate` says of the bot: every finding, with its line and step."""
    with _written(body) as path:
        return _checked(path, body, {})


def _checked(path: Path, body: BotText, parsed: dict[Path, Any]) -> dict[str, Any]:
    """The findings of the bot written at ``path``; the bots parsed on the way go to
    ``parsed``, so a run that follows parses nothing twice."""
    from adobot.runtime.validate import validate_file

    findings = validate_file(path, declared=body.variables, vault=str(path.parent / "none"),
                             parsed=parsed)
    listed = []
    for f in findings:
        # Problems found while loading say where in their message ("bot.yaml:3: step 1: ...").
        loaded = None if f.where else _LOCATED.match(f.message)
        listed.append({"severity": f.severity, "where": f.where or (loaded and loaded[1]) or "",
                       "line": f.order[1] or None,
                       "step": f.path or (loaded[2] if loaded else None), "action": f.action,
                       "code": f.code, "message": loaded[3] if loaded else f.message,
                       "hint": f.hint})
    errors = sum(f["severity"] == "error" for f in listed)
    return {"valid": errors == 0, "errors": errors, "warnings": len(listed) - errors,
            "findings": listed}


def run_in_sandbox(body: BotText, limits: Any = None) -> dict[str, Any]:
    """Run the bot against a sandbox of its own: the result document of `adobot run --json`.
    ``limits``: the run's ``RunLimits`` (wall time, steps, loop items, variables, a stop)."""
    from adobot.credentials.secret import Secret
    from adobot.runtime.loader import load_bot
    from adobot.credentials.redact import Redactor
    from adobot.runtime.environment import Settings, build_environment
    from adobot.runtime.runner import Runner, RunResult
    from adobot.sandbox import Sandbox

    with _written(body) as path:
        parsed: dict[Path, Any] = {}
        checked = _checked(path, body, parsed)
        if not checked["valid"]:
            first = next(f for f in checked["findings"] if f["severity"] == "error")
            return {**RunResult.refused(path.stem, {
                "code": first["code"], "message": f"{first['where']}: {first['message']}",
                "hint": first["hint"] or "Check the bot first.", "path": first["step"],
                "action": first["action"]}, exit_code=2).to_dict(), "exit_code": 2}
        redactor = Redactor()
        for value in body.variables.values():  # a token given as a variable is masked
            if value.strip():
                redactor.add(Secret(value.strip()))
        with Sandbox() as sandbox:
            runner = Runner(build_environment(Settings(sandbox=sandbox, redactor=redactor,
                                                       isolated=True, limits=limits)))
            bot = parsed.get(path.resolve()) or load_bot(path)
            result = runner.run(bot, dict(body.variables), parsed=parsed)
    return {**redactor.mask(json.loads(json.dumps(result.to_dict(), default=str))),
            "exit_code": result.exit_code}
