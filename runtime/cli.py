"""The ``adobot`` command. Data goes to stdout, logs and errors to stderr; exit codes are the
contract's: 0 success, 1 an action failed after sending, 2 invalid before sending."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from contextlib import ExitStack
from typing import Any, Sequence

from rest import __version__
from rest.errors import AdobotError, InternalError, InvalidInput
from runtime.redact import RedactingFilter, Redactor

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
            import traceback
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
    run.add_argument("--sandbox-seed", metavar="FILE",
                     help="with --sandbox: the emulator's seed data (JSON), e.g. with faults to "
                          "rehearse failure")
    run.add_argument("--json", action="store_true",
                     help="print one JSON result document on stdout")
    run.add_argument("--debug", action="store_true", help="show tracebacks and HTTP requests")
    run.set_defaults(handler=_run)

    validate = commands.add_parser(
        "validate", help="check a bot file (and the bots it runs) without any network traffic",
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

    vault_file = argparse.ArgumentParser(add_help=False)
    vault_file.add_argument("--vault", metavar="PATH",
                            help="vault file (default: $ADOBOT_VAULT, else ~/.config/adobot/vault.json)")
    vault = commands.add_parser(
        "vault", help="store tokens for bots in the encrypted vault (control-room admins)",
        description="The encrypted vault: lockers hold credentials, credentials hold attributes "
                    "(e.g. ado/ci-bot/pat). Values can be stored, never read back.")
    vault_commands = vault.add_subparsers(dest="vault_command", required=True, metavar="COMMAND")
    put = vault_commands.add_parser(
        "put", parents=[vault_file], help="store a secret read from standard input",
        description="Store a secret read from standard input (never from the command line, so "
                    "it stays out of shell history and ps). A trailing newline is removed.")
    put.add_argument("locker")
    put.add_argument("credential")
    put.add_argument("attribute")
    put.add_argument("--check", metavar="ORG_URL",
                     help="prove the token against this organization first (it must work and "
                          "have Code (Read)); store nothing if it does not")
    put.set_defaults(handler=_vault_put)
    listing = vault_commands.add_parser("list", parents=[vault_file],
                                        help="list names and dates (never values)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_vault_list)
    remove = vault_commands.add_parser("remove", parents=[vault_file],
                                       help="remove a credential and all its attributes")
    remove.add_argument("locker")
    remove.add_argument("credential")
    remove.set_defaults(handler=_vault_remove)
    rotate = vault_commands.add_parser(
        "rotate-key", parents=[vault_file], help="re-encrypt every value under a new key",
        description="Re-encrypt every value under a new key. With a key file the new key "
                    "replaces it; with ADOBOT_VAULT_KEY, give the new key in "
                    "ADOBOT_VAULT_NEW_KEY and set it as ADOBOT_VAULT_KEY afterwards.")
    rotate.set_defaults(handler=_vault_rotate)
    generate = vault_commands.add_parser(
        "generate-key", help="print a new random vault key (for ADOBOT_VAULT_KEY)")
    generate.set_defaults(handler=_vault_generate_key)

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
                route = _start_sandbox(stack, args.sandbox_seed)
            elif args.sandbox_seed:
                raise InvalidInput("--sandbox-seed goes with --sandbox", field="--sandbox-seed")
            progress = None
            if sys.stderr.isatty():
                from runtime.progress import TerminalProgress
                progress = TerminalProgress(sys.stderr, redactor.scrub)
            runner = Runner(route=route, redactor=redactor, debug=args.debug, progress=progress,
                            vault_path=args.vault)
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


def _start_sandbox(stack: ExitStack, seed_path: str | None):
    from sandbox import Sandbox
    from sandbox.state import load_seed

    try:
        seed = load_seed(seed_path) if seed_path else None
        sandbox = stack.enter_context(Sandbox(seed=seed))
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidInput(f"--sandbox-seed {seed_path!r} cannot be used: {exc}",
                           "Give a JSON file shaped like sandbox/seed.json.",
                           field="--sandbox-seed") from None
    log.info("sandbox: serving Azure DevOps on %s (every organization URL goes there)", sandbox.url)
    return lambda org: f"{sandbox.url}/{org.name}"


def _fail_early(args: argparse.Namespace, error: AdobotError) -> int:
    """A failure before the bot started: same JSON document, same error shape."""
    redactor: Redactor = args.redactor
    if args.debug:
        import traceback
        log.debug("".join(traceback.format_exception(error)))
    from runtime.runner import RunResult

    detail = error.to_dict()
    if args.json:
        result = RunResult(bot=os.path.splitext(os.path.basename(args.bot))[0], status="failed",
                           variables={}, steps=[], error={**detail, "path": None, "action": None},
                           exit_code=error.exit_code, duration_ms=0.0)
        print(redactor.scrub(json.dumps(result.to_dict(), ensure_ascii=False)))
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
    from runtime.validate import validate_file

    declared = [item.partition("=")[0] for item in args.var + args.var_env]
    findings = validate_file(args.bot, declared, args.session)
    errors = [f for f in findings if f.severity == "error"]
    for finding in findings:
        print(args.redactor.scrub(str(finding)), file=sys.stderr)
    if errors:
        print(f"{os.path.basename(args.bot)}: {len(errors)} "
              f"problem{'s' if len(errors) != 1 else ''}", file=sys.stderr)
        return 2
    print(f"{os.path.basename(args.bot)}: OK")
    return 0


def _manifest(args: argparse.Namespace) -> int:
    from actions import manifest, registry

    if args.write is not None:
        from pathlib import Path

        folder = Path(args.write) if args.write else manifest.DEFAULT_DIR
        written = manifest.write(folder)
        print(f"wrote {len(written)} files to {folder}")
        return 0
    if args.all:
        print(json.dumps([manifest.manifest(a) for a in registry.all_actions()], indent=2))
        return 0
    try:
        action = registry.get(args.action)
    except AdobotError as error:
        _print_error(error.to_dict(), args.redactor)
        return error.exit_code
    print(manifest.render(manifest.manifest(action)), end="")
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


def _vault_command(handler):
    """Vault commands share error handling: one line, a hint, the contract's exit code."""
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except AdobotError as error:
            if getattr(args, "debug", False):
                import traceback
                log.debug("".join(traceback.format_exception(error)))
            _print_error(error.to_dict(), args.redactor)
            return error.exit_code
    return run


@_vault_command
def _vault_put(args: argparse.Namespace) -> int:
    from credentials.sources import clean_token
    from credentials.vault import Vault, check_name

    for value, what in ((args.locker, "locker"), (args.credential, "credential"),
                        (args.attribute, "attribute")):
        check_name(value, what)
    if sys.stdin is None or sys.stdin.closed:
        raise InvalidInput("no standard input to read the secret from",
                           "Pipe it in: `printf %s \"$TOKEN\" | adobot vault put ...`.")
    if sys.stdin.isatty():
        import getpass
        raw = getpass.getpass(f"Secret for {args.locker}/{args.credential}/{args.attribute}: ")
    else:
        raw = sys.stdin.read()
    token = clean_token(raw, "the secret read from standard input")
    args.redactor.add(token)
    if args.check:
        _check_token(token, args.check)
    Vault(args.vault).put(args.locker, args.credential, args.attribute, token)
    print(f"stored {args.locker}/{args.credential}/{args.attribute}")
    return 0


def _check_token(token, organization_url: str) -> None:
    """As Connect would: who the token is, and that it may read code in the organization."""
    from rest.client import PREVIEW_API_VERSION, RestClient
    from rest.urls import parse_organization_url

    organization = parse_organization_url(organization_url)
    client = RestClient(organization.base_url, token)
    try:
        data = client.get("_apis/connectionData", api_version=PREVIEW_API_VERSION,
                          subject=f"organization {organization.name!r}")
        user = ((data or {}).get("authenticatedUser") or {}).get("providerDisplayName", "?")
        client.get("_apis/git/repositories", scope="Code (Read)",
                   subject=f"the repositories of organization {organization.name!r}")
    finally:
        client.close()
    log.info("checked: the token works in %s as %s and can read code", organization.name, user)


@_vault_command
def _vault_list(args: argparse.Namespace) -> int:
    from credentials.vault import Vault

    entries = Vault(args.vault).entries()
    if args.json:
        print(json.dumps([{"locker": e.locker, "credential": e.credential,
                           "attribute": e.attribute, "set_at": e.set_at} for e in entries],
                         indent=2))
        return 0
    if not entries:
        print("the vault is empty")
        return 0
    rows = [("LOCKER", "CREDENTIAL", "ATTRIBUTE", "SET AT")] + [
        (e.locker, e.credential, e.attribute, e.set_at) for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}")
    return 0


@_vault_command
def _vault_remove(args: argparse.Namespace) -> int:
    from credentials.vault import Vault

    Vault(args.vault).remove(args.locker, args.credential)
    print(f"removed {args.locker}/{args.credential}")
    return 0


@_vault_command
def _vault_rotate(args: argparse.Namespace) -> int:
    from credentials.vault import KEY_ENV, NEW_KEY_ENV, Vault

    count = Vault(args.vault).rotate_key()
    print(f"re-encrypted {count} values under a new key")
    if os.environ.get(KEY_ENV):
        print(f"now set {KEY_ENV} to the value of {NEW_KEY_ENV}", file=sys.stderr)
    return 0


def _vault_generate_key(args: argparse.Namespace) -> int:
    from credentials.vault import generate_key

    print(generate_key())
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
