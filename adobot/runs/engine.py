"""How a run executes (``execute``, ``attempt``: the same on a runner machine); the control
room's own worker pool, threads that take the queued runs of the pools it serves, run each bot
with the control room's connections (as the runner "local"), renew their leases, and stop a
run that is cancelled or over its time; and the housekeeper, which fires schedules and takes
back the runs of runners that stopped answering.

A run executes here as it would on a runner: its bundle in a private folder of its own, its
variables given as `--var`s and masked wherever they appear, no vault, a connection only where
the connection allows runners (and this one by name, if it names runners).
"""
from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol

from adobot.actions.environment import RunLimits
from adobot.runs import states

if TYPE_CHECKING:
    from adobot.credentials.connections import Connections
    from adobot.runs.service import Runs

log = logging.getLogger("adobot.runs")
LOCAL = states.LOCAL
REAP_SECONDS = 5.0
RETENTION_EVERY_SECONDS = 3600.0


def execute(run: dict[str, Any], source: Any, stop: threading.Event,
            sandbox: Any = None) -> dict[str, Any]:
    """Run a claimed run's bundle: what ``Runs.end`` records (state, error, steps, outputs,
    log, requests). ``source`` hands out connections; ``stop`` ends the run at its next step."""
    from adobot.credentials.redact import Redactor
    from adobot.credentials.secret import Secret
    from adobot.runs.bundles import written
    from adobot.runtime.environment import Settings, build_environment
    from adobot.runtime.loader import load_bot
    from adobot.runtime.runner import Runner

    redactor = Redactor()
    for value in run["variables"].values():  # a variable may be a token: masked everywhere
        if isinstance(value, str) and value.strip():
            redactor.add(Secret(value.strip()))
    lines: list[str] = []
    started = time.monotonic()
    bundle = run["bundle"]
    if bundle is None:
        return {"state": states.FAILED, "error": {
            "code": "NOT_FOUND", "message": f"bot {run['bot']!r} version {run['bot_version']} "
            "was removed before its run started", "hint": "Upload it again."}}
    with written(bundle["files"]) as folder:
        env = build_environment(Settings(
            source=source, sandbox=sandbox, redactor=redactor,
            limits=RunLimits(seconds=float(run["timeout_seconds"]), stop=stop),
            progress=lambda text: lines.append(redactor.scrub(text))))
        bot = load_bot(folder / bundle["main"])
        # run_id and run_attempt: a repeat can find what an earlier attempt made.
        result = Runner(env).run(bot, {**run["variables"], **run_variables(run)})
    document = redactor.mask(json.loads(json.dumps(result.to_dict(), default=str)))
    for step in document["steps"]:
        lines.append(f"{step.get('path')} {step.get('action')}: {step.get('status')} "
                     f"({step.get('duration_ms')} ms, {step.get('requests')} requests)")
    error = document.get("error")
    state = states.SUCCEEDED if result.status == "succeeded" else states.FAILED
    if error is not None and stop.is_set():
        state = states.CANCELLED
        error = {**error, "code": "CANCELLED", "message": "the run was cancelled",
                 "hint": "Start it again if it should run."}
    elif error is not None and error.get("code") == "TIMEOUT" and \
            time.monotonic() - started >= run["timeout_seconds"]:
        state = states.TIMED_OUT
        error = {**error, "message": f"the run took longer than its {run['timeout_seconds']} s",
                 "hint": "Raise settings.timeout_seconds in the bot, or make it do less."}
    if error is not None:
        lines.append(f"{error.get('code')}: {redactor.scrub(str(error.get('message')))}")
    return {"state": state, "error": error, "steps": document["steps"],
            "outputs": document.get("variables"), "log": "\n".join(lines),
            "requests": document.get("requests", 0)}


class HeldRuns:
    """The runs a pool or a runner machine holds, each with the event that stops it at its
    next step or wait (their threads add, stop and list them at once)."""

    def __init__(self) -> None:
        self._stops: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def holding(self, run_id: str) -> Iterator[threading.Event]:
        stop = threading.Event()
        with self._lock:
            self._stops[run_id] = stop
        try:
            yield stop
        finally:
            with self._lock:
                self._stops.pop(run_id, None)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._stops)

    def stop(self, run_ids: Iterable[str] | None = None) -> None:
        """Stop these runs (None: every one held)."""
        with self._lock:
            for run_id in self._stops if run_ids is None else run_ids:
                if run_id in self._stops:
                    self._stops[run_id].set()


class AuditLog(Protocol):
    """The control room's audit log, as the pool writes to it (``control_room.audit``)."""

    def record(self, event: str, **fields: Any) -> Any: ...
    def refused(self, event: str, **fields: Any) -> None: ...


def attempt(run: dict[str, Any], source: Any, stop: threading.Event, *,
            halted: Callable[[], bool], where: str, sandbox: Any = None) -> dict[str, Any]:
    """``execute``, as a pool or a runner records it: a bug ends the run as INTERNAL_ERROR
    (never left running), and a run stopped because ``where`` is stopping (``halted``) ends
    as RUNNER_LOST — a system failure, repeated where the bot allows — not as cancelled."""
    try:
        outcome = execute(run, source, stop, sandbox)
    except Exception as failure:
        log.exception("run %s failed in %s", run["id"], where)
        return {"state": states.FAILED, "error": {
            "code": "INTERNAL_ERROR", "message": f"the run failed in {where}: "
            f"{type(failure).__name__}", "hint": f"See the log of {where}."}}
    if halted() and outcome["state"] == states.CANCELLED:
        outcome = {**outcome, "state": states.FAILED, "error": {
            "code": states.RUNNER_LOST, "message": f"{where} stopped before the run ended",
            "hint": "The run is repeated only if the bot declares settings.retries."}}
    return outcome


def run_variables(run: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": run["id"], "run_attempt": run["attempt"]}


class RoomConnections:
    """Connections from the control room's own store, for one run of its pool: handed out as
    to a runner named "local", and audited as a runner's fetch is."""

    def __init__(self, connections: "Connections", audit: AuditLog, run: dict[str, Any]) -> None:
        self.connections, self.audit, self.run = connections, audit, run

    def __call__(self, name: str, organization_url: str | None) -> Any:
        from adobot.errors import AdobotError

        detail = {"bot": self.run["bot"], "run": self.run["id"]}
        try:
            credential = self.connections.handed_to(name, LOCAL, "runner", organization_url)
        except AdobotError as refused:
            self.audit.refused("credential.fetch", actor=LOCAL, role="runner",
                               outcome=f"refused: {refused.code}", client=None,
                               connection=name, detail=refused.message, run=detail)
            raise
        self.audit.record("credential.fetch", actor=LOCAL, role="runner", connection=name,
                          run=detail)
        return credential


class LocalPool:
    """``workers`` threads taking the runs of ``pools``; started and stopped with the control
    room. ``sandbox``: organizations go to the embedded emulator (``--sandbox``). On
    PostgreSQL the runs come as procrastinate jobs, as to a runner machine (``jobs``)."""

    def __init__(self, runs: "Runs", connections: "Connections", audit: AuditLog,
                 pools: tuple[str, ...] = ("default",), workers: int = 2,
                 sandbox: Any = None, idle_seconds: float = 1.0) -> None:
        self.runs, self.connections, self.audit = runs, connections, audit
        self.pools, self.workers, self.sandbox = pools, workers, sandbox
        self.idle_seconds = idle_seconds
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.held = HeldRuns()
        self.threads: list[threading.Thread] = []
        self.jobs: Any = None

    def start(self) -> "LocalPool":
        self.stopping.clear()
        self.threads = []
        self.runs.local_pools = self.pools
        if self.runs.store.runs.jobs is not None:
            from adobot.runs.jobs import JobWorker

            self.jobs = JobWorker(self.runs.store.database.url, self.pools, self.workers,
                                  self._take, name=LOCAL,
                                  poll_seconds=max(self.idle_seconds, 0.1)).start()
        for number in range(0 if self.jobs is not None else self.workers):
            self.threads.append(threading.Thread(target=self._work, daemon=True,
                                                 name=f"adobot-run-{number}"))
        self.threads.append(threading.Thread(target=self._tend, daemon=True,
                                             name="adobot-run-tend"))
        for thread in self.threads:
            thread.start()
        return self

    def nudge(self) -> None:
        """A run was queued: look now, not at the next poll."""
        self.wake.set()

    def halt(self) -> None:
        """Take no more runs, and stop the ones held at their next step or wait (they end as
        "runner lost", repeated where the bot allows)."""
        self.runs.local_pools = ()
        self.stopping.set()
        self.wake.set()
        self.held.stop()
        if self.jobs is not None:
            self.jobs.stop(0)

    def stop(self, seconds: float = 5.0) -> None:
        """``halt``, and wait (up to ``seconds``) for the threads."""
        self.halt()
        deadline = time.monotonic() + seconds
        if self.jobs is not None:
            self.jobs.stop(seconds)
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _take(self, run_id: str) -> None:
        """A job brought ``run_id`` (PostgreSQL)."""
        from adobot.runs.service import RunWaits

        if self.stopping.is_set():
            raise RunWaits("the control room is stopping", "Another worker takes the run.")
        run = self.runs.take(run_id, self.pools, LOCAL)
        if run is not None:
            self._run(run)

    def _work(self) -> None:
        while not self.stopping.is_set():
            run = None
            try:
                for pool in self.pools:
                    run = self.runs.claim(pool, LOCAL)
                    if run is not None:
                        break
            except Exception:  # the store is down: try again later, never die
                log.exception("the local pool could not take a run")
            if run is None:
                self.wake.wait(self.idle_seconds)
                self.wake.clear()
                continue
            self._run(run)

    def _run(self, run: dict[str, Any]) -> None:
        with self.held.holding(run["id"]) as stop:
            outcome = attempt(run, RoomConnections(self.connections, self.audit, run), stop,
                              halted=self.stopping.is_set, where="the control room",
                              sandbox=self.sandbox)
            self.runs.end(run, LOCAL, outcome.pop("state"), **outcome)

    def _tend(self) -> None:
        """Renew the held runs' leases each second, and stop those cancelled meanwhile."""
        while not self.stopping.wait(1.0):
            try:
                self.held.stop(self.runs.renew(LOCAL, self.held.ids()))
            except Exception:
                log.exception("the local pool could not renew its runs")


class Housekeeper:
    """What the control room does on its own, pool or not: fire the schedules' ticks, take
    back the runs of runners that stopped renewing their leases (and mark those runners
    offline), and remove runs past their retention."""

    def __init__(self, runs: "Runs", wake: Callable[[], None] = lambda: None,
                 retention_days: float = 30.0) -> None:
        from adobot.runs.schedules import Schedules

        self.runs, self.wake, self.retention_days = runs, wake, retention_days
        self.schedules = Schedules(runs)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._tend, daemon=True, name="adobot-housekeeper")

    def start(self) -> "Housekeeper":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)

    def _tend(self) -> None:
        last_reap = last_retention = 0.0
        while not self.stopping.wait(1.0):  # schedules fire within a second of their tick
            try:
                if self.schedules.fire_due():
                    self.wake()
                if time.monotonic() - last_reap >= REAP_SECONDS:
                    last_reap = time.monotonic()
                    if self.runs.reap():
                        self.wake()
                    self.runs.runners_gone()
                    self.runs.store.runs.wake_parked()
                if time.monotonic() - last_retention >= RETENTION_EVERY_SECONDS:
                    last_retention = time.monotonic()
                    self.runs.remove_older_than(self.retention_days)
            except Exception:
                log.exception("the control room could not tend its runs")
