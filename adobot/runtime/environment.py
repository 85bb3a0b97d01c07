"""The one factory of environments (``actions.environment.Environment``: what an action needs
from its surroundings). The command line, the Python API, the MCP server, the control room's
page and (next) remote runners differ only in the ``Settings`` they pass to
``build_environment``; none builds a ``Runner`` to borrow its wiring.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Optional

from adobot.actions.environment import (
    ConnectionSource,
    Environment,
    RunLimits,
    own_organization,
)
from adobot.credentials.redact import Redactor
from adobot.errors import InvalidInput

if TYPE_CHECKING:
    from adobot.credentials.connections import ConnectionCredential, Connections
    from adobot.credentials.secret import Secret
    from adobot.credentials.vault import Vault
    from adobot.store import Store


@dataclass(frozen=True)
class ControlRoomSettings:
    """Connections fetched from a control room with a runner's token, for one run."""

    url: str
    token: "Secret"
    bot: str | None = None
    run: str | None = None


@dataclass(frozen=True)
class Settings:
    vault: str | None = None          # the vault file (None: $ADOBOT_VAULT, else the default)
    database: str | None = None       # the control room's store (None: beside the vault)
    sandbox: Any = None               # a running Sandbox: organizations and Entra go there
    control_room: ControlRoomSettings | None = None
    # Where named connections come from: "local" (the store beside the vault), or
    # "control-room" (needs control_room).
    connections: Literal["local", "control-room"] = "local"
    # A run that must never see an admin's secret nor reach past its own sandbox (a bot tried
    # on the page): no connections, no vault, and a PAT as the only sign-in.
    isolated: bool = False
    # A run the control room executes itself: connections from its own store (this source,
    # with the pool's identity) and no vault — an admin's lockers are not a bot's to read.
    source: ConnectionSource | None = None
    limits: RunLimits | None = None
    redactor: Redactor | None = None
    allow_plain_http: bool = False
    allow_dirs: Iterable[str | Path] = ()
    progress: Callable[[str], None] | None = None
    debug: bool = False


def build_environment(settings: Settings = Settings()) -> Environment:
    """The one way an environment is made, for every front end."""
    from adobot.credentials.vault import Vault

    redactor = settings.redactor or Redactor()
    sandbox = settings.sandbox
    connections: ConnectionSource
    if settings.isolated:
        connections = _sandbox_only
    elif settings.source is not None:
        connections = settings.source
    elif settings.connections == "control-room":
        if settings.control_room is None:
            raise InvalidInput("connections from a control room need its URL and a token",
                               field="--control-room")
        from adobot.credentials.remote import RemoteConnections

        room = settings.control_room
        redactor.add(room.token)
        connections = RemoteConnections(room.url, room.token, bot=room.bot, run=room.run,
                                        allow_plain_http=settings.allow_plain_http)
    else:
        connections = LocalConnections(settings.vault, settings.database)
    return Environment(
        route=sandbox.route if sandbox is not None else own_organization,
        secrets=(_no_vault if settings.isolated else _no_lockers if settings.source is not None
                 else lambda: Vault(settings.vault)),
        connections=connections,
        entra=sandbox.entra_route() if sandbox is not None else None,
        redactor=redactor,
        allow_plain_http=settings.allow_plain_http,
        allow_dirs=tuple(Path(folder).resolve() for folder in settings.allow_dirs),
        progress=settings.progress, debug=settings.debug,
        sign_in=("pat",) if settings.isolated else None, limits=settings.limits)


def _sandbox_only(name: str, organization_url: Optional[str]) -> "ConnectionCredential":
    raise InvalidInput(f"connection {name!r}: a bot tried on the page runs against the "
                       "sandbox, where connections' secrets never go",
                       "Use personal_access_token: {variable: pat} and give pat the "
                       "sandbox's token (sandbox-demo-pat).", field="connection")


def _no_vault() -> Any:
    raise InvalidInput("a bot tried on the page has no vault: its secrets never come here",
                       "Use personal_access_token: {variable: pat} and give pat the sandbox's "
                       "token (sandbox-demo-pat).", field="personal_access_token")


def _no_lockers() -> Any:
    raise InvalidInput("a run in the control room reads no vault locker: its secrets come from "
                       "named connections and the run's variables",
                       "Connect with {connection: NAME}, or personal_access_token: "
                       "{variable: NAME}.",
                       field="personal_access_token")


class LocalConnections:
    """The connections of the store beside the local vault (an admin's machine), opened when a
    bot first names one."""

    def __init__(self, vault: str | None, database: str | None) -> None:
        self.vault, self.database = vault, database
        self._connections: "Connections | None" = None
        self._opening = threading.Lock()  # the items of a parallel loop may ask at once

    def __repr__(self) -> str:
        return "LocalConnections()"

    def __call__(self, name: str, organization_url: Optional[str]) -> "ConnectionCredential":
        with self._opening:
            if self._connections is None:
                from adobot.credentials.connections import Connections
                from adobot.credentials.vault import Vault

                vault = Vault(self.vault)
                self._connections = Connections(
                    open_control_store(vault, self.database).connections, vault)
        return self._connections.credential(name, organization_url)


def open_control_store(vault: "Vault", database: str | None = None) -> "Store":
    """The control room's store for ``vault`` (``--database``, ``$ADOBOT_DATABASE_URL``, else
    the SQLite file beside it), its schema up to date and the vault's old sections moved in."""
    from adobot.credentials.vault import organization_key
    from adobot.store import open_store
    from adobot.store.database import database_url
    from adobot.store.from_vault import move_from_vault

    store = open_store(database_url(database, vault.path))
    move_from_vault(store, vault, organization_key)
    return store


