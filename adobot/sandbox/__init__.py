"""The embedded Azure DevOps emulator: ``with Sandbox() as sb: ... sb.url ...``."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from adobot.sandbox.state import SandboxState

if TYPE_CHECKING:
    from adobot.rest.urls import OrganizationUrl


class Sandbox:
    """Serves the emulator on 127.0.0.1 (a free port unless one is given) in a thread."""

    def __init__(self, seed: dict[str, Any] | None = None, port: int = 0,
                 host: str = "127.0.0.1", latency_ms: float | None = None,
                 jitter_ms: float = 0.0, tls: bool | None = None) -> None:
        self.state = SandboxState(seed)
        if latency_ms is not None:
            self.state.set_latency(latency_ms, jitter_ms)
        self._address = (host, port)
        self._server = None
        self._thread: threading.Thread | None = None
        # A second listener with TLS, for Entra sign-in (MSAL wants https): by default when
        # the seed names Entra identities.
        self._tls = bool(self.state.entra.identities) if tls is None else tls
        self._tls_server = None
        self._tls_thread: threading.Thread | None = None
        self._tls_folder: Any = None
        self.ca_file: str | None = None  # the TLS listener's certificate, for a client to trust

    @property
    def url(self) -> str:
        return _url(self._server, "http", "the sandbox is not running")

    @property
    def tls_url(self) -> str:
        """The TLS listener (Entra's authority for azure-identity: ``authority=tls_url``)."""
        return _url(self._tls_server, "https",
                    "the sandbox's TLS listener is not running (Sandbox(tls=True))")

    @property
    def identity_endpoint(self) -> str:
        """Where a managed identity asks for tokens (IDENTITY_ENDPOINT, with IDENTITY_HEADER
        set to ``state.entra.identity_header``)."""
        return f"{self.url}/_entra/msi/token"

    def entra_route(self) -> Any:
        """Where a run sends Entra sign-in to reach this sandbox. Without its TLS listener (the
        seed names no Entra identities) a sign-in goes nowhere: never to Microsoft's Entra."""
        from adobot.credentials.identity import EntraRoute

        if self._tls_server is None:
            return EntraRoute(closed="the sandbox's seed names no Entra identities, and a "
                                     "sandboxed run signs in nowhere else")

        return EntraRoute(authority=self.tls_url, connection_verify=self.ca_file,
                          identity_endpoint=self.identity_endpoint,
                          identity_header=self.state.entra.identity_header)

    def org_url(self, organization: str = "contoso") -> str:
        return f"{self.url}/{organization}"

    def route(self, organization: OrganizationUrl) -> str:
        """Where an organization's requests go with --sandbox: here, keeping its name."""
        return self.org_url(organization.name)

    def start(self) -> "Sandbox":
        from adobot.sandbox.routes import app
        from adobot.sandbox.server import SandboxServer

        self._server = SandboxServer(self._address, self.state, app)
        self._thread = _serve(self._server, "adobot-sandbox")
        if self._tls:
            from adobot.sandbox.tls import server_context

            context, ca_file, self._tls_folder = server_context()
            self.ca_file = str(ca_file)
            self._tls_server = SandboxServer((self._address[0], 0), self.state, app)
            self._tls_server.socket = context.wrap_socket(self._tls_server.socket,
                                                          server_side=True)
            self._tls_thread = _serve(self._tls_server, "adobot-sandbox-tls")
        return self

    def stop(self) -> None:
        if self._tls_server is not None:
            _halt(self._tls_server, self._tls_thread)
            self._tls_server = None
            self._tls_folder.cleanup()
        if self._server is not None:
            _halt(self._server, self._thread)
            self._server = None

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _url(server: Any, scheme: str, missing: str) -> str:
    if server is None:
        raise RuntimeError(missing)
    host, port = server.server_address[:2]
    return f"{scheme}://{host}:{port}"


def _serve(server: Any, name: str) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              name=name, daemon=True)
    thread.start()
    return thread


def _halt(server: Any, thread: threading.Thread | None) -> None:
    server.shutdown()
    server.close_connections()
    server.server_close()
    if thread is not None:
        thread.join(timeout=5)
