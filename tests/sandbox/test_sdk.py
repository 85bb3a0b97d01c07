"""Microsoft's own Python SDK (azure-devops 7.1) judges the sandbox: over real HTTP, with the
SDK's own models and location discovery, every route the sandbox serves works as it does against
the service, and a bad token raises the SDK's authentication error.

Patched only where the SDK itself is known to be broken: its pipeline-create model drops ``path``
and ``repository`` (microsoft/azure-devops-python-api#481), so the create uses the subclass the
issue describes, and a test shows the SDK's own model refused as the service refuses it.
"""
from __future__ import annotations

import os
import tempfile

import pytest

# The SDK caches location data on disk at import; keep it out of the user's home.
os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", tempfile.mkdtemp(prefix="adobot-sdk-cache-"))

from azure.devops.connection import Connection  # noqa: E402
from azure.devops.exceptions import (  # noqa: E402
    AzureDevOpsAuthenticationError,
    AzureDevOpsServiceError,
)
from azure.devops.v7_1.git.models import (  # noqa: E402
    GitCommitRef,
    GitPullRequest,
    GitPullRequestSearchCriteria,
    GitPush,
    GitQueryCommitsCriteria,
    GitRefUpdate,
    GitRepositoryCreateOptions,
)
from azure.devops.v7_1.pipelines.models import (  # noqa: E402
    CreatePipelineConfigurationParameters,
    CreatePipelineParameters,
    RepositoryResourceParameters,
    RunPipelineParameters,
    RunResourcesParameters,
)
from azure.devops.v7_1.work_item_tracking.models import (  # noqa: E402
    JsonPatchOperation,
    Wiql,
    WorkItemBatchGetRequest,
)
from azure.devops.v7_1.work_item_tracking.models import TeamContext  # noqa: E402
from msrest.authentication import BasicAuthentication  # noqa: E402

from adobot.sandbox.state import ZERO_ID  # noqa: E402
from tests.conftest import DEMO_PAT  # noqa: E402

YAML = "trigger: none\npool:\n  vmImage: ubuntu-latest\nsteps:\n- script: echo sdk\n"


class YamlPipelineConfiguration(CreatePipelineConfigurationParameters):
    """The workaround for microsoft/azure-devops-python-api#481: the fields the service needs."""

    _attribute_map = {**CreatePipelineConfigurationParameters._attribute_map,
                      "path": {"key": "path", "type": "str"},
                      "repository": {"key": "repository", "type": "object"}}

    def __init__(self, path: str, repository_id: str) -> None:
        super().__init__(type="yaml")
        self.path = path
        self.repository = {"id": repository_id, "type": "azureReposGit"}


def connect(sandbox, token: str = DEMO_PAT) -> Connection:
    return Connection(base_url=sandbox.org_url("contoso"),
                      creds=BasicAuthentication("", token))


@pytest.fixture
def sdk(sandbox):
    return connect(sandbox).clients_v7_1


def test_location_discovery_finds_every_client(sandbox, sdk):
    for client in (sdk.get_core_client(), sdk.get_git_client(),
                   sdk.get_work_item_tracking_client(), sdk.get_pipelines_client()):
        assert client.config.base_url.startswith(sandbox.url)  # no Microsoft host looked up
    hosts = {r["path"] for r in sandbox.state.requests}
    assert "/contoso/_apis/ResourceAreas" in hosts


def test_core_projects(sdk):
    projects = sdk.get_core_client().get_projects()
    assert sorted(p.name for p in projects) == ["Empty", "Payments"]
    project = sdk.get_core_client().get_project("Payments")
    assert project.name == "Payments" and project.default_team.name == "Payments Team"


def test_git_repositories_refs_items_and_pushes(sandbox, sdk):
    git = sdk.get_git_client()
    assert "payments-api" in {r.name for r in git.get_repositories("Payments")}
    created = git.create_repository(GitRepositoryCreateOptions(name="sdk-repo"), "Payments")
    assert created.name == "sdk-repo" and created.default_branch is None
    push = GitPush(ref_updates=[GitRefUpdate(name="refs/heads/main", old_object_id=ZERO_ID)],
                   # GitCommitRef types its changes as [object]: the SDK sends them as given.
                   commits=[GitCommitRef(comment="First", changes=[{
                       "changeType": "add", "item": {"path": "/azure-pipelines.yml"},
                       "newContent": {"content": YAML, "contentType": "rawtext"}}])])
    pushed = git.create_push(push, created.id, "Payments")
    commit = pushed.commits[0].commit_id
    assert pushed.ref_updates[0].new_object_id == commit and pushed.push_id >= 1
    refs = git.get_refs(created.id, "Payments", filter="heads/")
    assert [(r.name, r.object_id) for r in refs] == [("refs/heads/main", commit)]
    assert git.get_repository(created.id, "Payments").default_branch == "refs/heads/main"
    items = git.get_items(created.id, "Payments", scope_path="/", recursion_level="Full")
    assert "/azure-pipelines.yml" in {i.path for i in items}
    stale = GitPush(ref_updates=[GitRefUpdate(name="refs/heads/main", old_object_id=ZERO_ID)],
                    commits=push.commits)
    with pytest.raises(AzureDevOpsServiceError) as caught:
        git.create_push(stale, created.id, "Payments")
    assert "TF401028" in str(caught.value)


def test_pipelines_create_run_get_and_list(sandbox, sdk):
    repository = sdk.get_git_client().get_repository("payments-api", "Payments")
    pipelines = sdk.get_pipelines_client()
    assert {p.name for p in pipelines.list_pipelines("Payments")} >= {"payments-api-ci"}
    created = pipelines.create_pipeline(CreatePipelineParameters(
        name="sdk-ci", folder="\\sdk",
        configuration=YamlPipelineConfiguration("azure-pipelines.yml", repository.id)), "Payments")
    assert created.name == "sdk-ci" and created.folder == "\\sdk"
    run = pipelines.run_pipeline(RunPipelineParameters(resources=RunResourcesParameters(
        repositories={"self": RepositoryResourceParameters(ref_name="refs/heads/main")})),
        "Payments", created.id)
    assert run.state == "inProgress"
    assert pipelines.get_run("Payments", created.id, run.id).id == run.id
    assert [r.id for r in pipelines.list_runs("Payments", created.id)] == [run.id]


def test_the_sdks_own_pipeline_model_is_refused_as_by_the_service(sdk):
    """#481: without path and repository the service answers 'Value cannot be null'."""
    with pytest.raises(AzureDevOpsServiceError) as caught:
        sdk.get_pipelines_client().create_pipeline(CreatePipelineParameters(
            name="x", configuration=CreatePipelineConfigurationParameters(type="yaml")),
            "Payments")
    assert "Value cannot be null" in str(caught.value)


def test_work_item_types_create_get_and_update(sandbox, sdk):
    wit = sdk.get_work_item_tracking_client()
    assert "Task" in {t.name for t in wit.get_work_item_types("Payments")}
    created = wit.create_work_item([JsonPatchOperation(op="add", path="/fields/System.Title",
                                                       value="From the SDK")], "Payments", "Task")
    assert created.rev == 1 and created.fields["System.Title"] == "From the SDK"
    created_date = created.fields["System.CreatedDate"]
    assert "%" not in created_date and created_date.endswith("Z")
    assert wit.get_work_item(created.id).id == created.id
    assert wit.get_work_item(created.id, project="Payments").id == created.id
    updated = wit.update_work_item([JsonPatchOperation(op="replace", path="/fields/System.State",
                                                       value="Active")], created.id, "Payments")
    assert updated.rev == 2 and updated.fields["System.State"] == "Active"
    assert updated.fields["System.Title"] == "From the SDK"


def test_git_commits_and_pull_requests(sandbox, sdk):
    git = sdk.get_git_client()
    commits = git.get_commits("payments-api", GitQueryCommitsCriteria(
        author="Avery", item_path="/src/retry.py"), project="Payments")
    assert [c.comment for c in commits] == ["Retry card captures with exponential backoff"]
    made = git.create_pull_request(GitPullRequest(
        source_ref_name="refs/heads/fix/retry-give-up", target_ref_name="refs/heads/main",
        title="Fix retries"), "payments-api", project="Payments")
    assert made.pull_request_id == 1 and made.status == "active"
    listed = git.get_pull_requests("payments-api", GitPullRequestSearchCriteria(
        source_ref_name="refs/heads/fix/retry-give-up"), project="Payments")
    assert [pr.title for pr in listed] == ["Fix retries"]
    with pytest.raises(AzureDevOpsServiceError) as twice:
        git.create_pull_request(GitPullRequest(
            source_ref_name="refs/heads/fix/retry-give-up", target_ref_name="refs/heads/main",
            title="Again"), "payments-api", project="Payments")
    assert twice.value.type_key == "GitPullRequestExistsException"


def test_wikis_and_pages(sdk):
    wiki = sdk.get_wiki_client()
    assert {w.name for w in wiki.get_all_wikis(project="Payments")} == {"Payments.wiki",
                                                                        "payments-api-docs"}
    page = wiki.get_page("Payments", "Payments.wiki", path="/Runbooks", recursion_level="oneLevel",
                         include_content=True)
    assert page.page.content.startswith("# Runbooks")
    assert [p.path for p in page.page.sub_pages] == ["/Runbooks/Payment failures",
                                                     "/Runbooks/Settlement"]


def test_wiql_and_work_items_batch(sandbox, sdk):
    wit = sdk.get_work_item_tracking_client()
    for title in ("first", "second"):
        wit.create_work_item([JsonPatchOperation(op="add", path="/fields/System.Title",
                                                 value=title)], "Payments", "Bug")
    result = wit.query_by_wiql(Wiql(query="SELECT [System.Id] FROM WorkItems WHERE "
                                          "[System.TeamProject] = @project AND "
                                          "[System.Title] = 'second'"),
                               team_context=TeamContext(project="Payments"))
    assert [w.id for w in result.work_items] == [2]
    items = wit.get_work_items_batch(WorkItemBatchGetRequest(ids=[1, 2], fields=["System.Title"]),
                                     project="Payments")
    assert [i.fields["System.Title"] for i in items] == ["first", "second"]


def test_a_bad_token_raises_the_sdks_authentication_error(sandbox):
    with pytest.raises(AzureDevOpsAuthenticationError):
        connect(sandbox, "not-a-token").clients_v7_1.get_core_client().get_projects()


def test_a_missing_scope_is_the_services_own_error(sandbox):
    with pytest.raises(AzureDevOpsServiceError) as caught:
        connect(sandbox, "sandbox-code-only-pat").clients_v7_1.get_core_client().get_projects()
    assert "TF400813" in str(caught.value)
