"""The rules of runs: upload a bot, start a run (once per idempotency key), say why a queued run
waits, hand a run to a runner with its variables, end it — repeating a system failure when the
bot declared that a repeat is safe, never a business one — cancel it, and take back the runs of
a runner that stopped renewing its lease."""
from __future__ import annotations

import datetime as dt
import json
import random
import re
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from adobot.credentials.vault import open_sealed
from adobot.errors import AdobotError, Conflict, InvalidInput, NotFound
from adobot.runs import states
from adobot.runs.bundles import BOT_NAME, Upload, check

if TYPE_CHECKING:
    from adobot.credentials.vault import Vault
    from adobot.store import Store

LOCAL = states.LOCAL
POOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
DEFAULT_POOL = "default"
LEASE_SECONDS = 30  # a runner renews its runs' leases well within it (every 10 s)
CLAIM_GRACE_SECONDS = 10  # a run handed to a runner is in the runner's next heartbeat after it
MAX_VARIABLE_BYTES = 256 * 1024


# A bot's version number, as the database can hold it.
VersionNumber = Annotated[int, Field(ge=1, le=2**31 - 1)]


class StartRun(BaseModel):
    """What `POST /api/v1/runs` takes."""

    model_config = ConfigDict(extra="forbid")
    bot: str = Field(pattern=BOT_NAME.pattern, description="The bot's name in the control room")
    version: VersionNumber | Literal["latest"] = Field(
        "latest", description="A version number, or latest")
    variables: dict[str, Any] = Field(default_factory=dict,
                                      description="The run's variables (sealed while it waits)")
    priority: states.Priority = "normal"
    pool: str = Field(DEFAULT_POOL, pattern=POOL_NAME.pattern,
                      description="The runners' pool that takes it")
    idempotency_key: str | None = Field(None, min_length=1, max_length=200,
                                        description="The same key twice starts one run")


class RunNotFound(NotFound):
    """No such bot, version or run: HTTP 404."""


class RunWaits(Conflict):
    """The run a job brought may not start yet (no runner online may use its connections, its
    backoff is not over): the job comes back later. HTTP 409."""


def time_text(moment: dt.datetime) -> str:
    """A UTC time as the store keeps it (text that sorts as time does)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def missing_variables(bot: dict[str, Any], variables: dict[str, Any]) -> list[str]:
    """The variables a bot version expects that ``variables`` do not give."""
    return [v for v in bot["expects"].split(",") if v and v not in variables]


def _utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Runs:
    def __init__(self, store: "Store", vault: "Vault",
                 clock: Callable[[], dt.datetime] = _utc) -> None:
        self.store, self.vault, self.clock = store, vault, clock
        # The pools whose runs the control room also runs itself (as the runner "local").
        self.local_pools: tuple[str, ...] = ()

    def now(self, later: float = 0.0) -> str:
        return time_text(self.clock() + dt.timedelta(seconds=later))

    # --- bots --------------------------------------------------------------------------------

    def upload(self, upload: Upload, by: str) -> tuple[dict[str, Any], bool]:
        bundle = check(upload)
        return self.store.bots.add({
            "name": bundle.name, "digest": bundle.digest, "main": bundle.main,
            "files": json.dumps(bundle.files, ensure_ascii=False), "expects":
            ",".join(bundle.expects), "retries": bundle.retries,
            "timeout_seconds": bundle.timeout_seconds,
            "connections": ",".join(bundle.connections), "uploaded_by": by,
            "uploaded_at": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")})

    def bot(self, name: str, version: int | None = None) -> dict[str, Any]:
        """A bot's version (None: its newest)."""
        found = self.store.bots.get(name, version)
        if found is not None:
            return found
        if version is not None and self.store.bots.get(name) is not None:
            raise RunNotFound(f"bot {name!r} has no version {version}",
                              f"List its versions: GET /api/v1/bots/{name}.", field="version")
        raise RunNotFound(f"bot {name!r} is not in the control room",
                          "Upload it (adobot bot upload), or list the bots: GET /api/v1/bots.",
                          field="bot")

    # --- runs --------------------------------------------------------------------------------

    def start(self, request: StartRun, by: str) -> tuple[dict[str, Any], bool]:
        """A new queued run (or, for a key seen before, the run it started)."""
        if request.idempotency_key:
            earlier = self.store.runs.find_key(request.idempotency_key)
            if earlier is not None:
                return earlier, False
        bot = self.bot(request.bot, None if request.version == "latest" else request.version)
        return self.store.runs.insert(self.new_run(
            bot, request.variables, request.priority, request.pool, by,
            request.idempotency_key))

    def new_run(self, bot: dict[str, Any], variables: dict[str, Any], priority: str,
                pool: str, by: str, idempotency_key: str | None = None) -> dict[str, Any]:
        """The row of a queued run of ``bot`` (a version's record), its variables sealed."""
        missing = missing_variables(bot, variables)
        if missing:
            raise InvalidInput(f"bot {bot['name']!r} version {bot['version']} needs the "
                               f"variable(s) {', '.join(missing)}",
                               "Give them in variables.", field="variables")
        text = json.dumps(variables, ensure_ascii=False, default=str)
        if len(text.encode("utf-8")) > MAX_VARIABLE_BYTES:
            raise InvalidInput(f"the variables hold more than {MAX_VARIABLE_BYTES} bytes",
                               "Give less; a bot reads big data from its CSV files.",
                               field="variables")
        run_id = uuid.uuid4().hex
        keys = self.vault.keys(create=True)
        now = self.now()
        return {
            "id": run_id, "bot": bot["name"], "bot_version": bot["version"],
            "state": states.QUEUED, "priority": states.PRIORITIES[priority],
            "pool": pool, "idempotency_key": idempotency_key,
            "variables": keys.seal(text, _place(run_id)), "key_id": keys.key_id,
            "started_by": by, "created_at": now, "not_before": now, "attempt": 0,
            "retries": bot["retries"], "timeout_seconds": bot["timeout_seconds"]}

    def get(self, run_id: str) -> dict[str, Any]:
        run = self.store.runs.get(run_id)
        if run is None:
            raise RunNotFound(f"run {run_id!r} is not in the control room (or was removed "
                              "after its retention)", "List the runs: GET /api/v1/runs.",
                              field="id")
        return run

    def cancel(self, run_id: str) -> str:
        state = self.store.runs.cancel(run_id, self.now())
        if state is None:
            self.get(run_id)  # raises: no such run
        return state or ""

    def why_waiting(self, run: dict[str, Any]) -> str | None:
        """Why a queued run has not started, in words; None if it is not queued."""
        if run["state"] != states.QUEUED:
            return None
        pool = self.store.runs.pool(run["pool"])
        if pool is not None and pool["paused"]:
            return f"pool {run['pool']!r} is paused"
        if run["not_before"] > self.now():
            return (f"attempt {run['attempt'] + 1} waits for its backoff until "
                    f"{run['not_before'][:19]}Z")
        online = self.online(run["pool"])
        if not online:
            return f"no runner is online in pool {run['pool']!r}"
        if not self.allowed(run, online):
            return (f"no runner online in pool {run['pool']!r} may use the connections bot "
                    f"{run['bot']!r} names ({', '.join(online)} may not)")
        ahead = self.store.runs.queued_ahead(run)
        running = self.store.runs.count(run["pool"], states.RUNNING)
        if ahead or running:
            return (f"pool {run['pool']!r} is busy: {running} running, {ahead} queued ahead "
                    "of this run")
        return "about to start"

    # --- runners -----------------------------------------------------------------------------

    def claim(self, pool: str, runner: str,
              barred: list[tuple[str, int]] | None = None) -> dict[str, Any] | None:
        """The pool's next run for ``runner``, with its bundle and opened variables.
        ``barred``: ``self.barred(runner)``, if the caller has just read it and found the
        pool ready."""
        if barred is None:
            barred = self.barred(runner)
            if not self.store.runs.ready(pool, self.now(), barred):  # idle polls write nothing
                return None
        run = self.store.runs.claim(pool, runner, self.now(), self.now(LEASE_SECONDS), barred)
        return None if run is None else self._handed(run, runner)

    def take(self, run_id: str, pools: tuple[str, ...], runner: str) -> dict[str, Any] | None:
        """The run a procrastinate job brought to ``runner`` (of ``pools``; see
        ``adobot.runs.jobs``), as ``claim`` hands it; None if it is no longer queued (the job
        has nothing to do). Raises ``RunWaits`` when it may not start yet."""
        run = self.store.runs.head(run_id)
        if run is None or run["state"] != states.QUEUED:
            return None
        if run["pool"] not in pools:
            raise RunWaits(f"run {run_id} belongs to pool {run['pool']!r}, not "
                           f"{', '.join(pools)}", f"A runner of pool {run['pool']!r} takes it.",
                           field="pool")
        if not self.allowed(run, [runner]):
            self._hand_over(run, runner)
            return None
        if run["not_before"] > self.now():
            raise RunWaits(f"run {run_id} waits for its backoff until {run['not_before'][:19]}Z",
                           "It starts then.", field="run")
        taken = self.store.runs.claim(run["pool"], runner, self.now(), self.now(LEASE_SECONDS),
                                      run_id=run_id)
        if taken is not None:
            return self._handed(taken, runner)
        if self.store.runs.park(run_id, run["pool"], run["priority"]):
            return None  # its pool was paused after its job was deferred: parked until resumed
        again = self.store.runs.head(run_id)
        if again is not None and again["state"] == states.QUEUED:
            raise RunWaits(f"run {run_id} could not start: {self.why_waiting(again)}",
                           "It is tried again.", field="run")
        return None  # cancelled, or taken, meanwhile

    def _hand_over(self, run: dict[str, Any], runner: str) -> None:
        """``runner`` may not use the connections the run's bot names: its job goes to a
        runner online in its pool that may, or comes back later if none may."""
        allowed = [name for name in self.allowed(run, self.online(run["pool"]))
                   if name != runner]
        if not allowed:
            raise RunWaits(f"no runner online in pool {run['pool']!r} may use the connections "
                           f"bot {run['bot']!r} names", "A runner that may takes it when one "
                           "comes online.", field="runner")
        self.store.runs.hand_to(random.choice(allowed), run["id"], run["pool"], run["priority"])

    def _handed(self, run: dict[str, Any], runner: str) -> dict[str, Any] | None:
        """A run just taken, with its bundle and opened variables (None: they cannot be
        opened, and the run has failed)."""
        bot = self.store.bots.get(run["bot"], run["bot_version"])
        run["bundle"] = {"main": bot["main"], "files": json.loads(bot["files"])} if bot else None
        try:
            run["variables"] = self.opened(run, _place(run["id"]))
        except AdobotError as failed:  # e.g. sealed under a key the vault no longer has
            self.end(run, runner, states.FAILED, error={**failed.to_dict(), "message":
                     f"the run's variables cannot be opened: {failed.message}"})
            return None
        return run

    def opened(self, row: dict[str, Any], place: str) -> Any:
        """A run's or a schedule's sealed variables, opened with the vault's key."""
        return json.loads(_open(row, self.vault.keys(), place))

    def reseal(self, old: Any, new: Any) -> int:
        """A key rotation's first half (``vault rotate-key``, before the vault changes key):
        the variables of runs that may still start (queued, or running and so perhaps
        repeated) and of schedules, sealed under the new key too. How many."""
        count = 0
        for run in self.store.runs.unfinished():
            place = _place(run["id"])
            count += self.store.runs.seal_next(run["id"], new.seal(_open(run, old, place),
                                                                    place), new.key_id)
        for schedule in self.store.schedules.list():
            place = schedule_place(schedule["name"])
            count += self.store.schedules.seal_next(
                schedule["name"], new.seal(_open(schedule, old, place), place), new.key_id)
        return count

    def promote(self) -> int:
        """A key rotation's second half, once the vault has the new key: the variables sealed
        under it become the variables."""
        key_id = self.vault.keys().key_id
        return self.store.runs.promote(key_id) + self.store.schedules.promote(key_id)

    def barred(self, runner: str) -> list[tuple[str, int]]:
        """The bot versions ``runner`` may not run: they name a connection that is not open
        to it (``open_to``)."""
        closed = {c["name"] for c in self.store.connections.list() if not open_to(c, runner)}
        return self.store.bots.naming(closed) if closed else []

    def allowed(self, run: dict[str, Any], runners: list[str]) -> list[str]:
        """Those of ``runners`` that may use every connection the run's bot version names
        (one read of each, however many runners are asked about)."""
        named = self.store.bots.named_connections(run["bot"], run["bot_version"])
        if not named:
            return list(runners)
        rules = [c for c in self.store.connections.list() if c["name"] in named]
        return [name for name in runners if all(open_to(c, name) for c in rules)]

    def online(self, pool: str) -> list[str]:
        """The runners online in ``pool``, the control room's own ("local") among them if it
        runs the pool."""
        online = [r["name"] for r in self.store.runs.runners(pool) if r["state"] == "online"]
        return online + [LOCAL] if pool in self.local_pools else online

    def renew(self, runner: str, run_ids: list[str]) -> set[str]:
        """Renew the leases; the ids of the runs to stop (cancelled, or taken back)."""
        return self.store.runs.renew(runner, run_ids, self.now(LEASE_SECONDS))

    def end(self, run: dict[str, Any], runner: str, state: str, *,
            error: dict[str, Any] | None = None, steps: Any = None, outputs: Any = None,
            log: str | None = None, requests: int = 0, lost: bool = False) -> str:
        """End an attempt: the state the run is left in (queued again for a system failure
        with repeats left, which waits its backoff)."""
        failure = states.failure_of(error["code"]) if state == states.FAILED and error else None
        requeue = (failure == "system" and run["attempt"] <= run["retries"]
                   and not run.get("cancel_requested"))
        ended = self.store.runs.end(
            run["id"], run["attempt"], runner, state=state, now=self.now(), failure=failure,
            error=error, steps=steps, outputs=outputs, log=log, requests=requests,
            requeue_at=self.now(states.backoff(run["attempt"] + 1)) if requeue else None,
            lost=lost)
        if not ended:
            return "taken back"
        return states.QUEUED if requeue else state

    def reap(self) -> list[str]:
        """Runs whose runner stopped renewing their lease end as "runner lost" (a system
        failure: repeated if the bot allows); their ids."""
        lost = []
        for run in self.store.runs.lapsed(self.now()):
            error = {"code": states.RUNNER_LOST, "message": f"runner {run['runner']!r} "
                     f"stopped answering while it ran attempt {run['attempt']}",
                     "hint": "Check the runner's machine; the run is repeated only if the "
                             "bot declares settings.retries."}
            if self.end(run, run["runner"], states.FAILED, error=error,
                        lost=True) != "taken back":
                lost.append(run["id"])
        return lost

    def register(self, name: str, pool: str, concurrency: int, version: str,
                 host: str) -> None:
        now = self.now()
        self.store.runs.register({"name": name, "pool": check_pool(pool),
                                  "concurrency": concurrency, "version": version[:32],
                                  "host": host[:255], "registered_at": now,
                                  "heartbeat_at": now, "lease_seconds": LEASE_SECONDS,
                                  "state": "online"})

    def heartbeat(self, name: str, holding: list[str], draining: bool = False) -> set[str]:
        """A runner is alive: its runs' leases renewed; the ids of those it must stop."""
        if not self.store.runs.heartbeat(name, self.now(), "draining" if draining else "online"):
            raise RunNotFound(f"runner {name!r} is not registered",
                              "Restart the runner: it registers when it starts.", field="runner")
        # A run it was given but does not hold never reached it: queued again, not failed.
        self.store.runs.release(name, holding, self.now(-CLAIM_GRACE_SECONDS))
        return self.renew(name, holding)

    def runners_gone(self) -> None:
        """Runners whose heartbeat is older than their lease are offline."""
        cutoff = self.now(-LEASE_SECONDS)
        self.store.runs.mark_offline(r["name"] for r in self.store.runs.runners()
                                     if r["state"] != "offline" and r["heartbeat_at"] < cutoff)

    def remove_older_than(self, days: float) -> int:
        return self.store.runs.remove_ended_before(self.now(-days * 86400))


def open_to(connection: dict[str, Any], runner: str) -> bool:
    """Whether ``runner`` may use a connection: it is open to runners and, if it names its
    runners, names this one."""
    return "runner" in connection["roles"] and (not connection["runners"]
                                                or runner in connection["runners"])


def _open(row: dict[str, Any], keys: Any, place: str) -> str:
    """A run's or a schedule's sealed variables, opened with ``keys`` (mid-rotation, from the
    seal that is theirs)."""
    return open_sealed(keys, row, "variables", place, f"the variables at {place}",
                       "Give the control room the vault key they were sealed with "
                       "(ADOBOT_VAULT_KEY), or start the run again.")


def _place(run_id: str) -> str:
    return f"run:{run_id}:variables"


def schedule_place(name: str) -> str:
    return f"schedule:{name}:variables"


def check_pool(name: str) -> str:
    if not POOL_NAME.match(name):
        raise InvalidInput(f"pool {name[:80]!r} is not a pool name",
                           "Letters, digits and hyphens, starting with a letter.", field="pool")
    return name
