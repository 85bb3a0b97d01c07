"""The MCP server over streamable HTTP: the SDK's app, behind a bearer token when one is set."""
from __future__ import annotations

import hmac
from typing import Any

from adobot.credentials.secret import Secret


def app_for(server: Any, host: str, token: Secret | None) -> Any:
    """The ASGI app: the SDK's streamable HTTP endpoint at /mcp (it guards loopback hosts
    against DNS rebinding), and a 401 for any request without ``token`` when one is set."""
    app = server.server().streamable_http_app(host=host)
    if token is None:
        return app
    expected = f"Bearer {token.reveal()}".encode("utf-8")

    async def guarded(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": b'{"error": {"code": '
                            b'"AUTH_FAILED", "message": "send Authorization: Bearer <token>"}}'})
                return
        await app(scope, receive, send)

    return guarded
