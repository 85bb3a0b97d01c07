"""The manifests: fresh, valid JSON Schema (draft 2020-12), complete, and true to the runtime."""
from __future__ import annotations

import json
import subprocess

import pytest
from jsonschema import Draft202012Validator

from adobot.actions import manifest, registry
from adobot.actions.base import ActionInputs
from adobot.errors import ERROR_CODES, AdobotError
from adobot.runtime.loader import load_bot
from tests.conftest import ADOBOT, EXAMPLES, ROOT

MANIFESTS = ROOT / "manifests"
ACTIONS = registry.all_actions()
NAMES = [a.name for a in ACTIONS]


def test_checked_in_manifests_are_not_stale():
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in MANIFESTS.glob("*.json")}
    fresh = manifest.files()
    assert sorted(on_disk) == sorted(fresh), "run `make manifests`"
    for name, text in fresh.items():
        assert on_disk[name] == text, f"manifests/{name} is stale: run `make manifests`"


def load(name: str) -> dict:
    return json.loads((MANIFESTS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", NAMES)
def test_manifest_is_complete_and_valid_json_schema(name):
    data = load(name)
    assert data["package"]["name"] == "adobot" and data["package"]["version"]
    assert data["name"] == name and data["label"] and data["description"]
    assert data["group"] in {"Session", "Repos", "Pipelines", "Boards", "Wiki", "Bots", "Advanced"}
    for part in ("inputs", "outputs"):
        assert data[part]["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(data[part])
    assert data["errors"] and all(e["code"] in ERROR_CODES and e["when"] for e in data["errors"])
    for prop_name, prop in data["inputs"]["properties"].items():
        assert prop.get("description"), f"{name}.{prop_name} has no description"
        assert prop.get("examples"), f"{name}.{prop_name} has no example"


def validator(schema: dict, part: dict | None = None) -> Draft202012Validator:
    """A validator for one property (or the whole schema) that resolves the root's $defs."""
    target = {**(part if part is not None else schema), "$defs": schema.get("$defs", {})}
    return Draft202012Validator(target)


@pytest.mark.parametrize("name", NAMES)
def test_every_example_and_default_validates(name):
    inputs = load(name)["inputs"]
    for prop_name, prop in inputs["properties"].items():
        check = validator(inputs, prop)
        for example in prop["examples"]:
            assert not list(check.iter_errors(example)), (prop_name, example)
        if "default" in prop:
            assert not list(check.iter_errors(prop["default"])), (prop_name, prop["default"])


@pytest.mark.parametrize("name", NAMES)
def test_examples_are_accepted_by_the_runtime_models(name):
    """One source of truth: what the manifest shows, the runtime accepts."""
    action = registry.get(name)
    inputs = load(name)["inputs"]
    whole = {key: inputs["properties"][key]["examples"][0] for key in inputs["properties"]}
    for combination in _one_sign_in_method_each(name, whole):
        assert not list(validator(inputs).iter_errors(combination))
        action.parse_inputs(combination)  # raises if the model disagrees


# Inputs that exclude each other: each group's examples are tried without the others'.
ALTERNATIVES = {
    "GetFile": [{"branch"}, {"tag"}, {"commit"}],
    "ListFiles": [{"branch"}, {"tag"}, {"commit"}],
    "QueryWorkItems": [{"wiql"}, {"type", "state", "assigned_to", "tags", "area_path",
                                  "changed_since"}],
    "InvokeApi": [{"paginate", "max_items"}, {"method", "body", "body_type"}],  # a GET's pages
}


def _one_sign_in_method_each(name: str, whole: dict) -> list[dict]:
    """Connect's inputs of one sign-in method go together, and only with it (and so for the
    alternatives of other actions)."""
    if name in ALTERNATIVES:
        groups = ALTERNATIVES[name]
        return [{key: value for key, value in whole.items()
                 if not any(key in other for other in groups if other is not group)}
                for group in groups]
    if name != "Connect":
        return [whole]
    from adobot.actions.connect import METHOD_INPUTS, METHOD_INPUTS_OF

    exclusive = {"service_principal": {"certificate", "certificate_password"},
                 "managed_identity": {"managed_identity_resource_id"}}
    by_method = [{**{key: value for key, value in whole.items()
                     if key != "connection" and (key not in METHOD_INPUTS or (
                         key in allowed and key not in exclusive.get(method, ())))},
                  "authentication_method": method}
                 for method, allowed in METHOD_INPUTS_OF.items()]
    # A control-room connection holds the organization and the sign-in.
    by_connection = {key: whole[key] for key in ("connection", "project", "session")}
    return by_method + [by_connection]


@pytest.mark.parametrize("name", NAMES)
def test_required_inputs_match_the_model(name):
    action = registry.get(name)
    required = {k for k, f in action.inputs.model_fields.items() if f.is_required()}
    assert set(load(name)["inputs"].get("required", [])) == required
    assert issubclass(action.inputs, ActionInputs)
    assert load(name)["inputs"]["additionalProperties"] is False


def test_credential_and_session_inputs_are_described():
    connect = load("Connect")["inputs"]
    token = connect["properties"]["personal_access_token"]
    assert token["x-credential"]["sources"] == ["credential", "variable", "insecure"]
    assert len(token["anyOf"]) == 4 and {"type": "null"} in token["anyOf"]  # pat only
    insecure = connect["$defs"]["FromInsecure"]["properties"]["insecure"]
    assert insecure["writeOnly"] is True
    for name in ("Connect", "ListRepos", "Disconnect"):
        session = load(name)["inputs"]["properties"]["session"]
        assert session["anyOf"][1]["properties"]["scope"]["enum"] == ["local", "global"]
        assert "global" in session["anyOf"][1]["properties"]["scope"]["description"]


def test_naming_rules_are_in_the_schemas():
    project = load("Connect")["inputs"]["properties"]["project"]
    check = validator(load("Connect")["inputs"], project)
    assert not list(check.iter_errors("Payments"))
    for bad in ("a/b", "_x", "x.", "y" * 65, ""):
        assert list(check.iter_errors(bad)), bad
    priority = load("CreateWorkItem")["inputs"]["properties"]["priority"]
    assert priority["anyOf"][0].items() >= {"minimum": 1, "maximum": 4}.items()


def test_index_lists_every_action():
    data = load("index")
    assert [a["name"] for a in data["actions"]] == NAMES
    assert all((MANIFESTS / a["file"]).is_file() for a in data["actions"])


def literal_inputs(value):
    """Inputs as written in a bot file, minus those that depend on ${...} (known at run time)."""
    return {k: v for k, v in value.items() if "${" not in json.dumps(v)}


def _required_but_given(error, given) -> bool:
    """A "required" error for an input the step gives as ${...} (or one alternative of
    several, Connect's organization_url or connection, so refused)."""
    if error.validator == "anyOf":
        return any(_required_but_given(inner, given) for inner in error.context)
    return error.validator == "required" and any(f"'{k}' is a required" in error.message
                                                 for k in given)


@pytest.mark.parametrize("bot", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_example_bots_validate_against_the_manifests(bot):
    for step in load_bot(EXAMPLES / bot).all_steps():
        if step.action is None:
            continue
        schema = load(step.action)["inputs"]
        literal = literal_inputs(step.inputs)
        errors = [e for e in validator(schema).iter_errors(literal)
                  if not _required_but_given(e, step.inputs)]
        assert not errors, (bot, step.path, [e.message for e in errors])


def test_manifest_commands():
    one = subprocess.run([str(ADOBOT), "manifest", "Connect"], capture_output=True, text=True)
    assert one.returncode == 0 and json.loads(one.stdout) == load("Connect")
    every = subprocess.run([str(ADOBOT), "manifest", "--all"], capture_output=True, text=True)
    assert [m["name"] for m in json.loads(every.stdout)] == NAMES
    unknown = subprocess.run([str(ADOBOT), "manifest", "Conect"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "Did you mean 'Connect'?" in unknown.stderr


def test_manifest_write(tmp_path):
    (tmp_path / "Stale.json").write_text("{}")
    done = subprocess.run([str(ADOBOT), "manifest", "--write", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(manifest.files())


def test_schema_errors_match_runtime_errors():
    """A value the schema refuses, the runtime refuses too (and the other way round)."""
    cases = {"CreateWorkItem": [{"type": "Task", "title": "x", "priority": 5},
                                {"type": "Task", "title": "x", "extra": 1},
                                {"type": "Task"}],
             "QueueRun": [{"pipeline": 0}, {"pipeline": 1, "timeout_seconds": 0}],
             "CreateRepo": [{"name": "a/b"}, {"name": ""}]}
    for name, values in cases.items():
        schema = load(name)["inputs"]
        for value in values:
            assert list(validator(schema).iter_errors(value)), value
            with pytest.raises(AdobotError):
                registry.get(name).parse_inputs(value)


# What each action does to Azure DevOps, as a designer, a read-only mode and MCP hints read it.
EFFECTS = {"Connect": (True, True), "ListRepos": (True, True), "ReadCsv": (True, True),
           "Disconnect": (True, True), "CreateRepo": (False, True), "PushFiles": (False, False),
           "CreatePipeline": (False, True), "QueueRun": (False, False),
           "CreateWorkItem": (False, False), "RunBot": (False, False),
           "ListRuns": (True, True), "ListCommits": (True, True), "ListFiles": (True, True),
           "GetFile": (True, True), "SearchCode": (True, True), "GetWikiPage": (True, True),
           "SearchWiki": (True, True), "CreatePullRequest": (False, True),
           "QueryWorkItems": (True, True), "UpdateWorkItem": (False, False),
           "InvokeApi": (False, False)}  # it may send any method


@pytest.mark.parametrize("name", NAMES)
def test_every_manifest_says_what_its_action_changes(name):
    data = load(name)
    assert (data["read_only"], data["idempotent"]) == EFFECTS[name]
    assert data["destructive"] is (name in ("PushFiles", "UpdateWorkItem", "InvokeApi"))
    action = registry.get(name)
    assert (action.read_only, action.idempotent) == EFFECTS[name]


def test_secret_inputs_are_marked_wherever_they_are_declared():
    from adobot.credentials.sources import credential_inputs

    for action in ACTIONS:
        properties = load(action.name)["inputs"]["properties"]
        marked = {name for name, prop in properties.items() if "x-credential" in prop}
        assert marked == set(credential_inputs(action.inputs)), action.name
