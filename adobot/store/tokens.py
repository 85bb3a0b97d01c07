"""API tokens' rows: the SHA-256 of each token (never the token), its role, expiry and revocation.
A presented token is found by its digest through a unique index: one row read, however many
tokens there are."""
from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update

from adobot.store.database import Database
from adobot.store.models import ApiTokenRow

RECORD = ("id", "name", "role", "created_at", "expires_at", "revoked_at")


class SqlTokens:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._columns = [getattr(ApiTokenRow, name) for name in RECORD]

    def by_digest(self, digest: str) -> dict[str, Any] | None:
        with self.database.reading() as db:
            row = db.execute(select(*self._columns).where(ApiTokenRow.digest == digest)).first()
            return dict(row._mapping) if row is not None else None

    def list(self) -> list[dict[str, Any]]:
        with self.database.reading() as db:
            rows = db.execute(select(*self._columns)
                              .order_by(ApiTokenRow.created_at, ApiTokenRow.name))
            return [dict(row._mapping) for row in rows]

    def insert(self, digest: str, record: dict[str, Any], *, unless_active_after: str) -> bool:
        """Add a token unless one of its name is active (not revoked, expiring after
        ``unless_active_after``); False then, and nothing is written."""
        with self.database.writing() as db:
            active = db.execute(select(ApiTokenRow.id).where(
                ApiTokenRow.name == record["name"], ApiTokenRow.revoked_at.is_(None),
                ApiTokenRow.expires_at > unless_active_after)).first()
            if active is not None:
                return False
            db.execute(insert(ApiTokenRow).values(digest=digest, **record))
            return True

    def revoke(self, name_or_id: str, at: str) -> list[dict[str, Any]]:
        with self.database.writing() as db:
            chosen = ((ApiTokenRow.name == name_or_id) | (ApiTokenRow.id == name_or_id)) \
                & ApiTokenRow.revoked_at.is_(None)
            rows = [dict(row._mapping) for row in db.execute(select(*self._columns)
                                                             .where(chosen))]
            if rows:
                db.execute(update(ApiTokenRow).where(chosen).values(revoked_at=at))
            return [{**row, "revoked_at": at} for row in rows]
