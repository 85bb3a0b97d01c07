"""The control room's store, measured as its users feel it: an auth-only `GET /me`, a runner's
credential fetch, a list and a create, at 10 / 100 / 1,000 connections, and a list served to 1 /
8 / 32 concurrent clients — on the database (SQLite, and PostgreSQL where one answers) beside
round two's file store (the vault's JSON document, commit c253ce5, checked out into
bench/out/round2 by `git worktree`), each a real `adobot control-room` process on loopback.

    .venv/bin/python bench/control_room.py [--quick]      (also step 9 of bench/run.py)

Targets (issue #30): `/me` and a credential fetch cost the same at 1,000 connections as at 10
(within 1.2×); a create costs the same at the 1,000th as at the 10th; 32 concurrent clients are
served at least as many requests a second as one, with no error. Issue #31: while the page's
"Run in the sandbox" is at its cap (8 runs, 2 a person), `/me` answers within 100 ms at p99 —
measured with runs that wait (a loop of QueueRun with wait) and runs that compute (a loop of
ListRepos), beside `/me` of the same control room with nothing running.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import copy
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import fmt, row, sandbox_process  # noqa: E402
from adobot.sandbox.state import default_seed  # noqa: E402

OUT = ROOT / "bench" / "out"
ROUND2 = "c253ce5"
OLD_TREE = OUT / "round2"
PAT = "sandbox-demo-pat"
SIZES = (10, 100, 1000)
# Creates measured at each size, after one that warms the control room up (its first proof
# imports and connects what the others reuse); each to an organization of its own.
CREATES = 20
POSTGRES = os.environ.get("ADOBOT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

# Fills a store with connections without proving them (the bench measures the store, not the
# proof): run with the tree under test first on PYTHONPATH.
POPULATE = r"""
import sys
from adobot.credentials.vault import Vault
vault, count, database = Vault(sys.argv[1]), int(sys.argv[2]), sys.argv[3] or None
try:
    from adobot.control_room.state import open_state
except ImportError:  # round two: connections in the vault's document, one transaction
    from adobot.credentials.connections import Connection
    from adobot.credentials.vault import connection_place
    with vault.transaction() as (doc, keys):
        found = doc.setdefault("connections", {})
        for n in range(count):
            name, url = f"bench-{n}", f"https://dev.azure.com/bench{n}"
            found[name] = Connection(name=name, organization=f"bench{n}", organization_url=url,
                                     created_at="2026-12-05T00:00:00Z").record(
                keys.seal("bench-secret-value", connection_place(name, url)))
else:
    from adobot.credentials.secret import Secret
    with open_state(vault, database, check=lambda connection, secret: "bench") as state:
        for n in range(count):
            state.connections.add(f"bench-{n}", f"bench{n}", Secret("bench-secret-value"))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def old_tree() -> Path | None:
    """Round two's code, checked out once (None where git or the commit is missing)."""
    if (OLD_TREE / "adobot" / "credentials" / "vault.py").exists():
        return OLD_TREE
    OUT.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force",
                           str(OLD_TREE), ROUND2], capture_output=True, text=True)
    return OLD_TREE if done.returncode == 0 else None


def postgres_database() -> str | None:
    """A database of the bench's own on the local PostgreSQL, or None."""
    try:
        import psycopg

        name = f"adobot_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return POSTGRES.rsplit("/", 1)[0] + "/" + name
    except Exception:  # noqa: BLE001 (no server, no driver: the rows say so)
        return None


def drop_database(url: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


class Store:
    """One kind of store: how to fill it, issue its tokens and serve it."""

    def __init__(self, name: str, tree: Path | None, database: str | None = None) -> None:
        self.name, self.tree, self.database = name, tree, database

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADOBOT_")}
        if self.tree is not None:
            env["PYTHONPATH"] = str(self.tree)
        return env

    def adobot(self, *args: str, folder: Path) -> subprocess.CompletedProcess:
        database = ["--database", self.database] if self.database else []
        return subprocess.run([sys.executable, "-m", "adobot", *args, *database], cwd=folder,
                              env=self.env(), capture_output=True, text=True, check=True,
                              timeout=600)

    @contextlib.contextmanager
    def serving(self, connections: int, people: int = 0) -> Iterator[tuple[str, str, str, list[str]]]:
        """A fresh store with ``connections`` in it, served: (url, admin token, runner token,
        the tokens of ``people`` standard users)."""
        with tempfile.TemporaryDirectory(prefix="adobot-bench-room-") as folder:
            place = Path(folder)
            vault = str(place / "room" / "vault.json")
            if self.database:
                self._empty_database()
            subprocess.run([sys.executable, "-c", POPULATE, vault, str(connections),
                            self.database or ""], cwd=place, env=self.env(), check=True,
                           timeout=900)
            admin = self.adobot("token", "issue", "bench-admin", "--role", "administrator",
                                "--vault", vault, folder=place).stdout.strip()
            runner = self.adobot("token", "issue", "bench-runner", "--role", "runner",
                                 "--vault", vault, folder=place).stdout.strip()
            standard = [self.adobot("token", "issue", f"bench-person-{n}", "--role", "standard",
                                    "--vault", vault, folder=place).stdout.strip()
                        for n in range(people)]
            port = free_port()
            database = ["--database", self.database] if self.database else []
            process = subprocess.Popen(
                [sys.executable, "-m", "adobot", "control-room", "--port", str(port),
                 "--vault", vault, *database], cwd=place, env=self.env(),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            try:
                wait_until_up(url, admin, process)
                yield url, admin, runner, standard
            finally:
                process.terminate()
                process.wait(timeout=30)

    def _empty_database(self) -> None:
        import psycopg

        assert self.database is not None
        with psycopg.connect(self.database, autocommit=True) as db:
            db.execute("DROP SCHEMA public CASCADE")
            db.execute("CREATE SCHEMA public")


def wait_until_up(url: str, token: str, process: subprocess.Popen) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"the control room at {url} exited")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(url + "/api/v1/me", timeout=5,
                            headers={"Authorization": f"Bearer {token}"}).ok:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the control room at {url} did not start")


def per_request_ms(send: Callable[[], requests.Response], batches: int, size: int) -> list[float]:
    """Milliseconds a request, one sample a batch of ``size`` requests sent one after another."""
    samples = []
    for _ in range(batches):
        started = time.perf_counter()
        for _ in range(size):
            answer = send()
            assert answer.ok, answer.text
        samples.append((time.perf_counter() - started) * 1000 / size)
    return samples


def throughput(url: str, token: str, clients: int, seconds: float) -> tuple[float, float, int]:
    """(requests a second, p99 ms, errors) of ``clients`` threads listing connections."""
    stop = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {token}"
            while time.perf_counter() < stop:
                started = time.perf_counter()
                try:
                    ok = http.get(url + "/api/v1/connections", timeout=30).ok
                except requests.RequestException:
                    ok = False
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)
                    errors[0] += not ok
    began = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return (len(latencies) / elapsed, latencies[int(len(latencies) * 0.99) - 1] if latencies
            else 0.0, errors[0])


PAGE_RUNS, PAGE_RUNS_PER_PERSON = 8, 2  # adobot.control_room.routes.workbench
_CONNECT = ("  - action: Connect\n    inputs: {organization_url: https://dev.azure.com/contoso, "
            "project: Payments, personal_access_token: {variable: pat}}\n")
PAGE_BOTS = {  # runs that fill the cap: ones that mostly wait, and ones that mostly compute
    "waiting": ("name: waits\nvariables: {items: %s}\nsteps:\n%s  - for_each: ${items}\n"
                "    as: i\n    steps:\n      - action: QueueRun\n        inputs: "
                "{pipeline: payments-api-ci, wait: true}\n") % (list(range(100)), _CONNECT),
    "computing": ("name: lists\nvariables: {items: %s}\nsteps:\n%s  - for_each: ${items}\n"
                  "    as: i\n    steps:\n      - action: ListRepos\n      - action: "
                  "ListRepos\n") % (list(range(200)), _CONNECT)}


def me_while_page_runs(url: str, admin: str, people: list[str], bot: str | None,
                       seconds: float) -> tuple[float, bool, int]:
    """(p99 ms of `/me` sent one after another, whether the cap was full, runs that ended)
    while each person keeps two page runs of ``bot`` going (None: nothing runs). The runs
    still going at the end are let go: the control room stops them when their client leaves."""
    stop = threading.Event()
    ended = [0]
    lock = threading.Lock()

    def person(token: str) -> None:
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {token}"
            while not stop.is_set():
                try:
                    answer = http.post(url + "/api/v1/bots/run", timeout=(5, seconds + 3),
                                       json={"bot": bot, "variables": {"pat": PAT}})
                except requests.Timeout:
                    return
                if answer.status_code == 429:  # the last kind's runs are still stopping
                    time.sleep(0.2)
                    continue
                assert answer.status_code == 200, answer.text
                with lock:
                    ended[0] += 1

    pool = concurrent.futures.ThreadPoolExecutor(len(people) * PAGE_RUNS_PER_PERSON)
    going = [pool.submit(person, token) for token in people
             for _ in range(PAGE_RUNS_PER_PERSON if bot is not None else 0)]
    latencies = []
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {admin}"
        full = False
        for _ in range(100 if bot is not None else 0):  # until a ninth run is refused
            one_more = http.post(url + "/api/v1/bots/run", timeout=120,
                                 json={"bot": "name: nothing\nsteps: []\n"})
            if one_more.status_code == 429:
                full = True
                break
            time.sleep(0.1)
        ends = time.perf_counter() + seconds
        while time.perf_counter() < ends:
            started = time.perf_counter()
            assert http.get(url + "/api/v1/me", timeout=30).ok
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)  # a person's page, not a flood
    stop.set()
    pool.shutdown(wait=True)
    for each in going:
        each.result()  # a run refused for another reason than the cap fails the bench
    latencies.sort()
    return latencies[max(0, int(len(latencies) * 0.99) - 1)], full, ended[0]


def measure(store: Store, organizations: str, quick: bool) -> dict:
    """Every figure of one store, at each size."""
    batches, size = (3, 20) if quick else (5, 40)
    figures: dict = {}
    for count in SIZES:
        with store.serving(count) as (url, admin, runner, _):
            with requests.Session() as as_admin, requests.Session() as as_runner:
                as_admin.headers["Authorization"] = f"Bearer {admin}"
                as_runner.headers["Authorization"] = f"Bearer {runner}"
                me = per_request_ms(lambda: as_admin.get(url + "/api/v1/me", timeout=30),
                                    batches, size)
                fetch = per_request_ms(lambda: as_runner.post(
                    url + "/api/v1/connections/bench-5/credential", json={}, timeout=30),
                    batches, size)
                listed = per_request_ms(lambda: as_admin.get(url + "/api/v1/connections",
                                                             timeout=60), batches,
                                        max(2, size // (1 + count // 100)))
                creates = []
                for n in range(CREATES + 1):
                    started = time.perf_counter()
                    answer = as_admin.post(url + "/api/v1/connections", timeout=60, json={
                        "name": f"made-{n}", "organization": f"{organizations}/made{n}",
                        "pat": PAT})
                    assert answer.status_code == 201, answer.text
                    if n:  # the first warmed it up
                        creates.append((time.perf_counter() - started) * 1000)
            figures[count] = {"me": me, "fetch": fetch, "list": listed, "create": creates}
            print(f"  {store.name}, {count} connections: /me {fmt(me, 'ms', 2)}, fetch "
                  f"{fmt(fetch, 'ms', 2)}, list {fmt(listed, 'ms', 1)}, create "
                  f"{fmt(creates, 'ms', 1)}", flush=True)
    with store.serving(10) as (url, admin, _, _):
        figures["clients"] = {clients: throughput(url, admin, clients, 1.5 if quick else 3.0)
                              for clients in (1, 8, 32)}
        print(f"  {store.name}, list at 1/8/32 clients: " + ", ".join(
            f"{rate:.0f}/s p99 {p99:.1f} ms ({errors} errors)"
            for rate, p99, errors in figures["clients"].values()), flush=True)
    if store.tree is None:  # the page's runs and their cap are this tree's
        people = PAGE_RUNS // PAGE_RUNS_PER_PERSON
        with store.serving(10, people=people) as (url, admin, _, tokens):
            seconds = 8.0 if quick else 20.0
            figures["busy"] = {kind: me_while_page_runs(url, admin, tokens, bot, seconds)
                               for kind, bot in (("idle", None), *PAGE_BOTS.items())}
        print(f"  {store.name}, /me p99 with the page's runs at their cap: " + ", ".join(
            f"{kind} {p99:.1f} ms" for kind, (p99, _, _) in figures["busy"].items()), flush=True)
    return figures


def store_rows(name: str, figures: dict) -> list[dict]:
    small, large = figures[SIZES[0]], figures[SIZES[-1]]
    rate = {clients: value[0] for clients, value in figures["clients"].items()}
    errors = sum(value[2] for value in figures["clients"].values())
    p99 = {clients: value[1] for clients, value in figures["clients"].items()}
    rows = [row(f"control room ({name}): `GET /me` at 1,000 connections vs at 10",
                large["me"], small["me"], "ms", "the same at 10 connections", 1.2, digits=2),
            row(f"control room ({name}): a credential fetch at 1,000 connections vs at 10",
                large["fetch"], small["fetch"], "ms", "the same at 10 connections", 1.2,
                digits=2),
            row(f"control room ({name}): a create at the 1,000th connection vs at the 10th",
                large["create"], small["create"], "ms", "the same at the 10th", 1.2, digits=1,
                note="each create proves the PAT against the sandbox first"),
            {"what": f"control room ({name}): a list served to 32 concurrent clients vs 1",
             "adobot": f"{rate[32]:.0f} requests/s (p99 {p99[32]:.1f} ms)",
             "baseline": f"{rate[1]:.0f} requests/s (p99 {p99[1]:.1f} ms)",
             "ratio": rate[32] / rate[1], "target": 1.0, "at_least": True,
             "baseline_name": "one client", "note": f"8 clients: {rate[8]:.0f}/s; "
                                                    f"{errors} errors in all"}]
    if "busy" in figures:
        idle = figures["busy"]["idle"][0]
        for kind in PAGE_BOTS:
            p99, full, ended = figures["busy"][kind]
            rows.append({"what": f"control room ({name}): `GET /me` p99 while 8 page runs "
                                 f"({kind}) fill the cap",
                         "adobot": f"{p99:.1f} ms", "baseline": f"{idle:.1f} ms",
                         "ratio": p99 / 100.0, "target": 1.0, "baseline_name": "nothing running",
                         "note": f"ratio: p99 / the 100 ms target; a ninth run was "
                                 f"{'refused (429): the cap was full' if full else 'NOT refused'}"
                                 f"; {ended} runs ended meanwhile"})
    return rows


def versus_rows(name: str, new: dict, old: dict) -> list[dict]:
    return [row(f"control room at 1,000 connections, {what} ({name} vs the vault file)",
                new[SIZES[-1]][key], old[SIZES[-1]][key], "ms", "round two's file store",
                digits=2 if key in ("me", "fetch") else 1)
            for key, what in (("me", "`GET /me`"), ("fetch", "credential fetch"),
                              ("list", "list"), ("create", "create"))]


def rows(quick: bool = False) -> list[dict]:
    seed = default_seed()
    for n in range(CREATES + 1):
        seed["organizations"][f"made{n}"] = copy.deepcopy(seed["organizations"]["contoso"])
    found: list[dict] = []
    tree = old_tree()
    database = postgres_database()
    try:
        with sandbox_process(seed) as organizations:
            measured = {"SQLite": measure(Store("SQLite", None), organizations, quick)}
            if database:
                measured["PostgreSQL"] = measure(Store("PostgreSQL", None, database),
                                                 organizations, quick)
            old = measure(Store("vault file", tree), organizations, quick) if tree else None
    finally:
        if database:
            drop_database(database)
    for name, figures in measured.items():
        found += store_rows(name, figures)
        if old is not None:
            found += versus_rows(name, figures, old)
    if old is not None:
        found += store_rows("round two's vault file", old)
    for missing, why in (("PostgreSQL", database is None), ("the vault file", tree is None)):
        if why:
            found.append({"what": f"control room ({missing})", "adobot": "not measured",
                          "baseline": "—", "ratio": None, "target": None,
                          "baseline_name": "no PostgreSQL answered" if missing == "PostgreSQL"
                          else f"git could not check out {ROUND2}", "note": ""})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    args = parser.parse_args()
    for entry in rows(args.quick):
        ratio = "" if entry["ratio"] is None else f"  ratio {entry['ratio']:.2f}"
        print(f"{entry['what']}: {entry['adobot']} vs {entry['baseline']}{ratio}")


if __name__ == "__main__":
    main()
