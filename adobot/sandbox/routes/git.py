"""Git repositories (list, get, create), their refs, items and pushes."""
from __future__ import annotations

import base64
import binascii
from typing import Any

from adobot.sandbox import errors
from adobot.sandbox import responses as body
from adobot.sandbox.routing import Answer, Call, ProjectCall, Router
from adobot.sandbox.state import ZERO_ID, Commit, Repository, stable_id

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
    """One item (``path``) or every item under ``scopePath`` (``recursionLevel``)."""
    repo = repository(call)
    commit, version = resolve(repo, call.query)
    scope = "/" + (call.query.get("path") or call.query.get("scopePath") or "/").strip("/")
    deep = call.query.get("recursionLevel", "none").lower() == "full"
    folders = {"/".join(path.split("/")[:depth]) or "/" for path in commit.files
               for depth in range(1, path.count("/") + 1)}
    if scope not in commit.files and scope not in folders:
        raise errors.item_not_found(scope, repo.name, version)
    if "path" in call.query or not deep:
        return 200, body.item(call.base, call.project, repo, commit, scope, scope in folders)
    under = scope.rstrip("/") + "/"
    paths = sorted({p for p in folders | set(commit.files) if p == scope or p.startswith(under)})
    values = [body.item(call.base, call.project, repo, commit, p, p in folders) for p in paths]
    return 200, {"count": len(values), "value": values}


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
