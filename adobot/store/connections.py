"""Connections' rows. Records are plain dictionaries (the fields of
``credentials.connections.Connection``, the sealed ``secret``, its ``key_id`` and the row's
``version``); the rules — names, proofs, sealing — live in ``credentials.connections``."""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from adobot.store.database import Database
from adobot.store.models import ConnectionRow
from adobot.store.records import Taken

COLUMNS = ConnectionRow.__table__.columns
# What a list shows: every column but the sealed secrets.
SHOWN = [column for column in COLUMNS
         if column.name not in ("secret", "key_id", "secret_next", "key_id_next")]
STATUS = ("state", "reason", "code", "user", "checked_at")


def record_of(row: Any) -> dict[str, Any]:
    """A row as the record the rules code reads (lists for runners and roles, a status)."""
    data = dict(row._mapping)
    data["runners"] = data["runners"].split(",") if data["runners"] else []
    data["roles"] = data["roles"].split(",") if data["roles"] else []
    data["status"] = {key: data.pop(f"status_{key}") for key in STATUS}
    return data


def values_of(record: dict[str, Any]) -> dict[str, Any]:
    """A record as column values."""
    values = {column.name: record[column.name] for column in COLUMNS
              if column.name in record and column.name not in ("runners", "roles")}
    if "runners" in record:
        values["runners"] = ",".join(record["runners"])
    if "roles" in record:
        values["roles"] = ",".join(record["roles"])
    if record.get("status") is not None:
        values.update({f"status_{key}": record["status"].get(key) for key in STATUS})
        values["status_state"] = values["status_state"] or "unchecked"
    return values


class SqlConnections:
    def __init__(self, database: Database) -> None:
        self.database = database

    def list(self, secrets: bool = False) -> list[dict[str, Any]]:
        """Every connection, by name; without their sealed secrets unless ``secrets``."""
        with self.database.reading() as db:
            rows = db.execute(select(*(COLUMNS if secrets else SHOWN))
                              .order_by(ConnectionRow.name))
            return [record_of(row) for row in rows]

    def key_ids(self) -> set[str]:
        """The ids of the vault keys the connections' secrets are sealed with."""
        with self.database.reading() as db:
            return set(db.execute(select(ConnectionRow.key_id).distinct()).scalars())

    def find(self, name: str) -> dict[str, Any] | None:
        return self._one(ConnectionRow.name == name)

    def find_organization(self, key: str) -> dict[str, Any] | None:
        return self._one(ConnectionRow.organization_key == key)

    def _one(self, where: Any) -> dict[str, Any] | None:
        with self.database.reading() as db:
            row = db.execute(select(ConnectionRow.__table__).where(where)).first()
            return record_of(row) if row is not None else None

    def insert(self, record: dict[str, Any]) -> None:
        """Insert a new connection, or raise ``Taken`` (the database decides, so two admins
        saving at once cannot both win)."""
        values = values_of(record)
        try:
            with self.database.writing() as db:
                db.execute(insert(ConnectionRow).values(**{**values, "version": 1}))
        except IntegrityError:
            self._taken(record)
            raise

    def update(self, name: str, version: int, record: dict[str, Any]) -> bool:
        """Write ``record`` over the row if it is still at ``version``; False if someone else
        wrote it meanwhile (nothing is written then)."""
        values = {key: value for key, value in values_of(record).items()
                  if key not in ("name", "version")}
        try:
            with self.database.writing() as db:
                done = db.execute(update(ConnectionRow)
                                  .where(ConnectionRow.name == name,
                                         ConnectionRow.version == version)
                                  .values(**values, version=version + 1))
                return done.rowcount == 1
        except IntegrityError:
            self._taken(record, editing=name)
            raise

    def set_status(self, name: str, organization_key: str, status: dict[str, Any]) -> None:
        """Record a test's outcome, unless the connection moved to another organization
        meanwhile (the status would not be its)."""
        with self.database.writing() as db:
            db.execute(update(ConnectionRow)
                       .where(ConnectionRow.name == name,
                              ConnectionRow.organization_key == organization_key)
                       .values(**values_of({"status": status}),
                               version=ConnectionRow.version + 1))

    def delete(self, names: Iterable[str]) -> list[str]:
        """Delete all of ``names`` or none: returns the names that were missing (then nothing
        was deleted)."""
        names = list(names)
        with self.database.writing() as db:
            found = set(db.execute(select(ConnectionRow.name)
                                   .where(ConnectionRow.name.in_(names))).scalars())
            missing = [name for name in names if name not in found]
            if not missing:
                db.execute(delete(ConnectionRow).where(ConnectionRow.name.in_(names)))
            return missing

    def _taken(self, record: dict[str, Any], editing: str | None = None) -> None:
        if editing is None:
            same_name = self.find(record["name"])
            if same_name is not None:
                raise Taken("name", same_name["name"], same_name["organization_url"]) from None
        same_org = self.find_organization(record["organization_key"])
        if same_org is not None and same_org["name"] != editing:
            raise Taken("organization", same_org["name"], same_org["organization_url"]) from None
