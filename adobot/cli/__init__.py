"""The ``adobot`` command. Data goes to stdout, logs and errors to stderr; exit codes are the
contract's: 0 success, 1 an action failed after sending, 2 invalid before sending.

Each command group is a module that registers its own subcommands (``register``); every
handler raises ``AdobotError`` for a failure and ``main`` prints it, one way for all.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from adobot import __version__
from adobot.errors import AdobotError, InternalError
from adobot.cli import assistants, bots, catalog, control, runs, serve, vault
from adobot.cli.output import print_error
from adobot.credentials.redact import RedactingFilter, Redactor

EXIT_CODES = ("Exit codes: 0 success, 1 an action failed after a request was sent, "
              "2 the bot, an input or the environment is invalid (nothing was sent).")


def main(argv: Sequence[str] | None = None) -> int:
    # pydantic looks for plugins through every installed package's entry points when it
    # builds its first validator (~10 ms of each cold start); the command uses none.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    args = build_parser().parse_args(argv)
    _configure_logging(args)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("adobot: interrupted", file=sys.stderr)
        return 130
    except AdobotError as error:
        return _report(args, error)
    except Exception as exc:  # a bug: one clear line, the traceback only with --debug
        error = InternalError(f"{type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return _report(args, error)


def _report(args: argparse.Namespace, error: AdobotError) -> int:
    """The one way a command's failure is told: the command's own document if it has one
    (``run --json``), a traceback with --debug, then the error line and its hint."""
    redactor: Redactor = args.redactor
    on_error = getattr(args, "on_error", None)
    if on_error is not None:
        on_error(args, error)
    if getattr(args, "debug", False):
        import traceback

        cause = error.__cause__ or error
        print(redactor.scrub("".join(traceback.format_exception(cause))), file=sys.stderr)
    print_error(error.to_dict(), redactor)
    return error.exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adobot", description="Run bots that automate Azure DevOps.", epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"adobot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (bots, catalog, vault, control, runs, assistants, serve):
        group.register(commands)
    return parser


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"adobot: {record.getMessage()}"


def _configure_logging(args: argparse.Namespace) -> None:
    args.redactor = Redactor()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    handler.addFilter(RedactingFilter(args.redactor))
    root = logging.getLogger("adobot")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.DEBUG if getattr(args, "debug", False) else logging.INFO)
    # procrastinate and its connection pool (runs as jobs on PostgreSQL): their warnings,
    # masked like ours; a line a job only with --debug.
    for name in ("procrastinate", "psycopg"):
        jobs = logging.getLogger(name)
        jobs.handlers[:] = [handler]
        jobs.propagate = False
        jobs.setLevel(logging.DEBUG if getattr(args, "debug", False) else logging.WARNING)
    # A line says "adobot: message" and nothing else, so a record need not look up its
    # caller, thread or process (the logging HOWTO's "Optimization"): a step's log line
    # then costs a fraction of its request.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


if __name__ == "__main__":
    sys.exit(main())
