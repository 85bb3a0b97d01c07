"""Bad input, generated: no input crashes the runner; each is accepted, or rejected with
INVALID_INPUT / INVALID_BOT (or another contract code) having sent nothing."""
from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adobot.actions import registry
from adobot.errors import ERROR_CODES, AdobotError
from adobot.runtime.interpolate import interpolate
from adobot.runtime.loader import parse_bot
from adobot.runtime.runner import Runner
from adobot.actions.environment import Environment
from adobot.sandbox import Sandbox

ACTIONS = registry.all_actions()
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
           | st.text(max_size=30) | st.sampled_from(["${x}", "${x.y}", "${x[0]}", "$${x}", "${",
                                                    "https://dev.azure.com/contoso", "Payments",
                                                    "Task", "main", "ado", "../x.yml"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


def inputs_for(action):
    names = list(action.inputs.model_fields) + ["extra", "sesion"]
    special = {"personal_access_token": st.sampled_from([{"variable": "pat"}, {"insecure": "t"},
                                                         {"credential": {"locker": "a"}}, "raw"])}
    return st.dictionaries(st.sampled_from(names), values, max_size=6).flatmap(
        lambda d: st.fixed_dictionaries({k: special.get(k, st.just(v)) for k, v in d.items()}))


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_input_models_accept_or_refuse_cleanly(action):
    @FAST
    @given(inputs_for(action))
    def check(raw):
        try:
            action.parse_inputs(raw)
        except AdobotError as error:
            assert error.code == "INVALID_INPUT" and error.message and error.hint
            assert error.exit_code == 2

    check()


expressions = st.text(alphabet="${}[].'\"0123456789abxy_- ", max_size=40)
variables = st.dictionaries(st.sampled_from(["x", "y", "a_b"]), values, max_size=3)


@FAST
@given(expressions, variables)
def test_interpolation_resolves_or_refuses_cleanly(text, env):
    try:
        interpolate(text, env)
    except AdobotError as error:
        assert error.code in ("INVALID_BOT", "INVALID_INPUT")


step_shapes = st.fixed_dictionaries({
    "action": st.sampled_from([a.name for a in ACTIONS] + ["Nope", 3]),
}, optional={"inputs": values, "outputs": values, "on_error": values, "name": values})
loop_shapes = st.fixed_dictionaries({"for_each": values, "steps": st.lists(step_shapes, max_size=2)},
                                    optional={"as": values})
bots = st.fixed_dictionaries({}, optional={
    "name": values, "variables": values, "settings": values,
    "steps": st.lists(step_shapes | loop_shapes, max_size=3) | values})


@FAST
@given(bots | values)
def test_the_loader_builds_a_bot_or_refuses_cleanly(data):
    text = yaml.safe_dump(data)
    try:
        bot = parse_bot(text)
    except AdobotError as error:
        assert error.code == "INVALID_BOT" and error.message
    else:
        assert bot.steps


@FAST
@given(st.text(max_size=200))
def test_the_loader_survives_any_text(text):
    try:
        parse_bot(text)
    except AdobotError as error:
        assert error.code == "INVALID_BOT"


@pytest.fixture(scope="module")
def shared_sandbox():
    with Sandbox() as sandbox:
        yield sandbox


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_whole_runs_never_crash_and_refusals_send_nothing(action, shared_sandbox, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bots")
    runner = Runner(Environment(route=shared_sandbox.route))

    @FAST
    @given(inputs_for(action), variables)
    def check(raw, env):
        before = len(shared_sandbox.state.requests)
        path = folder / "bot.yaml"
        path.write_text(json.dumps({"name": "gen", "settings": {"retry_attempts": 1},
                                    "steps": [{"action": action.name, "inputs": raw}]},
                                   default=str))
        from adobot.runtime.loader import load_bot
        result = runner.run(load_bot(path), env)
        sent = len(shared_sandbox.state.requests) - before
        if result.error:
            assert result.error["code"] in ERROR_CODES and result.error["code"] != "INTERNAL_ERROR"
            if result.exit_code == 2:
                assert sent == 0, result.error
        assert result.requests == sent

    check()
