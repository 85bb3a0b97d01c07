"""8 child bots at once, 250 work items each, on one global session, with throttling injected:
every item is created exactly once, nothing fails, and no file descriptor is left open."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from adobot import api
from adobot.sandbox import Sandbox
from tests.conftest import DEMO_PAT

CHILDREN, ITEMS = 8, 250


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_many_children_on_one_session_under_throttling(tmp_path: Path):
    child = tmp_path / "child.yaml"
    child.write_text(json.dumps({"name": "child", "steps": [{
        "for_each": "${items}", "as": "item", "steps": [{
            "action": "CreateWorkItem",
            "inputs": {"session": "shared", "type": "Task", "title": "${item}"}}]}]}))
    baseline = open_fds()
    results = []
    with Sandbox() as sandbox:
        # Every 40th create is throttled: about 50 429s spread over the threads. Each holds
        # the whole shared connection for its Retry-After, as the service asks.
        sandbox.state.faults.add({"kind": "throttle", "method": "POST", "path": "wit/workitems",
                                  "every": 40, "times": None, "retry_after": "0.2"})
        with api.Context(sandbox=sandbox, variables={"pat": DEMO_PAT}) as ctx:
            ctx.run("Connect", organization_url="https://dev.azure.com/contoso",
                    project="Payments", personal_access_token={"variable": "pat"},
                    session={"name": "shared", "scope": "global"})

            def work(n: int) -> None:
                items = [f"child {n} item {i}" for i in range(ITEMS)]
                results.append(api.run(child, {"items": items}, sandbox=sandbox,
                                       global_sessions=ctx.global_sessions))

            threads = [threading.Thread(target=work, args=(n,)) for n in range(CHILDREN)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        throttled = sandbox.state.faults.list()[0]["fired"]
        titles = [w.fields["System.Title"] for w in sandbox.state.work_items.values()]
    assert [r.status for r in results] == ["succeeded"] * CHILDREN, [r.error for r in results]
    assert len(titles) == CHILDREN * ITEMS == len(set(titles))  # each exactly once
    assert throttled >= 40
    assert sum(r.requests for r in results) == CHILDREN * ITEMS + throttled
    assert open_fds() <= baseline  # sessions, pools and the sandbox all closed
