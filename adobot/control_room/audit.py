"""The audit log: who did what to which connection, and who fetched which credential, when.

Rows of the store's chained, append-only log (``adobot.store.audit``): names, roles, outcomes
and addresses, never a secret — the entries are built from fixed fields here, not from requests.
``adobot audit --verify`` walks the chain and names the first row changed or removed.

A refusal repeated by the same token from the same address is not a row each: the first of a
window is written at once (an admin sees it), the rest are counted and written as one row when
the window ends (or the control room stops), so 200 refused fetches add two rows, not 200.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from adobot.store.records import AuditRepository

WINDOW_SECONDS = 60.0
NAMES_KEPT = 5  # the connections a repeated refusal names; the count says how many there were


@dataclass
class Repeats:
    """The refusals of one (event, token, address, outcome) in one window, after its first."""
    started: float
    role: str
    count: int = 0
    connections: list[str] = field(default_factory=list)
    more_connections: bool = False


class AuditLog:
    def __init__(self, repository: "AuditRepository",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.repository, self.clock = repository, clock
        self.windows: dict[tuple[str, str, str | None, str], Repeats] = {}
        self.lock = threading.Lock()  # the control room records from several threads

    def record(self, event: str, *, actor: str, role: str, outcome: str = "ok",
               connection: str | None = None, organization: str | None = None,
               detail: str | None = None, client: str | None = None,
               run: dict[str, Any] | None = None) -> dict[str, Any]:
        entry = _entry(event, actor=actor, role=role, outcome=outcome, connection=connection,
                       organization=organization, detail=detail, client=client, run=run)
        seq = self.repository.append([*self._ended(), entry])[-1]
        return {"seq": seq, **{k: v for k, v in entry.items() if v is not None}}

    def refused(self, event: str, *, actor: str, role: str, outcome: str, client: str | None,
                connection: str | None = None, **fields: Any) -> None:
        """Record a refusal: in full if it is the first of its window, else only counted."""
        key = (event, actor, client, outcome)
        with self.lock:
            now, repeats = self.clock(), self.windows.get(key)
            if repeats is not None and now - repeats.started < WINDOW_SECONDS:
                repeats.count += 1
                if connection and connection not in repeats.connections:
                    if len(repeats.connections) < NAMES_KEPT:
                        repeats.connections.append(connection)
                    else:
                        repeats.more_connections = True
                return
            # A new window: the count of the one it follows goes first.
            self.windows.pop(key, None)
            ended = [_repeated(key, repeats)] if repeats is not None and repeats.count else []
            self.windows[key] = Repeats(now, role)
        if ended:
            self.repository.append(ended)
        self.record(event, actor=actor, role=role, outcome=outcome, client=client,
                    connection=connection, **fields)

    def flush(self) -> None:
        """Write every window's count now (the control room is stopping)."""
        ended = self._ended(everything=True)
        if ended:
            self.repository.append(ended)

    def _ended(self, everything: bool = False) -> list[dict[str, Any]]:
        """The rows of the windows that ended (all, with ``everything``), taken off the list."""
        now, rows = self.clock(), []
        with self.lock:
            for key, repeats in list(self.windows.items()):
                if everything or now - repeats.started >= WINDOW_SECONDS:
                    del self.windows[key]
                    if repeats.count:
                        rows.append(_repeated(key, repeats))
        return rows

    def read(self, limit: int = 100, connection: str | None = None,
             event: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` entries, oldest first, optionally of one connection or event."""
        return self.repository.read(limit, connection=connection, event=event)

    def verify(self) -> Any:
        return self.repository.verify()


def _entry(event: str, **fields: Any) -> dict[str, Any]:
    return {"at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "event": event, **fields}


def _repeated(key: tuple[str, str, str | None, str], repeats: Repeats) -> dict[str, Any]:
    event, actor, client, outcome = key
    detail = f"refused {repeats.count} more time(s) within {WINDOW_SECONDS:g} s of the first"
    if repeats.connections:
        named = ", ".join(repeats.connections) + (", …" if repeats.more_connections else "")
        detail += f" (connections: {named})"
    alone = len(repeats.connections) == 1 and not repeats.more_connections
    return _entry(event, actor=actor, role=repeats.role, outcome=outcome, client=client,
                  connection=repeats.connections[0] if alone else None, organization=None,
                  run=None, detail=detail)
