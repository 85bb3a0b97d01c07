"""CreatePullRequest: a pull request from a source branch into a target branch."""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from adobot.actions.base import (
    SESSION_ERRORS,
    Action,
    ActionContext,
    ActionInputs,
    ActionOutputs,
    SessionInput,
    create_once,
    path_segment,
)
from adobot.actions.git import BranchName, branch_ref, get_repository, is_guid
from adobot.actions.references import RepositoryRef, repository_in
from adobot.actions.scopes import CODE_READ, CODE_WRITE, IDENTITY_READ
from adobot.errors import AdobotError, AlreadyExists, InvalidInput, NotFound
from adobot.sessions.session import Session

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _reviewer(value: str) -> str:
    if not (is_guid(value) or _EMAIL.match(value)):
        raise ValueError(f"reviewer {value!r} must be an e-mail address or an identity id")
    return value


class Inputs(ActionInputs):
    session: SessionInput
    repository: RepositoryRef
    source_branch: BranchName = Field(description="With the changes (main or "
                                      "refs/heads/main)", examples=["fix/retry-give-up"])
    target_branch: BranchName | None = Field(None, description="To merge into (default: "
                                             "the repository's default branch)",
                                             examples=["main"])
    title: str = Field(min_length=1, max_length=400, pattern=r"^[^\x00-\x1f]+$",
                       description="One line",
                       examples=["Retries give up after five attempts"])
    description: str | None = Field(None, max_length=4000, description="Markdown",
                                    examples=["Fixes test_retry_gives_up."])
    reviewers: list[str] = Field(default_factory=list, max_length=50,
                                 description="E-mails or identity ids",
                                 examples=[["jamal@contoso.example"]])
    work_items: list[int] = Field(default_factory=list, max_length=100,
                                  description="Ids to link", examples=[[42]])
    draft: bool = Field(False, description="As a draft", examples=[True])
    if_exists: Literal["fail", "reuse"] = Field(
        "fail", description="If already open: fail "
                            "(ALREADY_EXISTS, with its link) or reuse it",
        examples=["reuse"])

    @model_validator(mode="after")
    def _check(self) -> "Inputs":
        for reviewer in self.reviewers:
            _reviewer(reviewer)
        if self.target_branch and branch_ref(self.source_branch) == branch_ref(self.target_branch):
            raise ValueError("source_branch and target_branch are the same branch")
        return self


class PullRequest(BaseModel):
    id: int
    status: str = Field(description="active, completed or abandoned")
    title: str
    source_branch: str
    target_branch: str
    is_draft: bool
    web_url: str = Field(description="Page of the pull request in the web portal")
    url: str = Field(description="REST URL")


class Outputs(ActionOutputs):
    pull_request: PullRequest
    created: bool = Field(description="False when an existing pull request was reused")

    def summary(self) -> str:
        verb = "opened" if self.created else "reused"
        return f"{verb} pull request {self.pull_request.id}: {self.pull_request.web_url}"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    repository = repository_in(session, inputs.repository)
    source = branch_ref(inputs.source_branch)
    if inputs.target_branch:
        target = branch_ref(inputs.target_branch)
    else:
        target = get_repository(session, repository).get("defaultBranch") or ""
        if not target:
            raise NotFound(f"repository {repository!r} is empty: it has no default branch to "
                           "merge into", "Push a first commit, or give target_branch.",
                           after_request=True)
    if source == target:
        raise InvalidInput(f"{source} is the default branch of {repository!r}: a pull request "
                           "needs two branches", "Give target_branch.", field="target_branch",
                           after_request=True)
    route = f"{session.project_id}/_apis/git/repositories/{path_segment(repository)}/pullrequests"
    body = {"sourceRefName": source, "targetRefName": target, "title": inputs.title,
            "description": inputs.description or "", "isDraft": inputs.draft,
            "reviewers": [{"id": _identity(session, r)} for r in inputs.reviewers],
            "workItemRefs": [{"id": str(i)} for i in inputs.work_items]}
    what = f"a pull request from {source} into {target} in repository {repository!r}"

    def find() -> dict[str, Any] | None:
        found = session.rest.get(route, params={"searchCriteria.sourceRefName": source,
                                                "searchCriteria.targetRefName": target,
                                                "searchCriteria.status": "active", "$top": 1},
                                 scope=CODE_READ, subject=f"repository {repository!r}")
        values = (found or {}).get("value") or []
        return values[0] if values else None

    try:
        made = create_once(ctx, what, lambda: session.rest.post(
            route, body, scope=CODE_WRITE, subject=what), find)
    except AlreadyExists as exists:
        existing = find()
        if existing is None:
            raise
        if inputs.if_exists == "reuse":
            return Outputs(pull_request=_fields(existing), created=False)
        link = _fields(existing).web_url
        raise exists.derive(message=f"an active pull request from {source} into {target} "
                                    f"already exists: {link}",
                            hint="Use it, or set if_exists: reuse to take it as the result.") from None
    except AdobotError as error:
        if error.details.get("tfCode") == "TF401398":
            raise _missing_branch(session, repository, (source, target), error) from None
        raise
    return Outputs(pull_request=_fields(made), created=True)


def _identity(session: Session, reviewer: str) -> str:
    """An e-mail address -> the identity id a reviewer is given by (one request each)."""
    if is_guid(reviewer):
        return reviewer
    found = session.rest.get(session.identities("_apis/identities"),
                             params={"searchFilter": "General", "filterValue": reviewer,
                                     "queryMembership": "None"},
                             scope=IDENTITY_READ, subject=f"the identity of {reviewer!r}")
    values = (found or {}).get("value") or []
    if len(values) != 1:
        raise NotFound(f"reviewer {reviewer!r} is " + ("not a user of organization "
                       f"{session.organization!r}" if not values else "ambiguous: "
                       f"{len(values)} identities have that name"),
                       "Give the e-mail address the user signs in with, or the identity id.",
                       after_request=True)
    return values[0]["id"]


def _missing_branch(session: Session, repository: str, refs: tuple[str, str],
                    error: AdobotError) -> AdobotError:
    """TF401398 does not say which branch is missing: look (one request)."""
    found = session.rest.get(
        f"{session.project_id}/_apis/git/repositories/{path_segment(repository)}/refs",
        params={"filter": "heads/"}, scope=CODE_READ, subject=f"repository {repository!r}")
    names = {r.get("name") for r in (found or {}).get("value", [])}
    missing = [ref for ref in refs if ref not in names]
    if not missing:
        return error
    return NotFound(f"branch {missing[0].removeprefix('refs/heads/')!r} does not exist in "
                    f"repository {repository!r} (the service said: {error.service_message})",
                    "Push the branch first (PushFiles), or check its name.", after_request=True)


def _fields(item: dict[str, Any]) -> PullRequest:
    repo = item.get("repository") or {}
    web = repo.get("webUrl") or repo.get("remoteUrl") or ""
    return PullRequest(
        id=item["pullRequestId"], status=item.get("status", "active"), title=item.get("title", ""),
        source_branch=item.get("sourceRefName", ""), target_branch=item.get("targetRefName", ""),
        is_draft=bool(item.get("isDraft")), web_url=f"{web}/pullrequest/{item['pullRequestId']}",
        url=item.get("url", ""))


ACTION = Action(
    name="CreatePullRequest", label="Create pull request", group="Repos",
    read_only=False, idempotent=True,  # once open, the same branches give ALREADY_EXISTS
    description="Opens a pull request: from a branch into another (the default "
                "branch without one), with a description, reviewers, linked work items, or as "
                "a draft. An active pull request for the same branches is ALREADY_EXISTS with "
                "its link, or reused with if_exists: reuse.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed, or the service refused the pull request",
        "NOT_FOUND": "the repository, a branch, a reviewer or a work item does not exist",
        "ALREADY_EXISTS": "an active pull request for the same branches exists "
                          "(if_exists: fail)",
        "PERMISSION_DENIED": f"the token lacks {CODE_WRITE} (or {IDENTITY_READ} to find "
                             "reviewers by e-mail)",
    })
