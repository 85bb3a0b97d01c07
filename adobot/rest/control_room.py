"""A bot runner's side of the control room: fetch a connection's credential for one run.

The credential stays in memory (a ``Secret``) for the run; nothing is written. The runner's
token is read from the environment (``ADOBOT_CONTROL_ROOM_TOKEN``), never from the command line.
"""
from __future__ import annotations

from typing import Any

import requests

from adobot.credentials.connections import ConnectionCredential
from adobot.credentials.secret import Secret
from adobot.errors import (
    AdobotError,
    AuthFailed,
    CredentialNotFound,
    InvalidInput,
    NetworkError,
    PermissionDenied,
    ServiceError,
    Timeout,
)
from adobot.rest.urls import is_loopback

TOKEN_ENV = "ADOBOT_CONTROL_ROOM_TOKEN"


class RemoteConnections:
    """Connections held by a control room at ``url``, fetched with a runner's ``token``."""

    def __init__(self, url: str, token: Secret, *, bot: str | None = None,
                 run: str | None = None, verify: bool | str = True,
                 allow_plain_http: bool = False) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"--control-room {url!r} is not an http(s) URL",
                               "Give the control room's address, e.g. https://control.example",
                               field="--control-room")
        if parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_plain_http:
            raise InvalidInput(f"--control-room {url} is plain http to another machine: the "
                               "runner's token and the credentials would cross the network in "
                               "clear text", "Use https, or --allow-plain-http if you must.",
                               field="--control-room")
        self.url = url.rstrip("/")
        self._token = token
        self._run = {k: v for k, v in (("bot", bot), ("run", run)) if v}
        self._verify = verify

    def __repr__(self) -> str:
        return f"RemoteConnections({self.url!r})"

    def __call__(self, name: str, organization_url: str | None) -> ConnectionCredential:
        data = self._post(f"/api/v1/connections/{name}/credential",
                          {**self._run, "organization_url": organization_url}, name)
        try:
            return ConnectionCredential(
                name=data["name"], organization_url=data["organization_url"],
                project=data.get("project"),
                authentication_method=data["authentication_method"],
                secret=Secret(data["secret"]), tenant_id=data.get("tenant_id"),
                client_id=data.get("client_id"))
        except (KeyError, TypeError):
            raise ServiceError(f"the control room {self.url} answered the credential of "
                               f"connection {name!r} with something else",
                               "Check that --control-room points at an adobot control room.",
                               after_request=True) from None

    def _post(self, path: str, body: dict[str, Any], name: str) -> dict[str, Any]:
        try:
            answer = requests.post(self.url + path, json=body, timeout=(10, 30),
                                   verify=self._verify, allow_redirects=False, headers={
                                       "Authorization": f"Bearer {self._token.reveal()}"})
        except requests.Timeout:
            raise Timeout(f"the control room {self.url} did not answer in time",
                          after_request=True) from None
        except requests.RequestException as exc:
            raise NetworkError(f"the control room {self.url} cannot be reached "
                               f"({type(exc).__name__})", "Check --control-room and the "
                               "network.", after_request=True) from None
        try:
            data = answer.json()
        except ValueError:
            data = None
        if answer.status_code == 200 and isinstance(data, dict):
            return data
        error = (data or {}).get("error") if isinstance(data, dict) else None
        said = error.get("message") if isinstance(error, dict) else None
        hint = error.get("hint") if isinstance(error, dict) else None
        kind: type[AdobotError] = {401: AuthFailed, 403: PermissionDenied,
                                   404: CredentialNotFound}.get(answer.status_code, ServiceError)
        where = f"the control room {self.url}"
        message = {401: f"{where} refused the runner's token: {said or 'HTTP 401'}",
                   404: f"connection {name!r} was not found at {where}"}.get(
            answer.status_code, f"{where} refused the credential of connection {name!r}: "
                                f"{said or f'HTTP {answer.status_code}'}")
        if answer.status_code == 401:
            hint = f"Set {TOKEN_ENV} to a valid runner token (`adobot token issue NAME --role runner`)."
        raise kind(message, hint, field="connection", status=answer.status_code,
                   after_request=answer.status_code != 404)
