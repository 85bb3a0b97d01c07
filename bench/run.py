"""adobot's benchmarks: ratios against baselines measured in the same run, on this machine.

    make bench            (or: .venv/bin/python bench/run.py [--quick])

Writes docs/benchmarks.md (the table) and bench/out/results.json (every sample). The sandbox
runs in its own process, so the client's CPU is measured alone. No benchmark is a test: the
claims are ratios, each a median of several runs with its spread.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from adobot import api  # noqa: E402
from adobot.runtime.loader import parse_bot  # noqa: E402
from adobot.runtime.runner import Runner  # noqa: E402
from adobot.sandbox.state import default_seed  # noqa: E402

PAT = "sandbox-demo-pat"
BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"
DOC = ROOT / "docs" / "benchmarks.md"
SCALE_REPOS, SCALE_PIPELINES = 10_000, 2_500


# --- helpers -----------------------------------------------------------------------------------

def median_spread(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), (max(samples) - min(samples)) / 2


def fmt(samples: list[float], unit: str, digits: int = 1) -> str:
    mid, spread = median_spread(samples)
    return f"{mid:.{digits}f} ± {spread:.{digits}f} {unit}"


@contextmanager
def sandbox_process(seed: dict):
    """`adobot sandbox` in its own process, so its CPU is not the client's."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(seed, handle)
    process = subprocess.Popen([str(BIN / "adobot"), "sandbox", "--seed", handle.name],
                               stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().split(" on ")[1].strip()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        os.unlink(handle.name)


def bench_seed() -> dict:
    seed = default_seed()
    seed["organizations"]["contoso"]["projects"].append({
        "name": "Scale",
        "repositories": [{"name": f"repo-{i:05d}", "defaultBranch": "refs/heads/main",
                          "size": i} for i in range(SCALE_REPOS)],
        "pipelines": [{"name": f"pipeline-{i:05d}", "repository": "repo-00000"}
                      for i in range(SCALE_PIPELINES)]})
    for pipeline in seed["organizations"]["contoso"]["projects"][0]["pipelines"]:
        pipeline["run_polls"] = 0  # runs complete at once: QueueRun measures the queueing
        pipeline.pop("parameters", None)
    return seed


def loop_bot(action: dict, count: int) -> str:
    connect = {"action": "Connect", "inputs": {"organization_url": "${url}", "project": "Payments",
                                               "personal_access_token": {"variable": "pat"}}}
    items = list(range(count))
    return json.dumps({"name": "bench", "variables": {"items": items},
                       "steps": [connect, {"for_each": "${items}", "as": "item",
                                           "steps": [action]}]})


ACTIONS = {
    "ListRepos": ({"action": "ListRepos"}, "GET", "Payments/_apis/git/repositories", None),
    "CreateWorkItem": ({"action": "CreateWorkItem",
                        "inputs": {"type": "Task", "title": "Item ${item}", "priority": 2}},
                       "POST", "Payments/_apis/wit/workitems/$Task",
                       [{"op": "add", "path": "/fields/System.Title", "value": "Item"},
                        {"op": "add", "path": "/fields/Microsoft.VSTS.Common.Priority",
                         "value": 2}]),
    "QueueRun": ({"action": "QueueRun", "inputs": {"pipeline": 1, "branch": "main"}},
                 "POST", "Payments/_apis/pipelines/1/runs",
                 {"resources": {"repositories": {"self": {"refName": "refs/heads/main"}}}}),
}


def adobot_cpu(url: str, action: dict, count: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of a bot that runs the action ``count`` times."""
    bot = parse_bot(loop_bot(action, count))
    cpu, wall = time.process_time(), time.perf_counter()
    result = Runner().run(bot, {"pat": PAT, "url": f"{url}/contoso"})
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert result.status == "succeeded", result.error
    return cpu, wall


def bare_cpu(url: str, method: str, path: str, body, count: int) -> tuple[float, float]:
    """The same HTTP requests from a plain requests.Session, answers decoded as JSON."""
    session = requests.Session()
    token = base64.b64encode(f":{PAT}".encode()).decode()
    session.headers.update({"Authorization": f"Basic {token}", "Accept": "application/json",
                            "X-TFS-FedAuthRedirect": "Suppress"})
    content_type = "application/json-patch+json" if "wit" in path else "application/json"
    headers = {"Content-Type": content_type} if body is not None else None
    target = f"{url}/contoso/{path}"
    session.get(f"{url}/contoso/_apis/projects/Payments", params={"api-version": "7.1"}).json()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        response = session.request(method, target, params={"api-version": "7.1"}, json=body,
                                   headers=headers)
        response.raise_for_status()
        response.json()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    session.close()
    return cpu, wall


def marginal(measure, large: int, small: int) -> tuple[float, float]:
    """Per-action cost between two loop sizes: start-up and connection cost cancel out."""
    cpu_large, wall_large = measure(large)
    cpu_small, wall_small = measure(small)
    per = large - small
    return (cpu_large - cpu_small) / per * 1e6, (wall_large - wall_small) / per * 1e6


# --- 1. client CPU per action ------------------------------------------------------------------

def cpu_per_action(url: str, runs: int, large: int, small: int) -> list[dict]:
    rows = []
    for name, (action, method, path, body) in ACTIONS.items():
        ours, theirs, walls = [], [], []
        for _ in range(runs):
            cpu, _wall = marginal(lambda n, a=action: adobot_cpu(url, a, n), large, small)
            ours.append(cpu)
            cpu, wall = marginal(lambda n, m=method, p=path, b=body: bare_cpu(url, m, p, b, n),
                                 large, small)
            theirs.append(cpu)
            walls.append(wall / 1000)
        rows.append({"what": f"client CPU per {name} (marginal, N={large})",
                     "adobot": fmt(ours, "µs", 0), "baseline": fmt(theirs, "µs", 0),
                     "ratio": statistics.median(ours) / statistics.median(theirs),
                     "target": 1.3, "baseline_name": "bare requests.Session loop",
                     "note": f"bare loop wall time {fmt(walls, 'ms', 2)} per request",
                     "samples": {"adobot": ours, "baseline": theirs}})
    return rows


# --- 2. requests per action vs the minimum and the SDK ----------------------------------------

SDK_JOBS = {
    "ListRepos": "conn.clients_v7_1.get_git_client().get_repositories('Payments')",
    "CreateWorkItem": ("conn.clients_v7_1.get_work_item_tracking_client().create_work_item("
                       "[JsonPatchOperation(op='add', path='/fields/System.Title', value='x')],"
                       " 'Payments', 'Task')"),
    "QueueRun": "conn.clients_v7_1.get_pipelines_client().run_pipeline({}, 'Payments', 1)",
}
SDK_SCRIPT = """
import sys
from azure.devops.connection import Connection
from azure.devops.v7_1.work_item_tracking.models import JsonPatchOperation
from msrest.authentication import BasicAuthentication
conn = Connection(base_url=sys.argv[1], creds=BasicAuthentication('', sys.argv[2]))
{job}
"""


def requests_per_job() -> list[dict]:
    from adobot.sandbox import Sandbox

    rows = []
    for name, (action, _m, _p, _b) in ACTIONS.items():
        with Sandbox() as sandbox:
            result = api.run(parse_bot(loop_bot(action, 1)), {"pat": PAT, "url": sandbox.org_url()})
            ours = len(sandbox.state.requests)
            assert result.status == "succeeded", result.error
        sdk = sdk_requests(name)
        rows.append({"what": f"HTTP requests, cold: Connect + {name}",
                     "adobot": str(ours), "baseline": str(sdk) if sdk else "SDK not installed",
                     "ratio": ours / sdk if sdk else None, "target": None,
                     "baseline_name": "azure-devops SDK, fresh process and cache",
                     "note": "adobot's Connect proves the token and the project (2 requests); "
                             "the SDK discovers resource locations instead"})
    return rows


def sdk_requests(name: str) -> int | None:
    try:
        import azure.devops  # noqa: F401
    except ImportError:
        return None
    from adobot.sandbox import Sandbox

    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as cache:
        done = subprocess.run([sys.executable, "-c", SDK_SCRIPT.format(job=SDK_JOBS[name]),
                               sandbox.org_url(), PAT], capture_output=True, text=True,
                              env={**os.environ, "AZURE_DEVOPS_CACHE_DIR": cache})
        if done.returncode != 0:
            raise SystemExit(f"SDK job {name} failed: {done.stderr[-500:]}")
        return len(sandbox.state.requests)


def minimum_table() -> list[dict]:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "requests_per_action.py")],
                          capture_output=True, text=True, check=True)
    over = "every action within its minimum" in done.stdout
    return [{"what": "HTTP requests per action vs the minimum (quickstart and by-name bots)",
             "adobot": "≤ minimum for every step" if over else "OVER BUDGET",
             "baseline": "Connect 2, ListRepos 1, CreateRepo 1, CreatePipeline 1 (2 by name), "
                         "QueueRun 1 (+polls), CreateWorkItem 1, Disconnect 0",
             "ratio": 1.0 if over else None, "target": 1.0, "baseline_name": "the minimum",
             "note": "bench/requests_per_action.py prints every step"}]


# --- 3. cold start -----------------------------------------------------------------------------

FLOOR = ("import requests, yaml\nfrom pydantic import BaseModel\n"
         "class Model(BaseModel):\n    x: int = 1\nModel(x=2)")
PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def cold(cmd: list[str], runs: int, env: dict) -> tuple[list[float], list[float]]:
    walls, peaks = [], []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append((time.perf_counter() - started) * 1000)
        peak = subprocess.run([sys.executable, "-c", PEAK, *cmd], env=env, capture_output=True,
                              text=True)
        peaks.append(int(peak.stdout.strip()) / 1024)
    return walls, peaks


def cold_start(url: str, runs: int) -> list[dict]:
    bot = OUT / "connect_disconnect.yaml"
    bot.write_text("name: cold\nsteps:\n  - action: Connect\n    inputs: {organization_url: "
                   f"'{url}/contoso', project: Payments, personal_access_token: "
                   "{variable: pat}}\n  - action: Disconnect\n")
    env = {**os.environ, "BENCH_PAT": PAT}
    base_wall, base_peak = cold([sys.executable, "-c", "import requests"], runs, env)
    run_wall, run_peak = cold([str(BIN / "adobot"), "run", str(bot), "--var-env",
                               "pat=BENCH_PAT"], runs, env)
    help_wall, help_peak = cold([str(BIN / "adobot"), "--help"], runs, env)
    floor_wall, _ = cold([sys.executable, "-c", FLOOR], runs, env)
    rows = [{"what": "cold start wall time: importing the dependencies a run needs (requests, "
                     "pydantic with one model, PyYAML), no adobot code",
             "adobot": fmt(floor_wall, "ms", 0), "baseline": fmt(base_wall, "ms", 0),
             "ratio": statistics.median(floor_wall) / statistics.median(base_wall),
             "target": None, "baseline_name": "python -c 'import requests'",
             "note": "the floor under `adobot run`"}]
    for what, wall, peak, target in (("`adobot run` Connect→Disconnect", run_wall, run_peak, 2.0),
                                     ("`adobot --help`", help_wall, help_peak, None)):
        rows.append({"what": f"cold start wall time: {what}", "adobot": fmt(wall, "ms", 0),
                     "baseline": fmt(base_wall, "ms", 0),
                     "ratio": statistics.median(wall) / statistics.median(base_wall),
                     "target": target, "baseline_name": "python -c 'import requests'",
                     "samples": {"adobot": wall, "baseline": base_wall}})
        rows.append({"what": f"cold start peak memory: {what}", "adobot": fmt(peak, "MiB", 1),
                     "baseline": fmt(base_peak, "MiB", 1),
                     "ratio": statistics.median(peak) / statistics.median(base_peak),
                     "target": None, "baseline_name": "python -c 'import requests'"})
    return rows


# --- 4. bulk under throttling ------------------------------------------------------------------

def bulk(url: str, items: int, every: int) -> list[dict]:
    csv = OUT / "bulk.csv"
    csv.write_text("title\n" + "".join(f"bulk {i}\n" for i in range(items)))
    text = json.dumps({"name": "bulk", "steps": [
        {"action": "Connect", "inputs": {"organization_url": f"{url}/contoso",
                                         "project": "Payments",
                                         "personal_access_token": {"variable": "pat"}}},
        {"action": "ReadCsv", "inputs": {"path": str(csv)}, "outputs": {"rows": "rows"}},
        {"for_each": "${rows}", "as": "row", "steps": [
            {"action": "CreateWorkItem", "inputs": {"type": "Task", "title": "${row.title}"}}]}]})

    def once(throttle: bool) -> tuple[float, dict]:
        requests.delete(f"{url}/_sandbox/faults")
        if throttle:
            requests.post(f"{url}/_sandbox/faults", json={
                "kind": "throttle", "method": "POST", "path": "wit/workitems", "every": every,
                "times": None, "retry_after": "1"})
        before = requests.get(f"{url}/_sandbox/stats").json()
        started = time.perf_counter()
        result = Runner().run(parse_bot(text), {"pat": PAT})
        elapsed = time.perf_counter() - started
        after = requests.get(f"{url}/_sandbox/stats").json()
        assert result.status == "succeeded", result.error
        return elapsed, {"created": after["work_items"] - before["work_items"],
                         "distinct": after["distinct_work_item_titles"]
                         - before["distinct_work_item_titles"]}

    plain, plain_counts = once(False)
    throttled, counts = once(True)
    requests.delete(f"{url}/_sandbox/faults")
    imposed = float(items // every)
    extra = throttled - plain
    return [{"what": f"bulk: {items} work items from a CSV", "adobot": f"{plain:.2f} s",
             "baseline": f"{items} created, {plain_counts['distinct'] - items} duplicated",
             "ratio": None, "target": None, "baseline_name": "—"},
            {"what": f"bulk under throttling (429 + Retry-After: 1 on every {every}th create)",
             "adobot": f"+{extra:.2f} s over the unthrottled run",
             "baseline": f"{imposed:.0f} s of imposed waits",
             "ratio": extra / imposed, "target": 1.1, "baseline_name": "imposed waits",
             "note": f"{counts['created']} created, {counts['created'] - items} lost or "
                     f"duplicated, {counts['distinct']} distinct titles"}]


# --- 5. scale ----------------------------------------------------------------------------------

def measured(fn) -> tuple[float, float]:
    """(ms, peak MiB): timed on its own, then run again under tracemalloc for the memory
    (tracing slows allocation-heavy code, so it must not be in the timing)."""
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed * 1000, peak / 2 ** 20


def scale(url: str, runs: int) -> list[dict]:
    token = base64.b64encode(f":{PAT}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "X-TFS-FedAuthRedirect": "Suppress"}
    base = f"{url}/contoso"

    def bare_list():
        with requests.Session() as session:
            data = session.get(f"{base}/Scale/_apis/git/repositories",
                               params={"api-version": "7.1"}, headers=headers).json()
            assert len(data["value"]) == SCALE_REPOS

    def bare_pages():
        with requests.Session() as session:
            found, token_ = [], None
            while True:
                params = {"api-version": "7.1", "$top": 1000}
                if token_:
                    params["continuationToken"] = token_
                response = session.get(f"{base}/Scale/_apis/pipelines", params=params,
                                       headers=headers)
                found += [p for p in response.json()["value"] if p["name"] == "pipeline-02499"]
                token_ = response.headers.get("x-ms-continuationtoken")
                if not token_:
                    break
            assert found

    def ours_list():
        with api.Context(variables={"pat": PAT}) as ctx:
            ctx.run("Connect", organization_url=base, project="Scale",
                    personal_access_token={"variable": "pat"})
            assert ctx.run("ListRepos")["count"] == SCALE_REPOS

    def ours_pages():
        from adobot.actions.pipelines import find_pipeline

        with api.Context(variables={"pat": PAT}) as ctx:
            ctx.run("Connect", organization_url=base, project="Scale",
                    personal_access_token={"variable": "pat"})
            assert find_pipeline(ctx._context.sessions.find("default"), "pipeline-02499")

    rows = []
    for what, ours, theirs in ((f"ListRepos on {SCALE_REPOS:,} repositories", ours_list, bare_list),
                               (f"find a pipeline by name among {SCALE_PIPELINES:,} (3 pages)",
                                ours_pages, bare_pages)):
        ours_t, ours_m, bare_t, bare_m = [], [], [], []
        for _ in range(runs):
            t, m = measured(ours)
            ours_t.append(t), ours_m.append(m)
            t, m = measured(theirs)
            bare_t.append(t), bare_m.append(m)
        rows.append({"what": f"scale: {what}, time (includes Connect's 2 requests)",
                     "adobot": fmt(ours_t, "ms", 0), "baseline": fmt(bare_t, "ms", 0),
                     "ratio": statistics.median(ours_t) / statistics.median(bare_t),
                     "target": None, "baseline_name": "bare requests + json"})
        rows.append({"what": f"scale: {what}, peak Python memory", "adobot": fmt(ours_m, "MiB", 1),
                     "baseline": fmt(bare_m, "MiB", 1),
                     "ratio": statistics.median(ours_m) / statistics.median(bare_m),
                     "target": None, "baseline_name": "bare requests + json"})
    return rows


# --- the report --------------------------------------------------------------------------------

def write_doc(rows: list[dict], quick: bool) -> None:
    lines = ["# Benchmarks", "",
             "Generated by `make bench` (`.venv/bin/python bench/run.py`" + (" --quick" if quick else "")
             + f") on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python "
             f"{sys.version.split()[0]}. Each figure is a median of several runs ± half their "
             "range; ratios, not absolute times, are the claims. The sandbox runs in its own "
             "process; the baselines run beside adobot in the same run.", "",
             "| what | adobot | baseline | ratio | target | baseline is |", "|---|---|---|---|---|---|"]
    for row in rows:
        ratio = "—" if row["ratio"] is None else f"{row['ratio']:.2f}"
        target = "—" if not row.get("target") else f"≤ {row['target']}"
        missed = row.get("target") and row["ratio"] is not None and row["ratio"] > row["target"]
        lines.append(f"| {row['what']} | {row['adobot']} | {row['baseline']} | "
                     f"{'**' + ratio + '**' if missed else ratio} | {target} | "
                     f"{row['baseline_name']}{'; ' + row['note'] if row.get('note') else ''} |")
    lines += ["", "A bold ratio missed its target."]
    floor = next((r for r in rows if r["what"].startswith("cold start wall time: importing")), None)
    run = next((r for r in rows if "`adobot run`" in r["what"] and "wall" in r["what"]), None)
    if floor and run and run["ratio"] > 2.0:
        lines += ["", f"Why `adobot run` cold start is {run['ratio']:.2f}× against a 2× target: "
                  f"importing the dependencies a run cannot do without — requests, pydantic "
                  f"(building one model), PyYAML — already takes {floor['ratio']:.2f}× the bare "
                  "`import requests`, before any adobot code. pydantic alone costs about half "
                  "of `import requests`. adobot's own modules (compiled, imported only as a "
                  "command needs them: the vault's crypto, the SDK and the sandbox are never "
                  "loaded by this run) and the run itself add the rest "
                  f"({run['ratio'] - floor['ratio']:.2f}×). Meeting 2× would mean dropping "
                  "pydantic or PyYAML, which the project's dependency rules fix."]
    lines.append("")
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and items (a smoke run)")
    args = parser.parse_args()
    runs, large, small = (2, 300, 50) if args.quick else (5, 1000, 100)
    OUT.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    with sandbox_process(bench_seed()) as url:
        print("1/5 client CPU per action", flush=True)
        rows += cpu_per_action(url, runs, large, small)
        print("2/5 requests per action", flush=True)
        rows += minimum_table() + requests_per_job()
        print("3/5 cold start", flush=True)
        rows += cold_start(url, 3 if args.quick else 9)
        print("4/5 bulk under throttling", flush=True)
        rows += bulk(url, 300 if args.quick else 1000, 100)
        print("5/5 scale", flush=True)
        rows += scale(url, 2 if args.quick else 5)
    (OUT / "results.json").write_text(json.dumps(rows, indent=1, default=str))
    write_doc(rows, args.quick)
    for row in rows:
        ratio = "" if row["ratio"] is None else f"  ratio {row['ratio']:.2f}"
        print(f"{row['what']}: {row['adobot']} vs {row['baseline']}{ratio}")
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
