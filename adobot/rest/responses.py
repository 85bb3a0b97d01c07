"""Service answers -> Python values or typed errors.

The stable parts of an Azure DevOps error are the HTTP status, the ``typeKey`` and the TF/VS
code at the start of ``message``; the English text is shown to the user, never keyed on, except
for TF400813, which the service uses both for "no valid credentials" and for "valid token,
missing scope".
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import requests

from adobot.errors import (
    AdobotError,
    AlreadyExists,
    AuthFailed,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ServiceError,
    Throttled,
)

_TF_CODE = re.compile(r"^\s*((?:TF|VS)\d+):")
# A write based on a state that has moved on (TF401028: the branch was updated meanwhile).
_CONFLICT_KEYS = {"GitReferenceStaleException"}
_ALREADY_EXISTS_KEYS = {"GitRepositoryNameAlreadyExistsException", "DefinitionExistsException",
                        "PipelineExistsException"}
# TF201036: a link's target work item does not exist (a 400 that means "not found").
_NOT_FOUND_CODES = {"TF201036"}
_NOT_FOUND_KEYS = {"ProjectDoesNotExistWithNameException", "ProjectDoesNotExistException",
                   "GitRepositoryNotFoundException", "WorkItemTypeNotFoundException",
                   "PipelineNotFoundException", "DefinitionNotFoundException"}
_AUTH_HINT = ("The token is invalid, expired or revoked, or belongs to another organization: "
              "create a new personal access token and store it again.")


class ServiceFault:
    """What the service said about a failure, read from the body or X-TFS-ServiceError."""

    def __init__(self, response: requests.Response) -> None:
        body: dict[str, Any] = {}
        if _is_json(response):
            try:
                parsed = response.json()
                if isinstance(parsed, dict):
                    body = parsed
            except ValueError:
                pass
        header = response.headers.get("X-TFS-ServiceError", "")
        self.message: str = str(body.get("message") or unquote(header) or "").strip()
        self.type_key: str = str(body.get("typeKey") or "")
        match = _TF_CODE.match(self.message)
        self.tf_code: str = match.group(1) if match else ""

    def details(self) -> dict[str, Any]:
        return {k: v for k, v in (("typeKey", self.type_key), ("tfCode", self.tf_code)) if v}


def _is_json(response: requests.Response) -> bool:
    """JSON, or no content type at all (some proxies drop it): worth trying to parse."""
    content_type = response.headers.get("Content-Type", "").lower()
    return "json" in content_type or not content_type


def _is_html(response: requests.Response) -> bool:
    return "text/html" in response.headers.get("Content-Type", "").lower()


def _said(fault: ServiceFault) -> str:
    return f" (the service said: {fault.message})" if fault.message else ""


def error_for_response(response: requests.Response, *, scope: str | None = None,
                       subject: str | None = None, outcome_unknown: bool = False,
                       suffix: str = "", details: dict[str, Any] | None = None
                       ) -> AdobotError | None:
    """The AdobotError that the response means, or None if it is a usable answer.

    ``suffix`` ends the message (e.g. how many attempts were made); ``outcome_unknown`` marks a
    write the service may have acted on before it failed.
    """
    status = response.status_code
    if 200 <= status < 300 and status != 203 and not _is_html(response):
        return None
    fault = ServiceFault(response)
    kind, message, hint = _error_for(status, fault, response, scope, subject)
    return kind(message + suffix, hint, status=status,
                details={**fault.details(), **(details or {})}, after_request=True,
                outcome_unknown=outcome_unknown, service_message=fault.message)


def _error_for(status: int, fault: ServiceFault, response: requests.Response,
               scope: str | None, subject: str | None) -> tuple[type[AdobotError], str, str | None]:
    """(kind, message, hint) of the error a failed answer means."""
    where = f"{response.request.method} {response.url.split('?')[0]}"
    what = subject or where
    if status == 203 or (status < 400 and _is_html(response)) or 300 <= status < 400:
        return (AuthFailed, f"the service answered {where} with a sign-in page (HTTP {status}) "
                "instead of data: the token was not accepted", _AUTH_HINT)
    if status == 401:
        lowered = fault.message.lower()
        if "expired" in lowered:
            return (AuthFailed, f"the personal access token has expired{_said(fault)}",
                    "Create a new personal access token and store it again.")
        if fault.tf_code == "TF400813" and "anonymous" not in lowered:
            return _permission_denied(fault, scope, what)
        return (AuthFailed, f"the token was not accepted for {what} (HTTP 401){_said(fault)}",
                _AUTH_HINT)
    if status == 403:
        return _permission_denied(fault, scope, what)
    if status == 404 or fault.type_key in _NOT_FOUND_KEYS or fault.tf_code in _NOT_FOUND_CODES:
        return NotFound, f"{what} was not found{_said(fault)}", None
    if fault.type_key in _CONFLICT_KEYS:
        return Conflict, f"{what} conflicts with a change made meanwhile{_said(fault)}", None
    if status == 409 or fault.type_key in _ALREADY_EXISTS_KEYS:
        return AlreadyExists, f"{what} already exists{_said(fault)}", None
    if status == 429:
        retry_after = response.headers.get("Retry-After")
        wait = f"; it asked to wait {retry_after} s" if retry_after else ""
        return Throttled, f"Azure DevOps throttled {where}{wait}{_said(fault)}", None
    if status in (400, 422):
        return (InvalidInput, f"the service refused {what}{_said(fault)}",
                "Correct the input the service names and run the bot again.")
    return ServiceError, f"Azure DevOps failed on {where} with HTTP {status}{_said(fault)}", None


def _permission_denied(fault: ServiceFault, scope: str | None,
                       what: str) -> tuple[type[AdobotError], str, str]:
    needs = f"the scope {scope}" if scope else "the needed scope"
    return (PermissionDenied,
            f"the token works but may not access {what}: it lacks {needs} or a permission"
            f"{_said(fault)}",
            f"Create a token with {needs} (or Full access), and make sure its user has the "
            "permission in the project.")


def read_json(response: requests.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    if not _is_json(response):
        raise ServiceError(
            f"{response.request.method} {response.url.split('?')[0]} answered "
            f"{response.headers.get('Content-Type') or 'no content type'}, not JSON",
            "Check that organization_url points at Azure DevOps.", after_request=True)
    try:
        return response.json()
    except ValueError:
        raise ServiceError(f"{response.url.split('?')[0]} answered malformed JSON",
                           after_request=True) from None
