"""``adobot vault ...``: the encrypted vault, for control-room admins."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys

from adobot.errors import InvalidInput

log = logging.getLogger("adobot")


def register(commands: argparse._SubParsersAction) -> None:
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
    put.add_argument("--org", action="append", default=[], metavar="ORG_URL",
                     help="an organization URL the secret may be sent to (repeatable); it is "
                          "sent nowhere else")
    put.add_argument("--check", nargs="?", const="", metavar="ORG_URL",
                     help="prove the token first (it must work and have Code (Read)) against "
                          "ORG_URL (which it is then bound to as well), or with no URL against "
                          "every --org; store nothing if it does not")
    put.add_argument("--tenant-id", metavar="TENANT",
                     help="with --client-id: the secret is that app's client secret "
                          "(Connect's service_principal); --check signs in as the app")
    put.add_argument("--client-id", metavar="CLIENT",
                     help="with --tenant-id: the app's application (client) id")
    put.set_defaults(handler=_put)
    bind = vault_commands.add_parser(
        "bind", parents=[vault_file], help="set the organizations a credential may be sent to",
        description="Let every attribute of a credential go to these organizations and nowhere "
                    "else: how a credential stored before bindings existed is made usable, or "
                    "its organizations changed.")
    bind.add_argument("locker")
    bind.add_argument("credential")
    bind.add_argument("--org", action="append", default=[], required=True, metavar="ORG_URL",
                      help="an organization URL the credential may be sent to (repeatable)")
    bind.set_defaults(handler=_bind)
    listing = vault_commands.add_parser("list", parents=[vault_file],
                                        help="list names and dates (never values)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)
    remove = vault_commands.add_parser("remove", parents=[vault_file],
                                       help="remove a credential and all its attributes")
    remove.add_argument("locker")
    remove.add_argument("credential")
    remove.set_defaults(handler=_remove)
    rotate = vault_commands.add_parser(
        "rotate-key", parents=[vault_file], help="re-encrypt every value under a new key",
        description="Re-encrypt every value under a new key. With a key file the new key "
                    "replaces it; with ADOBOT_VAULT_KEY, give the new key in "
                    "ADOBOT_VAULT_NEW_KEY and set it as ADOBOT_VAULT_KEY afterwards. The "
                    "control room's connections, sealed with the same key, are re-sealed too.")
    rotate.add_argument("--database", metavar="URL",
                        help="the control room's database (default: $ADOBOT_DATABASE_URL, else "
                             "the SQLite file beside the vault, if there is one)")
    rotate.set_defaults(handler=_rotate)
    generate = vault_commands.add_parser(
        "generate-key", help="print a new random vault key (for ADOBOT_VAULT_KEY)")
    generate.set_defaults(handler=_generate_key)


def _put(args: argparse.Namespace) -> int:
    from adobot.credentials.vault import Vault, check_name

    for value, what in ((args.locker, "locker"), (args.credential, "credential"),
                        (args.attribute, "attribute")):
        check_name(value, what)
    token = read_secret(args, f"{args.locker}/{args.credential}/{args.attribute}",
                        "adobot vault put ...")
    organizations = args.org + ([args.check] if args.check else [])
    if not organizations:
        raise InvalidInput("say where the secret may be sent: --org ORG_URL (repeatable)",
                           "A stored secret goes only to the organizations it was stored for: "
                           "`adobot vault put ado ci-bot pat --org https://dev.azure.com/yourorg`.",
                           field="--org")
    app = (args.tenant_id, args.client_id)
    if any(app) and not all(app):
        raise InvalidInput("--tenant-id and --client-id go together (an app's client secret)",
                           field="--client-id")
    if args.check is not None:
        from adobot.control_room.check import prove
        from adobot.credentials.identity import token_source

        for url in organizations:
            if all(app):  # an app's client secret: proved by signing the app in
                prove(url, token, what="the app's secret", sign_in=token_source(
                    "service_principal", tenant_id=app[0], client_id=app[1],
                    client_secret=token))
            else:
                prove(url, token)
    Vault(args.vault).put(args.locker, args.credential, args.attribute, token,
                          organizations=organizations)
    print(f"stored {args.locker}/{args.credential}/{args.attribute} for "
          f"{', '.join(organizations)}")
    return 0


def read_secret(args: argparse.Namespace, what: str, command: str):
    """A secret from standard input (a prompt without echo on a terminal), never from argv;
    masked in everything the command prints from then on."""
    from adobot.credentials.sources import clean_token

    if sys.stdin is None or sys.stdin.closed:
        raise InvalidInput("no standard input to read the secret from",
                           f"Pipe it in: `printf %s \"$TOKEN\" | {command}`.")
    if sys.stdin.isatty():
        import getpass
        raw = getpass.getpass(f"Secret for {what}: ")
    else:
        raw = sys.stdin.read()
    token = clean_token(raw, "the secret read from standard input")
    args.redactor.add(token)
    return token


def _bind(args: argparse.Namespace) -> int:
    from adobot.credentials.vault import Vault

    count = Vault(args.vault).bind(args.locker, args.credential, args.org)
    print(f"bound {args.locker}/{args.credential} ({count} values) to {', '.join(args.org)}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from adobot.credentials.vault import Vault

    entries, verified = Vault(args.vault).listing()
    if not verified:
        print("note: no vault key here, so these names were not checked against the vault's "
              "integrity seal (anyone able to write the file could have changed them)",
              file=sys.stderr)
    if args.json:
        print(json.dumps([{"locker": e.locker, "credential": e.credential,
                           "attribute": e.attribute, "set_at": e.set_at,
                           "organizations": list(e.organizations)} for e in entries], indent=2))
        return 0
    if not entries:
        print("the vault is empty")
        return 0
    rows = [("LOCKER", "CREDENTIAL", "ATTRIBUTE", "SET AT", "MAY BE SENT TO")] + [
        (e.locker, e.credential, e.attribute, e.set_at,
         ", ".join(e.organizations) or "nowhere: not bound (adobot vault bind)")
        for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(f"{cell:<{width}}" for cell, width in zip(row, widths)) + f"  {row[4]}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from adobot.credentials.vault import Vault

    Vault(args.vault).remove(args.locker, args.credential)
    print(f"removed {args.locker}/{args.credential}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from adobot.credentials.vault import KEY_ENV, NEW_KEY_ENV, Vault

    from adobot.store.database import database_url, exists

    vault = Vault(args.vault)
    with contextlib.ExitStack() as stack:
        state = None
        if exists(database_url(args.database, vault.path)):
            # The control room's connections are sealed with this key too, and so are the
            # variables of runs that may still start and of schedules: re-sealed with it.
            from adobot.control_room.state import open_state

            state = stack.enter_context(open_state(vault, args.database))
        count = vault.rotate_key(None if state is None else state.reseal)
        if state is not None:
            state.promote()
    print(f"re-encrypted {count} values under a new key")
    if os.environ.get(KEY_ENV):
        print(f"now set {KEY_ENV} to the value of {NEW_KEY_ENV}", file=sys.stderr)
    return 0


def _generate_key(args: argparse.Namespace) -> int:
    from adobot.credentials.vault import generate_key

    print(generate_key())
    return 0
