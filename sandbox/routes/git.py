"""Git repositories: list (project and organization), get, create."""
from __future__ import annotations

from sandbox import errors
from sandbox import responses as body
from sandbox.routing import Answer, Call, ProjectCall, Router
from sandbox.state import Repository, stable_id

router = Router()
CODE = "vso.code"
CODE_MANAGE = "vso.code_manage"


@router.route("GET", "/_apis/git/repositories", CODE, project=True)
def list_repositories(call: ProjectCall) -> Answer:
    values = [body.repository(call.base, call.org, call.project, r)
              for r in call.project.repositories]
    return 200, {"value": values, "count": len(values)}


@router.route("GET", "/_apis/git/repositories/(?P<repo>[^/]+)", CODE, project=True)
def get_repository(call: ProjectCall) -> Answer:
    repo = call.project.repository(call.params["repo"])
    if repo is None:
        raise errors.repository_not_found(call.params["repo"])
    return 200, body.repository(call.base, call.org, call.project, repo, links=True)


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
