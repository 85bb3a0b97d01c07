"""``adobot connection``, ``adobot token``, ``adobot audit`` and ``adobot control-room``: the
control room, for admins, with or without its service."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import ExitStack
from typing import Any, Iterable

from adobot.errors import InvalidInput
from adobot.cli.vault import read_secret

log = logging.getLogger("adobot")


def register(commands: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--vault", metavar="PATH",
                        help="vault file (default: $ADOBOT_VAULT, else ~/.config/adobot/vault.json)")
    common.add_argument("--database", metavar="URL",
                        help="the control room's database: postgresql://user@host/db, or "
                             "sqlite:///file.db (default: $ADOBOT_DATABASE_URL, else a SQLite "
                             "file beside the vault)")
    proving = argparse.ArgumentParser(add_help=False, parents=[common])
    proving.add_argument("--sandbox", action="store_true",
                         help="prove against the embedded Azure DevOps emulator instead of the "
                              "organization (to try things out)")
    access = argparse.ArgumentParser(add_help=False)
    access.add_argument("--runner", action="append", metavar="NAME", dest="runners",
                        help="a runner token (by name) that may fetch the secret for its runs; "
                             "repeatable (default: every runner)")
    access.add_argument("--role", action="append", choices=("runner", "administrator"),
                        dest="roles", help="token roles that may fetch the secret for a run; "
                                           "repeatable (default: runner)")

    connection = commands.add_parser(
        "connection", help="named connections to organizations (control-room admins)",
        description="Named connections: an organization, a default project and a secret under "
                    "one name, tested before they are saved. Bots name them (Connect's "
                    "connection); the secret is never shown again.")
    sub = connection.add_subparsers(dest="connection_command", required=True, metavar="COMMAND")
    add = sub.add_parser("add", parents=[proving, access],
                         help="test and save a connection (the secret from standard input)",
                         description="Test a connection and save it if the test passes; the "
                                     "secret (a PAT, or an app's client secret) is read from "
                                     "standard input, never from the command line. A "
                                     "managed_identity connection has none: the control room's "
                                     "own identity signs in.")
    add.add_argument("name", help="3-32 letters, digits and hyphens, starting with a letter")
    add.add_argument("--org", required=True, metavar="ORG",
                     help="the organization's name (as after dev.azure.com/), its URL "
                          "(dev.azure.com, visualstudio.com, Azure DevOps Server), or the URL "
                          "of a project, repository or wiki in it (its project becomes the "
                          "default project)")
    add.add_argument("--project", help="the default project of bots using the connection")
    add.add_argument("--method", choices=("pat", "service_principal", "managed_identity"),
                     default="pat", help="how it signs in (default: pat)")
    add.add_argument("--tenant-id", help="service_principal: directory (tenant) id; "
                                         "managed_identity across tenants: the organization's")
    add.add_argument("--client-id", help="service_principal: application (client) id; "
                                         "managed_identity: a user-assigned identity, or across "
                                         "tenants the app there that trusts the identity")
    add.add_argument("--identity-client-id", help="managed_identity across tenants: the "
                                                  "user-assigned identity behind the app")
    add.set_defaults(handler=_add)
    listing = sub.add_parser("list", parents=[common], help="list connections and their status")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)
    edit = sub.add_parser("edit", parents=[proving, access],
                          help="re-authenticate, or change the organization or project",
                          description="Change a connection; a new organization, project or "
                                      "secret is tested first, and nothing changes if the test "
                                      "fails.")
    edit.add_argument("name")
    edit.add_argument("--org", metavar="ORG", help="a new organization (name or URL)")
    project = edit.add_mutually_exclusive_group()
    project.add_argument("--project", help="a new default project")
    project.add_argument("--no-project", action="store_true", help="remove the default project")
    edit.add_argument("--secret", action="store_true",
                      help="re-authenticate: read a new secret from standard input")
    edit.add_argument("--tenant-id", help="service_principal: a new tenant id")
    edit.add_argument("--client-id", help="service_principal: a new client id")
    edit.set_defaults(handler=_edit)
    test = sub.add_parser("test", parents=[proving],
                          help="test connections again and record their status")
    test.add_argument("names", nargs="+", metavar="NAME")
    test.set_defaults(handler=_test)
    remove = sub.add_parser("remove", parents=[common],
                            help="remove connections (all named, or none if one is unknown)")
    remove.add_argument("names", nargs="+", metavar="NAME")
    remove.set_defaults(handler=_remove)

    token = commands.add_parser(
        "token", help="API tokens for the control room (admins)",
        description="API tokens for people (administrator, standard) and bot runners (runner). "
                    "A token is shown once; only its hash is kept.")
    tokens = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    issue = tokens.add_parser("issue", parents=[common], help="issue a token (printed once)")
    issue.add_argument("name", help="who or what holds it (3-32 letters, digits, hyphens)")
    issue.add_argument("--role", required=True, choices=("administrator", "standard", "runner"))
    issue.add_argument("--days", type=float, default=90,
                       help="days until it expires (default 90, at most 366)")
    issue.set_defaults(handler=_issue)
    token_list = tokens.add_parser("list", parents=[common], help="list tokens (never a token)")
    token_list.add_argument("--json", action="store_true", help="print JSON")
    token_list.set_defaults(handler=_tokens)
    revoke = tokens.add_parser("revoke", parents=[common],
                               help="revoke the active tokens of a name, or one token by id")
    revoke.add_argument("token", metavar="NAME_OR_ID")
    revoke.set_defaults(handler=_revoke)

    audit = commands.add_parser(
        "audit", parents=[common], help="read or verify the control room's audit log (never a "
                                        "secret)",
        description="The audit log: who did what to which connection, and who fetched which "
                    "credential. --verify checks its hash chain: exit 0 when it is whole, 1 "
                    "naming the first row that was changed or removed.")
    audit.add_argument("--limit", type=int, default=50, help="newest entries (default 50)")
    audit.add_argument("--connection", metavar="NAME", help="only this connection's entries")
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.add_argument("--verify", action="store_true",
                       help="check that no row was changed or removed since it was written")
    audit.set_defaults(handler=_audit)

    db = commands.add_parser("db", help="the control room's database (admins)",
                             description="The control room's database: its schema is managed "
                                         "by migrations, which the control room also applies "
                                         "when it starts.")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser("upgrade", parents=[common],
                                     help="apply the migrations the database lacks")
    upgrade.set_defaults(handler=_upgrade)

    room = commands.add_parser(
        "control-room", parents=[proving],
        help="serve the control room's HTTP API over its database and the vault",
        description="Serve the control room: connections, the CI/CD registration route "
                    "(POST /api/v1/azuredevops/auth/pat), credentials for bot runners, the "
                    "audit log; the OpenAPI document at /api/v1/openapi.json.")
    room.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                                                          "127.0.0.1)")
    room.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    room.add_argument("--certificate", metavar="PEM", help="TLS certificate (with --key)")
    room.add_argument("--key", metavar="PEM", help="TLS private key")
    room.add_argument("--allow-plain-http", action="store_true",
                      help="serve plain http on a non-loopback address (only behind a TLS proxy)")
    room.add_argument("--trusted-proxy", action="append", default=[], metavar="IP",
                      help="a proxy whose X-Forwarded-For names the client (the audit records "
                           "it); repeatable. Without one, the address that connected is recorded")
    room.add_argument("--workers", type=int, default=2, metavar="N",
                      help="runs of the pool 'default' this control room executes itself at "
                           "once (default 2; 0: only runner machines run bots)")
    room.set_defaults(handler=_serve)


def _state(args: argparse.Namespace, stack: ExitStack, proving: bool = False,
           workers: int = 0):
    """The control room's state for a command: the vault, its store, and (for commands that
    save secrets) the check that proves them — against the sandbox with --sandbox."""
    from adobot.control_room.check import connection_check
    from adobot.control_room.state import open_state
    from adobot.credentials.vault import Vault

    check, sandbox = None, None
    if proving:
        if getattr(args, "sandbox", False):
            from adobot.cli.bots import start_sandbox

            sandbox = start_sandbox(stack, None)
        check = connection_check(sandbox.route if sandbox else None,
                                 sandbox.entra_route() if sandbox else None)
    state = open_state(Vault(args.vault), args.database, check=check,
                       entra=sandbox.entra_route() if sandbox else None)
    stack.callback(state.close)
    if workers:
        state.run_bots(workers, sandbox=sandbox)
    return state


def _print_connection(connection) -> None:
    status = connection.status
    said = {"connected": f"connected as {status.user}", "failed": f"failed: {status.reason}",
            "unchecked": "not checked yet"}[status.state]
    print(printable(f"{connection.name}: {connection.organization_url}"
                    f"{' / ' + connection.project if connection.project else ''} "
                    f"({connection.authentication_method}) — {said}"
                    f"{' (checked ' + status.checked_at + ')' if status.checked_at else ''}"))


def _add(args: argparse.Namespace) -> int:
    from adobot.credentials.connections import check_connection_name, organization_of

    check_connection_name(args.name)  # before a secret is asked for
    organization_of(args.org)
    secret = None if args.method == "managed_identity" else \
        read_secret(args, f"connection {args.name}", f"adobot connection add {args.name} ...")
    with ExitStack() as stack:
        connection = _state(args, stack, proving=True).connections.add(
            args.name, args.org, secret, project=args.project,
            authentication_method=args.method, tenant_id=args.tenant_id,
            client_id=args.client_id, runners=args.runners or (), roles=args.roles or ("runner",),
            identity_client_id=args.identity_client_id)
    _print_connection(connection)
    return 0


def _list(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        found = _state(args, stack).connections.list()
    if args.json:
        print(json.dumps([c.to_dict() for c in found], indent=2))
    elif not found:
        print("no connections (add one: adobot connection add NAME --org ORG)")
    for connection in [] if args.json else found:
        _print_connection(connection)
    return 0


def _edit(args: argparse.Namespace) -> int:
    secret = (read_secret(args, f"connection {args.name}", f"adobot connection edit {args.name}"
                                                            " --secret") if args.secret else None)
    project: Any = None if args.no_project else (args.project if args.project else ...)
    with ExitStack() as stack:
        connection = _state(args, stack, proving=True).connections.edit(
            args.name, organization=args.org, project=project, secret=secret,
            tenant_id=args.tenant_id, client_id=args.client_id, runners=args.runners,
            roles=args.roles)
    _print_connection(connection)
    return 0


def _test(args: argparse.Namespace) -> int:
    failed = 0
    with ExitStack() as stack:
        connections = _state(args, stack, proving=True).connections
        for name in dict.fromkeys(args.names):
            connection = connections.test(name)
            failed += connection.status.state != "connected"
            _print_connection(connection)
    return 1 if failed else 0


def _remove(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        removed = _state(args, stack).connections.remove(args.names)
    print(f"removed {', '.join(removed)}")
    return 0


def _issue(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        record, token = _state(args, stack).tokens.issue(args.name, args.role, args.days)
    print(f"issued {record.role} token {record.name!r} (id {record.id}), expires "
          f"{record.expires_at}. It is shown once; keep it in your secret store:",
          file=sys.stderr)
    print(token.reveal())  # the one place a token is printed: to the admin who issued it
    return 0


def _tokens(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        records = [record.to_dict() for record in _state(args, stack).tokens.list()]
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    _table(records, ("id", "name", "role", "state", "expires_at"))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        revoked = _state(args, stack).tokens.revoke(args.token)
    for record in revoked:
        print(f"revoked {record.role} token {record.name!r} (id {record.id})")
    return 0


def _audit(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise InvalidInput(f"--limit {args.limit} must be 1 or more", field="--limit")
    with ExitStack() as stack:
        audit = _state(args, stack).audit
        if args.verify:
            verdict = audit.verify()
            if args.json:
                print(json.dumps(verdict.__dict__, indent=2))
            elif verdict.whole:
                print(f"the audit log is whole: {verdict.rows} rows, each as it was written")
            else:
                print(f"the audit log was tampered with: {verdict.problem} (the first "
                      f"{verdict.rows} rows are as they were written)")
            return 0 if verdict.whole else 1
        entries = audit.read(args.limit, connection=args.connection)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    _table(entries, ("seq", "at", "actor", "role", "event", "connection", "outcome"))
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    from adobot.credentials.vault import Vault
    from adobot.store.database import Database, database_url, shown

    url = database_url(args.database, Vault(args.vault).path)
    database = Database(url)
    try:
        before = database.revision()
        applied = database.upgrade()
        after = database.revision()
    finally:
        database.dispose()
    print(f"{shown(url)}: " + (f"upgraded from {before or 'empty'} to {after}" if applied
                              else f"already at {after}"))
    return 0


def _table(rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """Rows as aligned text. Values are shown with control characters escaped, so no stored
    value can move the cursor or forge a line on a terminal."""
    rows = [[printable(str(row.get(column) or "")) for column in columns] for row in rows]
    if not rows:
        print("(none)")
        return
    header = [column.upper() for column in columns]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def printable(text: str) -> str:
    r"""``text`` with every control character (C0, DEL, C1, and line and paragraph separators)
    written as an escape: ``\x1b``, ``\n``, ``\u2028``."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def _serve(args: argparse.Namespace) -> int:
    from adobot.control_room.server import check_listener, serve

    try:
        import fastapi  # noqa: F401  (the service's packages: the extra `control-room`)
        import uvicorn  # noqa: F401
    except ImportError as missing:
        raise InvalidInput(f"the control room needs its service packages ({missing.name} is "
                           "not installed)", "pip install 'adobot[control-room]'.") from None
    if not 0 <= args.port <= 65535:
        raise InvalidInput(f"--port {args.port} is not a TCP port", field="--port")
    check_listener(args.host, args.certificate, args.key, args.allow_plain_http)
    if not 0 <= args.workers <= 64:
        raise InvalidInput(f"--workers {args.workers}: give 0 to 64", field="--workers")
    with ExitStack() as stack:
        state = _state(args, stack, proving=True, workers=args.workers)
        scheme = "https" if args.certificate else "http"
        print(f"control room on {scheme}://{args.host}:{args.port} (OpenAPI: "
              f"/api/v1/openapi.json; database {_shown(state)}); Ctrl-C stops it",
              file=sys.stderr, flush=True)
        serve(state, host=args.host, port=args.port, certificate=args.certificate,
              key=args.key, trusted_proxies=args.trusted_proxy)
    return 0


def _shown(state) -> str:
    from adobot.store.database import shown

    return shown(state.store.database.url)
