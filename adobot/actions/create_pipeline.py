"""CreatePipeline: a YAML pipeline on an Azure Repos Git repository of the session's project."""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from adobot.actions.base import (
    SESSION_ERRORS,
    Action,
    ActionContext,
    ActionInputs,
    ActionOutputs,
    SessionInput,
    create_once,
)
from adobot.actions.git import get_repository, is_guid
from adobot.actions.pipelines import (
    Pipeline,
    PipelineName,
    check_yaml_path,
    normalize_folder,
    pipeline_fields,
    pipeline_named,
    remember,
)
from adobot.actions.scopes import BUILD_EXECUTE
from adobot.errors import AlreadyExists, NotFound
from adobot.rest.versions import PIPELINES


class Inputs(ActionInputs):
    session: SessionInput
    name: PipelineName = Field(description="New pipeline's name", examples=["payments-ci"])
    repository: str = Field(min_length=1, max_length=64,
                            description="Holding the YAML file: its name or id",
                            examples=["payments-api"])
    yaml_path: Annotated[str, AfterValidator(check_yaml_path)] = Field(
        "azure-pipelines.yml", description="In the repository",
        examples=["azure-pipelines.yml", "ci/build.yaml"], json_schema_extra={"pattern": r"\.ya?ml$"})
    folder: Annotated[str, AfterValidator(normalize_folder)] = Field(
        "\\", description=r"e.g. \ci\nightly (\: the top)", examples=["\\ci"])


class Outputs(ActionOutputs):
    pipeline: Pipeline

    def summary(self) -> str:
        return f"created pipeline {self.pipeline.name!r} (id {self.pipeline.id})"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    # An id is used as is; a name costs one lookup (which also proves the repository exists).
    repository_id = (inputs.repository if is_guid(inputs.repository)
                     else get_repository(session, inputs.repository)["id"])
    body = {"name": inputs.name, "folder": inputs.folder,
            "configuration": {"type": "yaml", "path": inputs.yaml_path,
                              "repository": {"id": repository_id, "type": "azureReposGit"}}}
    where = f"pipeline {inputs.name!r} in folder {inputs.folder!r} of project {session.project_name!r}"
    try:
        created = create_once(ctx, where, lambda: session.rest.post(
            f"{session.project_id}/_apis/pipelines", body, scope=BUILD_EXECUTE, api=PIPELINES,
            subject=where),
            lambda: pipeline_named(session, inputs.name, inputs.folder))
    except AlreadyExists as exists:
        raise exists.derive(hint="Choose another name or folder.") from None
    except NotFound as missing:  # the only thing the create can miss is the repository
        said = f" (the service said: {missing.service_message})" if missing.service_message else ""
        raise missing.derive(message=f"repository {inputs.repository!r} was not found in "
                                     f"project {session.project_name!r}{said}") from None
    remember(session, created)
    return Outputs(pipeline=Pipeline(**pipeline_fields(created)))


ACTION = Action(
    name="CreatePipeline", label="Create pipeline", group="Pipelines",
    read_only=False, idempotent=True,
    description="Creates a pipeline from a YAML file; the file is in a repository of the "
                "session's project.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "the name, folder or yaml_path is malformed, or the service refused "
                         "the definition",
        "NOT_FOUND": "the repository does not exist in the project",
        "ALREADY_EXISTS": "a pipeline of that name exists in that folder",
        "PERMISSION_DENIED": f"the token lacks {BUILD_EXECUTE} (or Code (Read) for the "
                             "repository lookup)",
    })
