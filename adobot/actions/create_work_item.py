"""CreateWorkItem: a work item of any type of the project, built as one JSON Patch document."""
from __future__ import annotations

import difflib
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, model_validator

from adobot.actions.base import (
    SESSION_ERRORS,
    Action,
    ActionContext,
    ActionInputs,
    ActionOutputs,
    SessionInput,
    path_segment,
    say_where_to_look,
)
from adobot.actions.names import keys_matching
from adobot.actions.scopes import WORK_READ, WORK_WRITE
from adobot.errors import AdobotError, NotFound

JSON_PATCH = "application/json-patch+json"
PARENT_LINK = "System.LinkTypes.Hierarchy-Reverse"
_REFERENCE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
# The named inputs, by the field each one sets.
NAMED_FIELDS = {"title": "System.Title", "description": "System.Description",
                "assigned_to": "System.AssignedTo", "tags": "System.Tags",
                "area_path": "System.AreaPath", "iteration_path": "System.IterationPath",
                "priority": "Microsoft.VSTS.Common.Priority"}


def _no_control(value: str) -> str:
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _title(value: str) -> str:
    if not value.strip():
        raise ValueError("a title must not be blank")
    if "\n" in value or "\r" in value:
        raise ValueError("a title is one line")
    return _no_control(value)


def _tree_path(value: str) -> str:
    if any(not part.strip() for part in value.split("\\")):
        raise ValueError(r"a path is Project\Part\Part, with no empty part")
    return _no_control(value)


def _tags(value: list[str]) -> list[str]:
    for tag in value:
        if not tag.strip() or ";" in tag or "," in tag:
            raise ValueError(f"tag {tag!r} must not be blank or contain ';' or ','")
    return value


_fields = keys_matching(_REFERENCE_NAME, "a field reference name (e.g. System.Title, "
                        "Microsoft.VSTS.Common.Priority, Custom.Team)")


TreePath = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(_tree_path)]


class Inputs(ActionInputs):
    session: SessionInput
    type: str = Field(min_length=1, max_length=128, pattern=r"^[^/\\?#&%\x00-\x1f]+$",
                      description="e.g. Task, Bug (any type of the project)",
                      examples=["Task"])
    title: Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_title)] = Field(
        description="At most 255 characters", examples=["Write the runbook"])
    description: Annotated[str, AfterValidator(_no_control)] | None = Field(
        None, max_length=1_000_000, description="HTML text",
        examples=["<p>Steps and links for the on-call team</p>"])
    assigned_to: str | None = Field(None, min_length=1, max_length=256,
                                    description="E-mail or name",
                                    examples=["jamal@contoso.com"])
    tags: Annotated[list[Annotated[str, Field(max_length=400)]], AfterValidator(_tags)] | None = Field(
        None, description="Tag names (stored joined with '; ')", examples=[["ops", "q3"]])
    area_path: TreePath | None = Field(None, description=r"e.g. Payments\Web",
                                       examples=["Payments\\Web"])
    iteration_path: TreePath | None = Field(None, description=r"e.g. Payments\Sprint 1",
                                            examples=["Payments\\Sprint 1"])
    priority: int | None = Field(None, ge=1, le=4, description="1 is highest, 4 lowest",
                                 examples=[2])
    parent_id: int | None = Field(None, ge=1, description="Parent work item's id",
                                  examples=[297])
    fields: Annotated[dict[str, Any], AfterValidator(_fields)] = Field(
        default_factory=dict, description="Other fields: reference name -> value",
        examples=[{"Microsoft.VSTS.Scheduling.StoryPoints": 3}])

    @model_validator(mode="after")
    def _no_field_twice(self) -> "Inputs":
        for name, reference in NAMED_FIELDS.items():
            if getattr(self, name) is not None and reference in self.fields:
                raise ValueError(f"{reference} is set twice: by '{name}' and in 'fields'")
        return self


class WorkItem(BaseModel):
    id: int
    rev: int
    url: str = Field(description="REST URL of the work item")
    web_url: str | None = Field(None, description="Page of the work item in the web portal")


class Outputs(ActionOutputs):
    work_item: WorkItem

    def summary(self) -> str:
        return f"created work item {self.work_item.id}"


def patch_document(inputs: Inputs, organization_url: str) -> list[dict[str, Any]]:
    values = {"System.Title": inputs.title, "System.Description": inputs.description,
              "System.AssignedTo": inputs.assigned_to,
              "System.Tags": "; ".join(t.strip() for t in inputs.tags) if inputs.tags else None,
              "System.AreaPath": inputs.area_path, "System.IterationPath": inputs.iteration_path,
              "Microsoft.VSTS.Common.Priority": inputs.priority, **inputs.fields}
    document = [{"op": "add", "path": f"/fields/{name}", "value": value}
                for name, value in values.items() if value is not None]
    if inputs.parent_id is not None:
        document.append({"op": "add", "path": "/relations/-", "value": {
            "rel": PARENT_LINK, "url": f"{organization_url}/_apis/wit/workItems/{inputs.parent_id}"}})
    return document


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    route = f"{session.project_id}/_apis/wit/workitems/${path_segment(inputs.type)}"
    try:
        item = session.rest.post(route, patch_document(inputs, session.rest.base_url),
                                 content_type=JSON_PATCH, scope=WORK_WRITE,
                                 subject=f"{inputs.type} {inputs.title!r} in project "
                                         f"{session.project_name!r}")
    except NotFound as missing:
        raise _explain_missing(session, inputs, missing) from None
    except AdobotError as error:
        # No marker can be queried without WIQL, so a lost answer is reported, not guessed.
        raise say_where_to_look(error, f"{session.rest.base_url}/{path_segment(session.project_name)}"
                                       f"/_workitems/recentlycreated/ (a {inputs.type} titled "
                                       f"{inputs.title!r})") from None
    return Outputs(work_item=WorkItem(
        id=item["id"], rev=item.get("rev", 1), url=item.get("url", ""),
        web_url=item.get("_links", {}).get("html", {}).get("href")))


def _explain_missing(session, inputs: Inputs, missing: NotFound) -> AdobotError:
    """An unknown type is the usual cause: say which types exist (one more request)."""
    if missing.details.get("tfCode") == "TF201036":  # the link target does not exist
        return NotFound(f"parent work item {inputs.parent_id} does not exist "
                        f"(the service said: {missing.service_message})",
                        "Check parent_id.", after_request=True)
    try:
        types = session.rest.get(f"{session.project_id}/_apis/wit/workitemtypes",
                                 scope=WORK_READ)
        names = sorted(t["name"] for t in (types or {}).get("value", []) if not t.get("isDisabled"))
    except AdobotError:
        return missing
    if any(name.lower() == inputs.type.lower() for name in names):
        return missing  # the type exists: something else was not found
    close = difflib.get_close_matches(inputs.type, names, n=1)
    return missing.derive(
        message=f"work item type {inputs.type!r} does not exist in project "
                f"{session.project_name!r}; its types: {', '.join(names)}",
        hint=f"Did you mean {close[0]!r}?" if close else "Use one of the types listed.")


ACTION = Action(
    name="CreateWorkItem", label="Create work item", group="Boards",
    read_only=False, idempotent=False,
    description="Creates a work item; any type of the project (Task, Bug, User Story, …), "
                "with title, description, assignee, tags, paths, priority, a parent and any fields.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed, or a rule of the project refused the item "
                         "(e.g. a required field, a value not allowed, an unknown area path)",
        "NOT_FOUND": "the type or the parent work item does not exist",
        "PERMISSION_DENIED": f"the token lacks {WORK_WRITE}",
    })
