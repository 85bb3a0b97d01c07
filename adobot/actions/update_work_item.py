"""UpdateWorkItem: set fields, move tags, comment and link, in one JSON Patch guarded by the
revision read, so two bots never overwrite each other silently."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from adobot.actions.base import (
    SESSION_ERRORS,
    Action,
    ActionContext,
    ActionInputs,
    ActionOutputs,
    SessionInput,
)
from adobot.actions.create_work_item import JSON_PATCH, PARENT_LINK, WorkItem, _fields, _no_control
from adobot.actions.git import check_commit, get_repository, is_guid
from adobot.actions.references import RepositoryRef, repository_in
from adobot.actions.scopes import WORK_READ, WORK_WRITE
from adobot.errors import AdobotError, Conflict
from adobot.sessions.session import Session

LINK_TYPES = {"parent": PARENT_LINK, "child": "System.LinkTypes.Hierarchy-Forward",
              "related": "System.LinkTypes.Related"}


class Link(BaseModel):
    model_config = {"extra": "forbid", "frozen": True}
    type: Literal["parent", "child", "related", "pull_request", "commit"]
    target: int | str = Field(description="A work item id, a pull request id, or a commit id")
    repository: RepositoryRef | None = Field(None, description="The repository of a pull "
                                             "request or commit")

    @model_validator(mode="after")
    def _check(self) -> "Link":
        if self.type == "commit":
            check_commit(str(self.target))
        elif not str(self.target).isdigit() or int(self.target) < 1:
            raise ValueError(f"a {self.type} link's target is an id (a positive number)")
        if self.type in ("pull_request", "commit") and not self.repository:
            raise ValueError(f"a {self.type} link needs the repository")
        if self.type in LINK_TYPES and self.repository:
            raise ValueError(f"a {self.type} link takes no repository")
        return self


def _tags(value: list[str]) -> list[str]:
    for tag in value:
        if not tag.strip() or ";" in tag:
            raise ValueError(f"tag {tag!r} must not be blank or contain ';'")
    return value


Tags = Annotated[list[str], AfterValidator(_tags)]


class Inputs(ActionInputs):
    session: SessionInput
    id: int = Field(ge=1, description="Work item id", examples=[42])
    rev: int | None = Field(None, ge=1, description="Revision read (e.g. by "
                            "QueryWorkItems): the update is refused (CONFLICT) if the item has "
                            "changed since", examples=[3])
    title: Annotated[str, AfterValidator(_no_control)] | None = Field(
        None, min_length=1, max_length=255, description="One line",
        examples=["Captures fail after the fifth retry"])
    state: str | None = Field(None, min_length=1, max_length=128, description="New state",
                              examples=["Resolved"])
    assigned_to: str | None = Field(None, max_length=256, description="E-mail or "
                                    "name; empty text unassigns",
                                    examples=["jamal@contoso.example"])
    tags_add: Tags = Field(default_factory=list, description="Tags to add", examples=[["triage"]])
    tags_remove: Tags = Field(default_factory=list, description="Tags to remove",
                              examples=[["needs-info"]])
    fields: Annotated[dict[str, Any], AfterValidator(_fields)] = Field(
        default_factory=dict, description="Any fields: reference name -> value (null clears)",
        examples=[{"Microsoft.VSTS.Common.Priority": 1}])
    comment: Annotated[str, AfterValidator(_no_control)] | None = Field(
        None, min_length=1, max_length=1_000_000, description="Added to the discussion "
                                                              "(HTML)",
        examples=["Fix proposed in pull request 12."])
    links: list[Link] = Field(default_factory=list, max_length=100,
                              description="Links to add: {type: parent|child|related, target: "
                                          "id} or {type: pull_request|commit, target, repository}",
                              examples=[[{"type": "pull_request", "target": 12,
                                          "repository": "payments-api"}]])

    @model_validator(mode="after")
    def _check(self) -> "Inputs":
        named = {"System.Title": self.title, "System.State": self.state,
                 "System.AssignedTo": self.assigned_to}
        for reference, value in named.items():
            if value is not None and reference in self.fields:
                raise ValueError(f"{reference} is set twice")
        if (self.tags_add or self.tags_remove) and "System.Tags" in self.fields:
            raise ValueError("System.Tags is set twice: by tags_add/tags_remove and in 'fields'")
        if {t.lower() for t in self.tags_add} & {t.lower() for t in self.tags_remove}:
            raise ValueError("a tag is both added and removed")
        if not (any(v is not None for v in named.values()) or self.tags_add or self.tags_remove
                or self.fields or self.comment or self.links):
            raise ValueError("nothing to change: give a field, tags, a comment or a link")
        return self


class Outputs(ActionOutputs):
    work_item: WorkItem

    def summary(self) -> str:
        return f"updated work item {self.work_item.id} (revision {self.work_item.rev})"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    route = f"{session.project_id}/_apis/wit/workitems/{inputs.id}"
    rev = inputs.rev
    tags: str | None = None
    if inputs.tags_add or inputs.tags_remove:  # the new tags follow from the current ones
        current = session.rest.get(route, params={"fields": "System.Tags"}, scope=WORK_READ,
                                   subject=f"work item {inputs.id}")
        read_rev = current.get("rev")
        if rev is not None and read_rev != rev:
            raise _conflict(inputs.id, rev, read_rev)
        rev = read_rev
        tags = _moved(str(current.get("fields", {}).get("System.Tags") or ""),
                      inputs.tags_add, inputs.tags_remove)
    document: list[dict[str, Any]] = []
    if rev is not None:
        document.append({"op": "test", "path": "/rev", "value": rev})
    values = {"System.Title": inputs.title, "System.State": inputs.state,
              "System.AssignedTo": inputs.assigned_to, "System.Tags": tags,
              "System.History": inputs.comment}
    document += [{"op": "add", "path": f"/fields/{name}", "value": value}
                 for name, value in values.items() if value is not None]
    document += [{"op": "remove", "path": f"/fields/{name}"} if value is None
                 else {"op": "add", "path": f"/fields/{name}", "value": value}
                 for name, value in inputs.fields.items()]
    document += [{"op": "add", "path": "/relations/-", "value": _relation(session, link)}
                 for link in inputs.links]
    try:
        item = session.rest.request("PATCH", route, body=document, content_type=JSON_PATCH,
                                    scope=WORK_WRITE, subject=f"work item {inputs.id}")
    except AdobotError as error:
        if error.status == 412 or error.details.get("tfCode") == "TF26071":
            raise _conflict(inputs.id, rev, None) from None
        raise
    return Outputs(work_item=WorkItem(
        id=item["id"], rev=item.get("rev", 0), url=item.get("url", ""),
        web_url=item.get("_links", {}).get("html", {}).get("href")))


def _moved(current: str, add: list[str], remove: list[str]) -> str:
    tags = [t.strip() for t in current.split(";") if t.strip()]
    gone = {t.strip().lower() for t in remove}
    kept = [t for t in tags if t.lower() not in gone]
    have = {t.lower() for t in kept}
    kept += [t.strip() for t in add if t.strip().lower() not in have]
    return "; ".join(kept)


def _conflict(item_id: int, expected: int | None, found: int | None) -> Conflict:
    now = f" (it is at revision {found} now)" if found is not None else ""
    return Conflict(f"work item {item_id} was changed by someone else since revision "
                    f"{expected} was read{now}; nothing was changed",
                    "Read the work item again (QueryWorkItems), decide, and update it with the "
                    "new rev.", after_request=True, status=412)


def _relation(session: Session, link: Link) -> dict[str, Any]:
    if link.type in LINK_TYPES:
        return {"rel": LINK_TYPES[link.type],
                "url": f"{session.rest.base_url}/_apis/wit/workItems/{int(link.target)}"}
    assert link.repository is not None
    repository = repository_in(session, link.repository, "links.repository")
    repo_id = repository if is_guid(repository) else get_repository(session, repository)["id"]
    kind, name = ("PullRequestId", "Pull Request") if link.type == "pull_request" \
        else ("Commit", "Fixed in Commit")
    key = f"{session.project_id}%2F{repo_id}%2F{str(link.target).lower()}"
    return {"rel": "ArtifactLink", "url": f"vstfs:///Git/{kind}/{key}",
            "attributes": {"name": name}}


ACTION = Action(
    name="UpdateWorkItem", label="Update work item", group="Boards",
    read_only=False, idempotent=False, destructive=True,  # overwrites fields
    description="Updates a work item in one request: title, state, assignee, tags added or "
                "removed, any field by reference name, a comment, and links (parent, child, "
                "related, a pull request, a commit); guarded by the revision read (rev) so a "
                "change made meanwhile is a CONFLICT, never overwritten.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed, or a rule of the project refused the change",
        "NOT_FOUND": "the work item, a linked item or the repository does not exist",
        "CONFLICT": "the work item changed since the revision read (rev)",
        "PERMISSION_DENIED": f"the token lacks {WORK_WRITE}",
    })
