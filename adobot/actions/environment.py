"""What an action needs from its surroundings, as one typed object of small protocols: where an
organization's requests go, how a vault secret is reached, how a named connection's credential
is had, where Entra sign-in goes, how secrets are masked. ``runtime.environment`` builds it from
settings, the same way for every front end.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from adobot.credentials.redact import Redactor
from adobot.errors import InvalidInput

if TYPE_CHECKING:
    from adobot.credentials.connections import ConnectionCredential
    from adobot.credentials.identity import EntraRoute
    from adobot.credentials.secret import Secret
    from adobot.rest.urls import OrganizationUrl


class Route(Protocol):
    """The base URL an organization's requests go to: its own, or the sandbox's."""

    def __call__(self, organization: "OrganizationUrl") -> str: ...


class SecretSource(Protocol):
    """The vault: a credential's value, handed out for an organization it is bound to."""

    def get(self, locker: str, credential: str, attribute: str,
            organization: Optional[str] = None) -> "Secret": ...


class ConnectionSource(Protocol):
    """A named connection's credential, for its own organization only."""

    def __call__(self, name: str, organization_url: Optional[str]) -> "ConnectionCredential": ...


class Redaction(Protocol):
    """Masks every secret it was told of, in values and in text."""

    def add(self, secret: "Secret") -> None: ...
    def mask(self, value: Any) -> Any: ...
    def scrub(self, text: str) -> str: ...


def own_organization(organization: "OrganizationUrl") -> str:
    return organization.base_url


def no_connections(name: str, organization_url: Optional[str]) -> "ConnectionCredential":
    raise InvalidInput(f"connection {name!r}: this run has no connections",
                       "Give the run a vault with connections, or --control-room.",
                       field="connection")


def default_vault() -> SecretSource:
    from adobot.credentials.vault import Vault

    return Vault()


@dataclass(frozen=True)
class RunLimits:
    """What one run may take (None: no limit): wall time, actions run (child bots' included),
    items of one loop, the size of its variables (as JSON). ``stop``, set by whoever started
    the run (its client left, the service is stopping), ends it at its next step or wait."""

    seconds: float | None = None
    steps: int | None = None
    loop_items: int | None = None
    variable_bytes: int | None = None
    stop: threading.Event | None = None


@dataclass(frozen=True)
class Environment:
    route: Route = own_organization
    # Opens the vault when a credential is asked for (not before: most runs need none).
    secrets: Callable[[], SecretSource] = default_vault
    connections: ConnectionSource = no_connections
    entra: "EntraRoute | None" = None   # Entra sign-in's destination instead of the cloud
    redactor: Redaction = field(default_factory=Redactor)
    # The person running the bot allows plain http to a host other than this machine, and
    # folders beyond the top-level bot's that its bots may read.
    allow_plain_http: bool = False
    allow_dirs: tuple[Path, ...] = ()
    progress: Callable[[str], None] | None = None
    debug: bool = False
    # The authentication methods Connect may use (None: all). A run that must reach nothing
    # but its own sandbox signs in only with what the sandbox answers: a PAT.
    sign_in: tuple[str, ...] | None = None
    limits: RunLimits | None = None  # a run the service executes itself (the page's) has some
