"""SearchWiki: Wiki Search across the project's wikis (on the search host, like Code Search;
wiki search is built into Azure DevOps Services)."""
from __future__ import annotations

import re

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
from adobot.actions.references import WikiRef, wiki_in
from adobot.actions.scopes import WIKI_READ
from adobot.actions.wiki import page_of_file, page_url

_HIGHLIGHT = re.compile(r"</?highlighthit>")


class Inputs(ActionInputs):
    session: SessionInput
    search_text: str = Field(min_length=1, max_length=1000, pattern=r"^[^\x00-\x1f]+$",
                             description="Text to find", examples=["capture retries"])
    wiki: WikiRef | None = Field(None, description="Only this wiki (default: every wiki of "
                                 "the project)", examples=["Payments.wiki"])
    max_results: int = Field(25, ge=1, le=1000, description="At most this many",
                             examples=[10])


class Result(BaseModel):
    wiki: str
    path: str = Field(description="The page's path")
    highlights: list[str] = Field(description="Text around the matches")
    web_url: str


class Outputs(ActionOutputs):
    results: list[Result]
    count: int = Field(description="How many pages match in all")

    def summary(self) -> str:
        return f"{self.count} wiki pages match" + (
            f": {', '.join(r.path for r in self.results[:3])}" if self.results else "")


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    session = ctx.session(inputs.session)
    filters = {"Project": [session.project_name]}
    if inputs.wiki:
        filters["Wiki"] = [wiki_in(session, inputs.wiki)]
    found = session.rest.post(
        session.search(f"{path_segment(session.project_name)}/_apis/search/wikisearchresults"),
        {"searchText": inputs.search_text, "$skip": 0, "$top": inputs.max_results,
         "filters": filters, "includeFacets": False},
        scope=WIKI_READ, subject=f"Wiki Search in project {session.project_name!r}") or {}
    results = []
    for item in found.get("results", []):
        wiki = (item.get("wiki") or {}).get("name", "")
        path = page_of_file(item.get("path", ""))
        highlights = [_HIGHLIGHT.sub("", text) for hit in item.get("hits") or []
                      for text in hit.get("highlights") or []]
        results.append({"wiki": wiki, "path": path, "highlights": highlights,
                        "web_url": page_url(session, wiki, path)})
    return Outputs.model_validate({"results": results, "count": found.get("count", len(results))})


ACTION = Action(
    name="SearchWiki", label="Search wiki", group="Wiki",
    read_only=True, idempotent=True,
    description="Searches the project's wikis (or one wiki): the pages found, the "
                "text around the matches and links.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **SESSION_ERRORS,
        "INVALID_INPUT": "an input is malformed, or the service refused the search text",
        "NOT_FOUND": "the project does not exist, or search is not available",
        "PERMISSION_DENIED": f"the token lacks {WIKI_READ}",
    })
