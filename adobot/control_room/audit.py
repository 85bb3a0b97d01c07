"""The audit log: who did what to which connection, and who fetched which credential, when.

One JSON line per event, appended to a private file beside the vault (``vault.json.audit.jsonl``).
It holds names, roles, outcomes and addresses, never a secret: the records are built from
fixed fields here, not from requests.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

from adobot.credentials.vault import Vault

_lock = threading.Lock()


class AuditLog:
    def __init__(self, vault: Vault) -> None:
        self.path = Path(vault.path).with_name(vault.path.name + ".audit.jsonl")

    def record(self, event: str, *, actor: str, role: str, outcome: str = "ok",
               connection: str | None = None, organization: str | None = None,
               detail: str | None = None, client: str | None = None,
               run: dict[str, Any] | None = None) -> dict[str, Any]:
        entry = {"at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                 "event": event, "actor": actor, "role": role, "outcome": outcome,
                 "connection": connection, "organization": organization, "detail": detail,
                 "client": client, "run": run}
        line = (json.dumps({k: v for k, v in entry.items() if v is not None},
                           sort_keys=True) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # One write() of one line to a file opened for appending: lines never interleave.
        with _lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                         | getattr(os, "O_NOFOLLOW", 0), 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return entry

    def read(self, limit: int = 100, connection: str | None = None,
             event: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` entries, oldest first, optionally of one connection or event."""
        kept: deque[dict[str, Any]] = deque(maxlen=limit)
        try:
            with open(self.path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a crash
                    if connection and entry.get("connection") != connection:
                        continue
                    if event and entry.get("event") != event:
                        continue
                    kept.append(entry)
        except FileNotFoundError:
            return []
        return list(kept)
