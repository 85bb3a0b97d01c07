"""One way to run an action (``runtime.execute``), over real HTTP against the sandbox: it counts
its own requests and sets its own retry budget wherever it runs, a worker thread included."""
from __future__ import annotations

import asyncio

import pytest
from concurrent.futures import ThreadPoolExecutor

from adobot.actions.base import ActionContext
from adobot.credentials.secret import Secret
from adobot.rest.retry import RetryPolicy
from adobot import api
from adobot.runtime.execute import execute
from adobot.actions.environment import Environment
from adobot.sessions.store import SessionScopes
from tests.conftest import DEMO_PAT

CONNECT = {"organization_url": "https://dev.azure.com/contoso", "project": "Payments",
           "personal_access_token": {"variable": "pat"}, "session": {"name": "ado", "scope": "global"}}


def context(sandbox, **changes) -> ActionContext:
    return ActionContext(sessions=SessionScopes(), env=Environment(route=sandbox.route),
                         variables={"pat": DEMO_PAT}, **changes)


def test_outputs_requests_and_the_secret_variable(sandbox):
    ctx = context(sandbox)
    outcome = execute("Connect", CONNECT, ctx)
    assert outcome.error is None and outcome.requests == 2
    assert outcome.outputs.project_name == "Payments" and outcome.duration_ms >= 0
    assert isinstance(ctx.variables["pat"], Secret)  # held as a secret from now on
    ctx.sessions.global_.close_all()


def test_a_failure_is_an_outcome_not_an_exception(sandbox):
    outcome = execute("ListRepos", {"session": "nowhere"}, context(sandbox))
    assert outcome.outputs is None and outcome.error.code == "SESSION_NOT_FOUND"
    bad = execute("ListRepos", {"name_filter": ""}, context(sandbox))
    assert bad.error.code == "INVALID_INPUT" and bad.requests == 0


def test_requests_are_counted_per_call_in_worker_threads(sandbox):
    ctx = context(sandbox)
    assert execute("Connect", CONNECT, ctx).error is None
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: execute("ListRepos", {"session": "ado"}, ctx),
                                 range(12)))
    assert [o.requests for o in outcomes] == [1] * 12
    assert all(o.outputs.count == 4 for o in outcomes)
    ctx.sessions.global_.close_all()


def test_an_async_server_can_run_it_in_a_thread(sandbox):
    ctx = context(sandbox)

    async def serve() -> list:
        await asyncio.to_thread(execute, "Connect", CONNECT, ctx)
        return await asyncio.gather(*(asyncio.to_thread(execute, "ListRepos",
                                                        {"session": "ado"}, ctx)
                                      for _ in range(3)))

    assert [o.requests for o in asyncio.run(serve())] == [1, 1, 1]
    ctx.sessions.global_.close_all()


def test_every_front_end_gets_the_retry_budget(sandbox):
    """The budget of the context's policy bounds the retries of one action, in a worker thread
    as in the caller's: a throttle asking for 2 s is not waited out with 0.5 s left."""
    ctx = context(sandbox, retry_policy=RetryPolicy(budget_seconds=0.5))
    assert execute("Connect", CONNECT, ctx).error is None
    sandbox.state.faults.add({"kind": "throttle", "path": "git/repositories", "times": None,
                              "retry_after": "2"})
    with ThreadPoolExecutor(max_workers=1) as pool:
        outcome = pool.submit(execute, "ListRepos", {"session": "ado"}, ctx).result()
    assert outcome.error.code == "THROTTLED" and outcome.requests == 1
    assert "gave up after 1 attempts" in outcome.error.message
    ctx.sessions.global_.close_all()


def test_the_python_api_and_the_runner_share_it(sandbox):
    with api.Context(sandbox=sandbox, variables={"pat": DEMO_PAT}) as ctx:
        ctx.run("Connect", **CONNECT)
        assert isinstance(ctx.variables["pat"], Secret)
        assert ctx.run("ListRepos", session="ado")["count"] == 4
        assert ctx.requests == 3


def test_context_starts_its_own_sandbox_and_any_input_name_passes(sandbox):
    """Rough edges a new user hit (issue 14): Context(sandbox=True) raised an AttributeError, and
    run()'s seeding argument `variables` swallowed QueueRun's own input `variables`."""
    with api.Context(sandbox=True, variables={"pat": DEMO_PAT}) as ctx:
        assert ctx.run("Connect", **CONNECT)["project_name"] == "Payments"
        own = ctx._context.route  # the context's own sandbox, stopped with it
    with pytest.raises(RuntimeError):
        own(type("Org", (), {"name": "contoso"})())
    with api.Context(sandbox=sandbox, variables={"pat": DEMO_PAT}) as ctx:
        ctx.run("Connect", **CONNECT)
        run = ctx.run("QueueRun", {"session": "ado", "pipeline": "payments-api-ci"},
                      variables={"verbose": "true"})["run"]
    assert sandbox.state.runs[run["id"]].variables == {"verbose": {"value": "true",
                                                                    "isSecret": False}}
