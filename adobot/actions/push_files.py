"""PushFiles: put files on a branch of a Git repository in one commit (the Git pushes API).

A first push to an empty repository creates the branch (it becomes the default branch); a
push to a branch that does not exist yet starts it from ``from_branch`` (default: the
repository's default branch); a push to an existing branch builds on its current commit.
"""
from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

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
from adobot.actions.git import BranchName, branch_ref, get_repository
from adobot.actions.scopes import CODE_READ, CODE_WRITE
from adobot.errors import AdobotError, AlreadyExists, Conflict, NotFound
from adobot.sessions.session import Session

ZERO_ID = "0" * 40  # the object id a push names when it creates a branch from nothing
MAX_FILES = 500


def check_path(value: str) -> str:
    path = value.strip().replace("\\", "/")
    parts = [part for part in path.split("/") if part]
    if not parts:
        raise ValueError("a file path must name a file, e.g. azure-pipelines.yml")
    if any(part in (".", "..") for part in parts) or any(ord(ch) < 32 for ch in path):
        raise ValueError(f"file path {value!r} must stay inside the repository (no '.', '..' "
                         "or control characters)")
    if path.endswith("/"):
        raise ValueError(f"file path {value!r} names a folder, not a file")
    return "/" + "/".join(parts)


class File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    path: Annotated[str, AfterValidator(check_path)] = Field(
        min_length=1, max_length=1000, description="Path in the repository, e.g. "
                                                   "azure-pipelines.yml or src/app.py")
    content: str = Field(max_length=20_000_000, description="The file's content")
    encoding: Literal["text", "base64"] = Field(
        "text", description="text: content is the file as text (UTF-8); base64: content is "
                            "the file's bytes in base64 (for binary files)")

    @model_validator(mode="after")
    def _base64_decodes(self) -> "File":
        if self.encoding == "base64":
            try:
                base64.b64decode(self.content, validate=True)
            except (ValueError, binascii.Error):
                raise ValueError(f"the content of {self.path} is not valid base64") from None
        return self


def _distinct_paths(files: list[File]) -> list[File]:
    seen: set[str] = set()
    for file in files:
        if file.path in seen:
            raise ValueError(f"{file.path} is given twice")
        seen.add(file.path)
    return files


class Inputs(ActionInputs):
    session: SessionInput
    repository: str = Field(min_length=1, max_length=64,
                            description="Name or id", examples=["payments-api"])
    branch: BranchName = Field("main", description="Branch to push to: a short name (main) or "
                                                   "refs/heads/…; created if it does not exist",
                               examples=["main", "feature/ci"])
    files: Annotated[list[File], AfterValidator(_distinct_paths)] = Field(
        min_length=1, max_length=MAX_FILES, description="Files to add (or update, with "
                                                        "if_exists: overwrite)",
        examples=[[{"path": "azure-pipelines.yml",
                    "content": "trigger: [main]\npool: {vmImage: ubuntu-latest}\nsteps:\n"
                               "- script: echo hello\n"}]])
    message: str = Field("Add files with adobot", min_length=1, max_length=4000,
                         description="Commit message", examples=["Add the CI pipeline"])
    if_exists: Literal["fail", "overwrite"] = Field(
        "fail", description="If a path exists: fail (ALREADY_EXISTS, "
                            "nothing is pushed) or overwrite it", examples=["overwrite"])
    from_branch: BranchName | None = Field(
        None, description="Start of a new branch (default: the "
                          "repository's default branch)", examples=["main"])


class Commit(BaseModel):
    id: str = Field(description="Id (SHA-1) of the new commit")
    url: str | None = Field(None, description="REST URL of the commit")
    web_url: str | None = Field(None, description="Page of the commit in the web portal")


class Outputs(ActionOutputs):
    commit: Commit
    branch: str = Field(description="The branch pushed to, as a full ref (refs/heads/…)")
    created_branch: bool = Field(description="true when the push created the branch")
    added: list[str] = Field(description="Paths added")
    updated: list[str] = Field(description="Paths overwritten (if_exists: overwrite)")

    def summary(self) -> str:
        what = f"{len(self.added)} added" + (f", {len(self.updated)} updated"
                                              if self.updated else "")
        verb = "created" if self.created_branch else "pushed to"
        return f"{verb} {self.branch} ({what}): commit {self.commit.id[:8]}"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    repository = path_segment(inputs.repository)
    api = f"{session.project_id}/_apis/git/repositories/{repository}"
    where = f"repository {inputs.repository!r} in project {session.project_name!r}"
    target = branch_ref(inputs.branch)
    empty = inputs.repository.lower() in session.empty_repositories  # created by this session
    heads = {} if empty else _heads(session, api, where)
    base = heads.get(target)
    if base is None and heads:  # a new branch of a repository that has some
        source = branch_ref(inputs.from_branch) if inputs.from_branch else \
            get_repository(session, inputs.repository).get("defaultBranch")
        base = heads.get(source or "")
        if base is None:
            raise NotFound(f"branch {source!r} to start {target!r} from does not exist in {where}",
                           "Give from_branch: an existing branch.", field="from_branch",
                           after_request=True)
    existing = _paths(session, api, base, where) if base else set()
    clash = [f.path for f in inputs.files if f.path in existing]
    if clash and inputs.if_exists == "fail":
        raise AlreadyExists(f"{', '.join(clash)} already exist{'s' if len(clash) == 1 else ''} "
                            f"on {target} of {where}; nothing was pushed",
                            "Set if_exists: overwrite to replace them, or choose other paths.",
                            field="files", after_request=True)
    body = _push(inputs, target, base, existing)
    repo_web = f"{session.rest.base_url}/{path_segment(session.project_name)}/_git/{repository}"
    try:
        pushed = session.rest.post(f"{api}/pushes", body, scope=CODE_WRITE,
                                   subject=f"a push to {target} of {where}")
    except Conflict as stale:
        session.empty_repositories.discard(inputs.repository.lower())  # read it afresh next time
        raise stale.derive(
            message=f"{target} of {where} moved on while the files were being pushed (another "
                    f"push landed first); nothing was pushed (the service said: "
                    f"{stale.service_message})",
            hint="Run the step again: it reads the branch afresh.") from None
    except AdobotError as error:
        raise say_where_to_look(error, f"{repo_web}?version=GB{inputs.branch} (its latest "
                                       "commits)") from None
    repo_id = str((pushed.get("repository") or {}).get("id", "")).lower()
    session.empty_repositories -= {inputs.repository.lower(), repo_id}
    commit = (pushed.get("commits") or [{}])[0]
    commit_id = str(commit.get("commitId", ""))
    web = (pushed.get("repository") or {}).get("webUrl") or repo_web
    return Outputs(commit=Commit(id=commit_id, url=commit.get("url"),
                                 web_url=f"{web}/commit/{commit_id}"),
                   branch=target, created_branch=target not in heads,
                   added=[f.path for f in inputs.files if f.path not in existing],
                   updated=[f.path for f in inputs.files if f.path in existing])


def _heads(session: Session, api: str, where: str) -> dict[str, str]:
    """Every branch of the repository and its current commit (one request, paged)."""
    return {ref["name"]: ref["objectId"]
            for page in session.rest.pages(f"{api}/refs", params={"filter": "heads/"},
                                           scope=CODE_READ, subject=where)
            for ref in page}


def _paths(session: Session, api: str, commit: str, where: str) -> set[str]:
    """The paths of the files at a commit (compared as the service does: case matters)."""
    found = session.rest.get(f"{api}/items", params={
        "scopePath": "/", "recursionLevel": "Full", "versionDescriptor.version": commit,
        "versionDescriptor.versionType": "commit"}, scope=CODE_READ, subject=where)
    return {str(item["path"]) for item in (found or {}).get("value", [])
            if not item.get("isFolder")}


def _push(inputs: Inputs, target: str, base: str | None,
          existing: set[str]) -> dict[str, Any]:
    changes = [{"changeType": "edit" if file.path in existing else "add",
                "item": {"path": file.path},
                "newContent": {"content": file.content,
                               "contentType": "base64encoded" if file.encoding == "base64"
                               else "rawtext"}} for file in inputs.files]
    return {"refUpdates": [{"name": target, "oldObjectId": base or ZERO_ID}],
            "commits": [{"comment": inputs.message, "changes": changes}]}


ACTION = Action(
    name="PushFiles", label="Push files", group="Repos",
    read_only=False, idempotent=False, destructive=True,  # overwrites files
    description="Pushes files to a branch in one commit: the first push to "
                "an empty repository creates the branch; a new branch starts from another one.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "a path, the branch or the content is malformed, or the service "
                         "refused the push",
        "NOT_FOUND": "the repository, or the branch to start a new branch from, does not exist",
        "ALREADY_EXISTS": "a path exists on the branch and if_exists is fail",
        "CONFLICT": "the branch moved on while the files were being pushed",
        "PERMISSION_DENIED": f"the token lacks {CODE_WRITE}",
    })
