"""``adobot runner``: a machine that runs a control room's bots. It registers (its token's name,
its pool, how many runs at once, its version and host), waits for runs of its pool, runs each
with the credentials the control room hands out for that run only, says every few seconds that
it is alive (which renews its runs' leases and tells it which to stop), and reports how each
ended. On SIGTERM it takes no more runs, lets those it holds finish for a grace period, then
stops them: they end as "runner lost" (repeated where the bot allows), never left running.

How runs reach it: from a control room on SQLite, it asks for the pool's next run (a claim that
waits a few seconds); given the control room's PostgreSQL database (``--database``), it is a
procrastinate worker there, listening before it registers, and each job names the run to ask
for. Registering confirms that the control room runs the engine the runner expects."""
from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from adobot import __version__
from adobot.errors import AdobotError, Conflict, InvalidInput
from adobot.runs.engine import HeldRuns, attempt
from adobot.runs.service import RunWaits

log = logging.getLogger("adobot.runner")
WAIT_SECONDS = 2.0  # a claim waits this long for a run; a draining runner waits no longer


class RemoteRunner:
    def __init__(self, url: str, token: Any, *, pool: str = "default", concurrency: int = 1,
                 grace_seconds: float = 30.0, allow_plain_http: bool = False,
                 database: str | None = None) -> None:
        from adobot.credentials.remote import ControlRoomClient

        self.url, self.token, self.pool, self.database = url, token, pool, database
        self.concurrency, self.grace_seconds = concurrency, grace_seconds
        self.allow_plain_http = allow_plain_http
        # Claims wait a few seconds for a run: the read timeout outlasts them.
        self.room = ControlRoomClient(url, token, allow_plain_http=allow_plain_http,
                                      timeout=(10, WAIT_SECONDS + 15))
        self.draining = threading.Event()
        self.stopped = threading.Event()
        self.held = HeldRuns()
        self.heartbeat_seconds = 10.0
        self.engine, self.name = "claims", ""  # as the control room says when it registers

    def register(self) -> None:
        terms = self.room.post("runners/register", {
            "pool": self.pool, "concurrency": self.concurrency, "version": __version__,
            "host": socket.gethostname()}, subject="this runner")
        self.heartbeat_seconds = float(terms["heartbeat_seconds"])
        self.engine, self.name = terms.get("engine", "claims"), terms.get("name", "")
        if self.engine == "procrastinate" and not self.database:
            raise InvalidInput(f"the control room {self.url} queues its runs as procrastinate "
                               "jobs in its PostgreSQL database: this runner needs it",
                               "Give --database postgresql://… (or $ADOBOT_DATABASE_URL).",
                               field="--database")
        if self.engine == "claims" and self.database:
            raise InvalidInput(f"the control room {self.url} hands out runs itself (its store "
                               "is SQLite): --database is not used", "Leave --database out.",
                               field="--database")

    def serve(self) -> None:
        """Take and run runs until ``drain`` is called, then wait for the held ones."""
        if self.database:
            self._serve_jobs()
            return
        self.register()
        workers = [threading.Thread(target=self._work, name=f"adobot-runner-{n}", daemon=True)
                   for n in range(self.concurrency)]
        beating = threading.Thread(target=self._beat, name="adobot-runner-heartbeat",
                                   daemon=True)
        for thread in (*workers, beating):
            thread.start()
        log.info("runner for pool %r at %s: %d at once", self.pool, self.url, self.concurrency)
        self.draining.wait()
        deadline = time.monotonic() + self.grace_seconds
        for thread in workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.held.stop()  # the grace is over: stop what is left
        for thread in workers:
            thread.join(10)
        self.stopped.set()
        beating.join(5)

    def _serve_jobs(self) -> None:
        """As a procrastinate worker on the control room's database (``adobot.runs.jobs``),
        listening before it registers: a runner shown online takes its pool's jobs at once."""
        from adobot.runs.jobs import JobWorker

        assert self.database is not None
        self.name = self.room.get("me", subject="this runner")["name"]  # its runner queue's
        jobs = JobWorker(self.database, (self.pool,), self.concurrency, self._take,
                         name=self.name).start()
        try:
            self.register()
        except BaseException:
            jobs.stop(0)
            raise
        beating = threading.Thread(target=self._beat, name="adobot-runner-heartbeat",
                                   daemon=True)
        beating.start()
        log.info("runner for pool %r at %s (procrastinate jobs): %d at once", self.pool,
                 self.url, self.concurrency)
        self.draining.wait()
        jobs.stop(self.grace_seconds)  # no more jobs; those held may finish within the grace
        self.held.stop()
        jobs.stop(10)
        self.stopped.set()
        beating.join(5)

    def _take(self, run_id: str) -> None:
        """A job brought ``run_id``: ask for it, run it, report it."""
        if self.draining.is_set():
            raise RunWaits("this runner is stopping", "Another runner takes the run.")
        try:
            run = self.room.post("runners/claim", {"pool": self.pool, "run": run_id},
                                 subject=f"run {run_id}")
        except Conflict as waits:
            raise RunWaits(waits.message, waits.hint, field=waits.field) from None
        except AdobotError as failed:  # the control room restarts, say: the job comes back
            raise RunWaits(f"could not ask for run {run_id}: {failed.message}",
                           "It is asked for again.") from None
        if run:
            self._run(run)

    def drain(self) -> None:
        self.draining.set()

    def _work(self) -> None:
        while not self.draining.is_set():
            try:
                run = self.room.post("runners/claim", {"pool": self.pool,
                                                       "wait_seconds": WAIT_SECONDS},
                                     subject="a run")
            except AdobotError as failed:
                log.warning("could not ask for a run: %s", failed.message)
                self.draining.wait(2.0)
                continue
            if run:
                self._run(run)

    def _run(self, run: dict[str, Any]) -> None:
        from adobot.credentials.remote import RemoteConnections

        with self.held.holding(run["id"]) as stop:
            source = RemoteConnections(self.url, self.token, bot=run["bot"], run=run["id"],
                                       allow_plain_http=self.allow_plain_http)
            self._report(run, attempt(run, source, stop, halted=self.draining.is_set,
                                      where="the runner"))

    def _report(self, run: dict[str, Any], outcome: dict[str, Any]) -> None:
        body = {"attempt": run["attempt"], "state": outcome["state"],
                "error": outcome.get("error"), "steps": outcome.get("steps") or [],
                "outputs": outcome.get("outputs"), "log": outcome.get("log") or "",
                "requests": outcome.get("requests") or 0}
        for tries in range(5):  # the report is the run's only record: try hard
            try:
                said = self.room.post(f"runs/{run['id']}/end", body, subject=f"run {run['id']}")
                log.info("run %s of %s: %s", run["id"], run["bot"], said["state"])
                return
            except AdobotError as failed:
                log.warning("could not report run %s: %s", run["id"], failed.message)
                time.sleep(2.0 * (tries + 1))

    def _beat(self) -> None:
        while not self.stopped.wait(self.heartbeat_seconds):
            holding = self.held.ids()
            try:
                answer = self.room.post("runners/heartbeat", {
                    "holding": holding, "draining": self.draining.is_set()},
                    subject="this runner")
            except AdobotError as failed:
                log.warning("heartbeat failed: %s", failed.message)
                continue
            self.held.stop(answer.get("stop", []))
