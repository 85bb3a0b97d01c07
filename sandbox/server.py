"""The sandbox's HTTP side: authentication, api-version rules, routes and error bodies as the
real service has them (see ../shared/ado-rest), on a keep-alive HTTP/1.1 server that writes
each response in one piece (no Nagle / delayed-ACK stalls)."""
from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from sandbox import responses as body
from sandbox.state import Organization, SandboxState, Token

LATEST = (7, 1)
_VERSION = re.compile(r"^(\d+)\.(\d+)(-preview(\.\d+)?)?$")


class ApiError(Exception):
    """An error answer: status, body and extra headers."""

    def __init__(self, status: int, payload: Any, headers: dict[str, str] | None = None,
                 content_type: str = "application/json; charset=utf-8") -> None:
        super().__init__(status)
        self.status, self.payload, self.headers = status, payload, headers or {}
        self.content_type = content_type


class Request:
    """What a route handler sees."""

    def __init__(self, handler: "Handler", method: str, path: str, query: dict[str, str],
                 body_bytes: bytes) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = handler.headers
        self.body_bytes = body_bytes
        self.host = handler.headers.get("Host") or f"127.0.0.1:{handler.server.server_port}"
        self.org: Organization | None = None
        self.token: Token | None = None
        self.params: dict[str, str] = {}

    @property
    def base(self) -> str:
        """The organization's base URL as the client reaches it."""
        assert self.org is not None
        return f"http://{self.host}/{quote(self.org.name)}"

    def json(self) -> Any:
        try:
            return json.loads(self.body_bytes or b"null")
        except ValueError:
            raise ApiError(400, body.error(
                "VS403403: The request body is not valid JSON.", "InvalidRequestContentException",
                "Microsoft.VisualStudio.Services.WebApi.InvalidRequestContentException")) from None


# A handler returns (status, payload) or (status, payload, headers).
RouteHandler = Callable[[SandboxState, Request], tuple]
Route = tuple[str, re.Pattern[str], RouteHandler, str | None, bool]


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, scope: str | None = None, *,
            preview: bool = False) -> Callable:
        """Register a handler for ``/{org}`` + pattern; ``scope`` is the PAT scope it needs."""
        # Routes are case-insensitive on the service (…/_apis/ResourceAreas = …/resourceareas).
        regex = re.compile("^/(?P<org>[^/]+)" + pattern + "/?$", re.IGNORECASE)

        def register(handler: Callable) -> Callable:
            self.routes.append((method, regex, handler, scope, preview))
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        allowed = False
        for route in self.routes:
            found = route[1].match(path)
            if found:
                if route[0] == method:
                    return route, {k: unquote(v) for k, v in found.groupdict().items()}
                allowed = True
        if allowed:
            raise ApiError(405, body.error(f"The requested resource does not support http "
                                           f"method '{method}'.", "HttpMethodNotAllowed", ""))
        return None


def check_api_version(request: Request, preview_api: bool) -> None:
    raw = request.query.get("api-version")
    if raw is None:
        accept = request.headers.get("Accept", "")
        found = re.search(r"api-version=([\w.-]+)", accept)
        raw = found.group(1) if found else None
    if raw is None:
        if request.method not in ("GET", "OPTIONS"):
            raise ApiError(400, body.error(
                f'No api-version was supplied for the "{request.method}" request. The version '
                'must be supplied either as part of the Accept header (e.g. "application/json; '
                'api-version=1.0") or as a query parameter (e.g. "?api-version=1.0").',
                "VssVersionNotSpecifiedException",
                "Microsoft.VisualStudio.Services.WebApi.VssVersionNotSpecifiedException"))
        return
    match = _VERSION.match(raw)
    if not match:
        raise ApiError(400, body.error(
            f"The api-version '{raw}' is not valid.", "VssInvalidApiVersionException",
            "Microsoft.VisualStudio.Services.WebApi.VssInvalidApiVersionException"))
    version = (int(match.group(1)), int(match.group(2)))
    if version > LATEST:
        raise ApiError(400, body.error(
            f"The requested REST API version of {raw} is out of range for this server. The "
            f"latest REST API version this server supports is {LATEST[0]}.{LATEST[1]}.",
            "VssVersionOutOfRangeException",
            "Microsoft.VisualStudio.Services.WebApi.VssVersionOutOfRangeException"))
    if preview_api and not match.group(3):
        raise ApiError(400, body.error(
            f'The requested version "{raw}" of the resource is under preview. The -preview flag '
            f'must be supplied in the api-version for such requests. For example: "{raw}-preview"',
            "VssInvalidPreviewVersionException",
            "Microsoft.VisualStudio.Services.WebApi.VssInvalidPreviewVersionException"))


def authenticate(state: SandboxState, request: Request, scope: str | None) -> Token:
    token = _token_from_header(request.headers.get("Authorization", ""))
    entry = state.tokens.get(token) if token else None
    assert request.org is not None
    if entry is None or (entry.organizations is not None
                         and request.org.name.lower() not in entry.organizations):
        if request.headers.get("X-TFS-FedAuthRedirect", "").lower() != "suppress":
            # Without the header the service sends browsers (and naive clients) to sign in.
            target = f"http://{request.host}/_signin?realm=dev.azure.com&reply_to={quote(request.path)}"
            raise ApiError(302, b"", {"Location": target}, content_type="text/html; charset=utf-8")
        raise ApiError(401, body.error(
            "TF400813: Resource not available for anonymous access. Client authentication required.",
            "UnauthorizedRequestException",
            "Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException, "
            "Microsoft.TeamFoundation.Framework.Server"), body.challenge_headers(
            "TF400813: Resource not available for anonymous access. Client authentication required."))
    if entry.expired:
        message = "Access Denied: The Personal Access Token used has expired."
        raise ApiError(401, body.error(
            message, "AccessCheckException",
            "Microsoft.VisualStudio.Services.Security.AccessCheckException, "
            "Microsoft.VisualStudio.Services.WebApi"), body.challenge_headers(message))
    if not entry.allows(scope):
        message = f"TF400813: The user '{entry.user_id}' is not authorized to access this resource."
        raise ApiError(401, body.error(
            message, "UnauthorizedRequestException",
            "Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException, "
            "Microsoft.TeamFoundation.Framework.Server"), body.challenge_headers(message))
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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "adobot-sandbox"
    server: "SandboxServer"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # requests are kept in state.requests; stderr stays quiet

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body_bytes = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        request = Request(self, self.command, parts.path, query, body_bytes)
        state = self.server.state
        if parts.path.rstrip("/") == "/_sandbox/faults":
            self._send(*self._faults_admin(state, request))
            return
        if parts.path.rstrip("/") == "/_sandbox/stats":
            self._send(200, state.stats())
            return
        state.record({"method": self.command, "path": parts.path, "query": query,
                      "content_type": self.headers.get("Content-Type"),
                      "user_agent": self.headers.get("User-Agent"),
                      "authorized": "Authorization" in self.headers})
        fault = state.faults.take(self.command, parts.path)
        extra: dict[str, str] = {}
        if fault is not None:
            if fault.kind == "reset_before":
                return self._drop()
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind == "headers":
                extra = dict(fault.headers)
            elif fault.kind != "reset_after":
                return self._send(*body.fault_answer(fault))
        try:
            status, payload, *headers = self.server.app(state, request)
            answer = (status, payload, {**(headers[0] if headers else {}), **extra})
        except ApiError as error:
            answer = (error.status, error.payload, {**error.headers, **extra}, error.content_type)
        if fault is not None and fault.kind == "reset_after":
            return self._drop()  # acted on, but the answer never leaves
        self._send(*answer)

    def _faults_admin(self, state: SandboxState, request: Request) -> tuple[int, Any]:
        if self.command == "GET":
            return 200, {"count": len(state.faults.list()), "value": state.faults.list()}
        if self.command == "DELETE":
            state.faults.clear()
            return 204, b""
        if self.command == "POST":
            try:
                return 201, state.faults.add(json.loads(request.body_bytes or b"null")).to_dict()
            except (ValueError, TypeError) as exc:
                return 400, {"message": f"not a valid fault: {exc}"}
        return 405, {"message": "use GET, POST or DELETE"}

    def _drop(self) -> None:
        """Close the connection without a word, as a reset or a lost answer looks."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None,
              content_type: str = "application/json; charset=utf-8") -> None:
        if isinstance(payload, str):  # handlers return text only for HTML pages
            data, content_type = payload.encode("utf-8"), "text/html; charset=utf-8"
        elif isinstance(payload, bytes):
            data = payload
        else:
            data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {status} {reason}", f"Date: {formatdate(usegmt=True)}",
                 f"Server: {self.server_version}", f"Content-Length: {len(data)}"]
        if data or status >= 300:
            lines.append(f"Content-Type: {content_type}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + data)  # one write: no small-packet stall


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SandboxState,
                 app: Callable[[SandboxState, Request], tuple[int, Any]]) -> None:
        super().__init__(address, Handler)
        self.state = state
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def close_connections(self) -> None:
        """End idle keep-alive connections so stop() leaves no socket behind."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
