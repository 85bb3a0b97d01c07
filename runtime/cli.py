"""The ``adobot`` command. Data goes to stdout, logs and errors to stderr; exit codes are the
contract's: 0 success, 1 an action failed after sending, 2 invalid before sending."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from contextlib import ExitStack
from typing import Any, Sequence

from rest import __version__
from rest.errors import AdobotError, InternalError, InvalidInput
from runtime.redact import Redactor, RedactingFilter

log = logging.getLogger("adobot")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("adobot: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one clear line, the traceback only with --debug
        error = InternalError(f"{type(exc).__name__}: {exc}")
        if getattr(args, "debug", False):
            print(args.redactor.scrub(traceback.format_exc()), file=sys.stderr)
        _print_error(error.to_dict(), args.redactor)
        return error.exit_code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adobot", description="Run bots that automate Azure DevOps.",
        epilog="Exit codes: 0 success, 1 an action failed after a request was sent, "
               "2 the bot, an input or the environment is invalid (nothing was sent).")
    parser.add_argument("--version", action="version", version=f"adobot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a bot file",
                              description="Run a bot file (YAML). Logs go to stderr.")
    run.add_argument("bot", metavar="BOT.yaml")
    run.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                     help="set a variable (text); repeatable")
    run.add_argument("--var-env", action="append", default=[], metavar="NAME=ENVVAR",
                     help="set a variable from an environment variable, e.g. a token; repeatable")
    run.add_argument("--vault", metavar="PATH", help="vault file (default: $ADOBOT_VAULT)")
    run.add_argument("--sandbox", action="store_true",
                     help="send all traffic to the embedded Azure DevOps emulator on 127.0.0.1")
    run.add_argument("--json", action="store_true",
                     help="print one JSON result document on stdout")
    run.add_argument("--debug", action="store_true", help="show tracebacks and HTTP requests")
    run.set_defaults(handler=_run)

    validate = commands.add_parser(
        "validate", help="check a bot file without any network traffic",
        description="Check a bot file without sending anything: its structure, action names, "
                    "output names, and the inputs that do not depend on variables.")
    validate.add_argument("bot", metavar="BOT.yaml")
    validate.set_defaults(handler=_validate)

    actions = commands.add_parser("actions", help="list the actions")
    actions.add_argument("--json", action="store_true", help="print JSON")
    actions.set_defaults(handler=_actions)

    sandbox = commands.add_parser("sandbox", help="serve the Azure DevOps emulator on 127.0.0.1",
                                  description="Serve the embedded Azure DevOps emulator until "
                                              "interrupted (Ctrl-C).")
    sandbox.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    sandbox.add_argument("--seed", metavar="FILE", help="seed data (JSON; default: built-in)")
    sandbox.set_defaults(handler=_sandbox)
    return parser


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return f"adobot: {text}"


def _configure_logging(args: argparse.Namespace) -> None:
    args.redactor = Redactor()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    handler.addFilter(RedactingFilter(args.redactor))
    root = logging.getLogger("adobot")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.DEBUG if getattr(args, "debug", False) else logging.INFO)


def _parse_vars(args: argparse.Namespace) -> dict[str, Any]:
    from runtime.loader import VARIABLE_NAME

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
            variables[name] = value
    return variables


def _run(args: argparse.Namespace) -> int:
    from runtime.loader import load_bot
    from runtime.runner import Runner

    redactor: Redactor = args.redactor
    with ExitStack() as stack:
        try:
            overrides = _parse_vars(args)
            bot = load_bot(args.bot)
            route = None
            if args.sandbox:
                route = _start_sandbox(stack)
            progress = None
            if sys.stderr.isatty():
                from runtime.progress import TerminalProgress
                progress = TerminalProgress(sys.stderr, redactor.scrub)
            runner = Runner(route=route, redactor=redactor, debug=args.debug, progress=progress)
            result = runner.run(bot, overrides)
        except AdobotError as error:
            return _fail_early(args, error)
    if args.json:
        print(redactor.scrub(json.dumps(result.to_dict(), default=str, ensure_ascii=False)))
    else:
        print(redactor.scrub(_summary(result)))
    if result.error:
        _print_error(result.error, redactor)
    return result.exit_code


def _start_sandbox(stack: ExitStack):
    from sandbox import Sandbox

    sandbox = stack.enter_context(Sandbox())
    log.info("sandbox: serving Azure DevOps on %s (every organization URL goes there)", sandbox.url)
    return lambda org: f"{sandbox.url}/{org.name}"


def _fail_early(args: argparse.Namespace, error: AdobotError) -> int:
    """A failure before the bot started: same JSON document, same error shape."""
    redactor: Redactor = args.redactor
    if args.debug:
        log.debug("".join(traceback.format_exception(error)))
    detail = error.to_dict()
    if args.json:
        doc = {"bot": os.path.splitext(os.path.basename(args.bot))[0], "status": "failed",
               "variables": {}, "steps": [], "error": {**detail, "path": None, "action": None},
               "duration_ms": 0.0, "requests": 0, "warnings": []}
        print(redactor.scrub(json.dumps(doc, ensure_ascii=False)))
    _print_error(detail, redactor)
    return error.exit_code


def _print_error(error: dict[str, Any], redactor: Redactor) -> None:
    where = ""
    if error.get("path"):
        where = f" at step {error['path']} ({error.get('action')})"
    text = f"error{where}: {error['code']}: {error['message']}\n  hint: {error['hint']}"
    print(redactor.scrub(text), file=sys.stderr)


def _summary(result) -> str:
    from runtime.runner import plural

    lines = [f"Bot {result.bot!r} {result.status}: {plural(len(result.steps), 'step')}, "
             f"{plural(result.requests, 'request')}, {result.duration_ms:.0f} ms"]
    width = max((len(s.action) for s in result.steps), default=0)
    for step in result.steps:
        outcome = step.summary or ("done" if step.status == "succeeded" else step.status)
        if step.error:
            outcome = f"failed: {step.error['code']}"
        lines.append(f"  {step.path:<6} {step.action:<{width}}  {outcome}")
    if result.variables:
        lines.append("Variables:")
        for name, value in result.variables.items():
            lines.append(f"  {name} = {_short(value)}")
    return "\n".join(lines)


def _short(value: Any, limit: int = 100) -> str:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        names = [str(v.get("name", v.get("id", "?"))) for v in value]
        text = f"[{len(value)} items: {', '.join(names)}]"
    else:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _validate(args: argparse.Namespace) -> int:
    from runtime.loader import load_bot
    from runtime.validate import problems, warnings

    try:
        bot = load_bot(args.bot)
    except AdobotError as error:
        _print_error(error.to_dict(), args.redactor)
        return error.exit_code
    for warning in warnings(bot):
        print(f"warning: {warning}", file=sys.stderr)
    found = problems(bot)
    for problem in found:
        print(f"error: INVALID_INPUT: {problem}", file=sys.stderr)
    if found:
        return 2
    print(f"{bot.file.name}: OK ({len(bot.steps)} steps)")
    return 0


def _actions(args: argparse.Namespace) -> int:
    from actions import registry

    actions = registry.all_actions()
    if args.json:
        print(json.dumps([{"name": a.name, "label": a.label, "group": a.group,
                           "description": a.description} for a in actions], indent=2))
        return 0
    width = max(len(a.name) for a in actions)
    for action in actions:
        print(f"{action.name:<{width}}  {action.group:<9} {action.description}")
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    import threading

    from sandbox import Sandbox
    from sandbox.state import load_seed

    try:
        seed = load_seed(args.seed) if args.seed else None
    except (OSError, ValueError) as exc:
        print(f"error: INVALID_INPUT: seed file {args.seed!r} cannot be read: {exc}",
              file=sys.stderr)
        return 2
    try:
        sandbox = Sandbox(seed=seed, port=args.port).start()
    except OSError as exc:
        print(f"error: NETWORK_ERROR: cannot listen on port {args.port}: {exc.strerror}\n"
              "  hint: choose another --port, or omit it for a free one", file=sys.stderr)
        return 1
    print(f"Azure DevOps sandbox on {sandbox.url}", flush=True)
    for name in sorted(o.name for o in sandbox.state.organizations.values()):
        print(f"  organization URL: {sandbox.url}/{name}")
    print("  tokens: " + ", ".join(sorted(sandbox.state.tokens)), flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
