"""Bots, runs, their attempts, pools and runners as rows. Every change of a run's state is one
conditional UPDATE (``WHERE state = … AND attempt = …``): of two that race, one changes the row
and the other changes nothing and is told so — a run is taken once, ended once.

On PostgreSQL (``jobs``), each change that queues a run defers its procrastinate job in the
same transaction (``_queue_job``; ``adobot.store.jobs``)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable

from sqlalchemy import and_, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from adobot.store.database import Database
from adobot.store.models import AttemptRow, BotRow, PoolRow, RunnerRow, RunRow, ScheduleRow

if TYPE_CHECKING:
    from adobot.store.jobs import Jobs

RUN_COLUMNS = RunRow.__table__.columns
# What a list of runs shows: no variables (sealed anyway), no steps or log (one run's page).
LISTED = [c for c in RUN_COLUMNS if c.name not in ("variables", "key_id", "variables_next",
                                                   "key_id_next", "steps", "log", "outputs")]
JSON_FIELDS = ("error", "steps", "outputs")


def _run(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    for name in JSON_FIELDS:
        if data.get(name) is not None:
            data[name] = json.loads(data[name])
    return data


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _promote(database: Database, table: Any, key_id: str) -> int:
    with database.writing() as db:
        return db.execute(update(table).where(table.key_id_next == key_id).values(
            variables=table.variables_next, key_id=key_id, variables_next=None,
            key_id_next=None)).rowcount


def _queue_job(jobs: "Jobs | None", db: Any, run_id: str, pool: str, priority: int,
               at: str | None = None, runner: str | None = None) -> None:
    """A queued run's job (PostgreSQL), in this transaction: parked if its pool is paused;
    ``runner``: for that runner by name."""
    if jobs is not None:
        jobs.defer(db, run_id, pool, priority, at, parked=_paused(db, pool), runner=runner)


def _paused(db: Any, pool: str) -> bool:
    """Whether ``pool`` is paused; on PostgreSQL its row is held (shared) until the
    transaction ends, so a pause or resume of it waits for this one."""
    query = select(PoolRow.paused).where(PoolRow.name == pool)
    if db.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    return bool(db.execute(query).scalar())


class SqlBots:
    def __init__(self, database: Database) -> None:
        self.database = database

    def add(self, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The version ``record`` (without ``version``) becomes, and whether it is new: the
        same content uploaded again is the version it already is."""
        for _ in range(5):  # two uploads of one bot at once: one takes the number, one retries
            with self.database.writing() as db:
                same = db.execute(select(*BotRow.__table__.columns).where(BotRow.name == record["name"],
                                                       BotRow.digest == record["digest"])
                                  ).first()
                if same is not None:
                    return dict(same._mapping), False
                last = db.execute(select(func.max(BotRow.version))
                                  .where(BotRow.name == record["name"])).scalar() or 0
                try:
                    db.execute(insert(BotRow).values(**record, version=last + 1))
                except IntegrityError:
                    continue
            return {**record, "version": last + 1}, True
        raise RuntimeError("could not number the bot's version")

    def get(self, name: str, version: int | None = None) -> dict[str, Any] | None:
        query = select(*BotRow.__table__.columns).where(BotRow.name == name)
        query = (query.where(BotRow.version == version) if version is not None
                 else query.order_by(BotRow.version.desc()).limit(1))
        with self.database.reading() as db:
            row = db.execute(query).first()
        return dict(row._mapping) if row else None

    def named_connections(self, name: str, version: int) -> set[str]:
        """The connections a bot version names."""
        with self.database.reading() as db:
            named = db.execute(select(BotRow.connections).where(
                BotRow.name == name, BotRow.version == version)).scalar()
        return set(filter(None, (named or "").split(",")))

    def naming(self, connections: set[str]) -> list[tuple[str, int]]:
        """The versions of bots that name one of ``connections``."""
        with self.database.reading() as db:
            rows = db.execute(select(BotRow.name, BotRow.version, BotRow.connections)
                              .where(BotRow.connections != ""))
            return [(name, version) for name, version, named in rows
                    if set(named.split(",")) & connections]

    def list(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every bot's newest version (or every version of ``name``, newest first)."""
        columns = [c for c in BotRow.__table__.columns if c.name != "files"]
        with self.database.reading() as db:
            if name is not None:
                rows = db.execute(select(*columns).where(BotRow.name == name)
                                  .order_by(BotRow.version.desc()))
            else:
                newest = (select(BotRow.name, func.max(BotRow.version).label("version"))
                          .group_by(BotRow.name).subquery())
                rows = db.execute(select(*columns).join(newest, and_(
                    BotRow.name == newest.c.name, BotRow.version == newest.c.version))
                    .order_by(BotRow.name))
            return [dict(row._mapping) for row in rows]


class SqlRuns:
    def __init__(self, database: Database, jobs: "Jobs | None" = None) -> None:
        self.database, self.jobs = database, jobs

    def hand_to(self, runner: str, run_id: str, pool: str, priority: int) -> None:
        """The run's job goes to ``runner`` by name (its job was just taken by another)."""
        if self.jobs is not None:
            with self.database.writing() as db:
                _queue_job(self.jobs, db, run_id, pool, priority, runner=runner)

    def park(self, run_id: str, pool: str, priority: int) -> bool:
        """If ``pool`` is paused, a parked job for the run (whose job was just taken): True.
        The pool's row is held meanwhile, so a resume comes before (and this finds the pool
        going) or after (and wakes this job)."""
        with self.database.writing() as db:
            if not _paused(db, pool):
                return False
            if self.jobs is not None:
                self.jobs.defer(db, run_id, pool, priority, parked=True)
            return True

    # --- starting and reading ----------------------------------------------------------------

    def insert(self, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The run, and whether it is new: a run with the same idempotency key is the one
        already made."""
        try:
            with self.database.writing() as db:
                db.execute(insert(RunRow).values(**record))
                _queue_job(self.jobs, db, record["id"], record["pool"], record["priority"])
                row = db.execute(select(*RUN_COLUMNS).where(RunRow.id == record["id"])).first()
            return _run(row), True
        except IntegrityError:
            key = record.get("idempotency_key")
            found = self.find_key(key) if key else None
            if found is None:
                raise
            return found, False

    def find_key(self, key: str) -> dict[str, Any] | None:
        with self.database.reading() as db:
            row = db.execute(select(*RUN_COLUMNS).where(RunRow.idempotency_key == key)).first()
        return _run(row) if row else None

    def head(self, run_id: str) -> dict[str, Any] | None:
        """The run as a list shows it (no variables, steps, log or attempts)."""
        with self.database.reading() as db:
            row = db.execute(select(*LISTED).where(RunRow.id == run_id)).first()
        return _run(row) if row else None

    def get(self, run_id: str) -> dict[str, Any] | None:
        with self.database.reading() as db:
            row = db.execute(select(*RUN_COLUMNS).where(RunRow.id == run_id)).first()
            if row is None:
                return None
            run = _run(row)
            run["attempts"] = [
                {**dict(a._mapping), "error": json.loads(a.error) if a.error else None}
                for a in db.execute(select(*AttemptRow.__table__.columns)
                                    .where(AttemptRow.run_id == run_id)
                                    .order_by(AttemptRow.number))]
        return run

    def list(self, *, bot: str | None = None, state: str | None = None,
             pool: str | None = None, started_by: str | None = None,
             since: str | None = None, until: str | None = None,
             limit: int = 100) -> list[dict[str, Any]]:
        """Runs, newest first, filtered by what is given."""
        query = select(*LISTED).order_by(RunRow.created_at.desc(), RunRow.id).limit(limit)
        for column, value in ((RunRow.bot, bot), (RunRow.state, state), (RunRow.pool, pool),
                              (RunRow.started_by, started_by)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(RunRow.created_at >= since)
        if until is not None:
            query = query.where(RunRow.created_at < until)
        with self.database.reading() as db:
            return [_run(row) for row in db.execute(query)]

    def queued_ahead(self, run: dict[str, Any]) -> int:
        """Queued runs of the run's pool that are taken before it."""
        with self.database.reading() as db:
            return db.execute(select(func.count()).select_from(RunRow).where(
                RunRow.state == "queued", RunRow.pool == run["pool"], RunRow.id != run["id"],
                or_(RunRow.priority < run["priority"],
                    and_(RunRow.priority == run["priority"],
                         RunRow.created_at < run["created_at"])))).scalar() or 0

    def count(self, pool: str, state: str) -> int:
        with self.database.reading() as db:
            return db.execute(select(func.count()).select_from(RunRow).where(
                RunRow.state == state, RunRow.pool == pool)).scalar() or 0

    def ready(self, pool: str, now: str, barred: list[tuple[str, int]] = ()) -> bool:
        """Whether the pool has a queued run whose backoff is over (of a bot version not
        ``barred``)."""
        query = select(RunRow.id).where(RunRow.state == "queued", RunRow.pool == pool,
                                        RunRow.not_before <= now).limit(1)
        if barred:
            query = query.where(tuple_(RunRow.bot, RunRow.bot_version).not_in(list(barred)))
        with self.database.reading() as db:
            return db.execute(query).first() is not None

    # --- the queue ---------------------------------------------------------------------------

    def claim(self, pool: str, runner: str, now: str, lease_until: str,
              barred: list[tuple[str, int]] = (), run_id: str | None = None
              ) -> dict[str, Any] | None:
        """Take the pool's next queued run (priority, then age; its backoff over) for
        ``runner``: the run as it now is, or None. ``barred``: bot versions it may not run;
        ``run_id``: that run only (its job brought it)."""
        with self.database.writing() as db:
            if db.execute(select(PoolRow.paused).where(PoolRow.name == pool)).scalar():
                return None
            query = (select(RunRow.id, RunRow.attempt)
                     .where(RunRow.state == "queued", RunRow.pool == pool,
                            RunRow.not_before <= now)
                     .order_by(RunRow.priority, RunRow.created_at, RunRow.id).limit(1))
            if run_id is not None:
                query = query.where(RunRow.id == run_id)
            if barred:
                query = query.where(tuple_(RunRow.bot, RunRow.bot_version)
                                    .not_in(list(barred)))
            if not self.database.sqlite:  # SQLite's writers are one at a time already
                query = query.with_for_update(skip_locked=True)
            found = db.execute(query).first()
            if found is None:
                return None
            attempt = found.attempt + 1
            db.execute(update(RunRow).where(RunRow.id == found.id, RunRow.state == "queued")
                       .values(state="running", runner=runner, attempt=attempt,
                               started_at=now, lease_until=lease_until, failure=None,
                               error=None))
            db.execute(insert(AttemptRow).values(run_id=found.id, number=attempt,
                                                 runner=runner, started_at=now,
                                                 state="running"))
            row = db.execute(select(*RUN_COLUMNS).where(RunRow.id == found.id)).first()
        return _run(row)

    def renew(self, runner: str, run_ids: Iterable[str], lease_until: str) -> set[str]:
        """Extend the leases of the runner's running runs; the ids of those to cancel."""
        ids = list(run_ids)
        if not ids:
            return set()
        with self.database.writing() as db:
            db.execute(update(RunRow).where(RunRow.id.in_(ids), RunRow.runner == runner,
                                            RunRow.state == "running")
                       .values(lease_until=lease_until))
            return set(db.execute(select(RunRow.id).where(
                RunRow.id.in_(ids), RunRow.runner == runner,
                or_(RunRow.cancel_requested == 1, RunRow.state != "running"))).scalars())

    def end(self, run_id: str, attempt: int, runner: str, *, state: str, now: str,
            failure: str | None = None, error: Any = None, steps: Any = None,
            outputs: Any = None, log: str | None = None, requests: int = 0,
            requeue_at: str | None = None, lost: bool = False) -> bool:
        """End the attempt (the run's state, or queued again at ``requeue_at``); False if the
        run is no longer this runner's attempt (it was ended already, or taken back).
        ``lost``: the runner stopped answering, and its job is let go."""
        with self.database.writing() as db:
            changed = db.execute(
                update(RunRow).where(RunRow.id == run_id, RunRow.attempt == attempt,
                                     RunRow.runner == runner, RunRow.state == "running")
                .values(state="queued" if requeue_at else state,
                        not_before=requeue_at or RunRow.not_before,
                        ended_at=None if requeue_at else now, failure=failure,
                        error=_json(error), steps=_json(steps), outputs=_json(outputs),
                        log=log, requests=requests, lease_until=None,
                        runner=None if requeue_at else runner)).rowcount
            if changed:
                db.execute(update(AttemptRow).where(AttemptRow.run_id == run_id,
                                                    AttemptRow.number == attempt)
                           .values(ended_at=now, state=state, failure=failure,
                                   error=_json(error)))
                if lost and self.jobs is not None:
                    self.jobs.let_go(db, run_id)
                if requeue_at and self.jobs is not None:
                    pool, priority = db.execute(select(RunRow.pool, RunRow.priority)
                                                .where(RunRow.id == run_id)).one()
                    _queue_job(self.jobs, db, run_id, pool, priority, requeue_at)
        return bool(changed)

    def release(self, runner: str, holding: Iterable[str], started_before: str) -> list[str]:
        """Give back the runs taken by ``runner`` that it does not hold (the answer to its
        claim never reached it): queued again as if never taken. Their ids."""
        held = list(holding)
        with self.database.writing() as db:
            query = select(RunRow.id, RunRow.attempt, RunRow.pool, RunRow.priority).where(
                RunRow.runner == runner, RunRow.state == "running",
                RunRow.started_at < started_before)
            if held:
                query = query.where(RunRow.id.not_in(held))
            lost = db.execute(query).all()
            for run_id, attempt, pool, priority in lost:
                db.execute(delete(AttemptRow).where(AttemptRow.run_id == run_id,
                                                    AttemptRow.number == attempt))
                db.execute(update(RunRow).where(RunRow.id == run_id, RunRow.attempt == attempt,
                                                RunRow.state == "running")
                           .values(state="queued", runner=None, lease_until=None,
                                   started_at=None, attempt=attempt - 1))
                _queue_job(self.jobs, db, run_id, pool, priority)
        return [run_id for run_id, *_ in lost]

    def cancel(self, run_id: str, now: str) -> str | None:
        """Cancel a queued run at once, ask a running one to stop; the state it is left in
        (None: no such run)."""
        with self.database.writing() as db:
            state = db.execute(select(RunRow.state).where(RunRow.id == run_id)).scalar()
            if state == "queued":
                db.execute(update(RunRow).where(RunRow.id == run_id, RunRow.state == "queued")
                           .values(state="cancelled", ended_at=now))
                if self.jobs is not None:
                    self.jobs.withdraw(db, run_id)
                return "cancelled"
            if state == "running":
                db.execute(update(RunRow).where(RunRow.id == run_id)
                           .values(cancel_requested=1))
            return state

    def unfinished(self) -> list[dict[str, Any]]:
        """Queued and running runs: their ids and sealed variables."""
        with self.database.reading() as db:
            return [dict(row._mapping) for row in db.execute(
                select(RunRow.id, RunRow.variables, RunRow.key_id, RunRow.variables_next,
                       RunRow.key_id_next).where(RunRow.state.in_(("queued", "running"))))]

    def seal_next(self, run_id: str, sealed: str, key_id: str) -> int:
        with self.database.writing() as db:
            return db.execute(update(RunRow).where(RunRow.id == run_id).values(
                variables_next=sealed, key_id_next=key_id)).rowcount

    def promote(self, key_id: str) -> int:
        """The variables sealed under ``key_id`` (a rotation's new key) become the variables."""
        return _promote(self.database, RunRow, key_id)

    def lapsed(self, now: str) -> list[dict[str, Any]]:
        """Running runs whose lease ran out: their runner stopped renewing it."""
        with self.database.reading() as db:
            return [_run(row) for row in db.execute(select(*LISTED).where(
                RunRow.state == "running", RunRow.lease_until < now))]

    def remove_ended_before(self, cutoff: str) -> int:
        with self.database.writing() as db:
            old = select(RunRow.id).where(RunRow.ended_at < cutoff,
                                          RunRow.state.not_in(("queued", "running")))
            db.execute(delete(AttemptRow).where(AttemptRow.run_id.in_(old)))
            return db.execute(delete(RunRow).where(
                RunRow.ended_at < cutoff, RunRow.state.not_in(("queued", "running")))).rowcount

    # --- pools and runners -------------------------------------------------------------------

    def pools(self) -> list[dict[str, Any]]:
        with self.database.reading() as db:
            return [dict(row._mapping) for row in db.execute(
                select(*PoolRow.__table__.columns).order_by(PoolRow.name))]

    def pool(self, name: str) -> dict[str, Any] | None:
        with self.database.reading() as db:
            row = db.execute(select(*PoolRow.__table__.columns)
                             .where(PoolRow.name == name)).first()
        return dict(row._mapping) if row else None

    def set_pool(self, name: str, paused: bool, now: str) -> None:
        with self.database.writing() as db:
            if db.execute(update(PoolRow).where(PoolRow.name == name)
                          .values(paused=int(paused))).rowcount == 0:
                db.execute(insert(PoolRow).values(name=name, paused=int(paused), created_at=now))
            if not paused and self.jobs is not None:
                self.jobs.wake(db, self._paused_pools(db))

    def _paused_pools(self, db: Any) -> list[str]:
        return list(db.execute(select(PoolRow.name).where(PoolRow.paused == 1)).scalars())

    def wake_parked(self) -> None:
        """The parked jobs of pools not paused come now (PostgreSQL; see ``Jobs.wake``)."""
        if self.jobs is not None:
            with self.database.writing() as db:
                self.jobs.wake(db, self._paused_pools(db))

    def runners(self, pool: str | None = None) -> list[dict[str, Any]]:
        query = select(*RunnerRow.__table__.columns).order_by(RunnerRow.name)
        if pool is not None:
            query = query.where(RunnerRow.pool == pool)
        with self.database.reading() as db:
            return [dict(row._mapping) for row in db.execute(query)]

    def register(self, record: dict[str, Any]) -> None:
        with self.database.writing() as db:
            if db.execute(update(RunnerRow).where(RunnerRow.name == record["name"])
                          .values(**record)).rowcount == 0:
                db.execute(insert(RunnerRow).values(**record))

    def heartbeat(self, name: str, now: str, state: str = "online") -> bool:
        with self.database.writing() as db:
            return bool(db.execute(update(RunnerRow).where(RunnerRow.name == name)
                                   .values(heartbeat_at=now, state=state)).rowcount)

    def mark_offline(self, names: Iterable[str]) -> None:
        listed = list(names)
        if listed:
            with self.database.writing() as db:
                db.execute(update(RunnerRow).where(RunnerRow.name.in_(listed))
                           .values(state="offline"))
                if self.jobs is not None:  # the jobs handed to them go back to their pools
                    for name, pool in db.execute(select(RunnerRow.name, RunnerRow.pool)
                                                 .where(RunnerRow.name.in_(listed))):
                        self.jobs.give_back(db, name, pool)



class SqlSchedules:
    def __init__(self, database: Database, jobs: "Jobs | None" = None) -> None:
        self.database, self.jobs = database, jobs

    def list(self) -> list[dict[str, Any]]:
        with self.database.reading() as db:
            return [dict(row._mapping) for row in db.execute(
                select(*ScheduleRow.__table__.columns).order_by(ScheduleRow.name))]

    def get(self, name: str) -> dict[str, Any] | None:
        with self.database.reading() as db:
            row = db.execute(select(*ScheduleRow.__table__.columns)
                             .where(ScheduleRow.name == name)).first()
        return dict(row._mapping) if row else None

    def insert(self, record: dict[str, Any]) -> bool:
        try:
            with self.database.writing() as db:
                db.execute(insert(ScheduleRow).values(**record))
            return True
        except IntegrityError:
            return False

    def update(self, name: str, values: dict[str, Any]) -> bool:
        with self.database.writing() as db:
            return bool(db.execute(update(ScheduleRow).where(ScheduleRow.name == name)
                                   .values(**values)).rowcount)

    def delete(self, name: str) -> bool:
        with self.database.writing() as db:
            return bool(db.execute(delete(ScheduleRow).where(ScheduleRow.name == name))
                        .rowcount)

    def seal_next(self, name: str, sealed: str, key_id: str) -> int:
        with self.database.writing() as db:
            return db.execute(update(ScheduleRow).where(ScheduleRow.name == name).values(
                variables_next=sealed, key_id_next=key_id)).rowcount

    def promote(self, key_id: str) -> int:
        return _promote(self.database, ScheduleRow, key_id)

    def due(self, now: str) -> list[dict[str, Any]]:
        with self.database.reading() as db:
            return [dict(row._mapping) for row in db.execute(
                select(*ScheduleRow.__table__.columns).where(
                    ScheduleRow.next_at <= now, ScheduleRow.paused == 0))]

    def fire(self, name: str, tick: str, following: str, run: dict[str, Any],
             now: str) -> bool:
        """Move the schedule from ``tick`` to ``following`` and queue ``run``, in one
        transaction; False if another instance fired this tick first."""
        try:
            with self.database.writing() as db:
                moved = db.execute(update(ScheduleRow).where(
                    ScheduleRow.name == name, ScheduleRow.next_at == tick)
                    .values(next_at=following, last_run=run["id"], last_fired_at=now)).rowcount
                if not moved:
                    return False
                db.execute(insert(RunRow).values(**run))
                _queue_job(self.jobs, db, run["id"], run["pool"], run["priority"])
            return True
        except IntegrityError:  # the tick's idempotency key: queued by another instance
            return False
