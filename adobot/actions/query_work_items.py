"""QueryWorkItems: work items by a WIQL query or by simple filters, with the fields asked.

The service answers a query with ids only, refuses one that matches more than 20,000 items
(VS402337), and reads fields for at most 200 ids per request. So: the query is sent with
``$top``; when more items are wanted than one answer can hold, it is run again over ranges of
ids (``[System.Id] > a AND [System.Id] <= b``, in id order), each range halved while the
service refuses it as too large; then the fields are read 200 ids at a time, a few batches at
once, in the query's order. ``max_items`` bounds it all."""
from __future__ import annotations

import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
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
from adobot.actions.scopes import WORK_READ
from adobot.errors import AdobotError, InvalidInput
from adobot.sessions.session import Session

QUERY_LIMIT = 20_000   # the most ids one WIQL answer holds (VS402337 beyond)
BATCH = 200            # the most work items one workitemsbatch request reads
READERS = 4            # batches read at once
DEFAULT_FIELDS = ["System.Id", "System.WorkItemType", "System.Title", "System.State",
                  "System.AssignedTo", "System.Tags", "System.ChangedDate"]
_REFERENCE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
# The clauses after WHERE, outside quoted text (a split query keeps the query's own condition).
_CLAUSE = re.compile(r"('(?:[^']|'')*')|\b(WHERE|ORDER\s+BY|ASOF|FROM)\b", re.IGNORECASE)


class Inputs(ActionInputs):
    session: SessionInput
    wiql: str | None = Field(None, min_length=1, max_length=32_000,
                             description="A WIQL query (SELECT … FROM WorkItems WHERE …); "
                                         "instead of the filters",
                             examples=["SELECT [System.Id] FROM WorkItems WHERE "
                                       "[System.TeamProject] = @project AND [System.State] = 'Active'"])
    type: str | None = Field(None, min_length=1, max_length=128, description="e.g. Bug",
                             examples=["Bug"])
    state: str | None = Field(None, min_length=1, max_length=128, description="e.g. Active",
                              examples=["Active"])
    assigned_to: str | None = Field(None, min_length=1, max_length=256,
                                    description="E-mail, name or @me",
                                    examples=["jamal@contoso.example"])
    tags: list[str] = Field(default_factory=list, description="With all of these tags",
                            examples=[["triage"]])
    area_path: str | None = Field(None, min_length=1, max_length=4000,
                                  description=r"Under this area (e.g. Payments\Web)",
                                  examples=["Payments\\Web"])
    changed_since: dt.date | dt.datetime | None = Field(None, description="On or after this "
                                                        "date",
                                                        examples=["2026-01-01"])
    fields: list[str] = Field(default_factory=lambda: list(DEFAULT_FIELDS), min_length=1,
                              max_length=100, description="Reference names to return",
                              examples=[["System.Title", "System.State"]])
    max_items: int = Field(1000, ge=1, le=1_000_000, description="At most this many",
                           examples=[100_000])

    @model_validator(mode="after")
    def _one_way(self) -> "Inputs":
        filters = [self.type, self.state, self.assigned_to, self.area_path, self.changed_since]
        if self.wiql and (any(f is not None for f in filters) or self.tags):
            raise ValueError("give a wiql query or filters, not both")
        if self.wiql and not re.search(r"\bfrom\s+workitems\b", self.wiql, re.IGNORECASE):
            raise ValueError("wiql must be a flat query: SELECT … FROM WorkItems …")
        for name in self.fields:
            if not _REFERENCE.match(name):
                raise ValueError(f"{name!r} is not a field reference name (e.g. System.Title)")
        for tag in self.tags:
            if not tag.strip() or ";" in tag:
                raise ValueError(f"tag {tag!r} must not be blank or contain ';'")
        return self


class WorkItem(BaseModel):
    id: int
    rev: int
    fields: dict[str, Any]
    url: str
    web_url: str


class Outputs(ActionOutputs):
    work_items: list[WorkItem] = Field(description="In the query's order (in id order when "
                                                   "more than 20,000 were read)")
    count: int

    def summary(self) -> str:
        return f"{self.count} work items"


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def filter_condition(inputs: Inputs) -> str:
    parts = ["[System.TeamProject] = @project"]
    if inputs.type:
        parts.append(f"[System.WorkItemType] = {_text(inputs.type)}")
    if inputs.state:
        parts.append(f"[System.State] = {_text(inputs.state)}")
    if inputs.assigned_to:
        parts.append("[System.AssignedTo] = " + ("@me" if inputs.assigned_to.lower() == "@me"
                                                  else _text(inputs.assigned_to)))
    parts += [f"[System.Tags] CONTAINS {_text(tag.strip())}" for tag in inputs.tags]
    if inputs.area_path:
        parts.append(f"[System.AreaPath] UNDER {_text(inputs.area_path)}")
    if inputs.changed_since:
        parts.append(f"[System.ChangedDate] >= {_text(inputs.changed_since.isoformat())}")
    return " AND ".join(parts)


def split(wiql: str) -> tuple[str, str]:
    """(condition, the rest) of a flat query: the WHERE clause, and ORDER BY/ASOF after it."""
    where = end = None
    for match in _CLAUSE.finditer(wiql):
        word = (match.group(2) or "").upper()
        if word == "WHERE" and where is None:
            where = match.end()
        elif word.startswith("ORDER") or word == "ASOF":
            end = match.start()
            break
    condition = wiql[where:end].strip() if where is not None else ""
    return condition or "[System.Id] > 0", wiql[end:] if end is not None else ""


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    if inputs.wiql:
        query, condition = inputs.wiql, split(inputs.wiql)[0]
    else:
        condition = filter_condition(inputs)
        query = f"SELECT [System.Id] FROM WorkItems WHERE {condition} ORDER BY [System.Id]"
    ids = _ids(ctx, session, query, condition, inputs.max_items)
    batches = [ids[i:i + BATCH] for i in range(0, len(ids), BATCH)]
    fields = list(dict.fromkeys(inputs.fields))

    def read(batch: list[int]) -> list[dict[str, Any]]:
        found = session.rest.post(f"{session.project_id}/_apis/wit/workitemsbatch",
                                  {"ids": batch, "fields": fields, "errorPolicy": "omit"},
                                  scope=WORK_READ, subject=f"work items {batch[0]}…{batch[-1]}")
        return [item for item in (found or {}).get("value", []) if item]

    pages: list[list[dict[str, Any]]] = []
    with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="adobot-wit") as pool:
        # Progress is told from this thread, as each batch arrives in order (a cancellation
        # raised by it ends the reading here; batches already sent finish in the pool).
        for page in pool.map(read, batches) if len(batches) > 1 else map(read, batches):
            pages.append(page)
            _progress(ctx, f"read {sum(map(len, pages))} of {len(ids)} work items")
    web = f"{session.organization_url}/{path_segment(session.project_name)}/_workitems/edit"
    items = [{"id": item["id"], "rev": item.get("rev", 0), "fields": item.get("fields") or {},
              "url": item.get("url", ""), "web_url": f"{web}/{item['id']}"}
             for page in pages for item in page]
    return Outputs.model_validate({"work_items": items, "count": len(items)})


def _wiql(session: Session, query: str, top: int) -> list[int]:
    found = session.rest.post(f"{session.project_id}/_apis/wit/wiql", {"query": query},
                              params={"$top": top}, scope=WORK_READ,
                              subject=f"the WIQL query in project {session.project_name!r}")
    return [w["id"] for w in (found or {}).get("workItems", [])]


def _too_many(error: AdobotError) -> bool:
    return isinstance(error, InvalidInput) and error.details.get("tfCode") == "VS402337"


def _ids(ctx: ActionContext, session: Session, query: str, condition: str,
         wanted: int) -> list[int]:
    top = min(wanted, QUERY_LIMIT)
    try:
        ids = _wiql(session, query, top)
        if len(ids) < top or len(ids) >= wanted:
            return ids[:wanted]
    except AdobotError as error:
        if not _too_many(error):
            raise
    ctx.log.info("the query matches more work items than one answer holds: reading it in "
                 "ranges of ids")
    return _ranges(ctx, session, condition, wanted)


def _progress(ctx: ActionContext, message: str) -> None:
    if ctx.progress is not None:
        ctx.progress(message)


def _ranges(ctx: ActionContext, session: Session, condition: str, wanted: int) -> list[int]:
    """The ids matching ``condition``, range by range of ids, in id order."""
    def between(low: int, high: int | None, top: int, descending: bool = False) -> list[int]:
        bound = f" AND [System.Id] <= {high}" if high is not None else ""
        return _wiql(session, f"SELECT [System.Id] FROM WorkItems WHERE ({condition}) AND "
                              f"[System.Id] > {low}{bound} ORDER BY [System.Id]"
                              + (" DESC" if descending else ""), top)

    highest = between(0, None, 1, descending=True)
    if not highest:
        return []
    ids: list[int] = []
    low, width = 0, QUERY_LIMIT
    while low < highest[0] and len(ids) < wanted:
        try:
            found = between(low, low + width, QUERY_LIMIT)
        except AdobotError as error:
            if not _too_many(error) or width == 1:
                raise
            width = max(1, width // 2)
            continue
        ids += found
        low += width
        _progress(ctx, f"found {len(ids)} work items (ids up to {min(low, highest[0])} of "
                       f"{highest[0]})")
        if len(found) < QUERY_LIMIT // 4:
            width *= 2
    return ids[:wanted]


ACTION = Action(
    name="QueryWorkItems", label="Query work items", group="Boards",
    read_only=True, idempotent=True,
    description="Finds work items by WIQL or by filters (type, state, assignee, tags, "
                "area, changed since), with the fields asked. Reads past the service's "
                "20,000-item limit by splitting the query into id ranges, up to max_items.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed, or the service refused the query (syntax, an "
                         "unknown field)",
        "NOT_FOUND": "the project does not exist",
        "PERMISSION_DENIED": f"the token lacks {WORK_READ}",
    })
