"""Runs through the control room, measured as a bot builder feels them (issue #32):

- **Queued to the first request.** The time from "queued" (the answer to `POST /api/v1/runs`)
  to the run's first HTTP request reaching the organization, on an idle, warm runner: p50 and
  p99, beside a cold `adobot run` of the same bot (its process start to that first request).
  Target: p50 ≤ 100 ms.
- **Queue overhead.** CPU of the control room and the runners for 1,000 one-step runs, minus
  the CPU of the same 1,000 steps in one `adobot run`, per run. Target: ≤ 20 ms a run.

Each part is a real process on loopback: the control room (`--workers 0`), `adobot runner`s,
and the organization: a sandbox in this process, whose handler notes when each request
arrives. Both are measured on the SQLite default (runners claim runs over HTTP) and, where a
PostgreSQL server answers (as for the tests), on PostgreSQL, where runs travel as procrastinate
jobs and the runners are its workers; there the overhead counts the PostgreSQL server's CPU
too.

    .venv/bin/python bench/runs.py [--quick]      (also step 10 of bench/run.py)
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adobot.sandbox import Sandbox  # noqa: E402
from adobot.sandbox.server import Handler  # noqa: E402
from bench.control_room import free_port, wait_until_up  # noqa: E402
from bench.run import child_cpu  # noqa: E402
from adobot.credentials.vault import generate_key  # noqa: E402

PAT = "sandbox-demo-pat"
ADOBOT = [sys.executable, "-m", "adobot"]
ARRIVALS: list[float] = []  # when each request reached the sandbox (perf_counter)


def _noting(method):
    def handle(self) -> None:
        ARRIVALS.append(time.perf_counter())
        method(self)
    return handle


for _name in ("do_GET", "do_POST", "do_PATCH", "do_PUT", "do_DELETE"):
    if hasattr(Handler, _name):
        setattr(Handler, _name, _noting(getattr(Handler, _name)))


def one_step(org_url: str) -> str:
    return ("name: tick\nsteps:\n  - action: Connect\n    inputs: {organization_url: "
            f"'{org_url}', project: Payments, personal_access_token: {{variable: pat}}}}\n")


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds the PostgreSQL server's processes have used so far (this machine's)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                total += cpu_of(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return total


@contextlib.contextmanager
def control_room(runners: int, concurrency: int,
                 postgres: bool = False) -> Iterator[tuple[str, str, list]]:
    """A control room with ``runners`` runner processes: (url, a standard token, processes).
    ``postgres``: on a PostgreSQL schema of its own, dropped after (else the SQLite file
    beside the vault)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADOBOT_")}
    with contextlib.ExitStack() as stack:
        if postgres:  # the control room, its tokens and its runners (procrastinate's workers)
            from tests.postgres import postgres_schema

            env["ADOBOT_DATABASE_URL"] = stack.enter_context(postgres_schema())
            env["ADOBOT_VAULT_KEY"] = generate_key()
        yield from _control_room(runners, concurrency, env)


def _control_room(runners: int, concurrency: int,
                  env: dict[str, str]) -> Iterator[tuple[str, str, list]]:
    with tempfile.TemporaryDirectory(prefix="adobot-bench-runs-") as folder:
        vault = str(Path(folder) / "room" / "vault.json")

        def token(name: str, role: str) -> str:
            return subprocess.run([*ADOBOT, "token", "issue", name, "--role", role, "--vault",
                                   vault], env=env, capture_output=True, text=True,
                                  check=True).stdout.strip()
        person = token("bench-person", "standard")
        port = free_port()
        room = subprocess.Popen([*ADOBOT, "control-room", "--port", str(port), "--vault", vault,
                                 "--workers", "0"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        processes = [room]
        try:
            wait_until_up(url, person, room)
            for n in range(runners):
                processes.append(subprocess.Popen(
                    [*ADOBOT, "runner", "--control-room", url, "--concurrency",
                     str(concurrency)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    env={**env, "ADOBOT_CONTROL_ROOM_TOKEN": token(f"bench-{n}", "runner")}))
            with requests.Session() as http:
                http.headers["Authorization"] = f"Bearer {person}"
                while len(http.get(url + "/api/v1/runners").json()["runners"]) < runners:
                    time.sleep(0.1)
            yield url, person, processes
        finally:
            for process in reversed(processes):
                process.terminate()
            for process in processes:
                process.wait(60)


def upload(http: requests.Session, url: str, org_url: str) -> None:
    answer = http.post(url + "/api/v1/bots", json={
        "main": "tick.yaml", "files": {"tick.yaml": one_step(org_url)}, "variables": ["pat"]})
    assert answer.status_code in (200, 201), answer.text


def wait_ended(http: requests.Session, url: str, run_id: str) -> dict:
    while True:
        run = http.get(f"{url}/api/v1/runs/{run_id}").json()
        if run["state"] not in ("queued", "running"):
            assert run["state"] == "succeeded", run
            return run
        time.sleep(0.02)


def first_request_ms(sandbox: Sandbox, count: int,
                     postgres: bool = False) -> tuple[list[float], list[float]]:
    """(queued → first request on a warm runner, cold `adobot run` → first request), ms."""
    queued, cold = [], []
    with control_room(1, 1, postgres) as (url, person, _), requests.Session() as http, \
            tempfile.TemporaryDirectory() as folder:
        http.headers["Authorization"] = f"Bearer {person}"
        upload(http, url, sandbox.org_url())
        bot = Path(folder) / "tick.yaml"
        bot.write_text(one_step(sandbox.org_url()))
        for number in range(count + 2):  # the first two warm the runner up
            ARRIVALS.clear()
            answer = http.post(url + "/api/v1/runs", json={"bot": "tick",
                                                          "variables": {"pat": PAT}})
            at = time.perf_counter()
            assert answer.status_code == 201, answer.text
            wait_ended(http, url, answer.json()["id"])
            if number >= 2:
                queued.append((ARRIVALS[0] - at) * 1000)
            ARRIVALS.clear()
            started = time.perf_counter()
            subprocess.run([*ADOBOT, "run", str(bot), "--var", f"pat={PAT}"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if number >= 2:
                cold.append((ARRIVALS[0] - started) * 1000)
    return queued, cold


def overhead_ms(sandbox: Sandbox, count: int,
                postgres: bool = False) -> tuple[float, float, float]:
    """(CPU ms a run through the queue, CPU ms a step in one `adobot run`, wall s) for
    ``count`` one-step runs over 2 runners of concurrency 2 (on PostgreSQL, its server's CPU
    included)."""
    server = postgres_cpu if postgres else (lambda: 0.0)
    with control_room(2, 2, postgres) as (url, person, processes), requests.Session() as http, \
            tempfile.TemporaryDirectory() as folder:
        http.headers["Authorization"] = f"Bearer {person}"
        upload(http, url, sandbox.org_url())
        before = sum(cpu_of(p.pid) for p in processes) + server()
        began = time.perf_counter()
        ids = [http.post(url + "/api/v1/runs", json={"bot": "tick", "variables": {
            "pat": PAT}}).json()["id"] for _ in range(count)]
        while any(http.get(url + "/api/v1/runs", params={"state": state, "limit": 1}
                           ).json()["runs"] for state in ("queued", "running")):
            time.sleep(0.2)  # a light look: what it costs the control room is counted too
        wall = time.perf_counter() - began
        queued = (sum(cpu_of(p.pid) for p in processes) + server() - before) / count * 1000
        assert len(set(ids)) == count
        ended = http.get(url + "/api/v1/runs", params={"state": "succeeded", "limit": 1000})
        assert len(ended.json()["runs"]) == count, "a run did not succeed"
        # The same steps in one run: Connect in a loop, each to a session of its own.
        bot = Path(folder) / "loop.yaml"
        bot.write_text(f"name: loop\nvariables: {{items: {list(range(count))}}}\nsteps:\n"
                       "  - for_each: ${items}\n    as: i\n    steps:\n      - action: Connect\n"
                       f"        inputs: {{organization_url: '{sandbox.org_url()}', project: "
                       "Payments, personal_access_token: {variable: pat}, session: "
                       "{name: 's${i}'}}\n")
        small = Path(folder) / "small.yaml"
        small.write_text(bot.read_text().replace(f"items: {list(range(count))}", "items: [0]"))
        env = {**os.environ, "PAT": PAT}
        command = lambda path: [*ADOBOT, "run", str(path), "--var-env", "pat=PAT"]  # noqa
        alone = (child_cpu(command(bot), env) - child_cpu(command(small), env)) \
            / (count - 1) * 1000
    return queued, alone, wall


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def rows(quick: bool = False) -> list[dict]:
    """SQLite, and PostgreSQL where a server answers (as for the tests)."""
    from tests.postgres import unavailable

    found = []
    with Sandbox() as sandbox:
        found.extend(_rows(sandbox, False, quick))
        if unavailable():
            print(f"PostgreSQL rows left out: {unavailable()}", file=sys.stderr)
        else:
            found.extend(_rows(sandbox, True, quick))
    return found


def _rows(sandbox: Sandbox, postgres: bool, quick: bool) -> list[dict]:
    found = []
    name, engine = ("PostgreSQL", "procrastinate jobs") if postgres else \
        ("SQLite", "runners' claims")
    queued, cold = first_request_ms(sandbox, 10 if quick else 40, postgres)
    found.append({
        "what": f"a run: queued → its first HTTP request, on an idle warm runner "
                f"({name}, {engine}; p50)",
        "adobot": f"{statistics.median(queued):.0f} ms (p99 {p(queued, 0.99):.0f} ms)",
        "baseline": f"{statistics.median(cold):.0f} ms (p99 {p(cold, 0.99):.0f} ms)",
        "ratio": statistics.median(queued) / 100.0, "target": 1.0,
        "baseline_name": "a cold `adobot run` of the same bot, to its first request",
        "note": "ratio: p50 / the 100 ms target", "samples": {"adobot": queued,
                                                             "baseline": cold}})
    count = 200 if quick else 1000
    through, alone, wall = overhead_ms(sandbox, count, postgres)
    server = " + the PostgreSQL server" if postgres else ""
    found.append({
        "what": f"queue overhead: CPU a one-step run through the control room and "
                f"runners, minus the step in one `adobot run` ({name}, {count} runs)",
        "adobot": f"{through - alone:.1f} ms a run", "baseline": f"{alone:.1f} ms a step",
        "ratio": (through - alone) / 20.0, "target": 1.0,
        "baseline_name": "the same steps in one `adobot run` (marginal CPU a step)",
        "note": f"ratio: overhead / the 20 ms target; {through:.1f} ms CPU a run in all "
                f"(control room + 2 runners of concurrency 2{server}); {count} runs took "
                f"{wall:.0f} s"})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke run)")
    args = parser.parse_args()
    for entry in rows(args.quick):
        print(f"{entry['what']}: {entry['adobot']} vs {entry['baseline']}  ratio "
              f"{entry['ratio']:.2f}  ({entry['note']})")


if __name__ == "__main__":
    main()
