from __future__ import annotations

import pytest

from adobot.credentials.secret import Secret
from adobot.errors import AdobotError
from adobot.runtime.interpolate import interpolate

VARS = {"org": "contoso", "n": 3, "repos": [{"name": "api", "tags": ["a", "b"]}, {"name": "web"}],
        "cfg": {"x-y": 1, "deep": {"k": "v"}}, "nothing": None, "pat": Secret("s3cret-token")}


@pytest.mark.parametrize("value, expected", [
    ("${n}", 3),
    ("${repos}", VARS["repos"]),
    ("${repos[0].name}", "api"),
    ("${repos[-1].name}", "web"),
    ("${repos[0].tags[1]}", "b"),
    ("${cfg.deep.k}", "v"),
    ("${cfg['x-y']}", 1),
    ("${ n }", 3),
    ("https://dev.azure.com/${org}", "https://dev.azure.com/contoso"),
    ("${n} repos", "3 repos"),
    ("list: ${repos[0].tags}", 'list: ["a", "b"]'),
    ("none:${nothing}", "none:"),
    ("cost $${n}", "cost ${n}"),
    ("no braces $n", "no braces $n"),
    (["${org}", {"k": "${n}"}], ["contoso", {"k": 3}]),
    (7, 7),
])
def test_interpolation(value, expected):
    assert interpolate(value, VARS) == expected


def test_whole_secret_stays_a_secret():
    assert isinstance(interpolate("${pat}", VARS), Secret)


@pytest.mark.parametrize("value, code, said", [
    ("${missing}", "INVALID_BOT", "'missing' is not defined"),
    ("x ${missing.a}", "INVALID_BOT", "not defined"),
    ("${1abc}", "INVALID_BOT", "not a variable reference"),
    ("${}", "INVALID_BOT", "not a variable reference"),
    ("${org.name}", "INVALID_INPUT", "not a mapping"),
    ("${repos[5]}", "INVALID_INPUT", "has 2 items"),
    ("${repos.name}", "INVALID_INPUT", "not a mapping"),
    ("${n[0]}", "INVALID_INPUT", "not a list"),
    ("${cfg.nope}", "INVALID_INPUT", "no field 'nope'"),
    ("${org}!!", None, None),
    ("${repos[0]name}", "INVALID_BOT", "unexpected"),
    ("token ${pat}", "INVALID_INPUT", "holds a secret"),
])
def test_interpolation_errors(value, code, said):
    if code is None:
        assert interpolate(value, VARS) == "contoso!!"
        return
    with pytest.raises(AdobotError) as caught:
        interpolate(value, VARS, "inputs.title")
    assert caught.value.code == code
    assert said in caught.value.message
    assert "inputs.title" in caught.value.message
    assert "s3cret-token" not in caught.value.message
