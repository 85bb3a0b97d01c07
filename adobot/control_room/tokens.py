"""API tokens of the control room: for people (administrator, standard) and machines (runner).

A token is shown once, when it is issued; the store keeps only its SHA-256 (a token is 32
random bytes, so a fast hash is enough: there is nothing to guess), its role, its expiry and
whether it was revoked.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from adobot.credentials.connections import check_connection_name
from adobot.credentials.secret import Secret
from adobot.errors import AdobotError, AlreadyExists, CredentialNotFound, InvalidInput

if TYPE_CHECKING:
    from adobot.store.records import TokenRepository

# administrator: manages connections and tokens; standard: lists connections and runs bots
# (never a secret); runner: a bot runner's machine, which fetches a connection's secret for a run.
ROLES = ("administrator", "standard", "runner")
PREFIX = "adobot_"
MAX_DAYS = 366


class Unauthorized(AdobotError):
    """No token, or one that is unknown, revoked or expired (HTTP 401)."""

    code = "AUTH_FAILED"


@dataclass(frozen=True)
class ApiToken:
    id: str
    name: str
    role: str
    created_at: str
    expires_at: str
    revoked_at: str | None = None

    def expired(self, now: dt.datetime | None = None) -> bool:
        return _parse(self.expires_at) <= (now or _now())

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role,
                "created_at": self.created_at, "expires_at": self.expires_at,
                "revoked_at": self.revoked_at,
                "state": "revoked" if self.revoked_at else "expired" if self.expired()
                else "active"}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _text(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def _record(item: dict[str, Any]) -> ApiToken:
    return ApiToken(item["id"], item["name"], item["role"], item["created_at"],
                    item["expires_at"], item.get("revoked_at"))


class Tokens:
    def __init__(self, repository: "TokenRepository",
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.repository = repository
        self.clock = clock or _now  # when "now" is (tests issue tokens in the past)

    def issue(self, name: str, role: str, days: float = 90) -> tuple[ApiToken, Secret]:
        """A new token: its record, and the token itself (shown once, stored nowhere)."""
        check_connection_name(name, "token")
        if role not in ROLES:
            raise InvalidInput(f"role {role!r} is not a control-room role",
                               f"Use one of: {', '.join(ROLES)}.", field="role")
        if not 0 < days <= MAX_DAYS:
            raise InvalidInput(f"a token must expire within {MAX_DAYS} days, not {days:g}",
                               "Give --days between 1 and 366 (issue a new one before it "
                               "expires).", field="days")
        token = PREFIX + secrets.token_urlsafe(32)
        now = self.clock().replace(microsecond=0)
        record = ApiToken(secrets.token_hex(4), name, role, _text(now),
                          _text(now + dt.timedelta(days=days)))
        if not self.repository.insert(_hash(token), {**record.__dict__},
                                      unless_active_after=_text(now)):
            raise AlreadyExists(f"an active token named {name!r} already exists",
                                f"Revoke it first (`adobot token revoke {name}`), or "
                                "choose another name.", field="name")
        return record, Secret(token)

    def list(self) -> list[ApiToken]:
        return [_record(item) for item in self.repository.list()]

    def revoke(self, name_or_id: str) -> list[ApiToken]:
        """Revoke the active tokens of a name, or one token by id."""
        revoked = [_record(item) for item in self.repository.revoke(name_or_id,
                                                                    _text(self.clock()))]
        if not revoked:
            raise CredentialNotFound(f"no active token is named or has the id {name_or_id!r}",
                                     "`adobot token list` shows them.", field="token")
        return revoked

    def verify(self, token: str | None) -> ApiToken:
        """The record of a presented token; Unauthorized if it is missing, unknown, revoked
        or expired (all said apart: the caller already holds the token). One indexed read,
        by the token's hash."""
        if not token:
            raise Unauthorized("no API token: send Authorization: Bearer <token>",
                               "Ask a control-room admin for a token (`adobot token issue`).")
        item = self.repository.by_digest(_hash(token))
        if item is None:
            raise Unauthorized("the API token is not known to this control room",
                               "Check the token, or ask an admin for a new one.")
        record = _record(item)
        if record.revoked_at:
            raise Unauthorized(f"the API token {record.name!r} was revoked at {record.revoked_at}",
                               "Ask a control-room admin for a new one.")
        if record.expired(self.clock()):
            raise Unauthorized(f"the API token {record.name!r} expired at {record.expires_at}",
                               "Ask a control-room admin for a new one.")
        return record
