"""``adobot run`` and ``adobot validate``."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from contextlib import ExitStack
from typing import Any

from adobot.credentials.secret import Secret
from adobot.errors import AdobotError, InvalidInput
from adobot.cli.output import print_error
from adobot.credentials.redact import Redactor

log = logging.getLogger("adobot")


def _run_environment() -> argparse.ArgumentParser:
    """What the person running a bot allows it, given alike to run and to validate (which
    checks the bot as that run would see it)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--vault", metavar="PATH",
                         help="vault file (default: $ADOBOT_VAULT, else the user's); validate "
                              "checks its credentials' organizations")
    options.add_argument("--allow-dir", action="append", default=[], metavar="DIR",
                         help="let the bot's ReadCsv and RunBot read files in DIR too (by "
                              "default only in the bot's own folder); repeatable")
    options.add_argument("--allow-plain-http", action="store_true",
                         help="allow plain http to a host other than this machine (an Azure "
                              "DevOps Server without TLS): tokens then cross the network in "
                              "clear text, and Connect warns")
    return options


def register(commands: argparse._SubParsersAction) -> None:
    environment = _run_environment()
    run = commands.add_parser(
        "run", help="run a bot file", parents=[environment],
        description="Run a bot file (YAML). Logs go to stderr. Before its first request the "
                    "whole bot tree is checked as `adobot validate` checks it.",
        epilog="Exit codes: 0 success; 1 an action failed after a request was sent; 2 the bot, "
               "an input or the environment is invalid. A problem that does not depend on "
               "values known only at run time is found before the first request: then nothing "
               "was sent and nothing changed. One that depends on a ${...} value is found "
               "before its own step sends anything.")
    run.add_argument("bot", metavar="BOT.yaml")
    run.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                     help="set a variable (text); repeatable")
    run.add_argument("--var-env", action="append", default=[], metavar="NAME=ENVVAR",
                     help="set a variable from an environment variable, e.g. a token (its value "
                          "is masked in all output); repeatable")
    run.add_argument("--sandbox", action="store_true",
                     help="send all traffic to the embedded Azure DevOps emulator on 127.0.0.1")
    run.add_argument("--sandbox-latency", type=float, metavar="MS",
                     help="with --sandbox: answer every request after MS milliseconds, like a "
                          "distant service")
    run.add_argument("--sandbox-seed", metavar="FILE",
                     help="with --sandbox: the emulator's seed data (JSON), e.g. with faults to "
                          "rehearse failure")
    run.add_argument("--control-room", metavar="URL",
                     help="fetch the credentials of the connections the bot names from this "
                          "control room, for this run only (a runner token in "
                          "$ADOBOT_CONTROL_ROOM_TOKEN)")
    run.add_argument("--json", action="store_true",
                     help="print one JSON result document on stdout")
    run.add_argument("--debug", action="store_true", help="show tracebacks and HTTP requests")
    run.set_defaults(handler=_run, on_error=_failure_document)

    validate = commands.add_parser(
        "validate", help="check a bot file (and the bots it runs) without any network traffic",
        parents=[environment],
        description="Check a bot tree without sending anything and list every problem with its "
                    "file, line and step: structure, unknown actions and outputs, inputs, "
                    "undefined variables, sessions used before a Connect, child bots; tokens "
                    "written into a bot file are a warning.")
    validate.add_argument("bot", metavar="BOT.yaml")
    validate.add_argument("--var", action="append", default=[], metavar="NAME[=VALUE]",
                          help="declare a variable the run will be given; repeatable")
    validate.add_argument("--var-env", action="append", default=[], metavar="NAME=ENVVAR",
                          help="declare a variable the run will take from the environment")
    validate.add_argument("--session", action="append", default=[], metavar="NAME",
                          help="declare a global session a parent bot connects (to check a "
                               "child bot on its own); repeatable")
    validate.set_defaults(handler=_validate)


def _parse_vars(args: argparse.Namespace) -> dict[str, Any]:
    from adobot.runtime.loader import VARIABLE_NAME

    variables: dict[str, Any] = {}
    for option, items in (("--var", args.var), ("--var-env", args.var_env)):
        for item in items:
            name, sep, value = item.partition("=")
            if not sep or not VARIABLE_NAME.match(name):
                shown = name if option == "--var" else item
                raise InvalidInput(f"{option} {shown!r} must be NAME=" +
                                   ("VALUE" if option == "--var" else "ENVVAR"),
                                   "A variable name has letters, digits and '_'.", field=option)
            if option == "--var-env":
                if value not in os.environ:
                    raise InvalidInput(
                        f"environment variable {value!r} (for --var-env {name}) is not set",
                        f"Export it first, e.g. `export {value}=...`.", field=option)
                value = os.environ[value]
                # Tokens come this way: whatever bot of the tree uses it, and even if that bot
                # never loads, the value is masked wherever it would be printed.
                args.redactor.add(Secret(value.strip()))
            variables[name] = value
    return variables


def _run(args: argparse.Namespace) -> int:
    from adobot.runtime.environment import Settings, build_environment
    from adobot.runtime.loader import load_bot
    from adobot.runtime.runner import Runner

    redactor: Redactor = args.redactor
    with ExitStack() as stack:
        overrides = _parse_vars(args)
        bot = load_bot(args.bot)
        parsed = {bot.file.resolve(): bot}  # each file of the tree is parsed once per run
        refused = _check_before_running(args, overrides, bot.name, parsed)
        if refused is not None:
            return _print_result(args, refused)
        sandbox = None
        if args.sandbox:
            sandbox = start_sandbox(stack, args.sandbox_seed, args.sandbox_latency)
        elif args.sandbox_seed or args.sandbox_latency is not None:
            raise InvalidInput("--sandbox-seed and --sandbox-latency go with --sandbox",
                               field="--sandbox-seed")
        progress = None
        if sys.stderr.isatty():
            from adobot.runtime.progress import TerminalProgress
            progress = TerminalProgress(sys.stderr, redactor.scrub)
        runner = Runner(build_environment(Settings(
            vault=args.vault, sandbox=sandbox, redactor=redactor, debug=args.debug,
            progress=progress, allow_plain_http=args.allow_plain_http, allow_dirs=args.allow_dir,
            **_connections_of(args, bot.name))))
        result = runner.run(bot, overrides, parsed=parsed)
    return _print_result(args, result)


def _connections_of(args: argparse.Namespace, bot: str) -> dict[str, Any]:
    """Where the run's named connections come from: the control room (fetched with the
    runner's token, for this run), else the store beside the local vault."""
    if not args.control_room:
        return {"connections": "local"}
    import uuid

    from adobot.credentials.remote import TOKEN_ENV
    from adobot.runtime.environment import ControlRoomSettings

    if args.sandbox:
        raise InvalidInput("--control-room and --sandbox do not go together: a connection's "
                           "secret goes only to its own organization, never to the emulator",
                           "Try the bot with --sandbox and its own token, or run it against "
                           "the organization.", field="--control-room")
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise InvalidInput(f"--control-room needs the runner's token in ${TOKEN_ENV}",
                           "An admin issues one: `adobot token issue NAME --role runner`.",
                           field=TOKEN_ENV)
    secret = Secret(token)
    args.redactor.add(secret)
    return {"connections": "control-room", "control_room": ControlRoomSettings(
        args.control_room, secret, bot=bot, run=uuid.uuid4().hex[:12])}


def _print_result(args: argparse.Namespace, result: Any) -> int:
    redactor: Redactor = args.redactor
    if args.json:
        print(redactor.scrub(json.dumps(result.to_dict(), default=str, ensure_ascii=False)))
    else:
        print(redactor.scrub(_summary(result)))
    if result.error:
        print_error(result.error, redactor)
    return result.exit_code


def _check_before_running(args: argparse.Namespace, overrides: dict[str, Any], name: str,
                          parsed: dict[Any, Any]) -> Any:
    """Everything `adobot validate` finds that does not depend on values known only at run
    time, before the first request: the run's result (failed, nothing sent) or None."""
    from adobot.runtime.runner import RunResult
    from adobot.runtime.validate import validate_file

    problems = [finding for finding in validate_file(
        args.bot, overrides, allow_plain_http=args.allow_plain_http, vault=args.vault,
        allow_dirs=args.allow_dir, parsed=parsed) if finding.severity == "error"]
    if not problems:
        return None
    for problem in problems[1:]:
        print(args.redactor.scrub(str(problem)), file=sys.stderr)
    first = problems[0]
    where = "" if first.path else f"{first.where}: "
    more = f" ({len(problems) - 1} more problems above)" if len(problems) > 1 else ""
    error = {"code": first.code, "message": f"{where}{first.message}{more}",
             "hint": first.hint or "Fix the bot file; `adobot validate BOT.yaml` lists every "
                                   "problem. Nothing was sent.",
             "path": first.path, "action": first.action}
    return RunResult.refused(name, error, exit_code=2)


def start_sandbox(stack: ExitStack, seed_path: str | None, latency_ms: float | None = None):
    from adobot.sandbox import Sandbox
    from adobot.sandbox.state import load_seed

    if latency_ms is not None and latency_ms < 0:
        raise InvalidInput(f"--sandbox-latency {latency_ms:g} must be 0 or more milliseconds",
                           field="--sandbox-latency")
    try:
        seed = load_seed(seed_path) if seed_path else None
        sandbox = stack.enter_context(Sandbox(seed=seed, latency_ms=latency_ms))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidInput(f"--sandbox-seed {seed_path!r} cannot be used: {exc!r}",
                           "Give a JSON file shaped like sandbox/seed.json.",
                           field="--sandbox-seed") from None
    log.info("sandbox: serving Azure DevOps on %s (every organization URL goes there)", sandbox.url)
    return sandbox


def _failure_document(args: argparse.Namespace, error: AdobotError) -> None:
    """A run that failed before it started prints the same JSON document as any other."""
    if not args.json:
        return
    from adobot.runtime.runner import RunResult

    result = RunResult.refused(os.path.splitext(os.path.basename(args.bot))[0],
                               {**error.to_dict(), "path": None, "action": None},
                               error.exit_code)
    print(args.redactor.scrub(json.dumps(result.to_dict(), ensure_ascii=False)))


def _summary(result) -> str:
    from adobot.runtime.runner import plural

    lines = [f"Bot {result.bot!r} {result.status}: {plural(len(result.steps), 'step')}, "
             f"{plural(result.requests, 'request')}, {result.duration_ms:.0f} ms"]
    width = max((len(s.action) for s in result.steps), default=0)
    path_width = max((len(s.path) for s in result.steps), default=0)
    for step in result.steps:
        outcome = step.summary or ("done" if step.status == "succeeded" else step.status)
        if step.error:
            outcome = f"failed: {step.error['code']}"
        lines.append(f"  {step.path:<{path_width}}  {step.action:<{width}}  {outcome}")
    if result.failures:
        lines.append(f"Failures (on_error: continue): {len(result.failures)}")
        lines += [f"  {f['path']}: {f['code']}: {f['message']}" for f in result.failures]
    if result.variables:
        lines.append("Variables:")
        for name, value in result.variables.items():
            lines.append(f"  {name} = {_short(value)}")
    return "\n".join(lines)


def _short(value: Any, limit: int = 100) -> str:
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v
                                                 for v in value):
        text = f"[{len(value)} items: {', '.join(str(v['name']) for v in value)}]"
    elif isinstance(value, list) and len(value) > 3:
        text = f"[{len(value)} items]"
    else:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _validate(args: argparse.Namespace) -> int:
    from adobot.runtime.validate import validate_file

    declared = [item.partition("=")[0] for item in args.var + args.var_env]
    findings = validate_file(args.bot, declared, args.session,
                             allow_plain_http=args.allow_plain_http, vault=args.vault,
                             allow_dirs=args.allow_dir)
    errors = [f for f in findings if f.severity == "error"]
    for finding in findings:
        print(args.redactor.scrub(str(finding)), file=sys.stderr)
    if errors:
        print(f"{os.path.basename(args.bot)}: {len(errors)} "
              f"problem{'s' if len(errors) != 1 else ''}", file=sys.stderr)
        return 2
    print(f"{os.path.basename(args.bot)}: OK")
    return 0
