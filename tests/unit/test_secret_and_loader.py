from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import pytest

from adobot.credentials.secret import Secret
from adobot.errors import AdobotError
from adobot.runtime.loader import load_bot, parse_bot
from adobot.credentials.redact import RedactingFilter, Redactor


def test_secret_never_shows_itself():
    secret = Secret("canary-value-123")
    shown = [str(secret), repr(secret), f"{secret}", f"{secret!r}", "%s" % secret,
             json.dumps({"t": secret}, default=str)]
    assert all("canary-value-123" not in text for text in shown)
    assert secret.reveal() == "canary-value-123"
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(AttributeError):
        secret.x = 1


def test_redacting_filter_masks_messages_and_tracebacks():
    redactor = Redactor()
    redactor.add(Secret("canary-value-123"))
    record = logging.LogRecord("adobot", logging.INFO, __file__, 1, "token %s", ("canary-value-123",), None)
    try:
        raise ValueError("boom canary-value-123")
    except ValueError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    RedactingFilter(redactor).filter(record)
    assert "canary-value-123" not in record.getMessage()
    assert "boom ***" in record.getMessage()


GOOD = """
name: demo
variables: {a: 1}
steps:
  - action: Connect
    inputs: {organization_url: x, project: p, personal_access_token: {variable: pat}}
  - for_each: ${items}
    as: item
    steps:
      - action: ListRepos
        outputs: {count: n}
"""


def test_loader_keeps_lines_paths_and_secret_variables():
    bot = parse_bot(GOOD)
    assert bot.name == "demo" and bot.variables == {"a": 1}
    assert [(s.path, s.line) for s in bot.all_steps()] == [("1", 5), ("2", 7), ("2.1", 10)]
    assert bot.secret_variables() == {"pat"}


@pytest.mark.parametrize("text, said", [
    ("steps: [", "not valid YAML at line"),
    ("name: x\nsteps:\n  - action: ListRepos\n\tinputs: {}\n", "not valid YAML at line 4"),
    ("- a\n- b\n", "must be a mapping"),
    ("name: x\n", "'steps' must be a non-empty list"),
    ("name: x\nsteps: []\n", "non-empty"),
    ("name: x\nstep: []\n", "unknown key 'step'"),
    ("name: x\nsteps:\n  - action: Conect\n", "unknown action 'Conect'"),
    ("name: x\nsteps:\n  - action: ListRepos\n    outputs: {repos: r}\n", "has no output 'repos'"),
    ("name: x\nsteps:\n  - action: ListRepos\n    outputs: {count: 1bad}\n", "must name a variable"),
    ("name: x\nsteps:\n  - action: ListRepos\n    input: {}\n", "unknown key 'input'"),
    ("name: x\nsteps:\n  - action: ListRepos\n    inputs: [1]\n", "'inputs' must be a mapping"),
    ("name: x\nsteps:\n  - inputs: {}\n", "neither 'action' nor 'for_each'"),
    ("name: x\nsteps:\n  - for_each: [1]\n", "non-empty list of 'steps'"),
    ("name: x\nsteps:\n  - for_each: [1]\n    as: 9x\n    steps: [{action: Disconnect}]\n", "'as'"),
    ("name: x\nvariables: {1x: 2}\nsteps:\n  - action: Disconnect\n", "not valid"),
    ("name: x\nvariables: [1]\nsteps:\n  - action: Disconnect\n", "'variables' must be a mapping"),
    ("name: x\nname: y\nsteps:\n  - action: Disconnect\n", "appears twice"),
    ("name: x\nsteps:\n  - 42\n", "must be a mapping"),
])
def test_loader_errors(text, said):
    with pytest.raises(AdobotError) as caught:
        parse_bot(text)
    assert caught.value.code == "INVALID_BOT"
    assert said in caught.value.message


def test_unknown_action_suggests_the_closest():
    with pytest.raises(AdobotError) as caught:
        parse_bot("name: x\nsteps:\n  - action: ListRepo\n")
    assert "ListRepos" in caught.value.hint
    assert "<bot>:3" in caught.value.message


def test_missing_file(tmp_path: Path):
    with pytest.raises(AdobotError) as caught:
        load_bot(tmp_path / "nope.yaml")
    assert caught.value.code == "INVALID_BOT" and "does not exist" in caught.value.message


def test_bots_are_read_by_libyaml_where_pyyaml_has_it_and_json_escapes_still_load():
    import yaml

    from adobot.runtime import loader

    if yaml.__with_libyaml__:  # the wheels this project pins are built with it
        assert loader._Loader.__name__ == "_CLoader"
    # libyaml refuses a character written as a JSON surrogate pair; PyYAML reads it again.
    bot = parse_bot('{"name": "x", "variables": {"t": "\\ud83d\\ude00 ok"}, '
                    '"steps": [{"action": "Disconnect"}]}')
    assert bot.variables["t"].endswith(" ok")
    with pytest.raises(AdobotError, match="anchors and aliases"):
        parse_bot("name: x\nvariables: {a: &v 1, b: *v}\nsteps: [{action: Disconnect}]\n")
