"""Serving the control room with uvicorn, in the foreground (``adobot control-room``) or on a
thread (tests, ``ControlRoom``)."""
from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Sequence

from adobot.errors import InvalidInput

if TYPE_CHECKING:
    from adobot.control_room.state import ControlRoomState


# How long SIGTERM waits for requests in flight and for clients' idle connections (a TLS
# client that keeps one open would otherwise hold the process for asyncio's 30 s TLS close).
SHUTDOWN_SECONDS = 5


def check_listener(host: str, certificate: str | None, key: str | None,
                   allow_plain_http: bool) -> None:
    """Tokens and secrets cross this listener: plain http only on this machine, unless the
    admin says it is behind a TLS-terminating proxy."""
    from adobot.rest.urls import is_loopback

    if (certificate is None) != (key is None):
        raise InvalidInput("--certificate and --key go together (the TLS certificate and its "
                           "private key)", field="--key" if certificate else "--certificate")
    if certificate is None and not is_loopback(host) and not allow_plain_http:
        raise InvalidInput(f"--host {host} without TLS would carry tokens and secrets in clear "
                           "text across the network", "Give --certificate and --key, or "
                           "--allow-plain-http if a TLS proxy stands in front.", field="--host")


class ControlRoom:
    """The control room on a thread and a free loopback port (or ``port``), until ``stop``."""

    def __init__(self, state: "ControlRoomState", *, host: str = "127.0.0.1", port: int = 0,
                 certificate: str | None = None, key: str | None = None,
                 trusted_proxies: Sequence[str] = ()):
        import uvicorn

        from adobot.control_room.app import create_app

        self.state = state
        self.app = create_app(state)
        self._socket = socket.create_server((host, port))
        self.port = self._socket.getsockname()[1]
        scheme = "https" if certificate else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, log_level="warning", ssl_certfile=certificate, ssl_keyfile=key,
            timeout_graceful_shutdown=SHUTDOWN_SECONDS, **proxy_options(trusted_proxies)))
        self._thread: threading.Thread | None = None

    def start(self) -> "ControlRoom":
        self._thread = threading.Thread(target=self.server.run,
                                        kwargs={"sockets": [self._socket]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the control room did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.state.begin_shutdown()
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._socket.close()

    def __enter__(self) -> "ControlRoom":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def proxy_options(trusted: Sequence[str]) -> dict[str, Any]:
    """Who may say where a request came from (X-Forwarded-For, which the audit records): the
    proxies the operator names, and no one else — uvicorn would believe any local process."""
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": list(trusted) or None}


def serve(state: "ControlRoomState", *, host: str, port: int, certificate: str | None,
          key: str | None, trusted_proxies: Sequence[str] = ()) -> None:
    """Serve until interrupted (uvicorn handles Ctrl-C and SIGTERM: it finishes what is in
    flight, then stops). The signal also tells the runs in flight to stop at once — page runs
    and the control room's own — so they end within the grace, not cut off after it."""
    import uvicorn

    from adobot.control_room.app import create_app

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            state.begin_shutdown()
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(create_app(state), host=host, port=port, ssl_certfile=certificate,
                          ssl_keyfile=key, log_level="info", server_header=False,
                          timeout_graceful_shutdown=SHUTDOWN_SECONDS,
                          **proxy_options(trusted_proxies))).run()
