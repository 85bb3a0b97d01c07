"""What a control room works on: the vault (its key seals connections' secrets), the store (the
database) and the rules over them — connections, API tokens and the audit log. The HTTP app,
the ``connection``/``token``/``audit`` commands and the tests open it the same way."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable

from adobot.control_room.audit import AuditLog
from adobot.control_room.tokens import Tokens
from adobot.credentials.connections import Check, Connections
from adobot.credentials.vault import Vault
from adobot.runtime.environment import open_control_store
from adobot.store import Store


@dataclass(frozen=True)
class ControlRoomState:
    vault: Vault
    store: Store
    connections: Connections
    tokens: Tokens
    audit: AuditLog

    def close(self) -> None:
        try:
            self.audit.flush()  # the refusals counted since their window's first row
        finally:
            self.store.close()

    def __enter__(self) -> "ControlRoomState":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_state(vault: Vault, database: str | None = None, *, check: Check | None = None,
               clock: Callable[[], dt.datetime] | None = None) -> ControlRoomState:
    """The control room over ``vault`` and its store (``database``: a URL; None: the
    environment's, else the SQLite file beside the vault). ``check`` proves secrets before they
    are saved (none: this state cannot save secrets); ``clock``: tests issue tokens in the past."""
    store = open_control_store(vault, database)
    return ControlRoomState(vault, store, Connections(store.connections, vault, check),
                            Tokens(store.tokens, clock), AuditLog(store.audit))
