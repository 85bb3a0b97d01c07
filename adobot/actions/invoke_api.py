"""InvokeApi: one request to any Azure DevOps REST route through a connected session, for what
no action covers (a branch policy, a variable group, a service hook).

It keeps what every action has: the session's credentials, retry policy, error mapping and
request count. Its token goes only to the session's organization: a route is relative to the
organization or the project, and an absolute URL must be the organization's own, or the same
organization on one of the service's other hosts (``SERVICE_HOSTS``). Bodies are never logged.
"""
from __future__ import annotations

import json
import re
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pydantic import Field, field_validator, model_validator

from adobot.actions.base import (
    SESSION_ERRORS,
    Action,
    ActionContext,
    ActionInputs,
    ActionOutputs,
    SessionInput,
)
from adobot.errors import InvalidInput
from adobot.rest.responses import read_json
from adobot.rest.urls import parse_organization_url
from adobot.rest.versions import GENERAL
from adobot.sessions.session import Session

# The organization's other hosts, {host}.dev.azure.com/{org} ({org}.{host}.visualstudio.com):
# the same organization and the same token, for the areas the main host does not serve.
SERVICE_HOSTS = {
    "almsearch": "Code, Wiki and Work Item Search",
    "vssps": "identities, users and groups (Graph), tokens",
    "vsrm": "classic release pipelines",
    "vsaex": "user entitlements and licenses",
    "feeds": "Azure Artifacts feeds",
    "pkgs": "Azure Artifacts packages",
    "advsec": "Advanced Security alerts",
    "auditservice": "the audit log",
    "analytics": "Analytics (OData)",
}
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
PATCH_OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")
_API_VERSION = re.compile(r"^\d+\.\d+(-preview(\.\d+)?)?$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\?#]")
# Characters left as they are in a route: RFC 3986 path characters (and %, so an encoded
# route stays as written).
_PATH_SAFE = "/%-._~!$&'()*+,;=:@"
NEVER_RETURNED = ("set-cookie",)


class Inputs(ActionInputs):
    session: SessionInput
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(
        "GET", description="The HTTP method", examples=["POST"])
    route: str = Field(
        min_length=1, max_length=4000,
        description="Route after the project (or organization): e.g. _apis/git/repositories; "
                    "or a whole URL of the session's organization or its service hosts",
        examples=["_apis/git/policy/configurations"])
    relative_to: Literal["project", "organization"] = Field(
        "project", description="Where a relative route starts: the session's project or its "
                               "organization", examples=["organization"])
    query: dict[str, str | int | bool | list[str]] = Field(
        default_factory=dict, description="Query parameters (not api-version)",
        examples=[{"$top": 100}])
    api_version: str | None = Field(
        None, description="e.g. 7.1 or 7.1-preview.1 (default: the session's)",
        examples=["7.1-preview.1"])
    body: Any = Field(None, description="A JSON body, or a JSON Patch document (body_type)",
                      examples=[[{"op": "add", "path": "/fields/System.Title",
                                  "value": "From a bot"}]])
    body_type: Literal["json", "json_patch"] = Field(
        "json", description="json, or json_patch: a list of {op, path, value} operations, sent "
                            "as application/json-patch+json", examples=["json_patch"])
    paginate: bool = Field(False, description="Follow continuation tokens (GET only), joining "
                                              "each page's value list", examples=[True])
    max_items: int = Field(1000, ge=1, le=1_000_000,
                           description="With paginate: at most this many items",
                           examples=[5000])
    headers: list[str] = Field(
        default_factory=list, max_length=20,
        description="Response headers to return, by name (e.g. etag)", examples=[["etag"]])

    @field_validator("route")
    @classmethod
    def _route(cls, value: str) -> str:
        value = value.strip()
        absolute = value.lower().startswith(("https://", "http://"))
        if absolute:
            if any(c in value for c in "\x00\r\n\t #\\"):
                raise ValueError("the URL has a space, a '#', a backslash or a control character")
        elif "://" in value or value.startswith("/") or _UNSAFE.search(value):
            raise ValueError("a route is a relative path such as _apis/git/repositories: no "
                             "leading '/', no scheme, no '?' (use query), '#', backslash, space "
                             "or control character")
        # A server or a proxy resolves dot segments (%2e%2e too): one that climbs would leave
        # the organization the URL seems to be in.
        path = urlsplit(value).path if absolute else value
        if any(unquote(segment) in (".", "..") for segment in path.split("/")):
            raise ValueError("a route or URL may not climb out with '.' or '..' segments")
        return value

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not _API_VERSION.match(value):
            raise ValueError(f"{value!r} is not an api-version such as 7.1 or 7.1-preview.1")
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: dict[str, Any]) -> dict[str, Any]:
        if any(name.lower() == "api-version" for name in value):
            raise ValueError("give the version as api_version, not in query")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _HEADER.match(name):
                raise ValueError(f"{name!r} is not a header name")
            if name.lower() in NEVER_RETURNED:
                raise ValueError(f"the {name} header is never returned")
        return [name.lower() for name in value]

    @model_validator(mode="after")
    def _body(self) -> "Inputs":
        if self.body is not None:
            if self.method == "GET":
                raise ValueError("a GET has no body (the service ignores one)")
            try:
                json.dumps(self.body, allow_nan=False)
            except (TypeError, ValueError):
                raise ValueError("body must be JSON: maps, lists, text, numbers, true/false "
                                 "and null (quote a date)") from None
        if self.body_type == "json_patch":
            _check_patch(self.body)
        if self.paginate and self.method != "GET":
            raise ValueError("paginate follows the pages of a GET only")
        return self


def _check_patch(body: Any) -> None:
    if not isinstance(body, list) or not body:
        raise ValueError("a JSON Patch document is a non-empty list of operations")
    for number, operation in enumerate(body, 1):
        if not isinstance(operation, dict) or operation.get("op") not in PATCH_OPERATIONS:
            raise ValueError(f"operation {number} of the JSON Patch document needs an op: "
                             f"{', '.join(PATCH_OPERATIONS)}")
        if not str(operation.get("path", "")).startswith("/"):
            raise ValueError(f"operation {number} of the JSON Patch document needs a path "
                             "starting with '/' (e.g. /fields/System.Title)")


class Outputs(ActionOutputs):
    status: int = Field(description="The HTTP status (2xx; any other is an error)")
    body: Any = Field(description="The decoded answer: JSON, or text; with paginate, "
                                  "{count, value}")
    continuation_token: str | None = Field(
        None, description="Where the next page starts (x-ms-continuationtoken), if there is "
                          "one; with paginate, after the last page read")
    headers: dict[str, str] = Field(description="The headers asked for that the answer has")

    def summary(self) -> str:
        size = f", {self.body['count']} items" if isinstance(self.body, dict) and \
            "count" in self.body and "value" in self.body else ""
        return f"HTTP {self.status}{size}"


def target(ctx: ActionContext, session: Session, inputs: Inputs) -> tuple[str, dict[str, Any]]:
    """The URL to send to (the routed one: the sandbox's with --sandbox) and the query that
    an absolute URL carried. Refused before anything is sent when it is not the session's
    organization."""
    if not inputs.route.lower().startswith(("https://", "http://")):
        start = session.project_id + "/" if inputs.relative_to == "project" else ""
        return session.rest.url(start + quote(inputs.route, safe=_PATH_SAFE)), {}
    given = urlsplit(inputs.route)
    without_query = given._replace(query="", fragment="").geturl()
    organization = parse_organization_url(session.organization_url, allow_plain_http=True)
    places = [(organization.base_url, session.rest.base_url)]
    if organization.kind != "server":
        places += [(organization.area(host).base_url, ctx.route(organization.area(host)))
                   for host in SERVICE_HOSTS]
    for real, routed in places:
        if _under(without_query, real):
            query = dict(parse_qsl(given.query, keep_blank_values=True))
            version = next((k for k in query if k.lower() == "api-version"), None)
            if version is not None and inputs.api_version is None:
                query["api-version"] = query.pop(version)
            return routed + without_query[len(real):], query
    raise InvalidInput(
        f"InvokeApi: {without_query} is not in organization {session.organization!r} "
        f"({organization.base_url}) nor on one of its service hosts: nothing was sent",
        "The session's token goes only to its own organization: give a route relative to the "
        "project or organization, or a URL under " + organization.base_url + (
            f" or {organization.area('{host}').base_url} (host: "
            f"{', '.join(SERVICE_HOSTS)})" if organization.kind != "server" else "") + ".",
        field="route")


def _under(url: str, base: str) -> bool:
    scheme_host, _, path = url.partition("://")[2].partition("/")
    base_host, _, base_path = base.partition("://")[2].partition("/")
    if url.split("://")[0].lower() != base.split("://")[0].lower() or \
            scheme_host.lower() != base_host.lower():
        return False
    return not base_path or path == base_path or path.startswith(base_path + "/")


def _decoded(response: Any) -> Any:
    """JSON (or nothing) as every action reads it; else the text."""
    kind = response.headers.get("Content-Type", "")
    if "json" in kind.lower() or response.status_code == 204 or not response.content:
        return read_json(response)
    try:
        return response.content.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"InvokeApi: {response.url.split('?')[0]} answered binary content "
                           f"({kind or 'no content type'}), which InvokeApi does not return",
                           "InvokeApi returns JSON or text; use the route's JSON form (many "
                           "take $format=json), or the SDK connection of the Python API.",
                           field="route", after_request=True) from None


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    url, query = target(ctx, session, inputs)
    query.update({name: ",".join(value) if isinstance(value, list) else
                  str(value).lower() if isinstance(value, bool) else value
                  for name, value in inputs.query.items()})
    api = inputs.api_version or query.pop("api-version", None) or GENERAL
    send = dict(api=api, subject=f"{inputs.method} {inputs.route.split('?')[0]}",
                content_type="application/json-patch+json" if inputs.body_type == "json_patch"
                else "application/json")
    if not inputs.paginate:
        response = session.rest.send(inputs.method, url, params=query, body=inputs.body, **send)
        body = _decoded(response)
    else:
        items: list[Any] = []
        # The client's own paging (and its refusal of a token handed back twice); the next
        # page is asked for only while items are wanted.
        for response in session.rest.page_responses(url, params=query, **send):
            page = _decoded(response)
            if not isinstance(page, dict) or not isinstance(page.get("value"), list):
                raise InvalidInput(f"InvokeApi: {inputs.route} does not answer a list "
                                   "({count, value}) to page through",
                                   "Leave paginate off for this route.", field="paginate",
                                   after_request=True)
            items += page["value"]
            if len(items) >= inputs.max_items:
                break
        items = items[:inputs.max_items]
        body = {"count": len(items), "value": items}
    token = response.headers.get("x-ms-continuationtoken")
    ctx.log.info("InvokeApi %s %s: HTTP %s", inputs.method, url.split("?")[0],
                 response.status_code)
    headers = {name: response.headers[name] for name in inputs.headers if name in response.headers}
    return Outputs(status=response.status_code, body=body, continuation_token=token,
                   headers=headers)


ACTION = Action(
    name="InvokeApi", label="Invoke REST API", group="Advanced",
    read_only=False, idempotent=False, destructive=True,
    description="Sends one request to any Azure DevOps REST route through the session (its "
                "credentials, retries and errors): a route relative to the project or "
                "organization, or a URL of the organization's own hosts; query, api-version, a "
                "JSON or JSON Patch body, and continuation pages followed up to max_items.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed, a URL is not the organization's (nothing is "
                         "sent), or the service refused the request (400) with its reason",
        "PERMISSION_DENIED": "the token lacks the scope the route needs (403)",
        "NOT_FOUND": "the route or what it names does not exist (404), with the service's "
                     "message",
        "ALREADY_EXISTS": "the service says it exists already (409)",
        "CONFLICT": "the service refused a change made meanwhile (409, 412)",
    })
