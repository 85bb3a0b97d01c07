"""Wikis (list, get) and their pages: a project wiki keeps its pages in a hidden repository, a
code wiki publishes a folder of one of the project's repositories."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from adobot.sandbox import errors
from adobot.sandbox.routing import Answer, ProjectCall, Router
from adobot.sandbox.state import Commit, Wiki, page_file, page_path

router = Router()
WIKI = "vso.wiki"
WIKIS = "/_apis/wiki/wikis"


def wiki(call: ProjectCall) -> Wiki:
    found = call.project.wiki(call.params["wiki"])
    if found is None:
        raise errors.wiki_not_found(call.params["wiki"])
    return found


def describe(call: ProjectCall, item: Wiki) -> dict[str, Any]:
    api = f"{call.base}/{call.project.id}{WIKIS}/{item.id}"
    return {"id": item.id, "versions": [{"version": item.branch.removeprefix("refs/heads/")}],
            "url": api, "remoteUrl": f"{call.base}/{call.project.id}/_wiki/wikis/{item.id}",
            "type": item.type, "name": item.name, "projectId": call.project.id,
            "repositoryId": item.repository.id, "mappedPath": item.mapped_path}


@router.route("GET", WIKIS, WIKI, project=True)
def list_wikis(call: ProjectCall) -> Answer:
    values = [describe(call, w) for w in call.project.wikis]
    return 200, {"value": values, "count": len(values)}


@router.route("GET", WIKIS + "/(?P<wiki>[^/]+)", WIKI, project=True)
def get_wiki(call: ProjectCall) -> Answer:
    return 200, describe(call, wiki(call))


def _pages(item: Wiki, commit: Commit) -> dict[str, str]:
    """Page path -> its file, for every page of the wiki (a folder is a page too)."""
    root = item.mapped_path.rstrip("/")
    pages: dict[str, str] = {}
    for name in commit.files:
        if not name.endswith(".md") or not name.startswith(root + "/"):
            continue
        path = page_path(name[len(root):])
        pages[path] = name
        parts = path.split("/")[1:-1]
        for depth in range(1, len(parts) + 1):  # the folders above it
            pages.setdefault("/" + "/".join(parts[:depth]), "")
    return pages


@router.route("GET", WIKIS + "/(?P<wiki>[^/]+)/pages", WIKI, project=True)
def get_page(call: ProjectCall) -> Answer:
    """A page by ``path``, its content (``includeContent``) and sub-pages (``recursionLevel``)."""
    item = wiki(call)
    commit = item.repository.tip(item.branch)
    assert commit is not None
    pages = _pages(item, commit)
    path = "/" + (call.query.get("path") or "/").strip("/")
    key = next((p for p in pages if p.lower() == path.lower()), None) if path != "/" else "/"
    if key is None:
        raise errors.wiki_page_not_found(path)
    level = call.query.get("recursionLevel", "none").lower()
    data = _page(call, item, pages, key, level, first=True)
    if call.query.get("includeContent", "").lower() == "true" and pages.get(key):
        data["content"] = commit.files[pages[key]].decode("utf-8", "replace")
    etag = commit.id
    return 200, data, {"ETag": f'"{etag}"'}


def _page(call: ProjectCall, item: Wiki, pages: dict[str, str], path: str, level: str,
          first: bool = False) -> dict[str, Any]:
    prefix = "/" if path == "/" else path + "/"
    children = sorted(p for p in pages if p.startswith(prefix) and p != path
                      and "/" not in p[len(prefix):])
    api = f"{call.base}/{call.project.id}{WIKIS}/{item.id}/pages/{quote(path, safe='')}"
    data: dict[str, Any] = {
        "path": path, "order": 0,
        "gitItemPath": pages.get(path) or (item.mapped_path if path == "/" else page_file(path)),
        "subPages": [], "url": api,
        "remoteUrl": f"{call.base}/{call.project.id}/_wiki/wikis/{item.id}?pagePath="
                     f"{quote(path, safe='')}"}
    if children:
        data["isParentPage"] = True
    if level == "full" or (level == "onelevel" and first):
        data["subPages"] = [dict(_page(call, item, pages, child, level), order=index)
                            for index, child in enumerate(children)]
    return data
