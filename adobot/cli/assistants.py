"""``adobot mcp``: adobot's actions as MCP tools for AI assistants (stdio or streamable HTTP)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from contextlib import ExitStack
from typing import Any

from adobot.credentials.secret import Secret
from adobot.errors import InvalidInput

log = logging.getLogger("adobot")
SANDBOX_ORG = "https://dev.azure.com/contoso"


def register(commands: argparse._SubParsersAction) -> None:
    mcp = commands.add_parser(
        "mcp", help="serve the actions as MCP tools for AI assistants",
        description="Serve adobot's actions as MCP tools over one connection: over stdio (what "
                    "desktop assistants launch) or streamable HTTP (--http). The token comes "
                    "from a connection, the vault or an environment variable, never from the "
                    "command line.")
    mcp.add_argument("--org", metavar="ORG_URL", help="organization URL (not with --connection)")
    mcp.add_argument("--project", help="default project (with a connection: its own, unless given)")
    source = mcp.add_mutually_exclusive_group()
    source.add_argument("--connection", metavar="NAME",
                        help="a control-room connection (the local vault's, or --control-room's)")
    source.add_argument("--credential", metavar="LOCKER/NAME/ATTRIBUTE",
                        help="a PAT in the vault, bound to the organization")
    source.add_argument("--token-env", metavar="VAR",
                        help="an environment variable holding the PAT")
    mcp.add_argument("--control-room", metavar="URL",
                     help="with --connection: fetch it from this control room (a runner token "
                          "in $ADOBOT_CONTROL_ROOM_TOKEN)")
    mcp.add_argument("--vault", metavar="PATH", help="vault file (default: $ADOBOT_VAULT, else the user's)")
    mcp.add_argument("--sandbox", action="store_true",
                     help="serve the embedded sandbox's organization (contoso/Payments, its demo "
                          "token): try it with no account")
    mcp.add_argument("--mode", choices=("read-only", "review", "autonomous"), default="review",
                     help="read-only: only tools that change nothing; review (default): each "
                          "change confirmed by the person; autonomous: changes sent directly")
    mcp.add_argument("--require-elicitation", action="store_true",
                     help="review: refuse clients that cannot ask the person (without "
                          "elicitation, the model itself could call Confirm)")
    mcp.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    mcp.add_argument("--host", default="127.0.0.1", help="with --http: address (default 127.0.0.1)")
    mcp.add_argument("--port", type=int, default=8765, help="with --http: port (default 8765)")
    mcp.add_argument("--http-token-env", metavar="VAR",
                     help="with --http: clients must send Authorization: Bearer <the value of "
                          "VAR> (required when --host is not loopback)")
    mcp.add_argument("--certificate", metavar="PEM", help="with --http: TLS certificate (with "
                                                          "--key; required off loopback)")
    mcp.add_argument("--key", metavar="PEM", help="with --http: TLS private key")
    # Its own name: the run's --allow-plain-http elsewhere lets tokens go to plain-http
    # organizations, which this does not.
    mcp.add_argument("--allow-plain-http", action="store_true", dest="plain_http_listener",
                     help="with --http: serve plain http on a non-loopback address (only behind "
                          "a TLS proxy)")
    mcp.set_defaults(handler=_serve)


def _connect_inputs(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Connect's inputs and the variables they read (a token from the environment)."""
    if args.connection:
        if args.org:
            raise InvalidInput("--org does not go with --connection: the connection says where "
                               "its secret may go", field="--org")
        inputs: dict[str, Any] = {"connection": args.connection}
        if args.project:
            inputs["project"] = args.project
        return inputs, {}
    org = args.org or (SANDBOX_ORG if args.sandbox else None)
    project = args.project or ("Payments" if args.sandbox else None)
    if not org or not project:
        raise InvalidInput("say where: --org ORG_URL and --project NAME (or --connection NAME)",
                           field="--org" if not org else "--project")
    inputs = {"organization_url": org, "project": project}
    if args.credential:
        parts = args.credential.split("/")
        if len(parts) != 3 or not all(parts):
            raise InvalidInput(f"--credential {args.credential!r} is not LOCKER/NAME/ATTRIBUTE",
                               field="--credential")
        inputs["personal_access_token"] = {"credential": dict(zip(
            ("locker", "name", "attribute"), parts))}
        return inputs, {}
    variable = args.token_env
    if variable is None and args.sandbox:
        return {**inputs, "personal_access_token": {"variable": "pat"}}, {
            "pat": "sandbox-demo-pat"}
    if not variable:
        raise InvalidInput("say where the token comes from: --connection, --credential or "
                           "--token-env VAR (never the token itself)", field="--token-env")
    if not os.environ.get(variable, "").strip():
        raise InvalidInput(f"environment variable {variable} (--token-env) is not set",
                           f"Export it first: `export {variable}=...`.", field="--token-env")
    return ({**inputs, "personal_access_token": {"variable": "pat"}},
            {"pat": os.environ[variable]})


def _serve(args: argparse.Namespace) -> int:
    try:
        import mcp  # noqa: F401  (the extra `mcp`)
    except ImportError:
        raise InvalidInput("the MCP server needs the mcp SDK (not installed)",
                           "pip install 'adobot[mcp]'.") from None
    from adobot.cli.bots import _connections_of, start_sandbox
    from adobot.mcp_server.server import McpServer, open_session

    inputs, variables = _connect_inputs(args)
    for value in variables.values():
        args.redactor.add(Secret(value.strip()))
    if args.http:
        from adobot.control_room.server import check_listener

        http_token = _http_token(args)
        # Tokens cross this listener too: TLS off loopback, as the control room's.
        check_listener(args.host, args.certificate, args.key, args.plain_http_listener)
    elif args.certificate or args.key or args.plain_http_listener:
        raise InvalidInput("--certificate, --key and --allow-plain-http go with --http",
                           field="--http")
    with ExitStack() as stack:
        from adobot.runtime.environment import Settings, build_environment

        sandbox = start_sandbox(stack, None) if args.sandbox else None
        if args.control_room and not args.connection:
            raise InvalidInput("--control-room goes with --connection", field="--control-room")
        env = build_environment(Settings(
            vault=args.vault, sandbox=sandbox, redactor=args.redactor,
            allow_plain_http=getattr(args, "allow_plain_http", False),
            **_connections_of(args, "mcp")))
        ctx, connected = open_session(inputs, env, variables=variables)
        log.info("mcp: %s (mode %s)", connected.summary(), args.mode)
        if args.require_elicitation and args.mode != "review":
            raise InvalidInput("--require-elicitation goes with --mode review",
                               field="--require-elicitation")
        server = McpServer(ctx, mode=args.mode, redactor=args.redactor,
                           organization=connected.organization, project=connected.project_name,
                           require_elicitation=args.require_elicitation)
        if args.http:
            _serve_http(server, args.host, args.port, http_token, args.certificate, args.key)
        else:
            import anyio

            anyio.run(_serve_stdio, server)
        ctx.sessions.local.close_all()
    return 0


async def _serve_stdio(server) -> None:
    from mcp.server.stdio import stdio_server

    lowlevel = server.server()
    async with stdio_server() as (read, write):
        await lowlevel.run(read, write, lowlevel.create_initialization_options())


def _http_token(args: argparse.Namespace) -> Secret | None:
    from adobot.rest.urls import is_loopback

    if args.http_token_env:
        value = os.environ.get(args.http_token_env, "").strip()
        if not value:
            raise InvalidInput(f"environment variable {args.http_token_env} (--http-token-env) "
                               "is not set", field="--http-token-env")
        token = Secret(value)
        args.redactor.add(token)
        return token
    if not is_loopback(args.host):
        raise InvalidInput(f"--host {args.host} is not this machine: clients must prove who they "
                           "are", "Give --http-token-env VAR (clients send Authorization: "
                           "Bearer <its value>).", field="--http-token-env")
    return None


def _serve_http(server, host: str, port: int, token: Secret | None,
                certificate: str | None = None, key: str | None = None) -> None:
    import uvicorn

    from adobot.mcp_server.http import app_for

    scheme = "https" if certificate else "http"
    print(f"MCP over streamable HTTP on {scheme}://{host}:{port}/mcp", file=sys.stderr,
          flush=True)
    from adobot.control_room.server import SHUTDOWN_SECONDS

    uvicorn.run(app_for(server, host, token), host=host, port=port, log_level="warning",
                ssl_certfile=certificate, ssl_keyfile=key,
                timeout_graceful_shutdown=SHUTDOWN_SECONDS)
