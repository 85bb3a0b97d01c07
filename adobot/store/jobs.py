"""procrastinate's side of the store (PostgreSQL): a queued run's job, always on the caller's
connection and in its transaction — deferred with the run's row (committed together or not at
all), withdrawn with a cancelled run, let go with a lost runner, handed to a runner by name,
parked while its pool is paused and woken when it is resumed. The job carries the run's id
and nothing else. Who takes the jobs: ``adobot.runs.jobs``."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import bindparam, text

TASK = "adobot.run"
# A paused pool's jobs are scheduled this far ahead until the pool is resumed.
PARKED = dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc)


def queue_of(pool: str) -> str:
    return f"adobot-pool:{pool}"


def runner_queue(runner: str) -> str:
    """The queue of the jobs handed to ``runner`` by name."""
    return f"adobot-runner:{runner}"


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL (postgresql+psycopg://…) as libpq takes it (postgresql://…)."""
    return "postgresql://" + url.split("://", 1)[1]


def _driver(db: Any) -> Any:
    """The psycopg connection under a SQLAlchemy connection: its transaction is ours."""
    return db.connection.driver_connection


class Jobs:
    """The control room's side of the queue, always on the caller's connection and transaction:
    defer a queued run's job (to its pool, or to one runner by name; parked if the pool is
    paused), withdraw a cancelled run's, let go of a lost runner's, give an offline runner's
    back to its pool, and wake a resumed pool's."""

    def __init__(self) -> None:
        from procrastinate import App, SyncPsycopgConnector

        # Never opened: every job is deferred on a connection the caller lends.
        self.app = App(connector=SyncPsycopgConnector())

    def defer(self, db: Any, run_id: str, pool: str, priority: int,
              at: str | None = None, *, parked: bool = False, runner: str | None = None) -> None:
        """``at``: not before then (a repeat's backoff); ``parked``: until ``wake``;
        ``runner``: for that runner only."""
        queue = queue_of(pool) if runner is None else runner_queue(runner)
        options: dict[str, Any] = {"queue": queue, "priority": -priority,
                                   "connection": _driver(db)}
        if parked:
            options["schedule_at"] = PARKED
        elif at is not None:
            options["schedule_at"] = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
        self.app.configure_task(TASK, **options).defer(run_id=run_id)

    def withdraw(self, db: Any, run_id: str) -> None:
        """A cancelled run's job that waits is deleted."""
        db.execute(text("SELECT procrastinate_cancel_job_v1(id, false, true) "
                        "FROM procrastinate_jobs WHERE status = 'todo' AND task_name = :task "
                        "AND args->>'run_id' = :run"), {"task": TASK, "run": run_id})

    def let_go(self, db: Any, run_id: str) -> None:
        """The job a lost runner held is deleted (its worker died with it)."""
        db.execute(text("SELECT procrastinate_finish_job_v1(id, 'failed', true) "
                        "FROM procrastinate_jobs WHERE status = 'doing' AND task_name = :task "
                        "AND args->>'run_id' = :run"), {"task": TASK, "run": run_id})

    def give_back(self, db: Any, runner: str, pool: str) -> None:
        """The jobs handed to ``runner``, which went offline, go back to its pool."""
        _ring(db, db.execute(text(
            "UPDATE procrastinate_jobs SET queue_name = :pool WHERE status = 'todo' AND "
            "queue_name = :runner AND task_name = :task RETURNING id, queue_name"),
            {"pool": queue_of(pool), "runner": runner_queue(runner), "task": TASK}))

    def wake(self, db: Any, paused: list[str]) -> None:
        """The parked jobs of every pool but the ``paused`` ones come now (at a pool's resume,
        and every few seconds for a job parked just as its pool was resumed)."""
        _ring(db, db.execute(text(
            "UPDATE procrastinate_jobs SET scheduled_at = NULL WHERE status = 'todo' AND "
            "task_name = :task AND scheduled_at >= :parked AND NOT (queue_name IN :paused) "
            "RETURNING id, queue_name").bindparams(bindparam("paused", expanding=True)),
            {"task": TASK, "parked": PARKED, "paused": [queue_of(p) for p in paused] or [""]}))


def _ring(db: Any, moved: Any) -> None:
    """Wake the workers of the queues jobs just came to, as procrastinate's own insert trigger
    does (an update rings nothing): at commit, not at their next poll."""
    first = {queue: job_id for job_id, queue in moved}
    for queue, job_id in first.items():
        db.execute(text("SELECT pg_notify(:channel, :payload)"), {
            "channel": f"procrastinate_queue_v1#{queue}",
            "payload": json.dumps({"type": "job_inserted", "job_id": job_id})})
