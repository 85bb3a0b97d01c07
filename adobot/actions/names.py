"""Names Azure DevOps accepts, checked before anything is sent (rules: product brief, FACTS)."""
from __future__ import annotations

import re
from typing import Annotated, Any, Callable

from pydantic import AfterValidator, Field

FORBIDDEN = set('/:\\~&%;@\'"?<>|#$*}{,+=[]')
RESERVED_PROJECT_NAMES = {n.lower() for n in (
    "PRN", "NUL", "CON", "AUX", "SERVER", "SignalR", "DefaultCollection", "Web", "App_Browsers",
    "App_Code", "App_Data", "App_GlobalResources", "App_LocalResources", "App_Themes",
    "App_WebResources", "bin", "web.config",
    *(f"COM{i}" for i in range(1, 11)), *(f"LPT{i}" for i in range(1, 10)))}
MAX_NAME = 64
# A JSON Schema pattern equivalent to the character rules (the manifest shows it).
NAME_PATTERN = r"^(?![_.])[^/:\\~&%;@'\"?<>|#$*}{,+=\[\]\x00-\x1f\x7f]{1,64}(?<!\.)$"


def _check_name(value: str, kind: str) -> str:
    if not value or not value.strip():
        raise ValueError(f"a {kind} name must not be empty")
    if len(value) > MAX_NAME:
        raise ValueError(f"a {kind} name has at most {MAX_NAME} characters; this one has {len(value)}")
    bad = sorted({ch for ch in value if ch in FORBIDDEN})
    if bad:
        raise ValueError(f"a {kind} name must not contain {' '.join(bad)}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"a {kind} name must not contain control characters")
    if value[0] in "_.":
        raise ValueError(f"a {kind} name must not start with {value[0]!r}")
    if value.endswith("."):
        raise ValueError(f"a {kind} name must not end with '.'")
    if value != value.strip():
        raise ValueError(f"a {kind} name must not start or end with a space")
    return value


def check_project_name(value: str) -> str:
    _check_name(value, "project")
    if value.lower() in RESERVED_PROJECT_NAMES:
        raise ValueError(f"{value!r} is a reserved name and cannot be a project")
    return value


def check_repository_name(value: str) -> str:
    return _check_name(value, "repository")


# The schema keywords are for manifests only; the validators give the clearer messages.
_NAME_SCHEMA = {"minLength": 1, "maxLength": MAX_NAME, "pattern": NAME_PATTERN}
ProjectName = Annotated[str, AfterValidator(check_project_name),
                        Field(json_schema_extra=_NAME_SCHEMA)]
RepositoryName = Annotated[str, AfterValidator(check_repository_name),
                           Field(json_schema_extra=_NAME_SCHEMA)]


def keys_matching(pattern: re.Pattern[str], form: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A validator: every key of a map must match ``pattern`` (``form`` says what it should be)."""
    def check(value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not pattern.match(name):
                raise ValueError(f"{name!r} is not {form}")
        return value
    return check
