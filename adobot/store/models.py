"""The control room's tables (SQLAlchemy 2). Alembic's migrations create them; these classes
are what the repositories query. Times are UTC text (``2026-12-05T11:18:54Z``), as the API
shows them; secrets are only ever the vault's sealed text."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ConnectionRow(Base):
    __tablename__ = "connections"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    organization: Mapped[str] = mapped_column(String(1000))
    organization_url: Mapped[str] = mapped_column(String(1000))
    # The lower-cased base URL: one connection an organization (a unique index says so).
    organization_key: Mapped[str] = mapped_column(String(1000), unique=True)
    project: Mapped[Optional[str]] = mapped_column(String(256))
    authentication_method: Mapped[str] = mapped_column(String(32))
    tenant_id: Mapped[Optional[str]] = mapped_column(String(64))
    client_id: Mapped[Optional[str]] = mapped_column(String(64))
    # A managed identity across tenants: the user-assigned identity behind the app (0006).
    identity_client_id: Mapped[Optional[str]] = mapped_column(String(64))
    # Names and roles never hold a comma (their rules say so): kept as "a,b" text.
    runners: Mapped[str] = mapped_column(Text, default="")
    roles: Mapped[str] = mapped_column(String(64), default="runner")
    # The last test's outcome, in columns of their own so they can be queried.
    status_state: Mapped[str] = mapped_column(String(16), default="unchecked")
    status_reason: Mapped[Optional[str]] = mapped_column(Text)
    status_code: Mapped[Optional[str]] = mapped_column(String(32))
    status_user: Mapped[Optional[str]] = mapped_column(String(256))
    status_checked_at: Mapped[Optional[str]] = mapped_column(String(20))
    # AES-GCM under the vault's key, bound to the connection and its organization; the key
    # never comes here. key_id says which key sealed it.
    secret: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(16))
    # A key rotation seals each secret under the new key here first, and promotes it once the
    # vault has the new key: a crash at any point leaves one of the two opening.
    secret_next: Mapped[Optional[str]] = mapped_column(Text)
    key_id_next: Mapped[Optional[str]] = mapped_column(String(16))
    created_at: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[str] = mapped_column(String(20))
    secret_set_at: Mapped[str] = mapped_column(String(20))
    # Optimistic concurrency: every write adds one and names the version it read.
    version: Mapped[int] = mapped_column(Integer, default=1)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the token
    name: Mapped[str] = mapped_column(String(32), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[str] = mapped_column(String(20))
    revoked_at: Mapped[Optional[str]] = mapped_column(String(20))


class AuditRow(Base):
    """Append-only (triggers refuse UPDATE and DELETE) and chained: ``hash`` covers the row's
    fields and ``prev_hash``, the hash of the row before it."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(200))
    connection: Mapped[Optional[str]] = mapped_column(String(1000), index=True)
    organization: Mapped[Optional[str]] = mapped_column(String(1000))
    detail: Mapped[Optional[str]] = mapped_column(Text)
    client: Mapped[Optional[str]] = mapped_column(String(64))
    run: Mapped[Optional[str]] = mapped_column(Text)  # canonical JSON of {bot, run}
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class MetaRow(Base):
    """Facts about the store itself: the audit chain's head (so a removed last row shows)."""

    __tablename__ = "store_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class BotRow(Base):
    """One version of an uploaded bot: its files (the bot, the child bots and CSV files it
    uses) as one bundle, named by the hash of its content."""

    __tablename__ = "bots"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the bundle
    main: Mapped[str] = mapped_column(String(200))   # the bot the run starts with
    files: Mapped[str] = mapped_column(Text)         # JSON: {path: text}
    expects: Mapped[str] = mapped_column(Text, default="")  # variables a run must give, "a,b"
    connections: Mapped[str] = mapped_column(Text, default="")  # the connections it names
    retries: Mapped[int] = mapped_column(Integer, default=0)
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[str] = mapped_column(String(20))


class RunRow(Base):
    """A run of one bot version: queued, then taken by a runner (the local pool or a machine),
    then ended. Its variables are sealed by the vault (bound to the run's id)."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    bot: Mapped[str] = mapped_column(String(64), index=True)
    bot_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    failure: Mapped[Optional[str]] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)
    pool: Mapped[str] = mapped_column(String(64), index=True)
    idempotency_key: Mapped[Optional[str]] = mapped_column(String(200), unique=True)
    variables: Mapped[str] = mapped_column(Text)  # sealed JSON
    key_id: Mapped[str] = mapped_column(String(16))
    # During a key rotation: the variables sealed under the new key too (0004).
    variables_next: Mapped[Optional[str]] = mapped_column(Text)
    key_id_next: Mapped[Optional[str]] = mapped_column(String(16))
    started_by: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[str] = mapped_column(String(32), index=True)
    not_before: Mapped[str] = mapped_column(String(32))  # a repeat waits for its backoff
    started_at: Mapped[Optional[str]] = mapped_column(String(32))
    ended_at: Mapped[Optional[str]] = mapped_column(String(32))
    runner: Mapped[Optional[str]] = mapped_column(String(64))
    lease_until: Mapped[Optional[str]] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    cancel_requested: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[Optional[str]] = mapped_column(Text)    # JSON
    steps: Mapped[Optional[str]] = mapped_column(Text)    # JSON
    outputs: Mapped[Optional[str]] = mapped_column(Text)  # JSON (masked)
    log: Mapped[Optional[str]] = mapped_column(Text)      # masked lines
    requests: Mapped[int] = mapped_column(Integer, default=0)


class AttemptRow(Base):
    __tablename__ = "run_attempts"

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    runner: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[str] = mapped_column(String(32))
    ended_at: Mapped[Optional[str]] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    failure: Mapped[Optional[str]] = mapped_column(String(16))
    error: Mapped[Optional[str]] = mapped_column(Text)  # JSON


class PoolRow(Base):
    __tablename__ = "pools"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[str] = mapped_column(String(32))


class RunnerRow(Base):
    __tablename__ = "runners"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    pool: Mapped[str] = mapped_column(String(64), index=True)
    concurrency: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(255))
    registered_at: Mapped[str] = mapped_column(String(32))
    heartbeat_at: Mapped[str] = mapped_column(String(32))
    lease_seconds: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # online, draining, offline


class ScheduleRow(Base):
    """A bot started on a cron expression in a time zone. ``next_at`` is the next tick (UTC):
    firing moves it on in one conditional update, so of two instances one fires a tick."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    bot: Mapped[str] = mapped_column(String(64))
    bot_version: Mapped[Optional[int]] = mapped_column(Integer)  # None: the latest
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    variables: Mapped[str] = mapped_column(Text)  # sealed JSON
    key_id: Mapped[str] = mapped_column(String(16))
    # During a key rotation: the variables sealed under the new key too (0004).
    variables_next: Mapped[Optional[str]] = mapped_column(Text)
    key_id_next: Mapped[Optional[str]] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)
    pool: Mapped[str] = mapped_column(String(64))
    paused: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[str] = mapped_column(String(32), index=True)
    last_run: Mapped[Optional[str]] = mapped_column(String(32))
    last_fired_at: Mapped[Optional[str]] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[str] = mapped_column(String(32))
