"""The routes the sandbox serves (7.1), each with the PAT scope the real service requires."""
from __future__ import annotations

from typing import Any

from sandbox import responses as body
from sandbox.server import ApiError, Request, Router, authenticate, check_api_version
from sandbox.state import Organization, Project, SandboxState

router = Router()


def app(state: SandboxState, request: Request) -> tuple[int, Any]:
    if request.path.rstrip("/") == "/_signin":
        return 203, body.SIGN_IN_PAGE  # what a client that followed the 302 ends on
    found = router.match(request.method, request.path)
    if found is None:
        raise ApiError(404, body.error(
            f"VS800089: The resource at '{request.path}' cannot be found.",
            "VssResourceNotFoundException",
            "Microsoft.VisualStudio.Services.WebApi.VssResourceNotFoundException"))
    (_, _, handler, scope, preview), params = found
    org = state.organization(params.pop("org"))
    if org is None:
        raise ApiError(404, body.error(
            f"The organization '{request.path.split('/')[1]}' could not be found.",
            "HostNotFoundException", "Microsoft.VisualStudio.Services.Host.HostNotFoundException"))
    request.org, request.params = org, params
    request.token = authenticate(state, request, scope)
    check_api_version(request, preview)
    with state.lock:
        return handler(state, request)


def _project(org: Organization, id_or_name: str) -> Project:
    project = org.project(id_or_name)
    if project is None:
        raise ApiError(404, body.error(
            f"TF200016: The following project does not exist: {id_or_name}. Verify that the name "
            "of the project is correct and that the project exists on the specified Azure DevOps "
            "Server.", "ProjectDoesNotExistWithNameException",
            "Microsoft.TeamFoundation.Core.WebApi.ProjectDoesNotExistWithNameException, "
            "Microsoft.TeamFoundation.Core.WebApi"))
    return project


@router.add("GET", "/_apis/connectionData", preview=True)
def connection_data(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None and request.token is not None
    return 200, body.connection_data(request.org, request.token)


@router.add("GET", "/_apis/projects")
def list_projects(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None
    values = [body.project_ref(request.base, p) for p in request.org.projects]
    return 200, {"count": len(values), "value": values}


@router.add("GET", "/_apis/projects/(?P<project>[^/]+)")
def get_project(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None
    project = _project(request.org, request.params["project"])
    return 200, body.project_full(request.base, request.org, project)


@router.add("GET", "/(?P<project>[^/_][^/]*)/_apis/git/repositories", "vso.code")
def list_repositories(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None
    project = _project(request.org, request.params["project"])
    values = [body.repository(request.base, request.org, project, r)
              for r in project.repositories]
    return 200, {"value": values, "count": len(values)}


@router.add("GET", "/(?P<project>[^/_][^/]*)/_apis/git/repositories/(?P<repo>[^/]+)", "vso.code")
def get_repository(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None
    project = _project(request.org, request.params["project"])
    repo = project.repository(request.params["repo"])
    if repo is None:
        raise ApiError(404, body.error(
            f"TF401019: The Git repository with name or identifier {request.params['repo']} does "
            "not exist or you do not have permissions for the operation you are attempting.",
            "GitRepositoryNotFoundException",
            "Microsoft.TeamFoundation.Git.Server.GitRepositoryNotFoundException, "
            "Microsoft.TeamFoundation.SourceControl.WebServer"))
    return 200, body.repository(request.base, request.org, project, repo, links=True)
