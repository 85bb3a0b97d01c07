"""CreateRepo: a new Git repository in the session's project, or the existing one on request."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from adobot.actions.base import (
    SESSION_ERRORS,
    Action,
    ActionContext,
    ActionInputs,
    ActionOutputs,
    SessionInput,
    create_once,
)
from adobot.actions.git import Repository, get_repository, repository_fields
from adobot.actions.names import RepositoryName
from adobot.actions.scopes import CODE_MANAGE
from adobot.errors import AlreadyExists, NotFound


class Inputs(ActionInputs):
    session: SessionInput
    name: RepositoryName = Field(description="New repository's name",
                                 examples=["payments-worker"])
    if_exists: Literal["fail", "reuse"] = Field(
        "fail", description="If the name is taken: fail (ALREADY_EXISTS), or reuse: return the "
                            "existing repository with created: false, so a bot can be re-run",
        examples=["reuse"])


class Outputs(ActionOutputs):
    repository: Repository
    created: bool = Field(description="false when an existing repository was reused")

    def summary(self) -> str:
        verb = "created" if self.created else "reused existing"
        return f"{verb} repository {self.repository.name!r}"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    where = f"repository {inputs.name!r} in project {session.project_name!r}"
    body = {"name": inputs.name, "project": {"id": session.project_id}}

    def find() -> dict | None:
        try:
            return get_repository(session, inputs.name)
        except NotFound:
            return None

    try:
        created = create_once(ctx, where, lambda: session.rest.post(
            f"{session.project_id}/_apis/git/repositories", body, scope=CODE_MANAGE,
            subject=where), find)
    except AlreadyExists as exists:
        if inputs.if_exists == "fail":
            raise exists.derive(hint="Choose another name, or set if_exists: reuse to use the "
                                     "existing repository.") from None
        existing = get_repository(session, inputs.name)
        return Outputs(repository=Repository(**repository_fields(existing)), created=False)
    session.empty_repositories |= {created["id"].lower(), inputs.name.lower()}
    return Outputs(repository=Repository(**repository_fields(created)), created=True)


ACTION = Action(
    name="CreateRepo", label="Create repository", group="Repos",
    read_only=False, idempotent=True,
    description="Creates a Git repository (in the project); with if_exists: reuse, an "
                "existing repository of that name is returned instead.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "the name breaks the naming rules",
        "ALREADY_EXISTS": "the name is taken and if_exists is fail",
        "PERMISSION_DENIED": f"the token lacks {CODE_MANAGE} or the user may not create "
                             "repositories",
        "NOT_FOUND": "the project no longer exists",
    })
