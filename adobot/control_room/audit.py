"""The audit log: who did what to which connection, and who fetched which credential, when.

Rows of the store's chained, append-only log (``adobot.store.audit``): names, roles, outcomes
and addresses, never a secret — the entries are built from fixed fields here, not from requests.
``adobot audit --verify`` walks the chain and names the first row changed or removed.
"""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adobot.store.records import AuditRepository


class AuditLog:
    def __init__(self, repository: "AuditRepository") -> None:
        self.repository = repository

    def record(self, event: str, *, actor: str, role: str, outcome: str = "ok",
               connection: str | None = None, organization: str | None = None,
               detail: str | None = None, client: str | None = None,
               run: dict[str, Any] | None = None) -> dict[str, Any]:
        entry = {"at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                 "event": event, "actor": actor, "role": role, "outcome": outcome,
                 "connection": connection, "organization": organization, "detail": detail,
                 "client": client, "run": run}
        seq = self.repository.append([entry])[0]
        return {"seq": seq, **{k: v for k, v in entry.items() if v is not None}}

    def read(self, limit: int = 100, connection: str | None = None,
             event: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` entries, oldest first, optionally of one connection or event."""
        return self.repository.read(limit, connection=connection, event=event)

    def verify(self) -> Any:
        return self.repository.verify()
