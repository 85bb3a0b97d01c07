"""Moving a vault's control-room sections into the store, once, losing nothing.

Earlier versions kept connections and API token hashes in the vault's document and the audit
log in a JSON-lines file beside it. On first start these move: connection secrets keep their
sealed text (the same key and the same binding seal them here), token hashes move as they are,
audit lines are appended to the chain in their order (the file is kept, renamed
``….imported``). Rows already in the store are left alone, so a move cut short is finished by
the next start; the vault's sections are removed only after the store has committed them.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import insert, select

from adobot.store import Store
from adobot.store.connections import values_of
from adobot.store.models import ApiTokenRow, ConnectionRow, MetaRow

log = logging.getLogger("adobot")


def audit_file(vault_path: Path) -> Path:
    return vault_path.with_name(vault_path.name + ".audit.jsonl")


def move_from_vault(store: Store, vault: Any, organization_key: Callable[[str], str]) -> int:
    """Move ``vault``'s connections, tokens and audit file into ``store``; how many items
    moved. ``vault`` is a ``credentials.vault.Vault``."""
    journal = audit_file(Path(vault.path))
    held = vault.peek_sections()  # no key needed to see that nothing is there
    moved = 0
    if held:
        doc, keys = vault.snapshot()  # integrity checked: nothing tampered moves
        moved += _move_rows(store, doc, keys.key_id, organization_key)
        with vault.transaction() as (current, _):
            for section in held:
                current.pop(section, None)
    if journal.exists():
        moved += _move_journal(store, journal)
    if moved:
        log.info("moved %d connections, tokens and audit entries from the vault into the "
                 "control room's database", moved)
    return moved


def _move_rows(store: Store, doc: dict[str, Any], key_id: str,
               organization_key: Callable[[str], str]) -> int:
    moved = 0
    with store.database.writing() as db:
        names = set(db.execute(select(ConnectionRow.name)).scalars())
        for name, item in (doc.get("connections") or {}).items():
            if name in names:
                continue
            db.execute(insert(ConnectionRow).values(**values_of({
                "name": name, "organization": item["organization"],
                "organization_url": item["organization_url"],
                "organization_key": organization_key(item["organization_url"]),
                "project": item.get("project"),
                "authentication_method": item.get("authentication_method", "pat"),
                "tenant_id": item.get("tenant_id"), "client_id": item.get("client_id"),
                "runners": list(item.get("runners") or []),
                "roles": list(item.get("roles") or ["runner"]),
                "status": item.get("status") or {"state": "unchecked"},
                "secret": item["secret"], "key_id": key_id,
                "created_at": item.get("created_at", ""), "updated_at": item.get("updated_at", ""),
                "secret_set_at": item.get("secret_set_at", ""), "version": 1})))
            moved += 1
        digests = set(db.execute(select(ApiTokenRow.digest)).scalars())
        for digest, item in (doc.get("api_tokens") or {}).items():
            if digest in digests:
                continue
            db.execute(insert(ApiTokenRow).values(
                digest=digest, id=item["id"], name=item["name"], role=item["role"],
                created_at=item["created_at"], expires_at=item["expires_at"],
                revoked_at=item.get("revoked_at")))
            moved += 1
    return moved


def _move_journal(store: Store, journal: Path) -> int:
    raw = journal.read_bytes()
    marker = "audit_file:" + hashlib.sha256(raw).hexdigest()[:32]
    with store.database.reading() as db:
        done = db.execute(select(MetaRow.key).where(MetaRow.key == marker)).first()
    entries = []
    if done is None:
        for line in raw.decode("utf-8", "replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: it was never a whole entry
            if isinstance(entry, dict) and entry.get("event"):
                entries.append(entry)
        store.audit.append(entries, marker=marker)
    journal.rename(journal.with_name(journal.name + ".imported"))
    return len(entries)
