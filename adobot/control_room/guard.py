"""What happens to a request before any route sees it: its API token is checked before a byte
of its body is read, and its body is held to what the route needs (413 beyond it).

A request without a valid token costs one indexed read and a 401; it never makes the service
read, buffer or parse a body. The verified token goes on to the route (``deps.caller`` reads
it from the request's state), so it is not looked up twice.
"""
from __future__ import annotations

import re
import time
from typing import Any, Awaitable, Callable

from adobot.control_room.tokens import Unauthorized
from adobot.errors import AdobotError, InvalidInput, Throttled

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

API = "/api/v1"
OPEN = {f"{API}/openapi.json"}  # answered without a token
KIB = 1024
# The largest body each route takes, by method and path (the first match wins). GET and DELETE
# take none; a path no route has gets a little, to be told it is not there (404).
DEFAULT_LIMIT = 1 * 1024
LIMITS: list[tuple[str, re.Pattern[str], int]] = [
    ("GET", re.compile(rf"^{API}/"), 0),
    ("DELETE", re.compile(rf"^{API}/"), 0),
    ("POST", re.compile(rf"^{API}/bots/(check|run)$"), 640 * KIB),  # a 256 KiB bot, variables
    ("POST", re.compile(rf"^{API}/bots$"), 3 * 1024 * KIB),  # a 2 MiB bundle, escaped as JSON
    ("POST", re.compile(rf"^{API}/runs$"), 320 * KIB),  # 256 KiB of variables
    ("PUT", re.compile(rf"^{API}/pools/[^/]+$"), KIB),
    ("POST", re.compile(rf"^{API}/runs/[^/]+/end$"), 4 * 1024 * KIB),  # steps, outputs, log
    ("POST", re.compile(rf"^{API}/runners/(register|claim|heartbeat)$"), 8 * KIB),
    ("POST", re.compile(rf"^{API}/schedules$"), 320 * KIB),  # 256 KiB of variables
    ("PATCH", re.compile(rf"^{API}/schedules/[^/]+$"), 320 * KIB),
    ("POST", re.compile(rf"^{API}/connections$"), 16 * KIB),
    ("PATCH", re.compile(rf"^{API}/connections/[^/]+$"), 16 * KIB),
    ("POST", re.compile(rf"^{API}/azuredevops/auth/pat$"), 8 * KIB),
    ("POST", re.compile(rf"^{API}/connections/[^/]+/(credential|test)$"), 4 * KIB),
]


# Failed sign-ins a source may make in a window; beyond it, every request from that source is
# refused until the window ends, before its token is even looked up.
FAILURES, WINDOW_SECONDS = 20, 60.0


class TooLarge(InvalidInput):
    """A body over its route's limit: HTTP 413."""


class TooManyFailures(Throttled):
    """A source that failed to sign in too often: HTTP 429 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins from this address: try again in "
                         f"{retry_after} s", "Check the token; ask an admin for a new one.")
        self.retry_after = retry_after


def limit_for(method: str, path: str) -> int:
    for allowed, pattern, limit in LIMITS:
        if method == allowed and pattern.match(path):
            return limit
    return DEFAULT_LIMIT


Refuse = Callable[[AdobotError, Scope, Receive, Send], Awaitable[None]]
# Audits an event of a source that did not sign in: (event, client, detail).
Note = Callable[[str, str | None, str], Awaitable[None]]


class FailedSignIns:
    """Failed sign-ins by source, counted in fixed windows (the event loop alone uses it)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.windows: dict[str | None, tuple[float, int]] = {}

    def blocked_for(self, source: str | None) -> int:
        """Seconds the source must wait (0: it may try)."""
        start, count = self.windows.get(source, (0.0, 0))
        left = start + WINDOW_SECONDS - self.clock()
        return int(left) + 1 if count >= FAILURES and left > 0 else 0

    def failed(self, source: str | None) -> int:
        """Count a failure; how many the source has made in its window."""
        now = self.clock()
        start, count = self.windows.get(source, (now, 0))
        if now - start >= WINDOW_SECONDS:
            start, count = now, 0
        if len(self.windows) > 10_000:  # forget the windows that ended
            self.windows = {k: v for k, v in self.windows.items()
                            if now - v[0] < WINDOW_SECONDS}
        self.windows[source] = (start, count + 1)
        return count + 1


class Guard:
    """ASGI middleware: ``verify(token) -> record`` checks a token (raising ``Unauthorized``);
    ``refuse(error, scope, receive, send)`` answers with the error envelope."""

    def __init__(self, app: Any, verify: Callable[[str | None], Awaitable[Any]],
                 refuse: Refuse, note: Note) -> None:
        self.app, self.verify, self.refuse, self.note = app, verify, refuse, note
        self.failures = FailedSignIns()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(API + "/") or path in OPEN:
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1")
                   for key, value in scope.get("headers", [])}
        source = (scope.get("client") or (None,))[0]
        wait = self.failures.blocked_for(source)
        if wait:
            await self.refuse(TooManyFailures(wait), scope, receive, send)
            return
        try:
            token = await self.verify(_bearer(headers.get("authorization")))
        except Unauthorized as refused:
            count = self.failures.failed(source)
            # Audited once when a source starts failing and once when it is held back, not
            # once a request: a flood of bad tokens adds two rows a minute at most.
            if count == 1:
                await self.note("auth.refused", source, refused.message)
            elif count == FAILURES:
                await self.note("auth.throttled", source, f"{FAILURES} failed sign-ins within "
                                f"{WINDOW_SECONDS:g} s: refused until the minute is over")
            await self.refuse(refused, scope, receive, send)
            return
        scope.setdefault("state", {})["api_token"] = token
        limit = limit_for(scope["method"], path)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                await self.refuse(_too_large(scope["method"], path, limit), scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if headers.get("transfer-encoding", "").lower() != "chunked":
            await self.app(scope, receive, send)
            return
        # A body of unknown length is read here, no further than the limit, then replayed.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await self.refuse(_too_large(scope["method"], path, limit), scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def _too_large(method: str, path: str, limit: int) -> TooLarge:
    if not limit:
        return TooLarge(f"{method} {path} takes no body", "Send the request without one.",
                        field="body")
    return TooLarge(f"the body of {method} {path} is larger than the {limit // KIB} KiB it may be",
                    "Send less: this route's body is small by nature.", field="body")
