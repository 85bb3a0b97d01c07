"""Parent and child bots, global and local sessions, loops, on_error, the Python API."""
from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from adobot.rest.client import RestClient
from adobot import api
from adobot.runtime.loader import load_bot
from adobot.runtime.progress import TerminalProgress
from adobot.runtime.runner import MAX_DEPTH, Runner
from adobot.actions.environment import Environment
from adobot.sessions.store import SessionStore
from tests.conftest import DEMO_PAT, EXAMPLES, run_file, sandbox_route


def write(folder: Path, name: str, steps: list, variables: dict | None = None) -> Path:
    path = folder / name
    path.write_text(json.dumps({"name": name.split(".")[0], "variables": variables or {},
                                "steps": steps}), encoding="utf-8")
    return path


def connect(name: str, scope: str, project: str = "Payments") -> dict:
    return {"action": "Connect", "inputs": {
        "organization_url": "https://dev.azure.com/contoso", "project": project,
        "personal_access_token": {"variable": "pat"}, "session": {"name": name, "scope": scope}}}


def uses(session: str, output: str | None = None, on_error: str | None = None) -> dict:
    step = {"action": "ListRepos", "inputs": {"session": session}}
    if output:
        step["outputs"] = {"count": output}
    if on_error:
        step["on_error"] = on_error
    return step


def run_bot(child: str, variables: dict | None = None, output: str | None = None,
            on_error: str | None = None) -> dict:
    step = {"action": "RunBot", "inputs": {"bot": child, "variables": variables or {}}}
    if output:
        step["outputs"] = {"variables": output}
    if on_error:
        step["on_error"] = on_error
    return step


@pytest.fixture
def clients(monkeypatch):
    """Every RestClient made during the test, to check that each one was closed."""
    made: list[RestClient] = []
    original = RestClient.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(RestClient, "__init__", init)
    return made


def test_global_sessions_are_shared_both_ways_and_local_ones_are_not(tmp_path, sandbox, clients):
    write(tmp_path, "grand.yaml", [uses("g", "grand_sees_parent"), uses("cg", "grand_sees_child")])
    write(tmp_path, "child.yaml", [
        uses("g", "child_sees_parent_global"),
        uses("l", on_error="continue"),           # the parent's local session: invisible
        connect("cg", "global"), connect("cl", "local", "Empty"),
        run_bot("grand.yaml", output="grand")])
    parent = write(tmp_path, "parent.yaml", [
        connect("g", "global"), connect("l", "local"),
        run_bot("child.yaml", {"pat": "${pat}"}, output="child"),
        uses("cg", "parent_sees_child_global"),
        uses("cl", on_error="continue")])          # the child's local session: closed and gone
    result = run_file(parent, sandbox, pat=DEMO_PAT)
    assert result.status == "succeeded", result.error
    assert result.variables["parent_sees_child_global"] == 4
    assert result.variables["child"]["child_sees_parent_global"] == 4
    assert result.variables["child"]["grand"] == {"grand_sees_parent": 4, "grand_sees_child": 4}
    assert [(f["path"], f["code"]) for f in result.failures] == [
        ("3/child.yaml:2", "SESSION_NOT_FOUND"), ("5", "SESSION_NOT_FOUND")]
    assert result.variables["child"]["pat"] == "***"  # a child's secrets come back masked
    assert len(clients) == 4 and all(c.closed for c in clients)


def test_a_failing_child_fails_the_step_with_its_code_and_path(tmp_path, sandbox, clients):
    write(tmp_path, "grand.yaml", [uses("g"), connect("x", "global", project="Nope")])
    write(tmp_path, "child.yaml", [connect("cg", "global"), run_bot("grand.yaml", {"pat": "${pat}"})])
    parent = write(tmp_path, "parent.yaml", [connect("g", "global"), uses("g"),
                                              run_bot("child.yaml", {"pat": "${pat}"}), uses("g")])
    result = run_file(parent, sandbox, pat=DEMO_PAT)
    assert result.status == "failed" and result.exit_code == 1
    assert result.error["code"] == "NOT_FOUND"
    assert result.error["path"] == "3/child.yaml:2/grand.yaml:2"
    assert result.error["action"] == "Connect"
    assert [s.path for s in result.steps if s.status == "failed"] == [
        "3/child.yaml:2/grand.yaml:2", "3/child.yaml:2", "3"]
    assert all(c.closed for c in clients)  # the global ones of parent and child too


def test_a_child_that_is_invalid_is_invalid_bot(tmp_path, sandbox):
    write(tmp_path, "child.yaml", [{"action": "ListRepo"}])
    parent = write(tmp_path, "parent.yaml", [run_bot("child.yaml")])
    result = run_file(parent, sandbox)
    assert result.error["code"] == "INVALID_BOT" and result.exit_code == 2
    assert "ListRepos" in result.error["hint"]
    missing = run_file(write(tmp_path, "p2.yaml", [run_bot("nowhere.yaml")]), sandbox)
    assert missing.error["code"] == "INVALID_BOT" and "does not exist" in missing.error["message"]


def test_recursion_is_invalid_bot_not_a_crash(tmp_path, sandbox):
    path = write(tmp_path, "loop.yaml", [run_bot("loop.yaml")])
    result = run_file(path, sandbox)
    assert result.error["code"] == "INVALID_BOT"
    assert f"more than {MAX_DEPTH} deep" in result.error["message"]
    assert result.error["path"].count("loop.yaml") == MAX_DEPTH


def test_child_paths_are_relative_to_the_parent_file(tmp_path, sandbox, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the examples folder
    result = run_file(EXAMPLES / "parent.yaml", sandbox, pat=DEMO_PAT)
    assert result.status == "succeeded", result.error
    assert [r["name"] for r in result.variables["created"]] == ["ledger-service", "refunds-service"]


def test_children_in_threads_share_one_global_session(tmp_path, sandbox, clients):
    child = write(tmp_path, "child.yaml", [uses("shared", "n")])
    results: list = []
    with api.Context(sandbox=sandbox, variables={"pat": DEMO_PAT}) as ctx:
        ctx.run("Connect", organization_url="https://dev.azure.com/contoso", project="Payments",
                personal_access_token={"variable": "pat"},
                session={"name": "shared", "scope": "global"})

        def work() -> None:
            for _ in range(5):
                results.append(api.run(child, sandbox=sandbox, global_sessions=ctx.global_sessions))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        session = ctx.global_sessions.get("shared")
        assert session is not None and not session.closed
    assert len(results) == 40 and all(r.status == "succeeded" for r in results)
    assert all(r.variables["n"] == 4 for r in results)
    assert session.closed and len(clients) == 1  # one connection pool served every thread
    assert len(sandbox.state.requests) == 2 + 40


@pytest.mark.parametrize("count", [0, 1, 1000])
def test_for_each_over_0_1_and_1000_items(tmp_path, sandbox, count):
    items = [{"title": f"item {i}"} for i in range(count)]
    path = write(tmp_path, "bulk.yaml", [
        connect("default", "local"),
        {"for_each": "${items}", "as": "it", "steps": [
            {"action": "CreateWorkItem", "inputs": {"type": "Task", "title": "${it.title}"},
             "outputs": {"work_item": "last"}}]}], variables={"items": items, "last": None})
    result = run_file(path, sandbox, pat=DEMO_PAT)
    assert result.status == "succeeded", result.error
    assert len(sandbox.state.work_items) == count
    assert sorted(w.fields["System.Title"] for w in sandbox.state.work_items.values()) == \
        sorted(i["title"] for i in items)
    assert result.variables["last"] == (None if count == 0 else {
        **result.variables["last"], "id": count})
    assert result.requests == 2 + count


def test_on_error_continue_records_every_failure(tmp_path, sandbox):
    path = write(tmp_path, "bulk.yaml", [
        connect("default", "local"),
        {"for_each": "${types}", "as": "t", "on_error": "continue", "steps": [
            {"action": "CreateWorkItem", "inputs": {"type": "${t}", "title": "x"}}]},
        {"action": "CreateRepo", "inputs": {"name": "payments-api"}, "on_error": "continue"},
        uses("default", "n")], variables={"types": ["Task", "Tsk", "Bug", "Nope"]})
    result = run_file(path, sandbox, pat=DEMO_PAT)
    assert result.status == "succeeded" and result.exit_code == 0
    assert [(f["path"], f["code"]) for f in result.failures] == [
        ("2[1].1", "NOT_FOUND"), ("2[3].1", "NOT_FOUND"), ("3", "ALREADY_EXISTS")]
    assert len(sandbox.state.work_items) == 2 and result.variables["n"] == 4
    doc = result.to_dict()
    assert doc["failures"] == result.failures and doc["error"] is None


def test_without_on_error_the_first_failure_stops_the_loop(tmp_path, sandbox):
    path = write(tmp_path, "bulk.yaml", [
        connect("default", "local"),
        {"for_each": "${types}", "as": "t", "steps": [
            {"action": "CreateWorkItem", "inputs": {"type": "${t}", "title": "x"}}]}],
        variables={"types": ["Task", "Tsk", "Bug"]})
    result = run_file(path, sandbox, pat=DEMO_PAT)
    assert result.error["path"] == "2[1].1" and len(sandbox.state.work_items) == 1


def test_loop_progress_on_a_terminal(tmp_path, sandbox):
    stream = io.StringIO()
    path = write(tmp_path, "bulk.yaml", [
        connect("default", "local"),
        {"for_each": "${types}", "as": "t", "on_error": "continue", "steps": [
            {"action": "CreateWorkItem", "inputs": {"type": "${t}", "title": "x"}}]}],
        variables={"types": ["Task"] * 5 + ["Nope", "Bug"]})
    runner = Runner(Environment(route=sandbox_route(sandbox), progress=TerminalProgress(stream)))
    assert runner.run(load_bot(path), {"pat": DEMO_PAT}).status == "succeeded"
    text = stream.getvalue()
    assert "step 2: 1/7 items, 0 failed" in text and "step 2: 7/7 items, 1 failed" in text
    assert "/s" in text and text.endswith("\r\x1b[2K")


def test_bulk_example_files_one_item_per_csv_row(sandbox):
    result = run_file(EXAMPLES / "bulk_work_items.yaml", sandbox, pat=DEMO_PAT)
    assert result.status == "succeeded", result.error
    assert result.variables["row_count"] == 4
    titles = sorted(w.fields["System.Title"] for w in sandbox.state.work_items.values())
    assert titles == sorted(["Write the runbook", "Add alerts for settlement lag",
                             "Refund button greys out on Safari", "Quarterly access review"])
    bug = next(w for w in sandbox.state.work_items.values() if w.type == "Bug")
    assert bug.fields["Microsoft.VSTS.Common.Priority"] == 2


@pytest.mark.parametrize("content, said", [
    (None, "does not exist"),
    ("", "header row"),
    ("a,,c\n1,2,3\n", "header row"),
    ("a,b\n1,2,3\n", "more fields"),
    ("a,b,c\n1,2\n", "fewer fields"),
])
def test_read_csv_refuses_bad_files(tmp_path, sandbox, content, said):
    if content is not None:
        (tmp_path / "data.csv").write_text(content)
    path = write(tmp_path, "b.yaml", [{"action": "ReadCsv", "inputs": {"path": "data.csv"}}])
    result = run_file(path, sandbox)
    assert result.error["code"] == "INVALID_INPUT" and said in result.error["message"]
    assert sandbox.state.requests == []


def test_python_api_runs_bots_and_actions(sandbox):
    result = api.run(EXAMPLES / "quickstart.yaml", {"pat": DEMO_PAT}, sandbox=True)
    assert result.status == "succeeded" and result.exit_code == 0
    with api.Context(sandbox=sandbox, variables={"pat": DEMO_PAT}) as ctx:
        connected = ctx.run("Connect", organization_url="https://dev.azure.com/contoso",
                            project="Payments", personal_access_token={"variable": "pat"})
        assert connected["project_name"] == "Payments"
        ctx.variables["filter"] = "infra"
        listed = ctx.run("ListRepos", name_filter="${filter}")
        assert [r["name"] for r in listed["repositories"]] == ["infra"]
        assert ctx.requests == 3
        assert "Secret" in repr(ctx.variables["pat"])  # the token is held as a secret
    from adobot.errors import AdobotError
    with pytest.raises(AdobotError) as caught, api.Context(sandbox=sandbox) as ctx:
        ctx.run("ListRepos")
    assert caught.value.code == "SESSION_NOT_FOUND"


def test_parallel_bots_with_a_shared_runner_keep_their_own_variables(tmp_path, sandbox):
    runner = Runner(Environment(route=sandbox_route(sandbox)))
    store = SessionStore("global")
    bots = [write(tmp_path, f"b{i}.yaml", [connect(f"s{i}", "global"),
                                          {"action": "ListRepos",
                                           "inputs": {"session": f"s{i}", "name_filter": f"{p}*"},
                                           "outputs": {"count": "n"}}])
            for i, p in enumerate(["payments", "infra", "settlement", "zzz"])]
    results: dict[int, object] = {}

    def go(i: int) -> None:
        results[i] = runner.run(load_bot(bots[i]), {"pat": DEMO_PAT}, global_sessions=store)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i].variables["n"] for i in range(4)] == [2, 1, 1, 0]
    assert sorted(store.names()) == ["s0", "s1", "s2", "s3"]
    store.close_all()
