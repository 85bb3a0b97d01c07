"""The sandbox answers as the real service does: shapes of the captured examples (same keys,
same JSON types), error bodies, authentication failures, api-version rules, keep-alive."""
from __future__ import annotations

import base64
import json
import socket

import pytest
import requests

from adobot.sandbox import Sandbox
from tests.conftest import DEMO_PAT, ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "ado-rest"
SHARED_SPEC = ROOT.parent / "shared" / "ado-rest" / "spec"
VENDORED = {
    "git/GET__git_repositories.json": "git/7.1/httpExamples/repositories/GET__git_repositories.json",
    "git/GET__git_repositories__repositoryId_.json":
        "git/7.1/httpExamples/repositories/GET__git_repositories__repositoryId_.json",
    "git/POST__git_repositories.json": "git/7.1/httpExamples/repositories/POST__git_repositories.json",
    "git/POST__git_repositories__tempRepoId__pushes2.json":
        "git/7.1/httpExamples/pushes/POST__git_repositories__tempRepoId__pushes2.json",
    "git/GET__git_repositories__repositoryId__refs_heads.json":
        "git/7.1/httpExamples/refs/GET__git_repositories__repositoryId__refs_heads.json",
    "core/GET__projects.json": "core/7.1/httpExamples/projects/GET__projects.json",
    "wit/POST__wit_workitems_create.json":
        "wit/7.1/httpExamples/workItems/POST__wit_workitems_create.json",
    "pipelines/pipelines.json": "pipelines/7.1/pipelines.json",
}
ERROR_KEYS = {"$id": str, "innerException": type(None), "message": str, "typeName": str,
              "typeKey": str, "errorCode": int, "eventId": int}


def example(name: str) -> dict:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8-sig"))
    return next(iter(data["responses"].values()))["body"]


def assert_same_shape(expected, actual, where="body"):
    """Every key of the captured example is present with the same JSON type."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {type(actual).__name__}, expected an object"
        for key, value in expected.items():
            assert key in actual, f"{where}: key {key!r} missing"
            assert_same_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list"
        assert actual, f"{where}: empty list, the example has items"
        for item in actual:
            assert_same_shape(expected[0], item, f"{where}[]")
    elif isinstance(expected, bool):
        assert isinstance(actual, bool), where
    elif isinstance(expected, (int, float)):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), where
    else:
        assert isinstance(actual, type(expected)), f"{where}: {type(actual).__name__}"


@pytest.fixture
def http(sandbox):
    session = requests.Session()
    token = base64.b64encode(f":{DEMO_PAT}".encode()).decode()
    session.headers.update({"Authorization": f"Basic {token}", "X-TFS-FedAuthRedirect": "Suppress"})
    yield session
    session.close()


def get(http, sandbox, path, **params):
    return http.get(f"{sandbox.url}/contoso/{path}", params={"api-version": "7.1", **params})


def test_vendored_examples_match_shared_where_present():
    if not SHARED_SPEC.is_dir():
        pytest.skip("../shared/ado-rest is not beside this clone (it is in CI)")
    for vendored, original in VENDORED.items():
        assert (FIXTURES / vendored).read_bytes() == (SHARED_SPEC / original).read_bytes(), vendored


def test_list_repositories_matches_the_example(sandbox, http):
    response = get(http, sandbox, "Payments/_apis/git/repositories")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    expected = example("git/GET__git_repositories.json")
    assert_same_shape({k: v for k, v in expected.items()}, body)
    assert body["count"] == len(body["value"]) == 4
    # The 7.1 fields the fact sheet lists beside the example's
    for key in ("sshUrl", "webUrl", "size", "isDisabled"):
        assert key in body["value"][0]


def test_get_repository_matches_the_example(sandbox, http):
    listed = get(http, sandbox, "Payments/_apis/git/repositories").json()["value"][0]
    for key in (listed["id"], listed["name"], listed["name"].upper()):
        response = get(http, sandbox, f"Payments/_apis/git/repositories/{key}")
        assert response.status_code == 200
        assert_same_shape(example("git/GET__git_repositories__repositoryId_.json"), response.json())


def test_list_projects_matches_the_example(sandbox, http):
    body = get(http, sandbox, "_apis/projects").json()
    assert_same_shape(example("core/GET__projects.json"), body)


def test_get_project_has_the_reference_fields(sandbox, http):
    body = get(http, sandbox, "_apis/projects/Payments").json()
    listed = example("core/GET__projects.json")["value"][1]
    assert_same_shape(listed, body)
    assert set(body["_links"]) == {"self", "collection", "web"}


def test_connection_data_names_the_user(sandbox, http):
    response = http.get(f"{sandbox.url}/contoso/_apis/connectionData",
                        params={"api-version": "7.1-preview.1"})
    user = response.json()["authenticatedUser"]
    assert user["providerDisplayName"] == "Sandbox Demo User"
    assert {"id", "descriptor", "subjectDescriptor", "properties"} <= set(user)
    assert response.json()["deploymentType"] == "hosted"


def test_connection_data_refuses_a_bare_release_version(sandbox, http):
    response = http.get(f"{sandbox.url}/contoso/_apis/connectionData", params={"api-version": "7.1"})
    assert response.status_code == 400
    assert response.json()["typeKey"] == "VssInvalidPreviewVersionException"


@pytest.mark.parametrize("version, type_key", [
    ("8.0", "VssVersionOutOfRangeException"), ("banana", "VssInvalidApiVersionException")])
def test_bad_api_versions(sandbox, http, version, type_key):
    response = http.get(f"{sandbox.url}/contoso/_apis/projects", params={"api-version": version})
    assert response.status_code == 400 and response.json()["typeKey"] == type_key


def test_api_version_may_travel_in_accept(sandbox, http):
    response = http.get(f"{sandbox.url}/contoso/_apis/projects",
                        headers={"Accept": "application/json; api-version=9.0"})
    assert response.status_code == 400


def assert_error_body(response, status, type_key, tf_code=None):
    assert response.status_code == status
    body = response.json()
    assert {k: type(v) for k, v in body.items()} == ERROR_KEYS
    assert body["typeKey"] == type_key
    if tf_code:
        assert body["message"].startswith(f"{tf_code}:")


def test_missing_project_is_tf200016(sandbox, http):
    assert_error_body(get(http, sandbox, "_apis/projects/Nope"), 404,
                      "ProjectDoesNotExistWithNameException", "TF200016")
    assert_error_body(get(http, sandbox, "Nope/_apis/git/repositories"), 404,
                      "ProjectDoesNotExistWithNameException", "TF200016")


def test_missing_repository_is_tf401019(sandbox, http):
    assert_error_body(get(http, sandbox, "Payments/_apis/git/repositories/nope"), 404,
                      "GitRepositoryNotFoundException", "TF401019")


def test_bad_token_is_401_with_challenge_and_no_body(sandbox):
    """An unknown token gets a bare 401 (no JSON error document: the message travels in
    X-TFS-ServiceError), which is why Microsoft's SDK raises its authentication error."""
    response = requests.get(f"{sandbox.url}/contoso/_apis/projects",
                            headers={"X-TFS-FedAuthRedirect": "Suppress"},
                            auth=("", "wrong-token"))
    assert response.status_code == 401 and response.content == b""
    assert "Basic" in response.headers["WWW-Authenticate"]
    assert "TF400813" in requests.utils.unquote(response.headers["X-TFS-ServiceError"])


def test_without_suppress_a_bad_token_ends_on_a_203_sign_in_page(sandbox):
    response = requests.get(f"{sandbox.url}/contoso/_apis/projects", auth=("", "wrong-token"))
    assert response.history and response.history[0].status_code == 302
    assert response.status_code == 203
    assert response.headers["Content-Type"].startswith("text/html")


def test_expired_token(sandbox):
    response = requests.get(f"{sandbox.url}/contoso/_apis/projects", auth=("", "sandbox-expired-pat"),
                            headers={"X-TFS-FedAuthRedirect": "Suppress"})
    assert_error_body(response, 401, "AccessCheckException")
    assert "expired" in response.json()["message"]


def test_missing_scope_is_401_tf400813_not_authorized(sandbox):
    response = requests.get(f"{sandbox.url}/contoso/Payments/_apis/git/repositories",
                            auth=("", "sandbox-work-only-pat"),
                            headers={"X-TFS-FedAuthRedirect": "Suppress"})
    assert_error_body(response, 401, "UnauthorizedRequestException", "TF400813")
    assert "is not authorized to access this resource" in response.json()["message"]


def test_bearer_tokens_work_too(sandbox):
    response = requests.get(f"{sandbox.url}/contoso/_apis/projects",
                            headers={"Authorization": f"Bearer {DEMO_PAT}"})
    assert response.status_code == 200


def test_tokens_can_be_limited_to_organizations():
    seed = {"organizations": {"one": {"projects": []}, "two": {"projects": []}},
            "tokens": [{"token": "only-one", "organizations": ["one"]}]}
    with Sandbox(seed=seed) as sb:
        ok = requests.get(f"{sb.url}/one/_apis/projects", auth=("", "only-one"))
        refused = requests.get(f"{sb.url}/two/_apis/projects", auth=("", "only-one"),
                               headers={"X-TFS-FedAuthRedirect": "Suppress"})
    assert ok.status_code == 200 and refused.status_code == 401


def test_unknown_route_and_method(sandbox, http):
    assert get(http, sandbox, "_apis/nothing-here").status_code == 404
    response = http.post(f"{sandbox.url}/contoso/_apis/connectionData", json={},
                         params={"api-version": "7.1-preview.1"})
    assert response.status_code == 405


def test_keep_alive_reuses_one_connection(sandbox, http):
    ports = set()
    for _ in range(5):
        response = http.get(f"{sandbox.url}/contoso/_apis/projects", params={"api-version": "7.1"},
                            stream=True)
        ports.add(response.raw._connection.sock.getsockname()[1])
        response.content  # noqa: B018 - read the body so the connection returns to the pool
    assert len(ports) == 1


def test_each_response_is_one_write(sandbox):
    """Headers and body leave in one send, so no delayed-ACK stall between them."""
    host, port = sandbox.url.removeprefix("http://").split(":")
    token = base64.b64encode(f":{DEMO_PAT}".encode()).decode()
    request = (f"GET /contoso/_apis/projects?api-version=7.1 HTTP/1.1\r\nHost: {host}\r\n"
               f"Authorization: Basic {token}\r\n\r\n").encode()
    with socket.create_connection((host, int(port))) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        while len(body) < length:
            body += conn.recv(65536)
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["count"] == 2


def test_handler_writes_once(monkeypatch, sandbox, http):
    from adobot.sandbox import server

    writes = []
    original = server.Handler._send

    def counting_send(self, *args, **kwargs):
        real_write = self.wfile.write
        self.wfile.write = lambda data: (writes.append(len(data)), real_write(data))[1]
        try:
            return original(self, *args, **kwargs)
        finally:
            self.wfile.write = real_write

    monkeypatch.setattr(server.Handler, "_send", counting_send)
    assert get(http, sandbox, "Payments/_apis/git/repositories").status_code == 200
    assert get(http, sandbox, "_apis/projects/Nope").status_code == 404
    assert len(writes) == 2


def test_stop_closes_the_port_and_idle_connections():
    sb = Sandbox().start()
    url = sb.url
    session = requests.Session()
    assert session.get(f"{url}/contoso/_apis/projects", auth=("", DEMO_PAT)).status_code == 200
    sb.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/contoso/_apis/projects", timeout=2)
    session.close()


def test_requests_are_recorded_without_credentials(sandbox, http):
    get(http, sandbox, "_apis/projects")
    entry = sandbox.state.requests[-1]
    assert entry["path"] == "/contoso/_apis/projects" and entry["authorized"] is True
    assert DEMO_PAT not in json.dumps(entry)


def spec_properties(definition: str) -> set[str]:
    """Properties of a definition in pipelines.json, with those of the ones it extends."""
    spec = json.loads((FIXTURES / "pipelines" / "pipelines.json").read_text(encoding="utf-8-sig"))
    found: set[str] = set()
    pending = [spec["definitions"][definition]]
    while pending:
        item = pending.pop()
        found |= set(item.get("properties", {}))
        pending += [spec["definitions"][ref["$ref"].rsplit("/", 1)[-1]] for ref in item.get("allOf", [])]
    return found


def test_create_repository_matches_the_example(sandbox, http):
    response = http.post(f"{sandbox.url}/contoso/Payments/_apis/git/repositories",
                         params={"api-version": "7.1"},
                         json={"name": "AnotherRepository", "project": {"id": "x"}})
    assert response.status_code == 201
    assert_same_shape(example("git/POST__git_repositories.json"), response.json())
    again = http.post(f"{sandbox.url}/contoso/Payments/_apis/git/repositories",
                      params={"api-version": "7.1"}, json={"name": "anotherrepository"})
    assert_error_body(again, 409, "GitRepositoryNameAlreadyExistsException", "TF400948")


def test_writes_need_an_api_version(sandbox, http):
    response = http.post(f"{sandbox.url}/contoso/Payments/_apis/git/repositories",
                         json={"name": "x"})
    assert_error_body(response, 400, "VssVersionNotSpecifiedException")


def test_create_work_item_matches_the_example(sandbox, http):
    response = http.post(f"{sandbox.url}/contoso/Payments/_apis/wit/workitems/$Task",
                         params={"api-version": "7.1"},
                         headers={"Content-Type": "application/json-patch+json"},
                         data=json.dumps([{"op": "add", "path": "/fields/System.Title",
                                           "from": None, "value": "Sample task"}]))
    assert response.status_code == 200
    assert_same_shape(example("wit/POST__wit_workitems_create.json"), response.json())


def test_work_items_need_json_patch(sandbox, http):
    response = http.post(f"{sandbox.url}/contoso/Payments/_apis/wit/workitems/$Task",
                         params={"api-version": "7.1"}, json=[])
    assert_error_body(response, 400, "VssRequestContentTypeNotSupportedException")


def test_unknown_work_item_type_is_vs402323(sandbox, http):
    response = http.post(f"{sandbox.url}/contoso/Payments/_apis/wit/workitems/$Tsk",
                         params={"api-version": "7.1"},
                         headers={"Content-Type": "application/json-patch+json"}, data="[]")
    assert_error_body(response, 404, "WorkItemTypeNotFoundException", "VS402323")


def test_work_item_types_have_the_example_keys(sandbox, http):
    body = get(http, sandbox, "Payments/_apis/wit/workitemtypes").json()
    # The keys of the first type in wit/7.1/httpExamples/workItemTypes/GET__wit_workItemTypes.json
    # (480 KB, not vendored).
    assert set(body["value"][0]) == {"name", "referenceName", "description", "color", "icon",
                                     "isDisabled", "xmlForm", "fields", "fieldInstances",
                                     "transitions", "url"}
    assert body["count"] == len(body["value"])


def test_pipelines_and_runs_use_the_spec_fields(sandbox, http):
    listed = get(http, sandbox, "Payments/_apis/pipelines").json()
    assert set(listed) == {"count", "value"}
    pipeline = listed["value"][0]
    assert set(pipeline) <= spec_properties("Pipeline")
    assert {"id", "name", "folder", "revision", "url", "_links"} <= set(pipeline)
    full = get(http, sandbox, f"Payments/_apis/pipelines/{pipeline['id']}").json()
    assert set(full) <= spec_properties("Pipeline") and full["configuration"]["type"] == "yaml"
    run = http.post(f"{sandbox.url}/contoso/Payments/_apis/pipelines/{pipeline['id']}/runs",
                    params={"api-version": "7.1"}, json={}).json()
    assert set(run) <= spec_properties("Run")
    assert run["state"] == "inProgress" and "result" not in run
    assert set(run["pipeline"]) <= spec_properties("PipelineReference")
    for _ in range(2):
        polled = get(http, sandbox, f"Payments/_apis/pipelines/{pipeline['id']}/runs/{run['id']}").json()
    assert polled["state"] == "completed" and polled["result"] in ("succeeded", "failed")
    assert "finishedDate" in polled


def test_pipeline_list_pages_with_continuation_tokens(sandbox, http):
    first = get(http, sandbox, "Payments/_apis/pipelines", **{"$top": 1})
    token = first.headers["x-ms-continuationtoken"]
    second = get(http, sandbox, "Payments/_apis/pipelines", **{"$top": 1, "continuationToken": token})
    assert "x-ms-continuationtoken" not in second.headers  # only when more rows exist
    names = [first.json()["value"][0]["name"], second.json()["value"][0]["name"]]
    assert names == sorted(names, key=str.lower) and len(set(names)) == 2


def test_create_pipeline_refusals(sandbox, http):
    url = f"{sandbox.url}/contoso/Payments/_apis/pipelines"
    no_path = http.post(url, params={"api-version": "7.1"},
                        json={"name": "x", "configuration": {"type": "yaml"}})
    assert_error_body(no_path, 400, "ArgumentNullException")
    assert "Parameter name: Path" in no_path.json()["message"]
    designer = http.post(url, params={"api-version": "7.1"},
                         json={"name": "x", "configuration": {"type": "designerJson"}})
    assert_error_body(designer, 400, "UnsupportedConfigurationTypeException")


def test_location_discovery_answers_as_the_sdk_expects(sandbox, http):
    """The azure-devops SDK asks OPTIONS {org}/_apis (no api-version) and the resource areas
    before its first call; the sandbox answers both, so the SDK works against it."""
    options = http.options(f"{sandbox.url}/contoso/_apis")
    assert options.status_code == 200
    locations = {loc["id"]: loc for loc in options.json()["value"]}
    git = locations["225f7195-f9c7-4d14-ab28-a83f7ff77e1f"]
    assert git["routeTemplate"] == "{project}/_apis/{area}/{resource}/{repositoryId}"
    assert {"area", "resourceName", "maxVersion", "minVersion", "releasedVersion"} <= set(git)
    areas = http.get(f"{sandbox.url}/contoso/_apis/resourceAreas",
                     headers={"Accept": "application/json;api-version=7.1-preview.1"}).json()
    assert {a["name"] for a in areas["value"]} == {"core", "git", "wit", "wiki"}  # core: get_core_client()
    assert all(a["locationUrl"] == f"{sandbox.url}/contoso" for a in areas["value"])


def test_a_push_and_the_refs_match_the_examples(sandbox, http):
    """A second push (its commit has a parent, as in the captured example) and the branches."""
    api = f"{sandbox.url}/contoso/Payments/_apis/git/repositories/payments-api"
    refs = http.get(f"{api}/refs", params={"api-version": "7.1", "filter": "heads/"})
    assert refs.status_code == 200
    assert_same_shape(example("git/GET__git_repositories__repositoryId__refs_heads.json"),
                      refs.json())
    main = next(r["objectId"] for r in refs.json()["value"] if r["name"] == "refs/heads/main")
    pushed = http.post(f"{api}/pushes", params={"api-version": "7.1"}, json={
        "refUpdates": [{"name": "refs/heads/main", "oldObjectId": main}],
        "commits": [{"comment": "Add tasks.", "changes": [{
            "changeType": "add", "item": {"path": "/tasks.md"},
            "newContent": {"content": "# Tasks", "contentType": "rawtext"}}]}]})
    assert pushed.status_code == 201
    body = pushed.json()
    assert_same_shape(example("git/POST__git_repositories__tempRepoId__pushes2.json"), body)
    assert body["commits"][0]["parents"] == [main]
    assert body["refUpdates"][0]["oldObjectId"] == main


def test_the_sandbox_can_answer_like_a_distant_service():
    """Issue 15: a latency (with jitter) on every answer, so round trips can be seen."""
    import time

    from adobot.sandbox.state import default_seed

    seed = default_seed()
    seed["latency"] = {"ms": 60, "jitter_ms": 20}
    with Sandbox(seed=seed) as far, requests.Session() as http:
        http.auth = ("", DEMO_PAT)
        taken = []
        for _ in range(5):
            started = time.perf_counter()
            assert http.get(f"{far.url}/contoso/_apis/projects").status_code == 200
            taken.append(time.perf_counter() - started)
    assert min(taken) >= 0.040  # never less than latency - jitter
    with pytest.raises(ValueError):
        Sandbox(latency_ms=10, jitter_ms=20)


def test_pipelines_stay_in_list_order_as_they_are_added(sandbox, http):
    from adobot.sandbox.state import Pipeline

    project = sandbox.state.organization("contoso").project("Payments")
    for n, name in enumerate(["zeta", "Alpha", "mid"]):
        project.add_pipeline(Pipeline(id=100 + n, name=name, folder="\\", repository_id="r",
                                      path="a.yml"))
    names = [p["name"] for p in get(http, sandbox, "Payments/_apis/pipelines").json()["value"]]
    assert names == sorted(names, key=str.lower)
