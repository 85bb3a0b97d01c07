"""The audit log's rows: append-only and chained.

Each row's ``hash`` is the SHA-256 of its fields and the previous row's hash; the newest row's
number and hash are kept apart (``store_meta``), so a removed last row shows too. Appends are
serialized (SQLite's write lock; an advisory lock on PostgreSQL), so the chain has no forks.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import insert, select, update

from adobot.store.database import LOCK_AUDIT, Database
from adobot.store.models import AuditRow, MetaRow

FIELDS = ("at", "event", "actor", "role", "outcome", "connection", "organization", "detail",
          "client", "run")
GENESIS = "0" * 64
HEAD = "audit_head"


def row_hash(seq: int, entry: dict[str, Any], prev_hash: str) -> str:
    """The hash of one row: its number, its fields (as stored) and the hash before it."""
    fields = [seq, *(entry.get(name) for name in FIELDS), prev_hash]
    return hashlib.sha256(json.dumps(fields, separators=(",", ":"),
                                     ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verdict:
    whole: bool
    rows: int
    first_bad: int | None = None   # the first row that was changed or removed
    problem: str = ""


class SqlAudit:
    def __init__(self, database: Database) -> None:
        self.database = database

    def append(self, entries: Iterable[dict[str, Any]], marker: str | None = None) -> list[int]:
        """Append entries (their ``run`` a mapping or None) in one transaction; their numbers.
        ``marker``: a fact recorded in the same transaction (what was appended, once)."""
        added = []
        with self.database.writing(alone=LOCK_AUDIT) as db:
            if marker is not None:
                db.execute(insert(MetaRow).values(key=marker, value="done"))
            head = db.execute(select(MetaRow.value).where(MetaRow.key == HEAD)).scalar()
            seq, prev = (int(head.split(":")[0]), head.split(":")[1]) if head else (0, GENESIS)
            for entry in entries:
                seq += 1
                stored = {name: entry.get(name) for name in FIELDS}
                if stored["run"] is not None:
                    stored["run"] = json.dumps(stored["run"], sort_keys=True, ensure_ascii=False)
                digest = row_hash(seq, stored, prev)
                db.execute(insert(AuditRow).values(seq=seq, prev_hash=prev, hash=digest,
                                                   **stored))
                prev = digest
                added.append(seq)
            if head is None:
                db.execute(insert(MetaRow).values(key=HEAD, value=f"{seq}:{prev}"))
            else:
                db.execute(update(MetaRow).where(MetaRow.key == HEAD)
                           .values(value=f"{seq}:{prev}"))
        return added

    def read(self, limit: int, connection: str | None = None,
             event: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` entries, oldest first, optionally of one connection or event."""
        query = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
        if connection:
            query = query.where(AuditRow.connection == connection)
        if event:
            query = query.where(AuditRow.event == event)
        with self.database.reading() as db:
            rows = [dict(row._mapping) for row in db.execute(
                query.with_only_columns(*AuditRow.__table__.columns))]
        entries = []
        for row in reversed(rows):
            entry = {"seq": row["seq"], **{name: row[name] for name in FIELDS}}
            if entry["run"] is not None:
                entry["run"] = json.loads(entry["run"])
            entries.append({key: value for key, value in entry.items() if value is not None})
        return entries

    def verify(self) -> Verdict:
        """Walk the chain from the first row: the first row whose hash, link or number does not
        fit is named (changed, or a row before it removed), and a head that does not match the
        last row means rows were removed from the end."""
        expected_seq, prev, count = 1, GENESIS, 0
        with self.database.reading() as db:
            head = db.execute(select(MetaRow.value).where(MetaRow.key == HEAD)).scalar()
            rows = db.execute(select(*AuditRow.__table__.columns).order_by(AuditRow.seq))
            for row in rows:
                data = dict(row._mapping)
                seq = data["seq"]
                if seq != expected_seq:
                    return Verdict(False, count, expected_seq,
                                   f"row {expected_seq} was removed (row {seq} follows row "
                                   f"{expected_seq - 1})")
                if data["prev_hash"] != prev:
                    return Verdict(False, count, seq - 1 if seq > 1 else seq,
                                   f"row {seq} does not follow row {seq - 1}: row {seq - 1} was "
                                   "changed or replaced")
                if row_hash(seq, data, prev) != data["hash"]:
                    return Verdict(False, count, seq, f"row {seq} was changed")
                prev, count, expected_seq = data["hash"], count + 1, seq + 1
        if head is None and count == 0:
            return Verdict(True, 0)
        if head != f"{count}:{prev}":
            last = int(head.split(":")[0]) if head else count
            if last > count:
                return Verdict(False, count, count + 1,
                               f"row {count + 1} was removed (the log ended at row {last}, "
                               f"it now ends at row {count})")
            return Verdict(False, count, count, f"row {count} was changed or added outside "
                                                "adobot (the log's head does not match it)")
        return Verdict(True, count)
