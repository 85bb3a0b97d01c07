"""The transport alone, with requests-mock: the exact requests sent and every error mapping."""
from __future__ import annotations

import base64
import json

import pytest
import requests

from adobot.credentials.secret import Secret
from adobot.rest.auth import PatAuthorizer
from adobot.rest.client import RestClient, count_requests
from adobot.errors import AdobotError
from adobot.rest.retry import RetryPolicy
from adobot.rest.versions import PREVIEW

BASE = "https://dev.azure.com/contoso"
PAT = "unit-test-pat-0123456789"


class Waits(list):
    """Records the retry policy's sleeps instead of sleeping."""


@pytest.fixture
def waits():
    return Waits()


@pytest.fixture
def client(waits):
    rest = RestClient(BASE, PatAuthorizer(Secret(PAT)), policy=RetryPolicy(sleep=waits.append))
    yield rest
    rest.close()


def error_body(message: str, type_key: str) -> dict:
    return {"$id": "1", "innerException": None, "message": message,
            "typeName": f"Microsoft.Example.{type_key}", "typeKey": type_key,
            "errorCode": 0, "eventId": 3000}


def test_get_sends_auth_version_and_headers(client, requests_mock):
    requests_mock.get(f"{BASE}/p1/_apis/git/repositories", json={"count": 0, "value": []})
    assert client.get("p1/_apis/git/repositories") == {"count": 0, "value": []}
    sent = requests_mock.last_request
    assert sent.method == "GET"
    assert sent.qs == {"api-version": ["7.1"]}
    expected = "Basic " + base64.b64encode(f":{PAT}".encode()).decode()
    assert sent.headers["Authorization"] == expected
    assert sent.headers["X-TFS-FedAuthRedirect"] == "Suppress"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["User-Agent"].startswith("adobot/")
    assert "Content-Type" not in sent.headers
    assert requests_mock.call_count == 1


def test_preview_api_version_and_params(client, requests_mock):
    requests_mock.get(f"{BASE}/_apis/connectionData", json={})
    client.get("_apis/connectionData", api=PREVIEW, params={"a": "1", "b": None})
    assert requests_mock.last_request.qs == {"api-version": ["7.1-preview.1"], "a": ["1"]}


def test_post_sends_json_body_with_content_type(client, requests_mock):
    requests_mock.post(f"{BASE}/p1/_apis/git/repositories", status_code=201, json={"id": "r"})
    assert client.post("p1/_apis/git/repositories", {"name": "x"}) == {"id": "r"}
    sent = requests_mock.last_request
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json() == {"name": "x"}
    assert sent.qs == {"api-version": ["7.1"]}


def test_custom_content_type(client, requests_mock):
    requests_mock.post(f"{BASE}/p1/_apis/wit/workitems/$Task", json={"id": 1})
    client.post("p1/_apis/wit/workitems/$Task", [{"op": "add"}],
                content_type="application/json-patch+json")
    assert requests_mock.last_request.headers["Content-Type"] == "application/json-patch+json"


def test_redirects_are_not_followed(client, requests_mock):
    requests_mock.get(f"{BASE}/_apis/projects/P", status_code=302,
                      headers={"Location": "https://spsprodweu5.vssps.visualstudio.com/_signin"})
    with pytest.raises(AdobotError) as caught:
        client.get("_apis/projects/P")
    assert caught.value.code == "AUTH_FAILED"
    assert requests_mock.call_count == 1


def _raises(client, requests_mock, code, **response):
    requests_mock.get(f"{BASE}/x", **response)
    with pytest.raises(AdobotError) as caught:
        client.get("x", scope="Code (Read)", subject="project 'Payments'")
    error = caught.value
    assert error.code == code, error.message
    assert error.after_request and error.exit_code == 1
    assert error.message and error.hint
    return error


@pytest.mark.parametrize("response, code, said", [
    ({"status_code": 401, "json": error_body(
        "TF400813: Resource not available for anonymous access. Client authentication required.",
        "UnauthorizedRequestException")}, "AUTH_FAILED", "TF400813"),
    ({"status_code": 401, "text": "", "headers": {"WWW-Authenticate": "Basic"}},
     "AUTH_FAILED", "401"),
    ({"status_code": 401, "json": error_body(
        "Access Denied: The Personal Access Token used has expired.", "AccessCheckException")},
     "AUTH_FAILED", "expired"),
    ({"status_code": 401, "json": error_body(
        "TF400813: The user 'abc' is not authorized to access this resource.",
        "UnauthorizedRequestException")}, "PERMISSION_DENIED", "Code (Read)"),
    ({"status_code": 403, "json": error_body("TF401027: You need the Git 'Read' permission.",
                                             "GitNeedsPermissionException")},
     "PERMISSION_DENIED", "TF401027"),
    ({"status_code": 404, "json": error_body(
        "TF200016: The following project does not exist: Payments.",
        "ProjectDoesNotExistWithNameException")}, "NOT_FOUND", "project 'Payments'"),
    ({"status_code": 409, "json": error_body(
        "TF400948: A Git repository with the name x already exists.",
        "GitRepositoryNameAlreadyExistsException")}, "ALREADY_EXISTS", "TF400948"),
    ({"status_code": 400, "json": error_body(
        "DefinitionExistsException: a pipeline named x exists", "DefinitionExistsException")},
     "ALREADY_EXISTS", "already exists"),
    ({"status_code": 400, "json": error_body(
        "TF401320: Rule Error for field Title. Error code: Required, InvalidEmpty.",
        "RuleValidationException")}, "INVALID_INPUT", "TF401320"),
    ({"status_code": 429, "headers": {"Retry-After": "30"}, "json": error_body(
        "TF400733: The request has been canceled.", "RequestCanceledException")},
     "THROTTLED", "30 s"),
    ({"status_code": 500, "json": error_body("VS30063: oops", "Exception")},
     "SERVICE_ERROR", "HTTP 500"),
    ({"status_code": 503, "text": "Service Unavailable"}, "SERVICE_ERROR", "HTTP 503"),
    ({"status_code": 203, "text": "<html>Sign In</html>",
      "headers": {"Content-Type": "text/html; charset=utf-8"}}, "AUTH_FAILED", "sign-in page"),
    ({"status_code": 200, "text": "<html>Sign In</html>",
      "headers": {"Content-Type": "text/html"}}, "AUTH_FAILED", "sign-in page"),
])
def test_error_mapping(client, requests_mock, response, code, said):
    error = _raises(client, requests_mock, code, **response)
    assert said in error.message


def test_service_error_header_is_read_when_body_is_empty(client, requests_mock):
    error = _raises(client, requests_mock, "AUTH_FAILED", status_code=401, text="",
                    headers={"X-TFS-ServiceError": "TF400813%3a%20Resource%20not%20available"
                                                   "%20for%20anonymous%20access."})
    assert "TF400813: Resource not available" in error.message


def test_error_details_keep_status_and_type_key(client, requests_mock):
    error = _raises(client, requests_mock, "NOT_FOUND", status_code=404, json=error_body(
        "TF401019: The Git repository with name or identifier x does not exist.",
        "GitRepositoryNotFoundException"))
    assert error.status == 404
    assert error.details == {"typeKey": "GitRepositoryNotFoundException", "tfCode": "TF401019"}


def test_html_203_is_never_parsed_as_data(client, requests_mock):
    requests_mock.get(f"{BASE}/x", status_code=203, text='{"value": []}',
                      headers={"Content-Type": "text/html"})
    with pytest.raises(AdobotError) as caught:
        client.get("x")
    assert caught.value.code == "AUTH_FAILED"


def test_non_json_success_is_service_error(client, requests_mock):
    requests_mock.get(f"{BASE}/x", text="plain", headers={"Content-Type": "text/plain"})
    with pytest.raises(AdobotError) as caught:
        client.get("x")
    assert caught.value.code == "SERVICE_ERROR" and "not JSON" in caught.value.message


def test_malformed_json_is_service_error(client, requests_mock):
    requests_mock.get(f"{BASE}/x", text="{nope", headers={"Content-Type": "application/json"})
    with pytest.raises(AdobotError) as caught:
        client.get("x")
    assert caught.value.code == "SERVICE_ERROR" and "malformed JSON" in caught.value.message


def test_empty_204_is_none(client, requests_mock):
    requests_mock.get(f"{BASE}/x", status_code=204)
    assert client.get("x") is None


@pytest.mark.parametrize("exc, code, said", [
    (requests.exceptions.ConnectTimeout, "TIMEOUT", "connect timeout"),
    (requests.exceptions.ReadTimeout, "TIMEOUT", "read timeout"),
    (requests.exceptions.ConnectionError("Name or service not known"), "NETWORK_ERROR",
     "Name or service not known"),
])
def test_transport_failures(client, requests_mock, exc, code, said):
    requests_mock.get(f"{BASE}/x", exc=exc)
    with pytest.raises(AdobotError) as caught:
        client.get("x")
    assert caught.value.code == code
    assert said in caught.value.message
    assert caught.value.exit_code == 1


def test_timeouts_are_passed_to_requests(requests_mock):
    rest = RestClient(BASE, PatAuthorizer(Secret(PAT)), timeout=(1.5, 7.0))
    requests_mock.get(f"{BASE}/x", json={})
    rest.get("x")
    assert requests_mock.last_request.timeout == (1.5, 7.0)


def test_requests_are_counted_per_context(client, requests_mock):
    requests_mock.get(f"{BASE}/x", json={})
    with count_requests() as outer:
        client.get("x")
        with count_requests() as inner:
            client.get("x")
            client.get("x")
    assert (outer.count, inner.count, client.requests_sent) == (1, 2, 3)


def test_nothing_shows_the_token(client, requests_mock):
    requests_mock.get(f"{BASE}/x", status_code=401, json=error_body("TF400813: anonymous",
                                                                     "UnauthorizedRequestException"))
    with pytest.raises(AdobotError) as caught:
        client.get("x")
    encoded = base64.b64encode(f":{PAT}".encode()).decode()
    shown = " ".join([repr(client), repr(client._http.auth), str(caught.value),
                      repr(caught.value), json.dumps(caught.value.to_dict())])
    assert PAT not in shown and encoded not in shown


def test_pages_follow_continuation_tokens(client, requests_mock):
    requests_mock.get(f"{BASE}/list", [
        {"json": {"value": [1, 2]}, "headers": {"x-ms-continuationtoken": "a"}},
        {"json": {"value": [3]}, "headers": {"x-ms-continuationtoken": "b"}},
        {"json": {"value": [4]}}])
    assert [item for page in client.pages("list") for item in page] == [1, 2, 3, 4]
    assert [r.qs.get("continuationtoken") for r in requests_mock.request_history] == [
        None, ["a"], ["b"]]


def test_a_repeated_continuation_token_ends_the_listing_with_a_clear_error(client, requests_mock):
    """A list API that hands back its first page again must not loop for ever."""
    requests_mock.get(f"{BASE}/list", json={"value": [1]}, headers={"x-ms-continuationtoken": "same"})
    pages = client.pages("list")
    assert next(pages) == [1]
    with pytest.raises(AdobotError) as caught:  # before the repeated page is yielded
        next(pages)
    assert caught.value.code == "SERVICE_ERROR" and "'same' a second time" in caught.value.message
    assert requests_mock.call_count == 2


def out_of_range(latest: str) -> dict:
    return {"status_code": 400, "json": error_body(
        f"The requested REST API version of 7.1 is out of range for this server. The latest REST "
        f"API version this server supports is {latest}.", "VssVersionOutOfRangeException")}


def test_a_server_that_speaks_less_is_learnt_once(client, requests_mock):
    requests_mock.get(f"{BASE}/_apis/connectionData", [out_of_range("7.0"), {"json": {}}])
    requests_mock.get(f"{BASE}/x", json={})
    client.get("_apis/connectionData", api=PREVIEW)
    client.get("x")
    sent = [r.qs["api-version"] for r in requests_mock.request_history]
    assert sent == [["7.1-preview.1"], ["7.0-preview.1"], ["7.0"]]
    assert client.server_version == (7, 0)


def test_the_pipelines_api_is_a_preview_on_server_2020_and_absent_before(client, requests_mock):
    from adobot.rest.versions import PIPELINES

    client.server_version = (6, 0)
    requests_mock.get(f"{BASE}/p", json={})
    client.get("p", api=PIPELINES)
    assert requests_mock.last_request.qs["api-version"] == ["6.0-preview.1"]
    client.server_version = (5, 1)
    with pytest.raises(AdobotError) as caught:
        client.get("p", api=PIPELINES)
    assert caught.value.code == "INVALID_INPUT" and caught.value.exit_code == 2
    assert "Azure DevOps Server 2019 Update 1" in caught.value.message
    assert requests_mock.call_count == 1  # nothing sent for the refused one


def test_other_400s_are_not_resent(client, requests_mock):
    requests_mock.post(f"{BASE}/x", [out_of_range("7.2"), {"json": {}}])  # not lower: no use
    with pytest.raises(AdobotError):
        client.post("x", {})
    requests_mock.post(f"{BASE}/y", status_code=400, json=error_body("TF1: bad", "Other"))
    with pytest.raises(AdobotError):
        client.post("y", {})
    assert requests_mock.call_count == 2 and client.server_version == (7, 1)
