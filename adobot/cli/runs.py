"""``adobot bot upload``, ``adobot run-remote`` and ``adobot runner``: a bot's folder uploaded to
a control room as a new version, a run of it started there (and, with --wait, followed to its
end), and a machine that runs a pool's runs. The token comes from
``$ADOBOT_CONTROL_ROOM_TOKEN``, never from the command line."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from adobot.errors import InvalidInput

FINAL = ("succeeded", "failed", "cancelled", "timed_out")


def _room() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--control-room", required=True, metavar="URL",
                         help="the control room's address (its token in "
                              "$ADOBOT_CONTROL_ROOM_TOKEN: a standard user's or an admin's)")
    options.add_argument("--allow-plain-http", action="store_true",
                         help="allow plain http to a control room on another machine")
    options.add_argument("--json", action="store_true", help="print the answer as JSON")
    return options


def register(commands: argparse._SubParsersAction) -> None:
    room = _room()
    bot = commands.add_parser("bot", help="upload a bot to a control room")
    sub = bot.add_subparsers(dest="bot_command", required=True, metavar="COMMAND")
    upload = sub.add_parser(
        "upload", parents=[room], help="upload a bot and its folder as a new version",
        description="Upload BOT.yaml with the files of its folder (child bots, CSV, JSON and "
                    "text files, up to 5 folders deep; hidden files left out). The control "
                    "room checks it as `adobot validate` does; the same files are one version.")
    upload.add_argument("bot", metavar="BOT.yaml")
    upload.add_argument("--name", help="the bot's name there (default: its `name:`)")
    upload.add_argument("--var", action="append", default=[], metavar="NAME",
                        help="a variable every run will give (like validate's --var)")
    upload.set_defaults(handler=_upload)

    start = commands.add_parser(
        "run-remote", parents=[room], help="start a run of an uploaded bot in a control room",
        description="Start a run of a bot uploaded to a control room; --wait follows it to its "
                    "end.", epilog="Exit codes: 0 started (with --wait: succeeded); 1 the run "
                                   "failed, was cancelled or timed out; 2 refused before it "
                                   "was queued.")
    start.add_argument("bot", metavar="NAME")
    start.add_argument("--version", default="latest", help="a version number (default latest)")
    start.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                       help="set a variable (text); repeatable")
    start.add_argument("--var-env", action="append", default=[], metavar="NAME=ENVVAR",
                       help="set a variable from an environment variable (a token); repeatable")
    start.add_argument("--priority", choices=("high", "normal", "low"), default="normal")
    start.add_argument("--pool", default="default")
    start.add_argument("--idempotency-key", metavar="KEY",
                       help="the same key twice starts one run (e.g. a CI job's id)")
    start.add_argument("--wait", action="store_true", help="follow the run to its end")
    start.set_defaults(handler=_run_remote)

    runner = commands.add_parser(
        "runner", help="run a control room's bots on this machine",
        description="Take the runs of a pool from a control room and run them here, with the "
                    "credentials it hands out for each run (the runner token in "
                    "$ADOBOT_CONTROL_ROOM_TOKEN). SIGTERM: no more runs are taken; those held "
                    "may finish within --grace, then are stopped.")
    runner.add_argument("--control-room", required=True, metavar="URL")
    runner.add_argument("--pool", default="default", help="the pool whose runs it takes")
    runner.add_argument("--concurrency", type=int, default=1, metavar="N",
                        help="runs at once (default 1)")
    runner.add_argument("--grace", type=float, default=30.0, metavar="SECONDS",
                        help="on SIGTERM, how long held runs may go on (default 30)")
    runner.add_argument("--allow-plain-http", action="store_true",
                        help="allow plain http to a control room on another machine")
    runner.add_argument("--database", metavar="URL",
                        help="a control room on PostgreSQL: its database, where the runs wait "
                             "as procrastinate jobs (default $ADOBOT_DATABASE_URL)")
    runner.set_defaults(handler=_runner)


def _runner(args: argparse.Namespace) -> int:
    import signal

    from adobot.runs.runner import RemoteRunner
    from adobot.runs.service import check_pool

    if not 1 <= args.concurrency <= 64:
        raise InvalidInput(f"--concurrency {args.concurrency}: give 1 to 64",
                           field="--concurrency")
    secret = _token(args, "runner")
    database = _queue_database(args)
    runner = RemoteRunner(args.control_room, secret, pool=check_pool(args.pool),
                          concurrency=args.concurrency, grace_seconds=args.grace,
                          allow_plain_http=args.allow_plain_http, database=database)
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: runner.drain())
    print(f"runner for pool {args.pool} at {args.control_room} ({args.concurrency} at once); "
          "SIGTERM stops it", file=sys.stderr, flush=True)
    runner.serve()
    return 0


def _queue_database(args: argparse.Namespace) -> str | None:
    """--database (else $ADOBOT_DATABASE_URL), a PostgreSQL URL; its password masked."""
    from adobot.credentials.secret import Secret
    from adobot.store.database import DATABASE_ENV, database_url

    given = (args.database or os.environ.get(DATABASE_ENV) or "").strip()
    if not given:
        return None
    url = database_url(given, ".")
    if url.startswith("sqlite"):
        raise InvalidInput("--database: a runner reads jobs from a PostgreSQL database only",
                           "Leave --database out for a control room on SQLite.",
                           field="--database")
    from sqlalchemy.engine import make_url

    password = make_url(url).password
    if password:
        args.redactor.add(Secret(str(password)))
    return url


def _token(args: argparse.Namespace, role: str) -> Any:
    """The token from the environment, masked in everything the command prints."""
    from adobot.credentials.remote import TOKEN_ENV
    from adobot.credentials.secret import Secret

    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise InvalidInput(f"--control-room needs a token in ${TOKEN_ENV}",
                           f"Ask an admin: `adobot token issue NAME --role {role}`.",
                           field=TOKEN_ENV)
    secret = Secret(token)
    args.redactor.add(secret)
    return secret


def _client(args: argparse.Namespace) -> Any:
    from adobot.credentials.remote import ControlRoomClient

    return ControlRoomClient(args.control_room, _token(args, "standard"),
                             allow_plain_http=args.allow_plain_http)


def bundle_of(bot: Path) -> dict[str, str]:
    """The files of the bot's folder a bundle may hold, by their path relative to it."""
    from adobot.runs.bundles import FILE_PATH, MAX_FILES

    if not bot.is_file():
        raise InvalidInput(f"bot file {str(bot)!r} does not exist", field="bot")
    folder = bot.resolve().parent
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and FILE_PATH.match(relative):
            files[relative] = path.read_text(encoding="utf-8")
    if len(files) > MAX_FILES:
        raise InvalidInput(f"{folder} holds {len(files)} files a bundle would take: at most "
                           f"{MAX_FILES}", "Give the bot a folder of its own.", field="bot")
    return files


def _upload(args: argparse.Namespace) -> int:
    bot = Path(args.bot)
    body = {"main": bot.resolve().name, "files": bundle_of(bot), "variables": args.var}
    if args.name:
        body["name"] = args.name
    answer = _client(args).post("bots", body, subject=f"bot {bot.name}")
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        print(f"{answer['name']} version {answer['version']} ({len(answer['files'])} files, "
              f"sha256 {answer['digest'][:12]}…) uploaded by {answer['uploaded_by']}")
    return 0


def _run_remote(args: argparse.Namespace) -> int:
    from adobot.cli.bots import _parse_vars

    version: Any = args.version
    if version != "latest":
        if not str(version).isdigit():
            raise InvalidInput(f"--version {version!r}: give a number or latest", field="--version")
        version = int(version)
    room = _client(args)
    body = {"bot": args.bot, "version": version, "variables": _parse_vars(args),
            "priority": args.priority, "pool": args.pool}
    if args.idempotency_key:
        body["idempotency_key"] = args.idempotency_key
    run = room.post("runs", body, subject=f"a run of {args.bot}")
    if not args.json:
        print(f"run {run['id']} of {run['bot']} version {run['bot_version']}: {run['state']}"
              + (f" ({run['waiting']})" if run.get("waiting") else ""), file=sys.stderr)
    if args.wait:
        while run["state"] not in FINAL:
            time.sleep(1.0)
            run = room.get(f"runs/{run['id']}", subject=f"run {run['id']}")
    if args.json:
        print(json.dumps(run, indent=2))
    elif args.wait:
        for step in run.get("steps") or []:
            print(f"  {step.get('path')} {step.get('action')}: {step.get('status')}")
        said = f"run {run['id']}: {run['state']}"
        if run.get("error"):
            said += f" — {run['error']['code']}: {run['error']['message']}"
        print(args.redactor.scrub(said))
    return 0 if run["state"] in ("succeeded", "queued", "running") else 1
