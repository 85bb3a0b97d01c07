"""Shared fixtures: a sandbox on a free loopback port per test, and helpers to run bots."""
from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

import pytest

from adobot.runtime.loader import load_bot, parse_bot
from adobot.runtime.runner import Runner
from adobot.actions.environment import Environment
from adobot.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ADOBOT = Path(sys.executable).with_name("adobot")
DEMO_PAT = "sandbox-demo-pat"
# A bot that connects to contoso/Payments with the token in variable `pat`; steps go after it.
CONNECT_BOT = """
name: t
steps:
  - action: Connect
    inputs:
      organization_url: https://dev.azure.com/contoso
      project: Payments
      personal_access_token: {variable: pat}
"""


@pytest.fixture
def sandbox():
    with Sandbox() as running:
        yield running


def sandbox_route(sandbox: Sandbox):
    """Send every organization's traffic to the sandbox, as `adobot run --sandbox` does."""
    return sandbox.route


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_text(text: str, sandbox: Sandbox | None = None, **variables):
    """Run a bot given as YAML text against the sandbox; returns the RunResult."""
    runner = Runner(Environment(route=sandbox_route(sandbox)) if sandbox else None)
    return runner.run(parse_bot(text), variables)


def run_file(path: Path, sandbox: Sandbox, **variables):
    return Runner(Environment(route=sandbox_route(sandbox))).run(load_bot(path), variables)


class Listener:
    """A loopback TCP listener that records every byte anyone sends it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received = bytearray()
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while True:
            try:
                conn, _ = self.server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(1)
                try:
                    while chunk := conn.recv(65536):
                        self.received += chunk
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()
