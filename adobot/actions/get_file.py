"""GetFile: the text of one file of a repository at a branch, tag or commit."""
from __future__ import annotations

from urllib.parse import quote

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
    web_url,
)
from adobot.actions.references import RepositoryRef, repository_in
from adobot.actions.scopes import CODE_READ
from adobot.errors import AdobotError, InvalidInput

ItemPath = Field(min_length=1, max_length=4000, pattern=r"^[^\x00-\x1f]+$",
                 description="e.g. src/retry.py", examples=["src/retry.py"])


class Inputs(AtOneVersion):
    session: SessionInput
    repository: RepositoryRef
    path: str = ItemPath
    branch: BranchInput = None
    tag: TagInput = None
    commit: CommitInput = None
    max_bytes: int = Field(1_000_000, ge=1, le=50_000_000,
                           description="Refuse larger files (bytes)",
                           examples=[200_000])


class File(BaseModel):
    path: str
    content: str = Field(description="The file's text (UTF-8)")
    size: int = Field(description="Size in bytes")
    commit_id: str | None = Field(None, description="The commit the file was read at")
    web_url: str


class Outputs(ActionOutputs):
    file: File

    def summary(self) -> str:
        return f"read {self.file.path} ({self.file.size} bytes)"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    repository = repository_in(session, inputs.repository)
    path = "/" + inputs.path.strip("/")
    version = version_label(inputs.branch, inputs.tag, inputs.commit)
    try:
        item = session.rest.get(
            f"{session.project_id}/_apis/git/repositories/{path_segment(repository)}/items",
            params={"path": path, "includeContent": "true", "includeContentMetadata": "true",
                    **version_query(inputs.branch, inputs.tag, inputs.commit)},
            scope=CODE_READ, subject=f"{path!r} in repository {repository!r}")
    except AdobotError as error:
        raise explain_missing(error, repository, version, path) from None
    item = item or {}
    where = f"{path!r} in repository {repository!r} at {version}"
    if item.get("isFolder") or item.get("gitObjectType") == "tree":
        raise InvalidInput(f"{where} is a folder, not a file", "Use ListFiles to list a folder.",
                           field="path", after_request=True)
    if (item.get("contentMetadata") or {}).get("isBinary"):
        raise InvalidInput(f"{where} is a binary file; GetFile reads text",
                           "Read text files only (source, YAML, Markdown, JSON, …).", field="path",
                           after_request=True)
    content = item.get("content") or ""
    size = len(content.encode("utf-8"))
    if size > inputs.max_bytes:
        raise InvalidInput(f"{where} has {size} bytes, more than max_bytes ({inputs.max_bytes})",
                           "Raise max_bytes if the bot should read it.", field="max_bytes",
                           after_request=True)
    version_suffix = {"branch": "GB", "tag": "GT", "commit": "GC"}
    kind = "commit" if inputs.commit else "tag" if inputs.tag else "branch" if inputs.branch else None
    suffix = f"?path={quote(path)}" + (
        f"&version={version_suffix[kind]}{quote(inputs.commit or inputs.tag or inputs.branch or '')}"
        if kind else "")
    return Outputs(file=File(path=path, content=content, size=size, commit_id=item.get("commitId"),
                             web_url=web_url(session, repository, suffix)))


ACTION = Action(
    name="GetFile", label="Get file", group="Repos",
    read_only=True, idempotent=True,
    description="Reads one file's text: at a branch, tag or commit (the default "
                "branch without one). Binary files, folders and files above max_bytes "
                "are refused with a clear error.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed, a repository URL names another project, or "
                         "the path is a folder, a binary file or larger than max_bytes",
        "NOT_FOUND": "the repository, the version or the file does not exist",
        "PERMISSION_DENIED": f"the token lacks {CODE_READ}",
    })
