"""ListFiles: the files and folders of a repository's folder at a branch, tag or commit."""
from __future__ import annotations

from pydantic import BaseModel, Field

from adobot.actions.base import (
    SESSION_ERRORS,
    Action,
    ActionContext,
    ActionOutputs,
    SessionInput,
    path_segment,
)
from adobot.actions.git import (
    AtOneVersion,
    BranchInput,
    CommitInput,
    TagInput,
    explain_missing,
    version_label,
    version_query,
)
from adobot.actions.references import RepositoryRef, repository_in
from adobot.actions.scopes import CODE_READ
from adobot.errors import AdobotError


class Inputs(AtOneVersion):
    session: SessionInput
    repository: RepositoryRef
    path: str = Field("/", min_length=1, max_length=4000, pattern=r"^[^\x00-\x1f]+$",
                      description="Folder to list (default: the root)", examples=["src"])
    recursive: bool = Field(False, description="All below the folder (not just its "
                                               "own entries)", examples=[True])
    branch: BranchInput = None
    tag: TagInput = None
    commit: CommitInput = None


class Entry(BaseModel):
    path: str
    is_folder: bool


class Outputs(ActionOutputs):
    files: list[Entry] = Field(description="Entries below the folder, by path")
    count: int

    def summary(self) -> str:
        return f"{self.count} entries"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    repository = repository_in(session, inputs.repository)
    folder = "/" + inputs.path.strip("/")
    try:
        data = session.rest.get(
            f"{session.project_id}/_apis/git/repositories/{path_segment(repository)}/items",
            params={"scopePath": folder, "recursionLevel": "Full" if inputs.recursive else "OneLevel",
                    **version_query(inputs.branch, inputs.tag, inputs.commit)},
            scope=CODE_READ, subject=f"{folder!r} in repository {repository!r}")
    except AdobotError as error:
        raise explain_missing(error, repository,
                              version_label(inputs.branch, inputs.tag, inputs.commit),
                              folder) from None
    entries = [{"path": i["path"], "is_folder": bool(i.get("isFolder"))}
               for i in (data or {}).get("value", []) if i.get("path") != folder]
    return Outputs.model_validate({"files": entries, "count": len(entries)})


ACTION = Action(
    name="ListFiles", label="List files", group="Repos",
    read_only=True, idempotent=True,
    description="Lists a repository's files and folders, at a branch, tag or commit: one "
                "folder's entries, or everything below it.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed, or a repository URL names another project",
        "NOT_FOUND": "the repository, the version or the folder does not exist",
        "PERMISSION_DENIED": f"the token lacks {CODE_READ}",
    })
