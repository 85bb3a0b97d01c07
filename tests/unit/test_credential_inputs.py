"""Secrets are found by their type, not by the name ``personal_access_token``: an action whose
secret inputs have other names (as Entra sign-in will) gets the same masking everywhere."""
from __future__ import annotations

import json

import pytest
from pydantic import Field

from adobot.actions import registry
from adobot.actions.base import Action, ActionContext, ActionInputs, NoOutputs
from adobot.credentials.sources import Credential, credential_inputs, resolve_token
from adobot.runtime.loader import parse_bot
from adobot.runtime.runner import Runner
from adobot.runtime.validate import validate_file

CANARY = "canary-client-secret-51c2e8"


class Inputs(ActionInputs):
    tenant: str = Field(min_length=1)
    client_secret: Credential
    certificate_password: Credential | None = None


def _run(ctx: ActionContext, inputs: Inputs) -> NoOutputs:
    secret = resolve_token(inputs.client_secret, ctx.variables, ctx.vault, field="client_secret",
                           organization="https://dev.azure.com/contoso")
    ctx.register_secret(secret)
    return NoOutputs()


ACTION = Action(name="SignIn", label="Sign in", description="test", group="Session",
                inputs=Inputs, outputs=NoOutputs, run=_run, errors={}, read_only=True,
                idempotent=True)


@pytest.fixture(autouse=True)
def sign_in_action(monkeypatch):
    monkeypatch.setitem(registry._MODULES, "SignIn", __name__)


def test_credential_inputs_are_found_by_type_required_or_optional():
    assert credential_inputs(Inputs) == ("client_secret", "certificate_password")
    schema = Inputs.model_json_schema()["properties"]
    assert "x-credential" in schema["client_secret"]
    assert "tenant" not in credential_inputs(Inputs)


BOT = """
name: sign-in
steps:
  - action: SignIn
    inputs:
      tenant: contoso
      client_secret: {variable: sp_secret}
      certificate_password: {insecure: "%s"}
""" % CANARY


def test_the_loader_knows_which_variables_and_values_are_secret():
    bot = parse_bot(BOT)
    assert bot.secret_variables() == {"sp_secret"}
    assert [value for _, value in bot.insecure_secrets()] == [CANARY]
    assert "insecure string" in bot.warnings()[0]


def test_a_run_masks_a_secret_variable_of_any_credential_input():
    result = Runner().run(parse_bot(BOT), {"sp_secret": CANARY + "-var"})
    assert result.status == "succeeded", result.error
    assert result.variables["sp_secret"] == "***"
    assert CANARY not in json.dumps(result.to_dict())


def test_an_input_error_never_echoes_a_secret_of_another_name(tmp_path):
    # A plain string is refused; a non-secret input would be quoted back in the message.
    bad = BOT.replace('{insecure: "%s"}' % CANARY, '"%s"' % CANARY)
    result = Runner().run(parse_bot(bad), {"sp_secret": "x"})
    assert result.error["code"] == "INVALID_INPUT"
    assert "certificate_password" in result.error["message"]
    assert CANARY not in json.dumps(result.to_dict())
    path = tmp_path / "bot.yaml"
    path.write_text(bad)
    findings = [str(f) for f in validate_file(path)]
    assert any("certificate_password" in f for f in findings)
    assert all(CANARY not in f for f in findings)


def test_validate_warns_of_an_undefined_secret_variable_of_any_credential_input(tmp_path):
    path = tmp_path / "bot.yaml"
    path.write_text(BOT)
    warnings = [f for f in validate_file(path) if f.severity == "warning"]
    assert any("token variable 'sp_secret'" in f.message for f in warnings)
    assert any("insecure string" in f.message for f in warnings)
