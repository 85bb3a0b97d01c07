"""A bot as the control room keeps it: one bundle of text files — the bot a run starts with,
the child bots it runs and the CSV files it reads — checked as `adobot validate` checks it, and
named by the SHA-256 of its content, so the same files uploaded twice are one version."""
from __future__ import annotations

import hashlib
import json
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field

from adobot.errors import InvalidBot, InvalidInput

BOT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
# Folders and file names of letters, digits, dots, hyphens and underscores; no ".." (a path
# stays in its bundle) and no hidden files.
_PART = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}"
FILE_PATH = re.compile(rf"^(?:{_PART}/){{0,4}}{_PART}\.(?:ya?ml|csv|json|txt)$")
MAX_FILES, MAX_BUNDLE_BYTES = 64, 2 * 1024 * 1024
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# What every run in the control room is given besides its variables (engine.run_variables).
RUN_VARIABLES = ("run_id", "run_attempt")


class Upload(BaseModel):
    """What `POST /api/v1/bots` takes (and `adobot bot upload` sends)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, pattern=BOT_NAME.pattern, description="The bot's name in "
                             "the control room (default: the main bot's `name:`)")
    main: str = Field(pattern=FILE_PATH.pattern, max_length=330,
                      description="The file a run starts with, e.g. onboard.yaml")
    files: dict[str, str] = Field(description="Every file of the bundle by its path: the main "
                                  "bot, its child bots and CSV files", max_length=MAX_FILES)
    variables: list[str] = Field(default_factory=list, max_length=64,
                                 description="Variables every run will give (like --var)")


class Bundle:
    """A checked bundle: its files, its main bot, what its runs must give, its digest."""

    def __init__(self, name: str, main: str, files: dict[str, str], expects: list[str],
                 retries: int, timeout_seconds: int, connections: list[str]) -> None:
        self.name, self.main, self.files, self.expects = name, main, files, expects
        self.retries, self.timeout_seconds = retries, timeout_seconds
        self.connections = connections  # named by its Connect steps: who may run it
        self.digest = digest_of(main, files, expects)


def digest_of(main: str, files: dict[str, str], expects: list[str]) -> str:
    canonical = json.dumps({"main": main, "files": files, "variables": sorted(expects)},
                           sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def check_paths(upload: Upload) -> None:
    """Every path is one a bundle may hold, the main bot is among them, and the bundle is
    small enough, before anything is written."""
    for path in upload.files:
        if not FILE_PATH.match(path) or ".." in PurePosixPath(path).parts:
            raise InvalidInput(f"file {path[:80]!r} cannot be in a bundle: paths are relative, "
                               "of letters, digits, '.', '-' and '_', at most 5 folders deep, "
                               "ending in .yaml, .yml, .csv, .json or .txt",
                               "Upload the bot's folder as it is on disk.", field="files")
    if upload.main not in upload.files:
        raise InvalidInput(f"the main bot {upload.main!r} is not among the files",
                           "Name one of the bundle's files as main.", field="main")
    size = sum(len(text.encode("utf-8")) for text in upload.files.values())
    if size > MAX_BUNDLE_BYTES:
        raise InvalidInput(f"the bundle holds {size} bytes: at most {MAX_BUNDLE_BYTES} may be "
                           "uploaded", "Leave out what the bot does not read.", field="files")
    for variable in upload.variables:
        if not VARIABLE.match(variable):
            raise InvalidInput(f"variable {variable[:80]!r} is not a variable name",
                               "Letters, digits and _, starting with a letter or _.",
                               field="variables")


@contextmanager
def written(files: dict[str, str]) -> Iterator[Path]:
    """The bundle's files in a private temporary folder of their own, removed after."""
    with tempfile.TemporaryDirectory(prefix="adobot-bundle-") as folder:
        root = Path(folder)
        for path, text in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        yield root


def check(upload: Upload) -> Bundle:
    """The bundle, checked as `adobot validate` checks its main bot (with the variables its
    runs will give, no vault and no folder outside it); refused with every problem found."""
    from adobot.runtime.loader import load_bot
    from adobot.runtime.validate import validate_file

    check_paths(upload)
    with written(upload.files) as root:
        main = root / upload.main
        parsed: dict[Path, Any] = {}
        findings = validate_file(main, declared=[*upload.variables, *RUN_VARIABLES],
                                 vault=str(root / ".no-vault"), parsed=parsed)
        problems = [f"{f.where + ': ' if f.where else ''}{f.message}"
                    for f in findings if f.severity == "error"]
        # A run in the control room reads no vault (an admin's lockers are not a bot's).
        problems += [f"{bot.file.relative_to(root)}: step {step.path}: {name} reads the vault "
                     f"locker {source['credential'].get('locker')!r}: a run in the control room "
                     "reads no vault; use a connection, or a variable"
                     for bot in parsed.values() for step, name, source in bot.credential_sources()
                     if isinstance(source, dict) and "credential" in source]
        if problems:
            listed = "; ".join(problems[:20])
            raise InvalidBot(f"the bot has {len(problems)} problem(s): {listed}",
                             "Fix them (`adobot validate` shows each with its line), then "
                             "upload again.", field="files")
        bot = load_bot(main)
        # The connections its bots name as they are written (one named through ${...} is
        # known only when the run gets there).
        connections = sorted({step.inputs["connection"] for each in parsed.values()
                              for step in each.all_steps() if step.action == "Connect"
                              and isinstance(step.inputs.get("connection"), str)
                              and "${" not in step.inputs["connection"]})
    name = upload.name or bot.name
    if not BOT_NAME.match(name or ""):
        raise InvalidInput(f"the bot's name {name!r} cannot name it in the control room",
                           "Give `name` (letters, digits, '.', '-', '_'; up to 64).",
                           field="name")
    return Bundle(name, upload.main, dict(sorted(upload.files.items())),
                  sorted(set(upload.variables)), bot.settings.retries,
                  int(bot.settings.timeout_seconds), connections)


def described(record: dict[str, Any]) -> dict[str, Any]:
    """A version as the API shows it (its files by name and size, not their text; a list of
    versions reads no files, and shows none)."""
    files = json.loads(record["files"]) if "files" in record else None
    return {"name": record["name"], "version": record["version"], "digest": record["digest"],
            "main": record["main"], "files": None if files is None else
            {p: len(t.encode("utf-8")) for p, t in files.items()},
            "variables": [v for v in record["expects"].split(",") if v],
            "connections": [c for c in record.get("connections", "").split(",") if c],
            "retries": record["retries"], "timeout_seconds": record["timeout_seconds"],
            "uploaded_by": record["uploaded_by"], "uploaded_at": record["uploaded_at"]}
