"""Code and wiki search (almsearch.dev.azure.com on the service; Server and the sandbox serve
them beside the other routes). The sandbox searches the default branch of every repository of
the project, as the service indexes it, and the pages of its wikis."""
from __future__ import annotations

import hashlib
import re
import shlex
from typing import Any

from adobot.sandbox import errors
from adobot.sandbox.routing import Answer, ProjectCall, Router

router = Router()
MAX_TOP = 1000


def _query(call: ProjectCall) -> tuple[list[str], dict[str, list[str]], dict[str, Any]]:
    """(terms, keyword filters of the search text, the request's filters)."""
    payload = call.json_object(required_as="request")
    text = payload.get("searchText")
    if not isinstance(text, str) or not text.strip():
        raise errors.search_argument("The search text cannot be empty.")
    top, skip = payload.get("$top", 100), payload.get("$skip", 0)
    if not isinstance(top, int) or not 0 < top <= MAX_TOP or not isinstance(skip, int) or skip < 0:
        raise errors.search_argument(f"$top must be from 1 to {MAX_TOP} and $skip at least 0.")
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    terms: list[str] = []
    keywords: dict[str, list[str]] = {}
    for word in words:
        key, colon, value = word.partition(":")
        if colon and key.lower() in ("ext", "file", "path", "repo", "proj") and value:
            keywords.setdefault(key.lower(), []).append(value.lower())
        elif word.upper() not in ("AND", "OR", "NOT"):
            terms.append(word.lower())
    filters = payload.get("filters") or {}
    if not isinstance(filters, dict):
        raise errors.search_argument("filters must be an object of lists.")
    return terms, keywords, {"filters": filters, "top": top, "skip": skip}


def _offsets(text: str, terms: list[str]) -> list[tuple[int, int]]:
    lowered = text.lower()
    return sorted((m.start(), len(term)) for term in terms
                  for m in re.finditer(re.escape(term), lowered))


@router.route("POST", "/_apis/search/codesearchresults", "vso.code", project=True)
def search_code(call: ProjectCall) -> Answer:
    if not call.org.code_search:
        raise errors.search_not_installed(call.path)
    terms, keywords, request = _query(call)
    filters = {k.lower(): [str(v).lower() for v in (vals or [])]
               for k, vals in request["filters"].items()}
    results: list[dict[str, Any]] = []
    for repo in call.project.repositories:
        branch = (repo.default_branch or "").removeprefix("refs/heads/")
        tip = repo.tip(repo.default_branch) if repo.default_branch else None
        if tip is None or (filters.get("repository") and repo.name.lower() not in
                           filters["repository"] + keywords.get("repo", [])):
            continue
        if filters.get("branch") and branch.lower() not in filters["branch"]:
            continue  # only the default branch is indexed
        for path, raw in sorted(tip.files.items()):
            name = path.rsplit("/", 1)[-1]
            if not _wanted(path, name, filters.get("path", []), keywords):
                continue
            text = raw.decode("utf-8", "replace")
            content = _offsets(text, terms)
            in_name = _offsets(name, terms)
            if not all(term in text.lower() or term in name.lower() for term in terms):
                continue
            results.append({
                "fileName": name, "path": path,
                "matches": {"content": [{"charOffset": at, "length": size, "line": 0,
                                         "column": 0, "codeSnippet": None, "type": "content"}
                                        for at, size in content],
                            "fileName": [{"charOffset": at, "length": size, "line": 0,
                                          "column": 0, "codeSnippet": None, "type": "fileName"}
                                         for at, size in in_name]},
                "collection": {"name": call.org.name},
                "project": {"name": call.project.name, "id": call.project.id},
                "repository": {"name": repo.name, "id": repo.id, "type": "git"},
                "versions": [{"branchName": branch, "changeId": tip.id}],
                "contentId": hashlib.sha1(raw).hexdigest()})
    page = results[request["skip"]:request["skip"] + request["top"]]
    return 200, {"count": len(results), "results": page, "infoCode": 0, "facets": {}}


def _wanted(path: str, name: str, paths: list[str], keywords: dict[str, list[str]]) -> bool:
    lowered = path.lower()
    if paths and not any(lowered.startswith("/" + p.strip("/") + "/") or lowered == p
                         or p in ("", "/") for p in paths):
        return False
    if "path" in keywords and not any(lowered.startswith("/" + p.strip("/") + "/")
                                      for p in keywords["path"]):
        return False
    if "ext" in keywords and not any(name.lower().endswith("." + e.lstrip("."))
                                     for e in keywords["ext"]):
        return False
    return "file" not in keywords or any(f.replace("*", "") in name.lower()
                                         for f in keywords["file"])


@router.route("POST", "/_apis/search/wikisearchresults", "vso.wiki", project=True)
def search_wiki(call: ProjectCall) -> Answer:
    terms, _, request = _query(call)
    wanted = [str(w).lower() for w in (request["filters"].get("Wiki") or [])]
    results: list[dict[str, Any]] = []
    for item in call.project.wikis:
        if wanted and item.name.lower() not in wanted and item.id not in wanted:
            continue
        tip = item.repository.tip(item.branch)
        assert tip is not None
        root = item.mapped_path.rstrip("/")
        for path, raw in sorted(tip.files.items()):
            if not path.endswith(".md") or not path.startswith(root + "/"):
                continue
            text = raw.decode("utf-8", "replace")
            if not all(term in text.lower() or term in path.lower() for term in terms):
                continue
            lines = [line for line in text.splitlines() if any(t in line.lower() for t in terms)]
            results.append({
                "fileName": path.rsplit("/", 1)[-1], "path": path[len(root):],
                "collection": {"name": call.org.name},
                "project": {"id": call.project.id, "name": call.project.name,
                            "visibility": None},
                "wiki": {"id": item.id, "mappedPath": item.mapped_path, "name": item.name,
                         "version": item.branch.removeprefix("refs/heads/")},
                "contentId": hashlib.sha1(raw).hexdigest(),
                "hits": [{"fieldReferenceName": "content",
                          "highlights": [_highlight(line, terms) for line in lines[:3]]}]})
    page = results[request["skip"]:request["skip"] + request["top"]]
    return 200, {"count": len(results), "results": page, "infoCode": 0, "facets": {}}


def _highlight(line: str, terms: list[str]) -> str:
    for term in terms:
        line = re.sub(re.escape(term), lambda m: f"<highlighthit>{m.group(0)}</highlighthit>",
                      line, flags=re.IGNORECASE)
    return line
