"""The sandbox's own routes, beside Azure DevOps's: faults on demand, counts, and the sign-in
page a client ends on when it follows the service's redirect."""
from __future__ import annotations

import json
from typing import Any

from adobot.sandbox import responses as body
from adobot.sandbox.routing import Answer, HttpRequest
from adobot.sandbox.state import SandboxState

SIGN_IN = "/_signin"


def control(state: SandboxState, request: HttpRequest) -> Answer | None:
    """``/_sandbox/faults`` and ``/_sandbox/stats``: never recorded, never faulted. ``DELETE
    /_sandbox/stats`` forgets the requests seen and the most in flight at once."""
    path = request.path.rstrip("/")
    if path == "/_sandbox/faults":
        return _faults(state, request)
    if path == "/_sandbox/stats":
        if request.method == "DELETE":
            state.reset_stats()
            return 204, b""
        return 200, state.stats(request.query.get("title_prefix", ""))
    return None


def _faults(state: SandboxState, request: HttpRequest) -> Answer:
    if request.method == "GET":
        return 200, {"count": len(state.faults.list()), "value": state.faults.list()}
    if request.method == "DELETE":
        state.faults.clear()
        return 204, b""
    if request.method == "POST":
        try:
            rule: Any = json.loads(request.body or b"null")
            return 201, state.faults.add(rule).to_dict()
        except (ValueError, TypeError) as exc:
            return 400, {"message": f"not a valid fault: {exc}"}
    return 405, {"message": "use GET, POST or DELETE"}


def sign_in(request: HttpRequest) -> Answer | None:
    """What a client that followed the 302 ends on: an HTML page, 203."""
    return (203, body.SIGN_IN_PAGE) if request.path.rstrip("/") == SIGN_IN else None
