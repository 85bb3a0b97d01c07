"""A bot runner's side of the control room: fetch a connection's credential for one run.

The request goes through ``RestClient`` like every other (its retries, its proxy rules — none
for plain http —, its timeouts, no ``~/.netrc``), with the runner's token as a bearer token;
the answer and the error envelope are the models the control room itself answers with
(``credentials.wire``). The credential stays in memory (a ``Secret``) for the run; nothing is
written. The runner's token is read from the environment (``ADOBOT_CONTROL_ROOM_TOKEN``), never
from the command line.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import ValidationError

from adobot.credentials.connections import ConnectionCredential
from adobot.credentials.secret import Secret
from adobot.credentials.wire import CredentialAnswer, CredentialRequest, ErrorBody
from adobot.errors import AdobotError, InvalidInput, ServiceError, error_class
from adobot.rest.urls import is_loopback

TOKEN_ENV = "ADOBOT_CONTROL_ROOM_TOKEN"


class ControlRoomClient:
    """Requests to a control room at ``url`` with an API ``token``: its refusals come back as
    the errors they carry (code, message, hint)."""

    def __init__(self, url: str, token: Secret, *, allow_plain_http: bool = False,
                 timeout: tuple[float, float] = (10, 30)) -> None:
        from adobot.rest.auth import TokenAuthorizer
        from adobot.rest.client import RestClient

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
        self.rest = RestClient(self.url, TokenAuthorizer(token), timeout=timeout,
                               read_error=self._refusal)

    def __repr__(self) -> str:
        return f"ControlRoomClient({self.url!r})"

    def get(self, path: str, params: dict[str, Any] | None = None, *, subject: str) -> Any:
        return self.rest.get(f"api/v1/{path}", params=params, api=None, subject=subject)

    def post(self, path: str, body: Any, *, subject: str) -> Any:
        return self.rest.post(f"api/v1/{path}", body, api=None, subject=subject)

    def _refusal(self, response: Any, *, subject: str | None = None,
                 suffix: str = "", **_: Any) -> AdobotError | None:
        """The control room's error envelope, rebuilt as the error it carries (its code, its
        message, its hint); None for a success."""
        status = response.status_code
        if 200 <= status < 300:
            return None
        where = f"the control room {self.url}"
        try:
            said = ErrorBody.model_validate(response.json()).error
        except (ValueError, ValidationError):
            return ServiceError(f"{where} answered HTTP {status} for {subject}, not an adobot "
                                f"answer{suffix}", "Check --control-room.", status=status,
                                after_request=True)
        kind = error_class(said.code)
        hint = said.hint
        if status == 401:
            hint = (f"Set {TOKEN_ENV} to a valid token (`adobot token issue NAME --role "
                    "runner`, or standard for a person).")
        message = f"{where} refused the token: {said.message}" if status == 401 \
            else f"{where}: {said.message}"
        return kind(message + suffix, hint, field=said.field, status=status,
                    after_request=status != 404)


class RemoteConnections:
    """Connections held by a control room at ``url``, fetched with a runner's ``token``."""

    def __init__(self, url: str, token: Secret, *, bot: str | None = None,
                 run: str | None = None, allow_plain_http: bool = False) -> None:
        self.room = ControlRoomClient(url, token, allow_plain_http=allow_plain_http)
        self.url = self.room.url
        self._run = CredentialRequest(bot=bot, run=run)

    def __repr__(self) -> str:
        return f"RemoteConnections({self.url!r})"

    def __call__(self, name: str, organization_url: str | None) -> ConnectionCredential:
        body = self._run.model_copy(update={"organization_url": organization_url})
        try:
            data = self.room.post(f"connections/{quote(name, safe='')}/credential",
                                  body.model_dump(exclude_none=True),
                                  subject=f"connection {name!r}")
        except AdobotError as refused:
            refused.field = refused.field or "connection"
            raise
        try:
            return CredentialAnswer.model_validate(data).credential()
        except ValidationError:
            raise ServiceError(f"the control room {self.url} answered the credential of "
                               f"connection {name!r} with something else",
                               "Check that --control-room points at an adobot control room.",
                               after_request=True) from None
