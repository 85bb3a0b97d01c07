"""The one error hierarchy of adobot.

Every failure a user can see is an ``AdobotError``: a stable ``code`` from the contract, a
``message`` that names the thing that was wrong and a ``hint`` that says what to do. The exit
code follows from the code: problems found before anything was sent exit 2, failures after a
request was sent exit 1.
"""
from __future__ import annotations

from typing import Any

# Codes detected before a request is sent for the step (exit 2).
_BEFORE_SENDING = {
    "INVALID_BOT",
    "INVALID_INPUT",
    "SESSION_NOT_FOUND",
    "SESSION_EXISTS",
    "CREDENTIAL_NOT_FOUND",
    "VAULT_ERROR",
    "PERMISSION_DENIED",  # e.g. a vault credential refused for an organization it is not bound to
}

_DEFAULT_HINTS = {
    "INVALID_BOT": "Fix the bot file; `adobot validate BOT.yaml` lists every problem.",
    "INVALID_INPUT": "Correct the input named in the message and run the bot again.",
    "SESSION_NOT_FOUND": "Connect the session first (action Connect), or use the name of a connected session.",
    "SESSION_EXISTS": "Choose another session name, or Disconnect the existing session first.",
    "CREDENTIAL_NOT_FOUND": "Ask a control-room admin to store it with `adobot vault put LOCKER CREDENTIAL ATTRIBUTE`.",
    "VAULT_ERROR": "Check the vault file and ADOBOT_VAULT_KEY.",
    "AUTH_FAILED": "The token is invalid, expired or revoked: create a new personal access token and store it again.",
    "PERMISSION_DENIED": "Use a token whose scopes and permissions allow this action.",
    "NOT_FOUND": "Check the name or id; it must exist in the organization and project of the session.",
    "ALREADY_EXISTS": "Choose another name, or reuse the existing one.",
    # Not in the contract's list: something changed between reading it and writing it.
    "CONFLICT": "It was changed by someone else since it was read: run the step again.",
    "THROTTLED": "Azure DevOps is rate-limiting this user; run the bot later or spread the work out.",
    "TIMEOUT": "The service did not answer in time; try again, or raise the timeout.",
    "NETWORK_ERROR": "Check the organization URL and the network connection, then try again.",
    "SERVICE_ERROR": "Azure DevOps reported an internal problem; try again later.",
    # Not in the contract's list: a bug in adobot itself, never a problem of the bot or service.
    "INTERNAL_ERROR": "This is a bug in adobot: run again with --debug and report the traceback.",
}

ERROR_CODES = tuple(_DEFAULT_HINTS)


class AdobotError(Exception):
    """A failure with a stable code, a message naming what was wrong, and a hint.

    Errors are built whole where their message is known and never changed after they are
    raised: code that knows more (an action knowing where to look) raises ``derive(...)``.
    """

    code = "SERVICE_ERROR"

    def __init__(self, message: str, hint: str | None = None, *, field: str | None = None,
                 status: int | None = None, details: dict[str, Any] | None = None,
                 after_request: bool = False, outcome_unknown: bool = False,
                 service_message: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or _DEFAULT_HINTS[self.code]
        self.field = field
        self.status = status
        self.details = details or {}
        # Set when the failure came back from (or while) sending a request: exit 1, not 2.
        self.after_request = after_request
        # A write whose answer was lost: the service may or may not have acted on it.
        self.outcome_unknown = outcome_unknown
        # What the service itself said (its message), when the error came from an answer.
        self.service_message = service_message

    @property
    def exit_code(self) -> int:
        return 2 if self.code in _BEFORE_SENDING and not self.after_request else 1

    def derive(self, **changes: Any) -> "AdobotError":
        """A new error of the same kind with some fields changed (e.g. a better hint)."""
        fields = {"message": self.message, "hint": self.hint, "field": self.field,
                  "status": self.status, "details": dict(self.details),
                  "after_request": self.after_request, "outcome_unknown": self.outcome_unknown,
                  "service_message": self.service_message}
        return type(self)(**{**fields, **changes})

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "hint": self.hint}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}: {self.message!r})"


class InvalidBot(AdobotError):
    code = "INVALID_BOT"


class InvalidInput(AdobotError):
    code = "INVALID_INPUT"


class SessionNotFound(AdobotError):
    code = "SESSION_NOT_FOUND"


class SessionExists(AdobotError):
    code = "SESSION_EXISTS"


class CredentialNotFound(AdobotError):
    code = "CREDENTIAL_NOT_FOUND"


class VaultError(AdobotError):
    code = "VAULT_ERROR"


class AuthFailed(AdobotError):
    code = "AUTH_FAILED"


class PermissionDenied(AdobotError):
    code = "PERMISSION_DENIED"


class NotFound(AdobotError):
    code = "NOT_FOUND"


class AlreadyExists(AdobotError):
    code = "ALREADY_EXISTS"


class Conflict(AdobotError):
    code = "CONFLICT"


class TransportError(AdobotError):
    """No usable answer came back: the service was slow, unreachable, failing or throttling.
    The retry policy deals with these; every action that sends requests can raise them."""


class Throttled(TransportError):
    code = "THROTTLED"


class Timeout(TransportError):
    code = "TIMEOUT"


class NetworkError(TransportError):
    code = "NETWORK_ERROR"


class ServiceError(TransportError):
    code = "SERVICE_ERROR"


class InternalError(AdobotError):
    code = "INTERNAL_ERROR"


def error_class(code: str) -> type[AdobotError]:
    """The error type of a stable code (an answer that carries the code is rebuilt as the same
    kind of error on the other side): SERVICE_ERROR for a code this version does not know."""
    return _BY_CODE.get(code, ServiceError)


_BY_CODE: dict[str, type[AdobotError]] = {kind.code: kind for kind in (
    InvalidBot, InvalidInput, SessionNotFound, SessionExists, CredentialNotFound, VaultError,
    AuthFailed, PermissionDenied, NotFound, AlreadyExists, Conflict, Throttled, Timeout,
    NetworkError, ServiceError, InternalError)}
