"""What the Git actions share: the repository model and finding a repository by name or id."""
from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from adobot.actions.base import path_segment
from adobot.actions.scopes import CODE_READ
from adobot.sessions.session import Session


_BAD_REF = re.compile(r"[\s~^:?*\[\\]|\.\.|@\{|//|/$|\.lock$|^/|\.$")


def check_branch(value: str) -> str:
    if not value or _BAD_REF.search(value) or any(ord(ch) < 32 for ch in value):
        raise ValueError(f"{value!r} is not a valid branch or ref name")
    return value


# A branch: a short name (main) or a full ref (refs/heads/main, refs/pull/1/merge).
BranchName = Annotated[str, AfterValidator(check_branch), Field(max_length=400)]


def branch_ref(branch: str) -> str:
    """``main`` -> ``refs/heads/main``; a full ref stays as it is."""
    return branch if branch.startswith("refs/") else f"refs/heads/{branch}"


class Repository(BaseModel):
    id: str
    name: str
    default_branch: str | None = Field(None, description="e.g. refs/heads/main; none while empty")
    remote_url: str | None = Field(None, description="Clone URL (https)")
    web_url: str | None = Field(None, description="Page of the repository in the web portal")


class ListedRepository(Repository):
    size: int | None = Field(None, description="Compressed size in bytes")


def repository_fields(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "name": item["name"], "default_branch": item.get("defaultBranch"),
            "remote_url": item.get("remoteUrl"),
            "web_url": item.get("webUrl") or item.get("_links", {}).get("web", {}).get("href")}


def is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def get_repository(session: Session, name_or_id: str) -> dict[str, Any]:
    """One GET; NOT_FOUND names the repository and the project."""
    return session.rest.get(
        f"{session.project_id}/_apis/git/repositories/{path_segment(name_or_id)}",
        scope=CODE_READ,
        subject=f"repository {name_or_id!r} in project {session.project_name!r}")
