"""What the Git actions share: the repository model and finding a repository by name or id."""
from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BaseModel, Field, model_validator

from adobot.actions.base import ActionInputs, path_segment
from adobot.actions.scopes import CODE_READ
from adobot.errors import AdobotError, NotFound
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


def check_commit(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{7,40}", value):
        raise ValueError(f"{value!r} is not a commit id (7 to 40 hexadecimal digits)")
    return value.lower()


CommitId = Annotated[str, AfterValidator(check_commit), Field(max_length=40)]
TagName = Annotated[str, AfterValidator(check_branch), Field(max_length=400)]


def version_query(branch: str | None, tag: str | None, commit: str | None,
                  prefix: str = "versionDescriptor") -> dict[str, str]:
    """The versionDescriptor a route takes for a branch, tag or commit (none: the default
    branch)."""
    if commit:
        return {f"{prefix}.version": commit, f"{prefix}.versionType": "commit"}
    if tag:
        return {f"{prefix}.version": tag.removeprefix("refs/tags/"),
                f"{prefix}.versionType": "tag"}
    if branch:
        return {f"{prefix}.version": branch.removeprefix("refs/heads/"),
                f"{prefix}.versionType": "branch"}
    return {}


def version_label(branch: str | None, tag: str | None, commit: str | None) -> str:
    if commit:
        return f"commit {commit}"
    if tag:
        return f"tag {tag!r}"
    return f"branch {branch!r}" if branch else "the default branch"


def one_version(branch: str | None, tag: str | None, commit: str | None) -> None:
    if sum(v is not None for v in (branch, tag, commit)) > 1:
        raise ValueError("give at most one of branch, tag and commit")


# The version a reading action looks at: a branch, a tag or a commit (``branch: BranchInput =
# None``); each action declares them itself, so its manifest keeps its own order of inputs.
BranchInput = Annotated[Optional[BranchName], Field(
    description="Name or full ref (default: the default branch)", examples=["main"])]
TagInput = Annotated[Optional[TagName], Field(description="Instead of a branch",
                                              examples=["v1.2.0"])]
CommitInput = Annotated[Optional[CommitId], Field(
    description="Instead of a branch",
    examples=["1a33cc566527507ef40f1bb89ca6bcaac6b7dcbd"])]


class AtOneVersion(ActionInputs):
    """Inputs with BranchInput, TagInput and CommitInput: at most one of them is given."""

    @model_validator(mode="after")
    def _one_version(self) -> "AtOneVersion":
        one_version(getattr(self, "branch"), getattr(self, "tag"), getattr(self, "commit"))
        return self


def explain_missing(error: AdobotError, repository: str, version: str,
                    path: str | None = None) -> AdobotError:
    """NOT_FOUND that says which was missing: the repository, the version or the path."""
    if not isinstance(error, NotFound):
        return error
    key = error.details.get("typeKey")
    if key == "GitUnresolvableToCommitException":
        return error.derive(message=f"{version} does not exist in repository {repository!r} "
                                    f"(the service said: {error.service_message})",
                            hint="Check the branch, tag or commit; ListCommits shows commits.")
    if key == "GitItemNotFoundException" and path is not None:
        return error.derive(message=f"{path!r} does not exist in repository {repository!r} at "
                                    f"{version} (the service said: {error.service_message})",
                            hint="Check the path; ListFiles lists a folder.")
    return error


def web_url(session: Session, repository: str, suffix: str = "") -> str:
    """The page of a repository (or of something in it) in the web portal."""
    return (f"{session.organization_url}/{path_segment(session.project_name)}/_git/"
            f"{path_segment(repository)}{suffix}")
