"""SearchCode: Code Search across the project's repositories (the Code Search extension).

Code Search has its own host: ``almsearch.dev.azure.com/{org}`` (``{org}.almsearch.
visualstudio.com`` for old URLs); Azure DevOps Server serves it on its own host. It indexes
each repository's default branch (more only where an admin made them searchable). Its hits
give character offsets; the lines they fall on are read from the files (``read_lines``)."""
from __future__ import annotations

import bisect
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field

from adobot.actions.base import (
    SESSION_ERRORS,
    Action,
    ActionContext,
    ActionInputs,
    ActionOutputs,
    SessionInput,
    path_segment,
)
from adobot.actions.git import BranchName, get_repository, is_guid, web_url
from adobot.actions.references import RepositoryRef, repository_in
from adobot.actions.scopes import CODE_READ
from adobot.errors import NotFound

MAX_RESULTS = 1000  # the service's largest $top


class Inputs(ActionInputs):
    session: SessionInput
    search_text: str = Field(min_length=1, max_length=1000, pattern=r"^[^\x00-\x1f]+$",
                             description="Text to find: words, \"a phrase\", and Code "
                                         "Search's own filters (class:, def:, file:, …)",
                             examples=["test_retry_gives_up"])
    repository: RepositoryRef | None = Field(None, description="Only this repository (a name, "
                                             "an id or its URL)", examples=["payments-api"])
    branch: BranchName | None = Field(None, description="Only this branch (it must be a "
                                      "searchable branch; the default branch always is)",
                                      examples=["main"])
    path: str | None = Field(None, min_length=1, max_length=4000, pattern=r"^[^\x00-\x1f]+$",
                             description="Under this folder", examples=["src"])
    extension: str | None = Field(None, pattern=r"^\.?[A-Za-z0-9_+-]{1,32}$",
                                  description="Only this extension", examples=["py"])
    max_results: int = Field(25, ge=1, le=MAX_RESULTS, description="At most this many",
                             examples=[10])
    read_lines: bool = Field(True, description="With the matching lines (reading each file "
                                               "found: one request per file)",
                             examples=[True])


class Match(BaseModel):
    line: int = Field(description="Line number, from 1")
    column: int = Field(description="Column, from 1")
    text: str = Field(description="The whole line")


class Result(BaseModel):
    file_name: str
    path: str
    repository: str
    branch: str | None = None
    commit_id: str | None = Field(None, description="The indexed version of the file")
    matches: list[Match] = Field(description="Matching lines (empty without read_lines)")
    web_url: str


class Outputs(ActionOutputs):
    results: list[Result]
    count: int = Field(description="How many files match in all (results holds at most "
                                   "max_results)")

    def summary(self) -> str:
        files = ", ".join(r.path for r in self.results[:3])
        return f"{self.count} files match" + (f": {files}" if files else "")


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    filters: dict[str, list[str]] = {"Project": [session.project_name]}
    if inputs.repository:
        name = repository_in(session, inputs.repository)
        if is_guid(name):  # the search filters take names
            name = get_repository(session, name)["name"]
        filters["Repository"] = [name]
    if inputs.branch:
        filters["Branch"] = [inputs.branch.removeprefix("refs/heads/")]
    if inputs.path:
        filters["Path"] = ["/" + inputs.path.strip("/")]
    text = inputs.search_text + (f" ext:{inputs.extension.lstrip('.')}" if inputs.extension else "")
    try:
        found = session.rest.post(
            session.search(f"{path_segment(session.project_name)}/_apis/search/codesearchresults"),
            {"searchText": text, "$skip": 0, "$top": inputs.max_results, "filters": filters,
             "includeFacets": False, "includeSnippet": True},
            scope=CODE_READ, subject=f"Code Search in project {session.project_name!r}")
    except NotFound as missing:
        if missing.details.get("tfCode") == "TF200016":
            raise
        raise missing.derive(
            message=f"Code Search is not available in organization {session.organization!r}: "
                    f"the Code Search extension is not installed (the service answered 404 "
                    f"on its search route{': ' + missing.service_message if missing.service_message else ''})",
            hint="An organization admin installs Code Search from the Visual Studio "
                 "Marketplace (Organization settings > Extensions); Azure DevOps Server needs "
                 "its search service configured too.") from None
    results = [_result(ctx, session, item, inputs.read_lines)
               for item in (found or {}).get("results", [])]
    return Outputs.model_validate({"results": results, "count": (found or {}).get("count", len(results))})


def _result(ctx: ActionContext, session, item: dict[str, Any], read_lines: bool) -> dict[str, Any]:
    repository = (item.get("repository") or {}).get("name", "")
    version = (item.get("versions") or [{}])[0]
    hits = (item.get("matches") or {}).get("content") or []
    matches = _snippets(hits)
    if not matches and hits and read_lines:
        matches = _lines(ctx, session, item, version.get("changeId"), hits)
    branch = version.get("branchName")
    suffix = f"?path={quote(item.get('path', ''))}" + (f"&version=GB{quote(branch)}" if branch else "")
    return {"file_name": item.get("fileName", ""), "path": item.get("path", ""),
            "repository": repository, "branch": branch, "commit_id": version.get("changeId"),
            "matches": matches, "web_url": web_url(session, repository, suffix)}


def _snippets(hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines the service gave itself (codeSnippet), when it gives them."""
    return [{"line": hit["line"], "column": int(hit.get("column") or 0) + 1,
             "text": str(hit["codeSnippet"]).rstrip("\r\n")}
            for hit in hits if hit.get("codeSnippet") and hit.get("line")]


def _lines(ctx: ActionContext, session, item: dict[str, Any], commit: str | None,
           hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines the hits' character offsets fall on, from the file at the indexed commit."""
    repository = (item.get("repository") or {}).get("id") or (item.get("repository") or {}).get("name")
    try:
        data = session.rest.get(
            f"{session.project_id}/_apis/git/repositories/{path_segment(str(repository))}/items",
            params={"path": item.get("path"), "includeContent": "true",
                    **({"versionDescriptor.version": commit,
                        "versionDescriptor.versionType": "commit"} if commit else {})},
            scope=CODE_READ, subject=f"{item.get('path')!r} found by Code Search")
    except NotFound:  # moved or deleted since it was indexed
        ctx.log.info("%s was found by Code Search but is gone now", item.get("path"))
        return []
    content = str((data or {}).get("content") or "")
    starts = [0] + [i + 1 for i, ch in enumerate(content) if ch == "\n"]
    lines = content.split("\n")
    seen: dict[int, dict[str, Any]] = {}
    for hit in hits:
        offset = int(hit.get("charOffset", -1))
        if not 0 <= offset <= len(content):
            continue
        number = bisect.bisect_right(starts, offset)  # lines from 1
        seen.setdefault(number, {"line": number, "column": offset - starts[number - 1] + 1,
                                 "text": lines[number - 1].rstrip("\r")})
    return [seen[n] for n in sorted(seen)]


ACTION = Action(
    name="SearchCode", label="Search code", group="Repos",
    read_only=True, idempotent=True,
    description="Searches the project's code: with Code Search, optionally "
                "in one repository, branch, folder or file extension: the files found, their "
                "repository, the lines that match and links.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed, or the service refused the search text",
        "NOT_FOUND": "the Code Search extension is not installed in the organization, or the "
                     "repository does not exist",
        "PERMISSION_DENIED": f"the token lacks {CODE_READ}",
    })
