"""GetWikiPage: a page of a project or code wiki, its Markdown and the pages under it."""
from __future__ import annotations

from typing import Any, Literal

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
from adobot.actions.references import WikiRef
from adobot.actions.scopes import WIKI_READ
from adobot.actions.wiki import explain_missing, page_url, wiki_name
from adobot.errors import AdobotError

LEVELS = {"none": None, "one_level": "oneLevel", "full": "full"}


class Inputs(ActionInputs):
    session: SessionInput
    wiki: WikiRef | None = Field(None, description="Name, id or URL (default: "
                                 "the project wiki, {project}.wiki)", examples=["Payments.wiki"])
    path: str = Field("/", min_length=1, max_length=4000, pattern=r"^[^\x00-\x1f]+$",
                      description="e.g. /Runbooks/Rollback ('/': the top)",
                      examples=["/Runbooks/Payment failures"])
    sub_pages: Literal["none", "one_level", "full"] = Field(
        "one_level", description="Pages under it: none, its own (one_level), "
                                 "or all below it (full)", examples=["one_level"])


class Page(BaseModel):
    path: str
    content: str | None = Field(None, description="The page's Markdown (none for '/' or a "
                                                  "folder without a page)")
    web_url: str


class SubPage(BaseModel):
    path: str
    web_url: str


class Outputs(ActionOutputs):
    page: Page
    sub_pages: list[SubPage] = Field(description="Pages under it, in the wiki's order")

    def summary(self) -> str:
        return f"read {self.page.path} ({len(self.page.content or '')} characters, " \
               f"{len(self.sub_pages)} pages under it)"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    wiki = wiki_name(session, inputs.wiki)
    path = "/" + inputs.path.strip().strip("/")
    try:
        data = session.rest.get(
            f"{session.project_id}/_apis/wiki/wikis/{path_segment(wiki)}/pages",
            params={"path": path, "includeContent": "true",
                    "recursionLevel": LEVELS[inputs.sub_pages]},
            scope=WIKI_READ, subject=f"page {path!r} of wiki {wiki!r}")
    except AdobotError as error:
        raise explain_missing(error, session, wiki, path) from None
    data = data or {}
    found = data.get("path", path)
    under = [{"path": p, "web_url": page_url(session, wiki, p)}
             for p in _below(data.get("subPages") or [])]
    return Outputs.model_validate({
        "page": {"path": found, "content": data.get("content"),
                 "web_url": page_url(session, wiki, found)},
        "sub_pages": under})


def _below(pages: list[dict[str, Any]]) -> list[str]:
    paths: list[str] = []
    for page in pages:
        paths.append(page["path"])
        paths += _below(page.get("subPages") or [])
    return paths


ACTION = Action(
    name="GetWikiPage", label="Get wiki page", group="Wiki",
    read_only=True, idempotent=True,
    description="Reads a wiki page by its path: its Markdown, a link, and the pages under "
                "it (one level, or all), in a project or code wiki.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed, or a wiki URL names another project",
        "NOT_FOUND": "the wiki or the page does not exist",
        "PERMISSION_DENIED": f"the token lacks {WIKI_READ}",
    })
