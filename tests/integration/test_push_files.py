"""PushFiles over real HTTP against the sandbox, and the runs the service refuses without the
branch or the YAML file: a bot green here is green on a real organization."""
from __future__ import annotations

import base64

import pytest

from adobot.sandbox.state import ZERO_ID
from tests.conftest import CONNECT_BOT, DEMO_PAT, run_text

YAML = "trigger: [main]\npool: {vmImage: ubuntu-latest}\nsteps:\n- script: echo hi\n"


def bot(*steps: str) -> str:
    return CONNECT_BOT + "".join(steps)


def push(repository: str, files: str, **extra: str) -> str:
    more = "".join(f"      {k}: {v}\n" for k, v in extra.items())
    return (f"  - action: PushFiles\n    inputs:\n      repository: {repository}\n"
            f"      files: {files}\n{more}    outputs: {{commit: commit, branch: branch, "
            "created_branch: created, added: added, updated: updated}\n")


def new_repo(name: str = "svc") -> str:
    return f"  - action: CreateRepo\n    inputs: {{name: {name}}}\n"


def ok(result) -> dict:
    assert result.status == "succeeded", result.error
    return result.variables


def failed(result, code: str) -> dict:
    assert result.status == "failed" and result.error["code"] == code, result.error
    return result.error


def test_a_first_push_creates_the_branch_and_makes_it_the_default(sandbox):
    files = '[{path: azure-pipelines.yml, content: "%s"}]' % YAML.replace("\n", "\\n")
    result = run_text(bot(new_repo(), push("svc", files)), sandbox, pat=DEMO_PAT)
    variables = ok(result)
    assert variables["branch"] == "refs/heads/main" and variables["created"] is True
    assert variables["added"] == ["/azure-pipelines.yml"] and variables["updated"] == []
    # The session created the repository: it knows it is empty, so the push is all it sends.
    assert [s.requests for s in result.steps] == [2, 1, 1]
    repo = sandbox.state.organization("contoso").project("Payments").repository("svc")
    assert repo.default_branch == "refs/heads/main"
    tip = repo.tip("refs/heads/main")
    assert tip.id == variables["commit"]["id"] and tip.parents == []
    assert tip.files == {"/azure-pipelines.yml": YAML.encode()}
    sent = [r for r in sandbox.state.requests if r["path"].endswith("/pushes")]
    assert len(sent) == 1 and sent[0]["query"] == {"api-version": "7.1"}


def test_a_later_push_builds_on_the_branch_and_refuses_existing_paths(sandbox):
    readme = "[{path: README.md, content: changed}]"
    error = failed(run_text(bot(push("payments-api", readme)), sandbox, pat=DEMO_PAT),
                   "ALREADY_EXISTS")
    assert "/README.md" in error["message"] and "nothing was pushed" in error["message"]
    assert not [r for r in sandbox.state.requests if r["path"].endswith("/pushes")]
    variables = ok(run_text(bot(push("payments-api", readme, if_exists="overwrite")), sandbox,
                            pat=DEMO_PAT))
    assert variables["updated"] == ["/README.md"] and variables["created"] is False
    repo = sandbox.state.organization("contoso").project("Payments").repository("payments-api")
    tip = repo.tip("refs/heads/main")
    assert tip.files["/README.md"] == b"changed" and "/src/retry.py" in tip.files
    assert len(tip.parents) == 1 and tip.parents[0] in repo.commits


def test_a_new_branch_starts_from_the_default_branch_or_from_branch(sandbox):
    files = '[{path: notes.txt, content: "n"}]'
    variables = ok(run_text(bot(push("payments-api", files, branch="feature/x")), sandbox,
                            pat=DEMO_PAT))
    repo = sandbox.state.organization("contoso").project("Payments").repository("payments-api")
    assert variables["created"] is True
    assert repo.tip("refs/heads/feature/x").parents == [repo.branches["refs/heads/main"]]
    error = failed(run_text(bot(push("payments-api", files, branch="feature/y",
                                     from_branch="nope")), sandbox, pat=DEMO_PAT), "NOT_FOUND")
    assert "refs/heads/nope" in error["message"]


def test_binary_content_and_bad_paths(sandbox):
    data = base64.b64encode(b"\x89PNG\x00\x01").decode()
    files = f"[{{path: img/logo.png, content: '{data}', encoding: base64}}]"
    ok(run_text(bot(new_repo(), push("svc", files)), sandbox, pat=DEMO_PAT))
    repo = sandbox.state.organization("contoso").project("Payments").repository("svc")
    assert repo.tip("refs/heads/main").files["/img/logo.png"] == b"\x89PNG\x00\x01"
    for bad in ("[{path: ../x, content: a}]", "[{path: a, content: b}, {path: a, content: c}]",
                "[{path: x, content: '!!', encoding: base64}]", "[]"):
        failed(run_text(bot(push("svc", bad)), sandbox, pat=DEMO_PAT), "INVALID_INPUT")


def test_a_missing_repository_and_a_token_that_may_not_write(sandbox):
    files = "[{path: a, content: b}]"
    failed(run_text(bot(push("nope", files)), sandbox, pat=DEMO_PAT), "NOT_FOUND")
    error = failed(run_text(bot(push("payments-api", "[{path: new.txt, content: b}]")), sandbox,
                            pat="sandbox-code-read-pat"), "PERMISSION_DENIED")
    assert "Code (Read & write)" in error["message"]


def test_a_stale_push_is_a_conflict_and_changes_nothing(sandbox, monkeypatch):
    """The branch moves between the read and the push (another client pushed first)."""
    repo = sandbox.state.organization("contoso").project("Payments").repository("payments-api")
    before = repo.branches["refs/heads/main"]
    take = sandbox.state.faults.take

    def another_push_lands_first(method: str, path: str):
        if method == "POST" and path.endswith("/pushes"):
            other = repo.commit({"/other": b"x"}, [before], "other", "x", "x@x", "t")
            repo.branches["refs/heads/main"] = other.id
        return take(method, path)

    monkeypatch.setattr(sandbox.state.faults, "take", another_push_lands_first)
    error = failed(run_text(bot(push("payments-api", "[{path: new.txt, content: b}]")),
                            sandbox, pat=DEMO_PAT), "CONFLICT")
    assert "moved on" in error["message"] and "TF401028" in error["message"]
    assert "/new.txt" not in repo.tip("refs/heads/main").files


# --- runs need the branch and the YAML file, as on the service --------------------------------

def pipeline_on(repo: str) -> str:
    return (f"  - action: CreatePipeline\n    inputs: {{name: {repo}-ci, repository: {repo}}}\n"
            "    outputs: {pipeline: pipeline}\n")


QUEUE = "  - action: QueueRun\n    inputs: {pipeline: '${pipeline.id}', branch: %s}\n"


def test_a_run_on_an_empty_repository_is_refused(sandbox):
    error = failed(run_text(bot(new_repo(), pipeline_on("svc"), QUEUE % "main"), sandbox,
                            pat=DEMO_PAT), "INVALID_INPUT")
    assert "refs/heads/main" in error["message"] and error["path"] == "4"
    assert not sandbox.state.queued_runs()


def test_a_run_on_a_missing_branch_or_without_the_yaml_is_refused(sandbox):
    files = "[{path: other.yml, content: 'steps: []'}]"
    steps = [new_repo(), push("svc", files), pipeline_on("svc")]
    error = failed(run_text(bot(*steps, QUEUE % "nope"), sandbox, pat=DEMO_PAT),
                   "INVALID_INPUT")
    assert "refs/heads/nope" in error["message"]
    sandbox_state_runs = sandbox.state.queued_runs()
    error = failed(run_text(bot(*[s.replace("svc", "svc2") for s in steps], QUEUE % "main"),
                            sandbox, pat=DEMO_PAT), "INVALID_INPUT")
    assert "/azure-pipelines.yml not found" in error["message"]
    assert sandbox.state.queued_runs() == sandbox_state_runs == {}


@pytest.mark.parametrize("parameters, refused", [
    ({"environment": "prod"}, None),
    ({"region": "x"}, "Unexpected parameter 'region'"),
])
def test_parameters_are_checked_against_the_yaml(sandbox, parameters, refused):
    step = ("  - action: QueueRun\n    inputs: {pipeline: payments-api-ci, "
            f"template_parameters: {parameters}}}\n")
    result = run_text(bot(step), sandbox, pat=DEMO_PAT)
    if refused is None:
        ok(result)
    else:
        assert refused in failed(result, "INVALID_INPUT")["message"]


def test_the_sandbox_refuses_template_parameters_that_are_not_text(sandbox):
    import requests

    response = requests.post(
        f"{sandbox.url}/contoso/Payments/_apis/pipelines/1/runs", params={"api-version": "7.1"},
        json={"templateParameters": {"environment": 3}}, auth=("", DEMO_PAT),
        headers={"X-TFS-FedAuthRedirect": "Suppress"}, timeout=10)
    assert response.status_code == 400 and not sandbox.state.queued_runs()


def test_zero_id_is_forty_zeros():
    assert ZERO_ID == "0" * 40


def test_after_a_conflict_on_a_new_repository_the_next_push_reads_the_branch(sandbox,
                                                                            monkeypatch):
    """The session knows the repository it created is empty, until a push says otherwise."""
    take = sandbox.state.faults.take
    raced: list[bool] = []

    def another_push_lands_first(method: str, path: str):
        repo = sandbox.state.organization("contoso").project("Payments").repository("svc")
        if method == "POST" and path.endswith("/pushes") and not raced:
            raced.append(True)
            other = repo.commit({"/other": b"x"}, [], "other", "x", "x@x", "t")
            repo.branches["refs/heads/main"] = other.id
        return take(method, path)

    monkeypatch.setattr(sandbox.state.faults, "take", another_push_lands_first)
    first = push("svc", "[{path: a.txt, content: a}]").replace(
        "  - action: PushFiles\n", "  - action: PushFiles\n    on_error: continue\n")
    result = run_text(bot(new_repo(), first, push("svc", "[{path: b.txt, content: b}]")),
                      sandbox, pat=DEMO_PAT)
    assert result.status == "succeeded", result.error
    assert [f["code"] for f in result.failures] == ["CONFLICT"]
    assert [s.requests for s in result.steps] == [2, 1, 1, 3]  # then: branches, paths, push
    repo = sandbox.state.organization("contoso").project("Payments").repository("svc")
    assert set(repo.tip("refs/heads/main").files) == {"/other", "/b.txt"}
