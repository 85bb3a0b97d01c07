"""QueueRun: start a run of a pipeline, and optionally wait until it completes."""
from __future__ import annotations

import json
import re
import time
from typing import Annotated, Any, Iterator, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

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
from adobot.actions.git import BranchName, branch_ref
from adobot.actions.names import keys_matching
from adobot.actions.pipelines import pipeline_id
from adobot.actions.scopes import BUILD_EXECUTE, BUILD_READ
from adobot.errors import AdobotError, Timeout
from adobot.rest.retry import action_budget
from adobot.rest.versions import PIPELINES

FIRST_POLLS = (0.2, 0.5, 1.0)  # seconds: quick answers for short runs...
# ...then never faster than once a second, growing to one poll per 4.5 s: a run's end is seen
# within 5 s, and an hour's wait costs about 800 GETs, some 67 per 5-minute window of the
# service's rate limit (200 TSTUs per user per 5 minutes; a GET of a run costs far less than one).
POLL_GROWTH, POLL_MAX = 1.5, 4.5
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*$")


_check_names = keys_matching(_NAME, "a valid name (letters, digits, '.', '_', '-', starting "
                             "with a letter or '_')")


class VariableValue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    value: str = Field(description="The variable's value")
    is_secret: bool = Field(False, description="Mark the variable secret in the run")


Scalar = Union[str, int, float, bool]
# A runtime parameter's value: text, a number, a boolean, or a list or map (for an object).
TemplateValue = Union[Scalar, list[Any], dict[str, Any]]


class Inputs(ActionInputs):
    session: SessionInput
    pipeline: Union[Annotated[int, Field(ge=1)], Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        description=r"Id or name (or \folder\name)", examples=[12, "payments-ci"])
    branch: BranchName | None = Field(
        None, description="Branch to build: a short name (main) or a full ref (refs/heads/main, "
                          "refs/pull/1/merge); default: the pipeline's default branch",
        examples=["main"])
    template_parameters: Annotated[dict[str, TemplateValue], AfterValidator(_check_names)] = Field(
        default_factory=dict,
        description="YAML parameters. Sent as text, as the service "
                    "takes them: a number as written (3), a boolean as true/false, a list or "
                    "map (an object parameter) as JSON",
        examples=[{"environment": "staging", "replicas": 3, "dryRun": True,
                   "regions": ["westeurope", "northeurope"]}])
    variables: Annotated[dict[str, Union[Scalar, VariableValue]], AfterValidator(_check_names)] = Field(
        default_factory=dict,
        description="Pipeline variables: name -> value, or name -> {value, is_secret}",
        examples=[{"verbose": "true", "deployKey": {"value": "k", "is_secret": True}}])
    wait: bool = Field(False, description="Until the run ends", examples=[True])
    timeout_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600,
                                 description="Seconds before TIMEOUT (with wait)",
                                 examples=[600])


class Run(BaseModel):
    id: int
    name: str
    state: str = Field(description="unknown, inProgress, canceling or completed")
    result: str | None = Field(None, description="succeeded, failed, canceled or unknown; "
                                                 "none until the run completes")
    web_url: str | None = None


class Outputs(ActionOutputs):
    run: Run

    def summary(self) -> str:
        outcome = f"{self.run.state}, {self.run.result}" if self.run.result else self.run.state
        return f"run {self.run.name} (id {self.run.id}): {outcome}"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    chosen = pipeline_id(session, inputs.pipeline)
    runs = f"{session.project_id}/_apis/pipelines/{chosen}/runs"
    try:
        item = session.rest.post(runs, _body(inputs), scope=BUILD_EXECUTE, api=PIPELINES,
                                 subject=f"pipeline {inputs.pipeline!r} in project "
                                         f"{session.project_name!r}")
    except AdobotError as error:  # a lost answer is reported, never guessed: runs pile up
        raise say_where_to_look(error, f"{session.rest.base_url}/"
                                       f"{path_segment(session.project_name)}/_build?definitionId="
                                       f"{chosen}") from None
    current = _run(item)
    ctx.log.info("queued run %s of pipeline %s: %s", current.id, inputs.pipeline,
                 current.web_url or "")
    if inputs.wait and current.state != "completed":
        current = _wait(ctx, session, f"{runs}/{current.id}", current, inputs.timeout_seconds)
    if current.result and current.result != "succeeded":
        ctx.log.warning("run %s completed with result %s: %s", current.id, current.result,
                        current.web_url or "")
    return Outputs(run=current)


def _body(inputs: Inputs) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if inputs.branch:
        body["resources"] = {"repositories": {"self": {"refName": branch_ref(inputs.branch)}}}
    if inputs.template_parameters:
        body["templateParameters"] = {name: _text(value)
                                      for name, value in inputs.template_parameters.items()}
    if inputs.variables:
        body["variables"] = {
            name: ({"value": value.value, "isSecret": value.is_secret}
                   if isinstance(value, VariableValue)
                   else {"value": _text(value), "isSecret": False})
            for name, value in inputs.variables.items()}
    return body


def _text(value: TemplateValue) -> str:
    """The text the service takes for a parameter or variable value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _run(item: dict[str, Any]) -> Run:
    return Run(id=item["id"], name=str(item.get("name", item["id"])),
               state=item.get("state", "unknown"), result=item.get("result"),
               web_url=item.get("_links", {}).get("web", {}).get("href"))


def poll_delays() -> Iterator[float]:
    """Seconds to sleep before each poll of a run."""
    yield from FIRST_POLLS
    delay = FIRST_POLLS[-1]
    while True:
        delay = min(delay * POLL_GROWTH, POLL_MAX)
        yield delay


def _wait(ctx: ActionContext, session, route: str, current: Run, timeout: float) -> Run:
    started = time.monotonic()
    deadline = started + timeout
    for delay in poll_delays():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ctx.sleep(min(delay, remaining))
        previous = current.state
        # Each poll gets the whole retry budget: a long wait must not use it up.
        with action_budget(session.rest.policy.budget_seconds):
            current = _run(session.rest.get(route, scope=BUILD_READ, api=PIPELINES,
                                            subject=f"run {current.id} in project "
                                                    f"{session.project_name!r}"))
        elapsed = time.monotonic() - started
        line = f"run {current.id}: {current.state}" + (
            f" ({current.result})" if current.result else "") + f", {elapsed:.0f} s"
        if ctx.progress is not None:
            ctx.progress(f"{line} {current.web_url or ''}")
        elif current.state != previous:
            ctx.log.info("%s %s", line, current.web_url or "")
        if current.state == "completed":
            return current
    raise Timeout(f"run {current.id} did not complete within {timeout:g} s (last state: "
                  f"{current.state}); it goes on in Azure DevOps: {current.web_url or ''}",
                  "Look at the run at the link; raise timeout_seconds to wait longer.",
                  details={"run_id": current.id, "web_url": current.web_url},
                  after_request=True)


ACTION = Action(
    name="QueueRun", label="Queue pipeline run", group="Pipelines",
    read_only=False, idempotent=False,
    description="Queues a pipeline run (by id or name) on a branch, with template "
                "parameters and variables; with wait: true, polls until it completes.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed, the pipeline name is ambiguous, or the service "
                         "refused the run (e.g. an unknown template parameter)",
        "NOT_FOUND": "the pipeline does not exist",
        "TIMEOUT": "with wait, the run did not complete within timeout_seconds (or the service "
                   "did not answer in time)",
        "PERMISSION_DENIED": f"the token lacks {BUILD_EXECUTE}",
    })
