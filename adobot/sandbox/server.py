"""The sandbox's HTTP side: a keep-alive HTTP/1.1 server that writes each response in one piece
(no Nagle / delayed-ACK stalls), records requests, injects faults, and hands every request to
the app (``sandbox.routes``), which answers as the service would."""
from __future__ import annotations

import json
import socket
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from adobot.sandbox import responses as body
from adobot.sandbox.errors import ApiError
from adobot.sandbox import entra
from adobot.sandbox.routes import admin
from adobot.sandbox.routing import Answer, HttpRequest
from adobot.sandbox.state import SandboxState


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
        parts = urlsplit(self.path)
        request = HttpRequest(
            method=self.command, path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)), headers=self.headers,
            body=self.rfile.read(length) if length else b"",
            host=self.headers.get("Host") or f"127.0.0.1:{self.server.server_port}")
        state = self.server.state
        control = admin.control(state, request) or entra.control(state, request)
        if control is not None:
            self._send(*control)
            return
        state.record({"method": self.command, "path": parts.path, "query": request.query,
                      "content_type": self.headers.get("Content-Type"),
                      "user_agent": self.headers.get("User-Agent"),
                      "authorized": "Authorization" in self.headers})
        state.enter()
        try:
            self._answer(state, request)
        finally:
            state.leave()

    def _answer(self, state: SandboxState, request: HttpRequest) -> None:
        fault = state.faults.take(self.command, request.path)
        delay = state.delay()  # a distant service: every answer takes its round trip
        if delay:
            time.sleep(delay)
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
        if data or 300 <= status < 400:
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
                 app: Callable[[SandboxState, HttpRequest], Answer]) -> None:
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
