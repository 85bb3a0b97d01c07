"""Git repositories (list, get, create), their refs, items, commits, pushes and pull
requests."""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Any

from adobot.sandbox import errors
from adobot.sandbox import responses as body
from adobot.sandbox.routing import Answer, Call, ProjectCall, Router
from adobot.sandbox.state import ZERO_ID, Commit, PullRequest, Repository, stable_id

router = Router()
CODE = "vso.code"
CODE_WRITE = "vso.code_write"
CODE_MANAGE = "vso.code_manage"
REPOSITORY = "/_apis/git/repositories/(?P<repo>[^/]+)"


def repository(call: ProjectCall) -> Repository:
    found = call.project.repository(call.params["repo"])
    if found is None:
        raise errors.repository_not_found(call.params["repo"])
    return found


@router.route("GET", "/_apis/git/repositories", CODE, project=True)
def list_repositories(call: ProjectCall) -> Answer:
    values = [body.repository(call.base, call.org, call.project, r)
              for r in call.project.repositories]
    return 200, {"value": values, "count": len(values)}


@router.route("GET", REPOSITORY, CODE, project=True)
def get_repository(call: ProjectCall) -> Answer:
    return 200, body.repository(call.base, call.org, call.project, repository(call), links=True)


@router.route("POST", "/_apis/git/repositories", CODE_MANAGE, project=True)
def create_repository(call: ProjectCall) -> Answer:
    name = call.json_object().get("name")
    if not isinstance(name, str) or not name.strip():
        raise errors.argument_null("name")
    if call.project.repository(name) is not None:
        raise errors.repository_exists(name)
    repo = Repository(id=stable_id(call.org.name, call.project.name, name, "created"), name=name)
    call.project.repositories.append(repo)
    return 201, body.repository(call.base, call.org, call.project, repo)


@router.route("GET", "/_apis/git/repositories", CODE)
def list_all_repositories(call: Call) -> Answer:
    values = [body.repository(call.base, call.org, project, repo)
              for project in call.org.projects for repo in project.repositories]
    return 200, {"value": values, "count": len(values)}


@router.route("GET", REPOSITORY + "/refs", CODE, project=True)
def list_refs(call: ProjectCall) -> Answer:
    repo = repository(call)
    prefix = "refs/" + call.query.get("filter", "")
    values = [body.ref(call.base, call.project, repo, name, commit_id)
              for name, commit_id in sorted(repo.branches.items()) if name.startswith(prefix)]
    return 200, {"value": values, "count": len(values)}


def resolve(repo: Repository, query: dict[str, str]) -> tuple[Commit, str]:
    """The commit a versionDescriptor names (a branch by default), and how it was named."""
    version = query.get("versionDescriptor.version") or (repo.default_branch or "")
    kind = (query.get("versionDescriptor.versionType") or "branch").lower()
    shown = f"{kind.capitalize()}: {version} "
    if kind == "commit":
        found = repo.commits.get(version.lower())
    elif kind == "branch":
        found = repo.tip(version if version.startswith("refs/") else f"refs/heads/{version}")
    else:
        found = None
    if found is None:
        raise errors.version_unresolvable(shown)
    return found, version


@router.route("GET", REPOSITORY + "/items", CODE, project=True)
def get_items(call: ProjectCall) -> Answer:
    """One item (``path``, with its content if asked) or the items under ``scopePath`` to the
    ``recursionLevel`` asked (none, oneLevel, full)."""
    repo = repository(call)
    commit, version = resolve(repo, call.query)
    scope = "/" + (call.query.get("path") or call.query.get("scopePath") or "/").strip("/")
    level = call.query.get("recursionLevel", "none").lower()
    folders = folders_of(commit)
    if scope not in commit.files and scope not in folders:
        raise errors.item_not_found(scope, repo.name, version)
    if "path" in call.query or level not in ("onelevel", "full"):
        data = body.item(call.base, call.project, repo, commit, scope, scope in folders)
        if scope in commit.files:
            content = commit.files[scope]
            binary = is_binary(content)
            if _flag(call, "includeContentMetadata"):
                data["contentMetadata"] = body.content_metadata(scope, binary)
            if _flag(call, "includeContent"):
                data["content"] = content.decode("utf-8", "replace")
        return 200, data
    under = scope.rstrip("/") + "/"
    paths = sorted({p for p in folders | set(commit.files)
                    if p == scope or (p.startswith(under) and (
                        level == "full" or "/" not in p[len(under):]))})
    values = [body.item(call.base, call.project, repo, commit, p, p in folders) for p in paths]
    return 200, {"count": len(values), "value": values}


def folders_of(commit: Commit) -> set[str]:
    return {"/".join(path.split("/")[:depth]) or "/" for path in commit.files
            for depth in range(1, path.count("/") + 1)}


def is_binary(content: bytes) -> bool:
    if b"\0" in content[:8000]:
        return True
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _flag(call: Call, name: str) -> bool:
    return call.query.get(name, "").lower() == "true"


@router.route("GET", REPOSITORY + "/commits", CODE, project=True)
def list_commits(call: ProjectCall) -> Answer:
    """Commits reachable from a version (the default branch), newest first, filtered by the
    searchCriteria the service takes: author, fromDate/toDate, itemPath, $skip/$top."""
    repo = repository(call)
    criteria = {k[len("searchCriteria."):]: v for k, v in call.query.items()
                if k.startswith("searchCriteria.")}
    query = {f"versionDescriptor.{k[len('itemVersion.'):]}": v for k, v in criteria.items()
             if k.startswith("itemVersion.")}
    if not repo.default_branch and not query:
        return 200, {"count": 0, "value": []}
    start, _ = resolve(repo, query)
    since, until = _date(criteria, "fromDate"), _date(criteria, "toDate")
    author = criteria.get("author", "").lower()
    path = criteria.get("itemPath")
    found = [c for c in repo.history(start)
             if (not author or author in c.author.lower() or author in c.email.lower())
             and (since is None or _parse(c.date) >= since)
             and (until is None or _parse(c.date) <= until)
             and (path is None or repo.touches(c, "/" + path.strip("/")))]
    skip, top = _int(criteria, "$skip", 0), _int(criteria, "$top", 100)
    values = [body.commit(call.base, call.project, repo, c) for c in found[skip:skip + top]]
    return 200, {"count": len(values), "value": values}


def _int(criteria: dict[str, str], name: str, default: int) -> int:
    raw = criteria.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise errors.invalid_argument(f"The value '{raw}' is not valid for searchCriteria.{name}.")
    return int(raw)


def _date(criteria: dict[str, str], name: str) -> dt.datetime | None:
    raw = criteria.get(name)
    if raw is None:
        return None
    try:
        return _parse(raw)
    except ValueError:
        raise errors.invalid_argument(
            f"The value '{raw}' is not valid for searchCriteria.{name}.") from None


def _parse(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


@router.route("POST", REPOSITORY + "/pushes", CODE_WRITE, project=True)
def create_push(call: ProjectCall) -> Answer:
    repo = repository(call)
    payload = call.json_object()
    updates, commits = payload.get("refUpdates"), payload.get("commits")
    if not (isinstance(updates, list) and len(updates) == 1 and isinstance(updates[0], dict)
            and isinstance(commits, list) and len(commits) == 1 and isinstance(commits[0], dict)):
        raise errors.push_argument("A push takes one refUpdate and one commit.")
    ref, old = str(updates[0].get("name") or ""), str(updates[0].get("oldObjectId") or "")
    if not ref.startswith("refs/heads/") or len(ref) <= len("refs/heads/"):
        raise errors.push_argument(f"'{ref}' is not a valid Git ref name.")
    current = repo.branches.get(ref)
    if current is not None and current != old.lower():
        raise errors.reference_stale(ref)
    base = repo.commits.get(old.lower()) if old.strip("0") else None
    if old.strip("0") and base is None:
        raise errors.push_argument(f"The object '{old}' does not exist in the repository.")
    comment = commits[0].get("comment")
    changes = commits[0].get("changes")
    if not isinstance(comment, str) or not comment.strip() or not isinstance(changes, list) \
            or not changes:
        raise errors.push_argument("A commit needs a comment and at least one change.")
    files = apply_changes(dict(base.files) if base else {}, changes,
                          base.id if base else ZERO_ID)
    made = repo.commit(files, [base.id] if base else [], comment, call.token.user,
                       call.token.email, body.timestamp())
    repo.branches[ref] = made.id
    if repo.default_branch is None:  # the first branch pushed becomes the default
        repo.default_branch = ref
    push_id = call.state.next_id("push")
    return 201, body.push(call.base, call.org, call.project, repo, call.token, made, ref,
                          old or ZERO_ID, push_id)


def apply_changes(files: dict[str, bytes], changes: list[Any], base: str) -> dict[str, bytes]:
    """The tree after the changes, refused as the service refuses them."""
    touched: set[str] = set()
    for change in changes:
        kind = str((change or {}).get("changeType", "")).lower() if isinstance(change, dict) else ""
        path = str(((change.get("item") or {}).get("path") or "") if kind else "")
        if kind not in ("add", "edit", "delete") or not path.strip("/") or "\0" in path:
            raise errors.push_argument("The change is not valid: changeType add, edit or delete "
                                       "and an item path are required.")
        path = "/" + path.strip("/")
        if path in touched:
            raise errors.push_argument(f"The path '{path}' has more than one change in the push.")
        touched.add(path)
        if kind == "delete":
            if path not in files:
                raise errors.push_argument(f"The path '{path}' does not exist at commit {base}.")
            del files[path]
            continue
        if kind == "add" and path in files:
            raise errors.push_argument(f"The path '{path}' cannot be added: it already exists.")
        if kind == "edit" and path not in files:
            raise errors.push_argument(f"The path '{path}' does not exist at commit {base}.")
        files[path] = _content(change.get("newContent"))
    return files


def _content(new: Any) -> bytes:
    if not isinstance(new, dict) or not isinstance(new.get("content"), str):
        raise errors.push_argument("An add or edit needs newContent with content.")
    kind = str(new.get("contentType", "rawtext")).lower()
    if kind == "rawtext":
        return new["content"].encode("utf-8")
    if kind == "base64encoded":
        try:
            return base64.b64decode(new["content"], validate=True)
        except (ValueError, binascii.Error):
            raise errors.push_argument("The content is not valid base64.") from None
    raise errors.push_argument(f"The content type '{new.get('contentType')}' is not valid.")


# --- pull requests -------------------------------------------------------------------------

@router.route("POST", REPOSITORY + "/pullrequests", CODE_WRITE, project=True)
def create_pull_request(call: ProjectCall) -> Answer:
    repo = repository(call)
    payload = call.json_object(required_as="gitPullRequestToCreate")
    source, target = payload.get("sourceRefName"), payload.get("targetRefName")
    for name, value in (("sourceRefName", source), ("targetRefName", target)):
        if not isinstance(value, str) or not value.strip():
            raise errors.argument_null(name)
    assert isinstance(source, str) and isinstance(target, str)
    if source.lower() == target.lower():
        raise errors.pull_request_same_branches()
    source_tip, target_tip = repo.tip(source), repo.tip(target)
    if source_tip is None or target_tip is None:
        raise errors.pull_request_stale()
    if any(pr.repository is repo and pr.status == "active" and pr.source.lower() == source.lower()
           and pr.target.lower() == target.lower() for pr in call.state.pull_requests.values()):
        raise errors.pull_request_exists()
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip():
        raise errors.argument_null("title")
    reviewers = [str((r or {}).get("id", "")) for r in payload.get("reviewers") or []]
    for reviewer in reviewers:
        try:
            uuid.UUID(reviewer)
        except ValueError:
            raise errors.invalid_argument(f"The reviewer id '{reviewer}' is not valid.") from None
    work_items = [int((w or {}).get("id", 0) or 0) for w in payload.get("workItemRefs") or []]
    for item_id in work_items:
        if item_id not in call.state.work_items:
            raise errors.work_item_not_found(str(item_id))
    made = PullRequest(
        id=call.state.next_id("pull_request"), repository=repo, source=source, target=target,
        title=title, description=str(payload.get("description") or ""),
        is_draft=bool(payload.get("isDraft")), created_by=call.token, created=body.timestamp(),
        source_commit=source_tip.id, target_commit=target_tip.id, reviewers=reviewers,
        work_items=work_items)
    call.state.pull_requests[made.id] = made
    return 201, body.pull_request(call.base, call.org, call.project, made)


@router.route("GET", REPOSITORY + "/pullrequests", CODE, project=True)
def list_pull_requests(call: ProjectCall) -> Answer:
    repo = repository(call)
    status = call.query.get("searchCriteria.status", "active").lower()
    source = call.query.get("searchCriteria.sourceRefName", "").lower()
    target = call.query.get("searchCriteria.targetRefName", "").lower()
    found = [pr for pr in sorted(call.state.pull_requests.values(), key=lambda p: -p.id)
             if pr.repository is repo and (status == "all" or pr.status == status)
             and (not source or pr.source.lower() == source)
             and (not target or pr.target.lower() == target)]
    top = int(call.query.get("$top", "101") or 101)
    values = [body.pull_request(call.base, call.org, call.project, pr) for pr in found[:top]]
    return 200, {"value": values, "count": len(values)}


@router.route("GET", REPOSITORY + r"/pullrequests/(?P<id>\d+)", CODE, project=True)
def get_pull_request(call: ProjectCall) -> Answer:
    repo = repository(call)
    found = call.state.pull_requests.get(int(call.params["id"]))
    if found is None or found.repository is not repo:
        raise errors.pull_request_not_found(call.params["id"])
    return 200, body.pull_request(call.base, call.org, call.project, found)
