"""ListRepos: the Git repositories of the session's project, optionally filtered by a glob."""
from __future__ import annotations

from fnmatch import fnmatchcase

from pydantic import Field

from adobot.actions.base import (
    SESSION_ERRORS,
    Action,
    ActionContext,
    ActionInputs,
    ActionOutputs,
    SessionInput,
)
from adobot.actions.git import ListedRepository, repository_fields
from adobot.actions.scopes import CODE_READ


class Inputs(ActionInputs):
    session: SessionInput
    name_filter: str | None = Field(
        None, min_length=1, max_length=256,
        description="Glob, any case (e.g. 'payments-*')",
        examples=["payments-*"])


class Outputs(ActionOutputs):
    repositories: list[ListedRepository] = Field(description="Repositories, in the service's order")
    count: int = Field(description="How many repositories are listed")

    def summary(self) -> str:
        names = ", ".join(r.name for r in self.repositories[:5])
        more = f", … (+{self.count - 5})" if self.count > 5 else ""
        return f"{self.count} repositories" + (f": {names}{more}" if self.count else "")


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    data = session.rest.get(f"{session.project_id}/_apis/git/repositories", scope=CODE_READ,
                            subject=f"the repositories of project {session.project_name!r}")
    pattern = inputs.name_filter.lower() if inputs.name_filter else None
    repos = [{**repository_fields(item), "size": item.get("size")}
             for item in (data or {}).get("value", [])
             if pattern is None or fnmatchcase(str(item.get("name", "")).lower(), pattern)]
    # One validation of the whole list (in pydantic-core) is cheaper than a model per item.
    return Outputs.model_validate({"repositories": repos, "count": len(repos)})


ACTION = Action(
    name="ListRepos", label="List repositories", group="Repos",
    read_only=True, idempotent=True,
    description="Lists the project's Git repositories, optionally filtered by "
                "a case-insensitive glob on the name. An empty project gives an empty list.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed",
        "PERMISSION_DENIED": f"the token lacks {CODE_READ}",
        "NOT_FOUND": "the project no longer exists",
    })
