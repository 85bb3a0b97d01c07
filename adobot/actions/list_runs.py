"""ListRuns: a pipeline's recent runs, newest first (e.g. its last failure and last success)."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, Field

from adobot.actions.base import (
    SESSION_ERRORS,
    Action,
    ActionContext,
    ActionInputs,
    ActionOutputs,
    SessionInput,
)
from adobot.actions.pipelines import pipeline_id
from adobot.actions.scopes import BUILD_READ
from adobot.rest.versions import PIPELINES


class Inputs(ActionInputs):
    session: SessionInput
    pipeline: Union[Annotated[int, Field(ge=1)], Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        description=r"Id or name (or \folder\name)", examples=[12, "payments-api-ci"])
    result: Literal["any", "succeeded", "failed", "canceled"] = Field(
        "any", description="Only runs that ended so (any: every run)",
        examples=["failed"])
    max_count: int = Field(10, ge=1, le=10_000, description="At most this many",
                           examples=[1])


class Run(BaseModel):
    id: int
    name: str
    state: str = Field(description="unknown, inProgress, canceling or completed")
    result: str | None = None
    created_date: str | None = None
    finished_date: str | None = None
    web_url: str | None = None


class Outputs(ActionOutputs):
    runs: list[Run] = Field(description="Newest first")
    count: int

    def summary(self) -> str:
        return f"{self.count} runs" + (f", newest {self.runs[0].name}: {self.runs[0].result or self.runs[0].state}"
                                       if self.runs else "")


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    data = session.rest.get(f"{session.project_id}/_apis/pipelines/"
                            f"{pipeline_id(session, inputs.pipeline)}/runs",
                            scope=BUILD_READ, api=PIPELINES,
                            subject=f"pipeline {inputs.pipeline!r} in project "
                                    f"{session.project_name!r}")
    runs = [{"id": r["id"], "name": r.get("name", ""), "state": r.get("state", "unknown"),
             "result": r.get("result"), "created_date": r.get("createdDate"),
             "finished_date": r.get("finishedDate"),
             "web_url": r.get("_links", {}).get("web", {}).get("href")}
            for r in (data or {}).get("value", [])
            if inputs.result == "any" or r.get("result") == inputs.result][:inputs.max_count]
    return Outputs.model_validate({"runs": runs, "count": len(runs)})


ACTION = Action(
    name="ListRuns", label="List runs", group="Pipelines",
    read_only=True, idempotent=True,
    description="Lists a pipeline's runs, newest first, optionally only those that "
                "succeeded, failed or were canceled: e.g. its last failure and last success.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed, or the pipeline name is ambiguous",
        "NOT_FOUND": "the pipeline does not exist",
        "PERMISSION_DENIED": f"the token lacks {BUILD_READ}",
    })
