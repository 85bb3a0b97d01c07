"""What a control room works on: the vault (its key seals connections' secrets), the store (the
database) and the rules over them — connections, API tokens and the audit log. The HTTP app,
the ``connection``/``token``/``audit`` commands and the tests open it the same way."""
from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from adobot.control_room.audit import AuditLog
from adobot.control_room.tokens import Tokens
from adobot.credentials.connections import Check, Connections
from adobot.credentials.vault import Vault
from adobot.runs.engine import LocalPool
from adobot.runs.service import Runs
from adobot.runtime.environment import open_control_store
from adobot.store import Store


@dataclass
class ControlRoomState:
    vault: Vault
    store: Store
    connections: Connections
    tokens: Tokens
    audit: AuditLog
    runs: Runs
    # The control room's own worker pool (started and stopped with its app), if it runs bots.
    pool: LocalPool | None = None
    # Set when the service is told to stop: the runs in flight stop at their next step.
    stopping: threading.Event = field(default_factory=threading.Event)

    def begin_shutdown(self) -> None:
        self.stopping.set()
        if self.pool is not None:
            self.pool.halt()

    @property
    def local_pools(self) -> tuple[str, ...]:
        return self.runs.local_pools

    def reseal(self, old: Any, new: Any) -> int:
        """A key rotation's first half: what the database holds sealed with the vault's key —
        connections' secrets, the variables of runs that may still start and of schedules —
        sealed under the new key too. How many."""
        return self.connections.reseal(old, new) + self.runs.reseal(old, new)

    def promote(self) -> None:
        """A key rotation's second half, once the vault has the new key."""
        self.connections.promote()
        self.runs.promote()

    def run_bots(self, workers: int = 2, sandbox: Any = None, **options: Any) -> LocalPool:
        """Let this control room run the queued runs of its pools itself (``workers`` at once):
        ``sandbox`` sends their organizations to the emulator."""
        self.pool = LocalPool(self.runs, self.connections, self.audit, workers=workers,
                              sandbox=sandbox, **options)
        return self.pool

    def close(self) -> None:
        try:
            if self.pool is not None:
                self.pool.stop()
            self.audit.flush()  # the refusals counted since their window's first row
        finally:
            self.store.close()

    def __enter__(self) -> "ControlRoomState":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_state(vault: Vault, database: str | None = None, *, check: Check | None = None,
               clock: Callable[[], dt.datetime] | None = None,
               entra: Any = None) -> ControlRoomState:
    """The control room over ``vault`` and its store (``database``: a URL; None: the
    environment's, else the SQLite file beside the vault). ``check`` proves secrets before they
    are saved (none: this state cannot save secrets); ``clock``: tests issue tokens in the past;
    ``entra``: where it signs identities in (the sandbox's Entra; None: Microsoft's)."""
    store = open_control_store(vault, database)
    return ControlRoomState(vault, store, Connections(store.connections, vault, check, entra),
                            Tokens(store.tokens, clock), AuditLog(store.audit),
                            Runs(store, vault))
