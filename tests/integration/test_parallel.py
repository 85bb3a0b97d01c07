"""Parallel loops: bounded, in item order, outputs collected per item, kind to a throttling
service; RunBot items on a shared global session. Every test runs over HTTP against a sandbox
that answers like a distant service (a round trip per request), so items really overlap."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from adobot.runtime.loader import parse_bot
from adobot.runtime.runner import Runner
from adobot.actions.environment import Environment
from adobot.runtime.validate import validate_file
from adobot.sandbox import Sandbox
from tests.conftest import ADOBOT, CONNECT_BOT, DEMO_PAT, run_text

LATENCY_MS = 40


@pytest.fixture
def far_sandbox():
    with Sandbox(latency_ms=LATENCY_MS) as running:
        yield running


def loop_bot(titles: list, parallel: int, on_error: str = "fail",
             extra: str = "") -> str:
    return CONNECT_BOT + f"""
  - for_each: {json.dumps(titles)}
    as: title
    parallel: {parallel}
    on_error: {on_error}
    steps:
      - action: CreateWorkItem
        inputs: {{type: Task, title: "${{title}}", priority: "${{prio}}"}}
        outputs: {{work_item: made}}
{extra}
variables: {{prio: 2}}
"""


def titled(sandbox: Sandbox, prefix: str) -> tuple[int, int]:
    stats = sandbox.state.stats(prefix)
    return stats["work_items_titled"], stats["distinct_titles_titled"]


def test_items_run_at_once_within_the_bound_and_stay_in_item_order(far_sandbox):
    titles = [f"par {i:02d}" for i in range(12)]
    result = run_text(loop_bot(titles, parallel=4), far_sandbox, pat=DEMO_PAT)

    assert result.status == "succeeded", result.error
    assert [s.path for s in result.steps[1:]] == [f"2[{i}].1" for i in range(12)]
    assert 2 <= far_sandbox.state.stats()["max_in_flight"] <= 4  # overlapped, never beyond
    assert titled(far_sandbox, "par ") == (12, 12)  # each created once
    made = result.variables["made"]  # collected per item, in item order
    assert isinstance(made, list) and len(made) == 12
    ids = [item["id"] for item in made]
    created = {w.fields["System.Title"]: w.id for w in far_sandbox.state.work_items.values()}
    assert ids == [created[title] for title in titles]
    assert result.variables["title"] == titles[-1]


def test_a_sequential_loop_keeps_the_last_items_value(far_sandbox):
    result = run_text(loop_bot(["seq a", "seq b"], parallel=1), far_sandbox, pat=DEMO_PAT)
    assert result.status == "succeeded", result.error
    assert far_sandbox.state.stats()["max_in_flight"] == 1
    assert isinstance(result.variables["made"], dict)  # not a list: the last item's


def test_failures_are_listed_in_item_order_and_the_others_still_run(far_sandbox):
    text = CONNECT_BOT + """
  - for_each: [{t: "ok 0", p: 2}, {t: "bad 1", p: 9}, {t: "ok 2", p: 1}, {t: "bad 3", p: 0}]
    as: row
    parallel: 4
    on_error: continue
    steps:
      - action: CreateWorkItem
        inputs: {type: Task, title: "${row.t}", priority: "${row.p}"}
        outputs: {work_item: made}
"""
    result = run_text(text, far_sandbox, pat=DEMO_PAT)

    assert result.status == "succeeded"
    assert [f["path"] for f in result.failures] == ["2[1].1", "2[3].1"]
    assert {f["code"] for f in result.failures} == {"INVALID_INPUT"}
    assert [s.status for s in result.steps[1:]] == ["succeeded", "failed", "succeeded", "failed"]
    made = result.variables["made"]
    assert [m is None for m in made] == [False, True, False, True]


def test_a_failure_starts_no_more_items_and_fails_with_the_first_failed_item(far_sandbox):
    rows = [{"t": f"stop {i}", "p": 9 if i == 0 else 2} for i in range(40)]
    text = CONNECT_BOT + f"""
  - for_each: {json.dumps(rows)}
    as: row
    parallel: 3
    steps:
      - action: CreateWorkItem
        inputs: {{type: Task, title: "${{row.t}}", priority: "${{row.p}}"}}
"""
    result = run_text(text, far_sandbox, pat=DEMO_PAT)

    assert result.status == "failed" and result.exit_code != 0
    assert result.error["path"] == "2[0].1" and result.error["code"] == "INVALID_INPUT"
    created, _ = titled(far_sandbox, "stop ")
    assert created < 10  # the items running when it failed finished; no more were started


def test_throttling_holds_every_item_and_loses_or_duplicates_nothing(far_sandbox):
    far_sandbox.state.faults.add({"kind": "throttle", "method": "POST", "path": "wit/workitems",
                                  "every": 7, "times": 3, "retry_after": "0.3"})
    titles = [f"thr {i:02d}" for i in range(30)]
    result = run_text(loop_bot(titles, parallel=6), far_sandbox, pat=DEMO_PAT)

    assert result.status == "succeeded", result.error
    assert titled(far_sandbox, "thr ") == (30, 30)
    throttled = [r for r in far_sandbox.state.requests if r["method"] == "POST"]
    assert len(throttled) == 33  # 30 creates and the three refused ones sent again


def test_child_bots_run_in_parallel_on_the_parents_global_session(tmp_path, far_sandbox):
    (tmp_path / "child.yaml").write_text("""
name: child
steps:
  - action: CreateWorkItem
    inputs: {session: ado, type: Task, title: "${title}"}
    outputs: {work_item: made}
""")
    parent = tmp_path / "parent.yaml"
    parent.write_text("""
name: parent
steps:
  - action: Connect
    inputs:
      organization_url: https://dev.azure.com/contoso
      project: Payments
      personal_access_token: {variable: pat}
      session: {name: ado, scope: global}
  - for_each: ["kid a", "kid b", "kid c", "kid d", "kid e"]
    as: t
    parallel: 5
    steps:
      - action: RunBot
        inputs: {bot: child.yaml, variables: {title: "${t}"}}
        outputs: {variables: child}
""")
    from adobot.runtime.loader import load_bot

    result = Runner(Environment(route=far_sandbox.route)).run(load_bot(parent), {"pat": DEMO_PAT})

    assert result.status == "succeeded", result.error
    assert titled(far_sandbox, "kid ") == (5, 5)
    assert [c["title"] for c in result.variables["child"]] == [f"kid {x}" for x in "abcde"]
    assert [s.path for s in result.steps[1:]][:2] == ["2[0].1/child.yaml:1", "2[0].1"]
    assert far_sandbox.state.stats()["max_in_flight"] >= 2


def test_the_json_document_keeps_item_order(tmp_path, far_sandbox):
    bot = tmp_path / "bot.yaml"
    bot.write_text(loop_bot([f"doc {i}" for i in range(8)], parallel=8))
    done = subprocess.run([str(ADOBOT), "run", str(bot), "--json", "--var-env", "pat=PAT",
                           "--sandbox", "--sandbox-latency", "30"],
                          capture_output=True, text=True, env={**os.environ, "PAT": DEMO_PAT})
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [s["path"] for s in document["steps"][1:]] == [f"2[{i}].1" for i in range(8)]
    assert len(document["variables"]["made"]) == 8


# --- validate knows what a parallel loop means -------------------------------------------------

def findings(tmp_path, text: str, **kwargs) -> list[str]:
    bot = tmp_path / "bot.yaml"
    bot.write_text(text)
    return [f"{f.code}: {f.message}" for f in validate_file(bot, ["pat"], **kwargs)
            if f.severity == "error"]


def test_validate_accepts_outputs_read_after_the_loop_and_inside_the_same_item(tmp_path):
    text = CONNECT_BOT + """
  - for_each: [a, b]
    parallel: 2
    steps:
      - action: CreateWorkItem
        inputs: {type: Task, title: "${item}"}
        outputs: {work_item: made}
      - action: CreateWorkItem
        inputs: {type: Task, title: "child of ${made.id}", parent_id: "${made.id}"}
  - for_each: ${made}
    as: one
    steps:
      - action: CreateWorkItem
        inputs: {type: Task, title: "after ${one.id}"}
"""
    assert findings(tmp_path, text) == []


def test_validate_refuses_what_a_parallel_loop_cannot_mean(tmp_path):
    text = CONNECT_BOT + """
  - for_each: [a, b]
    parallel: 4
    steps:
      - action: CreateWorkItem
        inputs: {type: Task, title: "after ${made.id}"}
      - action: CreateWorkItem
        inputs: {type: Task, title: "${item}"}
        outputs: {work_item: made}
      - action: Disconnect
      - for_each: [x]
        parallel: 2
        steps:
          - action: CreateWorkItem
            inputs: {type: Task, title: "${item}"}
"""
    found = findings(tmp_path, text)
    assert any("'made' is read before a step of the parallel loop (step 2)" in f for f in found)
    assert any("Disconnect inside the parallel loop of step 2" in f for f in found)
    assert any("parallel loop inside the parallel loop of step 2" in f for f in found)


@pytest.mark.parametrize("value", ["0", "33", "true", "'4'", "2.5"])
def test_parallel_must_be_a_whole_number_in_range(tmp_path, value):
    text = CONNECT_BOT + f"""
  - for_each: [a]
    parallel: {value}
    steps:
      - action: CreateWorkItem
        inputs: {{type: Task, title: x}}
"""
    found = findings(tmp_path, text)
    assert any(f.startswith("INVALID_BOT") and "parallel must be a whole number from 1 to 32"
               in f for f in found), found
    with pytest.raises(Exception, match="parallel must be a whole number"):
        parse_bot(text)


def test_validate_refuses_a_child_that_connects_a_global_session_in_a_parallel_loop(tmp_path):
    (tmp_path / "child.yaml").write_text("""
name: child
steps:
  - action: Connect
    inputs:
      organization_url: https://dev.azure.com/contoso
      project: Payments
      personal_access_token: {variable: token}
      session: {name: shared, scope: global}
  - action: ListRepos
    inputs: {session: shared}
""")
    text = """
name: parent
steps:
  - for_each: [a, b]
    parallel: 2
    steps:
      - action: RunBot
        inputs: {bot: child.yaml, variables: {token: "${pat}"}}
"""
    found = findings(tmp_path, text)
    assert any(f.startswith("SESSION_EXISTS") and "runs in a parallel loop" in f
               for f in found), found
    sequential = text.replace("parallel: 2", "parallel: 1")
    assert findings(tmp_path, sequential) == []


def test_adobot_run_parses_each_file_of_the_tree_once(tmp_path, monkeypatch, capsys):
    # The check before the run and the run share what they parsed; a child bot in a loop of
    # ten items is parsed once, not ten times.
    from adobot import cli
    from adobot.runtime import loader

    (tmp_path / "child.yaml").write_text("name: child\nsteps:\n  - action: ReadCsv\n"
                                         "    inputs: {path: rows.csv}\n")
    (tmp_path / "rows.csv").write_text("a\n1\n")
    bot = tmp_path / "parent.yaml"
    bot.write_text("name: parent\nsteps:\n  - for_each: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
                   "    parallel: 4\n    steps:\n      - action: RunBot\n"
                   "        inputs: {bot: child.yaml}\n")
    parsed: list[str] = []
    real = loader._load_yaml
    monkeypatch.setattr(loader, "_load_yaml", lambda text: parsed.append(text) or real(text))

    assert cli.main(["run", str(bot), "--json"]) == 0, capsys.readouterr().err
    assert len(parsed) == 2  # parent.yaml and child.yaml
