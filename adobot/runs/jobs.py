"""On PostgreSQL a queued run travels as a procrastinate job; runners (and the control room's
own pool) are procrastinate's workers.

- The job carries the run's id and nothing else. A worker that takes it asks the control room
  for that run (``Runs.take``), which hands over the bundle and opens the variables: the vault
  key never leaves the control room, so the database (its job rows included) gives no secret.
- Each change that queues a run (started, fired by a schedule, repeated after a system failure,
  given back) defers its job on the same connection, in the same transaction as the run's row:
  committed together or not at all, so a run is never queued without its job, or the reverse
  (``adobot.store.jobs``).
- The run's row stays the truth. A job whose run is no longer queued (cancelled, or taken by
  another way) ends doing nothing. A runner that may not use the run's connections hands the
  job to one online that may (each runner also reads a queue of its own; a runner that goes
  offline gives its queue back to its pool); where none may, the job comes back a few
  seconds later (``RunWaits``).
- A paused pool's jobs are parked (scheduled far ahead), so its runners do not churn through
  them; they are deferred so, or parked when taken, in a transaction that holds the pool's row,
  and a resume wakes them in the transaction that updates it: a resume never misses one.
- Priorities map to procrastinate's (higher first; then the order jobs were deferred); a
  repeat's backoff is the job's ``schedule_at``. Finished jobs are deleted: the history is the
  runs' own, so the job table holds only what is still to do.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from typing import Any, Callable

from adobot.errors import VaultError
from adobot.runs.service import RunWaits
from adobot.store.database import shown
from adobot.store.jobs import TASK, libpq_url, queue_of, runner_queue

log = logging.getLogger("adobot.runs")
# A job whose run may not start yet comes back after 1, 2, 4, 8 s, then every 15 s.
WAIT_CAP_SECONDS = 15


async def _check(url: str) -> None:
    """The database answers, and holds procrastinate's tables (else: why not)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, connect_timeout=10) as probe:
        found = await (await probe.execute("SELECT to_regclass('procrastinate_jobs')")).fetchone()
    if found is None or found[0] is None:
        raise VaultError("it holds no procrastinate tables (is it the control room's?)")


def _first_line(failure: BaseException) -> str:
    text = str(failure).strip()
    return text.splitlines()[0] if text else type(failure).__name__


def _when_ready() -> Any:
    from procrastinate import BaseRetryStrategy, RetryDecision

    class WhenReady(BaseRetryStrategy):
        """A run that may not start yet: its job comes back later, as often as needed."""

        def get_retry_decision(self, *, exception: BaseException, job: Any) -> Any:
            if not isinstance(exception, RunWaits):
                return None
            return RetryDecision(retry_in={"seconds": min(2 ** job.attempts,
                                                          WAIT_CAP_SECONDS)})

    return WhenReady()


class JobWorker:
    """A procrastinate worker on a thread of its own: it takes the jobs of ``pools`` and those
    handed to the runner ``name``, ``concurrency`` at once, and calls ``take(run_id)`` for each
    on a thread of its pool. ``take`` raises ``RunWaits`` when the run may not start yet.

    ``start`` fails at once on a database it cannot use; one lost later (a restart, a network
    cut) is connected to again every few seconds, the jobs waiting there meanwhile."""

    def __init__(self, url: str, pools: tuple[str, ...], concurrency: int,
                 take: Callable[[str], None], *, name: str, poll_seconds: float = 5.0) -> None:
        self.url, self.pools, self.concurrency = libpq_url(url), pools, concurrency
        self.take, self.name, self.poll_seconds = take, name, poll_seconds
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self._stopping = threading.Event()
        self._worker: Any = None
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name=f"adobot-jobs-{name}")

    def start(self) -> "JobWorker":
        self._thread.start()
        if not self.ready.wait(60):
            self.failure = TimeoutError("no answer within 60 s")
        if self.failure is not None:
            self.stop(0)
            reason = self.failure.message if isinstance(self.failure, VaultError) \
                else _first_line(self.failure)
            raise VaultError(f"the database {shown(self.url)} cannot be used for the runs' "
                             f"jobs: {reason}", "Check --database (or "
                             "$ADOBOT_DATABASE_URL): the control room's PostgreSQL database, "
                             "upgraded by it (adobot db upgrade).", field="--database")
        return self

    def stop(self, seconds: float = 10.0) -> None:
        """Take no more jobs; wait up to ``seconds`` for those taken to end."""
        self._stopping.set()
        if self._worker is not None:
            self._worker.stop()
        self._thread.join(seconds)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                asyncio.run(self._work())
            except Exception as failure:
                if not self.ready.is_set():  # the first start: ``start`` says why
                    self.failure = failure
                    self.ready.set()
                    return
                log.warning("the job worker %s lost the database (%s): connecting again",
                            self.name, _first_line(failure))
                self._stopping.wait(2.0)

    def _take(self, run_id: str) -> None:
        try:
            self.take(run_id)
        except RunWaits:
            raise
        except Exception as failure:  # a job that fails is deleted: its run would wait forever
            log.exception("run %s could not be taken", run_id)
            raise RunWaits(f"run {run_id} could not be taken: {type(failure).__name__}",
                           "It is tried again.") from failure

    async def _work(self) -> None:
        from procrastinate import App, PsycopgConnector
        from procrastinate.worker import Worker

        # Each job's ``take`` blocks a thread for the whole run: one thread a job, and one
        # spare (the default pool has as many as the machine has cores, plus four).
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(
            self.concurrency + 1, thread_name_prefix=f"adobot-run-{self.name}"))
        if not self.ready.is_set():  # the first start: one connection says what is wrong
            await _check(self.url)
        app = App(connector=PsycopgConnector(conninfo=self.url, min_size=1,
                                             max_size=self.concurrency + 2))
        app.task(name=TASK, retry=_when_ready())(self._take)
        async with app.open_async():
            self._worker = Worker(
                app=app, queues=[*(queue_of(p) for p in self.pools), runner_queue(self.name)],
                name=self.name,
                concurrency=self.concurrency, install_signal_handlers=False,
                delete_jobs="always", fetch_job_polling_interval=self.poll_seconds)
            self.ready.set()
            if not self._stopping.is_set():  # (stopped while it started: nothing to run)
                await self._worker.run()
