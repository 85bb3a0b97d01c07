"""ListCommits: recent commits of a repository, newest first, filtered as the service filters."""
from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field, model_validator

from adobot.actions.base import (
    SESSION_ERRORS,
    Action,
    ActionContext,
    ActionInputs,
    ActionOutputs,
    SessionInput,
    path_segment,
)
from adobot.actions.git import BranchInput, explain_missing, version_label, version_query
from adobot.actions.references import RepositoryRef, repository_in
from adobot.actions.scopes import CODE_READ
from adobot.errors import AdobotError

PAGE = 1000  # commits per request


class Inputs(ActionInputs):
    session: SessionInput
    repository: RepositoryRef
    branch: BranchInput = None
    path: str | None = Field(None, min_length=1, max_length=4000, pattern=r"^[^\x00-\x1f]+$",
                             description="Only commits to this path (a file or folder)",
                             examples=["src/retry.py"])
    author: str | None = Field(None, min_length=1, max_length=256,
                               description="Name or e-mail",
                               examples=["avery@contoso.example"])
    from_date: dt.datetime | None = Field(None, description="Since this "
                                          "time (ISO 8601; UTC without a zone)",
                                          examples=["2026-01-06T18:00:00Z"])
    to_date: dt.datetime | None = Field(None, description="Until this "
                                        "time", examples=["2026-01-09T07:30:00Z"])
    max_count: int = Field(20, ge=1, le=10_000, description="At most this many",
                           examples=[50])

    @model_validator(mode="after")
    def _dates_in_order(self) -> "Inputs":
        if self.from_date and self.to_date and _utc(self.from_date) > _utc(self.to_date):
            raise ValueError("from_date is after to_date")
        return self


class Commit(BaseModel):
    id: str
    author: str
    email: str | None = None
    date: str = Field(description="When it was authored (ISO 8601)")
    comment: str
    comment_truncated: bool = Field(False, description="The service shortened the comment")
    web_url: str | None = Field(None, description="Page of the commit in the web portal")


class Outputs(ActionOutputs):
    commits: list[Commit] = Field(description="Commits, newest first")
    count: int

    def summary(self) -> str:
        return f"{self.count} commits" + (f", newest {self.commits[0].id[:8]}: "
                                          f"{self.commits[0].comment.splitlines()[0][:60]}"
                                          if self.commits else "")


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _iso(value: dt.datetime | None) -> str | None:
    return _utc(value).isoformat().replace("+00:00", "Z") if value else None


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    repository = repository_in(session, inputs.repository)
    query: dict[str, Any] = {
        **version_query(inputs.branch, None, None, prefix="searchCriteria.itemVersion"),
        "searchCriteria.itemPath": "/" + inputs.path.strip("/") if inputs.path else None,
        "searchCriteria.author": inputs.author,
        "searchCriteria.fromDate": _iso(inputs.from_date),
        "searchCriteria.toDate": _iso(inputs.to_date)}
    found: list[dict[str, Any]] = []
    while len(found) < inputs.max_count:
        top = min(PAGE, inputs.max_count - len(found))
        try:
            page = session.rest.get(
                f"{session.project_id}/_apis/git/repositories/{path_segment(repository)}/commits",
                params={**query, "searchCriteria.$skip": len(found) or None,
                        "searchCriteria.$top": top}, scope=CODE_READ,
                subject=f"repository {repository!r} in project {session.project_name!r}")
        except AdobotError as error:
            raise explain_missing(error, repository,
                                  version_label(inputs.branch, None, None)) from None
        values = (page or {}).get("value", [])
        found += values
        if len(values) < top:
            break
    commits = [{"id": c["commitId"], "author": c.get("author", {}).get("name", ""),
                "email": c.get("author", {}).get("email"), "date": c.get("author", {}).get("date", ""),
                "comment": c.get("comment", ""), "comment_truncated": bool(c.get("commentTruncated")),
                "web_url": c.get("remoteUrl")} for c in found[:inputs.max_count]]
    return Outputs.model_validate({"commits": commits, "count": len(commits)})


ACTION = Action(
    name="ListCommits", label="List commits", group="Repos",
    read_only=True, idempotent=True,
    description="Lists a repository's commits (a branch, or the default branch), newest "
                "first, optionally only those by an author, in a date range, or that changed a "
                "path: id, author, date, comment and a link.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed, or a repository URL names another "
                         "organization or project than the session's",
        "NOT_FOUND": "the repository or the branch does not exist",
        "PERMISSION_DENIED": f"the token lacks {CODE_READ}",
    })
