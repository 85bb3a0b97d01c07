"""Routes as small records, and the checks every Azure DevOps route shares, in the service's
order: the organization, the token and its scopes, the api-version, then the project.

A handler receives one request object with nothing optional: a ``Call`` (organization and token
known) or, for a route under ``/{project}``, a ``ProjectCall`` (the project found too).
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, fields
from email.message import Message
from typing import Any, Callable, Union
from urllib.parse import quote, unquote

from adobot.sandbox import errors
from adobot.sandbox.state import Organization, Project, SandboxState, Token

_VERSION = re.compile(r"^(\d+)\.(\d+)(-preview(\.\d+)?)?$")
# A project segment: a name or id, never one of the service's own `_apis`-like segments.
PROJECT_SEGMENT = "/(?P<project>[^/_][^/]*)"

# A handler answers (status, payload) or (status, payload, headers).
Answer = Union[tuple[int, Any], tuple[int, Any, dict[str, str]]]


@dataclass(frozen=True)
class HttpRequest:
    """What the server read off the wire."""

    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    host: str

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise errors.invalid_json() from None

    def json_object(self, required_as: str | None = None) -> dict[str, Any]:
        """The body, which must be a JSON object; with ``required_as``, no body at all is
        refused as that missing parameter, as the service does."""
        payload = self.json()
        if payload is None and required_as:
            raise errors.argument_null(required_as)
        if not isinstance(payload, dict):
            raise errors.not_an_object()
        return payload


@dataclass(frozen=True)
class Call(HttpRequest):
    """A request for a route of an organization, by a token allowed there."""

    state: SandboxState
    org: Organization
    token: Token
    params: dict[str, str]

    @property
    def base(self) -> str:
        """The organization's base URL as the client reaches it (/tfs/{collection} too)."""
        prefix = "/tfs" if self.path.lower().startswith("/tfs/") else ""
        return f"http://{self.host}{prefix}/{quote(self.org.name)}"


@dataclass(frozen=True)
class ProjectCall(Call):
    """A request for a route under ``/{project}``, with the project found."""

    project: Project


@dataclass(frozen=True)
class Route:
    method: str
    regex: re.Pattern[str]
    handler: Callable[..., Answer]
    scopes: tuple[str, ...]  # the token needs one of these (none: any valid token)
    project: bool            # under /{project}: the handler gets a ProjectCall
    preview: bool            # a preview API: the api-version must say -preview
    content_type: str | None  # the only body type the route takes (None: JSON, unchecked)
    # A Server older than ``since`` lacks the route; one older than ``preview_before`` has it
    # only as a preview (Pipelines: since 6.0, general from 7.0).
    since: tuple[int, int] | None = None
    preview_before: tuple[int, int] | None = None


class Router:
    def __init__(self, *parts: "Router") -> None:
        self.routes: list[Route] = [route for part in parts for route in part.routes]

    def route(self, method: str, pattern: str, *scopes: str, project: bool = False,
              preview: bool = False, content_type: str | None = None,
              since: tuple[int, int] | None = None, preview_before: tuple[int, int] | None = None
              ) -> Callable[[Callable[..., Answer]], Callable[..., Answer]]:
        """Register a handler for ``/{org}`` (+ ``/{project}`` with project=True) + pattern;
        a Server's collection may also be reached as ``/tfs/{collection}``."""
        # Routes are case-insensitive on the service (…/_apis/ResourceAreas = …/resourceareas).
        prefix = "^(?:/tfs)?/(?P<org>[^/]+)" + (PROJECT_SEGMENT if project else "")
        regex = re.compile(prefix + pattern + "/?$", re.IGNORECASE)

        def register(handler: Callable[..., Answer]) -> Callable[..., Answer]:
            self.routes.append(Route(method, regex, handler, scopes, project, preview,
                                     content_type, since, preview_before))
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        allowed = False
        for route in self.routes:
            found = route.regex.match(path)
            if found:
                if route.method == method:
                    return route, {k: unquote(v) for k, v in found.groupdict().items()}
                allowed = True
        if allowed:
            raise errors.method_not_allowed(method)
        return None

    def answer(self, state: SandboxState, request: HttpRequest) -> Answer:
        found = self.match(request.method, request.path)
        if found is None:
            raise errors.resource_not_found(request.path)
        route, params = found
        org = state.organization(params.pop("org"))
        if org is None:
            raise errors.organization_not_found(request.path.split("/")[1])
        if route.since and org.api_version < route.since:  # a Server too old for the route
            raise errors.resource_not_found(request.path)
        token = authenticate(state, request, org, route.scopes)
        check_api_version(request, org.api_version, route.preview or (
            route.preview_before is not None and org.api_version < route.preview_before))
        if route.content_type is not None:
            sent = (request.headers.get("Content-Type") or "").split(";")[0].strip()
            if sent != route.content_type:
                raise errors.content_type_not_supported(sent, request.method, route.content_type)
        given = {f.name: getattr(request, f.name) for f in fields(HttpRequest)}
        with state.lock:
            if not route.project:
                return route.handler(Call(**given, state=state, org=org, token=token,
                                          params=params))
            key = params.pop("project")
            project = org.project(key)
            if project is None:
                raise errors.project_not_found(key)
            return route.handler(ProjectCall(**given, state=state, org=org, token=token,
                                             params=params, project=project))


def check_api_version(request: HttpRequest, latest: tuple[int, int], preview_api: bool) -> None:
    """The api-version rules, on a service that speaks up to ``latest``."""
    raw = request.query.get("api-version")
    if raw is None:
        found = re.search(r"api-version=([\w.-]+)", request.headers.get("Accept", ""))
        raw = found.group(1) if found else None
    if raw is None:
        if request.method not in ("GET", "OPTIONS"):
            raise errors.version_not_specified(request.method)
        return
    match = _VERSION.match(raw)
    if not match:
        raise errors.invalid_api_version(raw)
    if (int(match.group(1)), int(match.group(2))) > latest:
        raise errors.version_out_of_range(raw, latest)
    if preview_api and not match.group(3):
        raise errors.preview_flag_required(raw)


def authenticate(state: SandboxState, request: HttpRequest, org: Organization,
                 scopes: tuple[str, ...]) -> Token:
    token = _token_from_header(request.headers.get("Authorization", ""))
    entry = state.tokens.get(token) if token else None
    if entry is None or (entry.organizations is not None
                         and org.name.lower() not in entry.organizations):
        if request.headers.get("X-TFS-FedAuthRedirect", "").lower() != "suppress":
            # Without the header the service sends browsers (and naive clients) to sign in.
            raise errors.sign_in_redirect(f"http://{request.host}/_signin?realm=dev.azure.com"
                                          f"&reply_to={quote(request.path)}")
        raise errors.anonymous()
    if entry.out_of_date:
        raise errors.token_expired()
    if not entry.allows(scopes):
        raise errors.not_authorized(entry.user_id)
    return entry


def _token_from_header(header: str) -> str | None:
    kind, _, value = header.partition(" ")
    if kind.lower() == "bearer":
        return value.strip() or None
    if kind.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    _, _, password = decoded.partition(":")
    return password or None
