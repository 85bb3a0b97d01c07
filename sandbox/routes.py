"""The routes the sandbox serves (7.1), each with the PAT scope the real service requires."""
from __future__ import annotations

import time
from typing import Any

from sandbox import responses as body
from sandbox.server import ApiError, Request, Router, authenticate, check_api_version
from sandbox.state import (
    KNOWN_FIELDS,
    Organization,
    Pipeline,
    Project,
    Repository,
    Run,
    SandboxState,
    WorkItem,
    stable_id,
)

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


def reject(status: int, message: str, type_key: str, assembly: str) -> ApiError:
    return ApiError(status, body.error(message, type_key, f"{assembly}.{type_key}, {assembly}"))


def _repository_not_found(key: str) -> ApiError:
    return ApiError(404, body.error(
        f"TF401019: The Git repository with name or identifier {key} does not exist or you do "
        "not have permissions for the operation you are attempting.",
        "GitRepositoryNotFoundException",
        "Microsoft.TeamFoundation.Git.Server.GitRepositoryNotFoundException, "
        "Microsoft.TeamFoundation.SourceControl.WebServer"))


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise reject(400, "VS403403: The request body must be a JSON object.",
                     "InvalidRequestContentException", "Microsoft.VisualStudio.Services.WebApi")
    return payload


# --- Git ---------------------------------------------------------------------------------------

@router.add("POST", "/(?P<project>[^/_][^/]*)/_apis/git/repositories", "vso.code_manage")
def create_repository(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None
    project = _project(request.org, request.params["project"])
    payload = _object(request.json())
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        raise reject(400, "Value cannot be null.\r\nParameter name: name", "ArgumentNullException",
                     "System")
    if project.repository(name) is not None:
        raise ApiError(409, body.error(
            f"TF400948: A Git repository with the name {name} already exists.",
            "GitRepositoryNameAlreadyExistsException",
            "Microsoft.TeamFoundation.Git.Server.GitRepositoryNameAlreadyExistsException, "
            "Microsoft.TeamFoundation.SourceControl.WebServer"))
    repo = Repository(id=stable_id(request.org.name, project.name, name, "created"), name=name)
    project.repositories.append(repo)
    return 201, body.repository(request.base, request.org, project, repo)


# --- Pipelines ---------------------------------------------------------------------------------

PIPELINES = "/(?P<project>[^/_][^/]*)/_apis/pipelines"
MAX_TOP = 10000


@router.add("GET", PIPELINES, "vso.build")
def list_pipelines(state: SandboxState, request: Request) -> tuple[int, Any] | tuple[int, Any, dict]:
    assert request.org is not None
    project = _project(request.org, request.params["project"])
    ordered = sorted(project.pipelines, key=lambda p: (p.name.lower(), p.id))
    try:
        top = min(int(request.query.get("$top", MAX_TOP)), MAX_TOP)
        start = int(request.query.get("continuationToken") or 0)
    except ValueError:
        raise reject(400, "The value of $top or continuationToken is not valid.",
                     "InvalidArgumentValueException",
                     "Microsoft.VisualStudio.Services.WebApi") from None
    page = ordered[start:start + max(top, 1)]
    values = [body.pipeline_listed(request.base, project, p) for p in page]
    headers = {}
    if start + len(page) < len(ordered):  # the header appears only when more rows exist
        headers["x-ms-continuationtoken"] = str(start + len(page))
    return 200, {"count": len(values), "value": values}, headers


@router.add("POST", PIPELINES, "vso.build_execute")
def create_pipeline(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None
    project = _project(request.org, request.params["project"])
    payload = _object(request.json())
    config = payload.get("configuration") or {}
    if config.get("type") != "yaml":
        raise reject(400, "This API does not support creating pipelines of configuration type "
                     f"{config.get('type') or 'Unknown'}.", "UnsupportedConfigurationTypeException",
                     "Microsoft.Azure.Pipelines.WebApi")
    for key, value in (("Path", config.get("path")), ("Repository", config.get("repository")),
                       ("Name", payload.get("name"))):
        if not value:
            raise reject(400, f"Value cannot be null.\r\nParameter name: {key}",
                         "ArgumentNullException", "System")
    repo_id = str(config["repository"].get("id", ""))
    repo = project.repository(repo_id)
    if repo is None or repo.id != repo_id.lower():
        raise _repository_not_found(repo_id)
    folder = "\\" + "\\".join(p for p in str(payload.get("folder") or "\\").replace("/", "\\").split("\\") if p)
    name = str(payload["name"])
    if any(p.name.lower() == name.lower() and p.folder.lower() == folder.lower()
           for p in project.pipelines):
        raise ApiError(409, body.error(
            f"Build pipeline {name} already exists for project {project.name}",
            "DefinitionExistsException",
            "Microsoft.TeamFoundation.Build.WebApi.DefinitionExistsException, "
            "Microsoft.TeamFoundation.Build2.WebApi"))
    created = Pipeline(id=state.next_id("pipeline"), name=name, folder=folder,
                       repository_id=repo.id, path=str(config["path"]))
    project.pipelines.append(created)
    return 200, body.pipeline(request.base, project, created)


def _pipeline(project: Project, raw_id: str) -> Pipeline:
    found = project.pipeline(int(raw_id)) if raw_id.isdigit() else None
    if found is None:
        raise reject(404, f"Pipeline with id {raw_id} not found.", "PipelineNotFoundException",
                     "Microsoft.Azure.Pipelines.WebApi")
    return found


@router.add("GET", PIPELINES + "/(?P<pipeline>[^/]+)", "vso.build")
def get_pipeline(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None
    project = _project(request.org, request.params["project"])
    return 200, body.pipeline(request.base, project, _pipeline(project, request.params["pipeline"]))


@router.add("POST", PIPELINES + "/(?P<pipeline>[^/]+)/runs", "vso.build_execute")
def run_pipeline(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None
    project = _project(request.org, request.params["project"])
    pipeline = _pipeline(project, request.params["pipeline"])
    payload = request.json()
    if payload is None:
        raise reject(400, "Value cannot be null.\r\nParameter name: runParameters",
                     "ArgumentNullException", "System")
    payload = _object(payload)
    ref = ((payload.get("resources") or {}).get("repositories") or {}).get("self", {}).get(
        "refName", "refs/heads/main")
    if not str(ref).startswith("refs/"):
        raise reject(400, f"Unable to resolve the reference '{ref}' to a specific version.",
                     "PipelineValidationException", "Microsoft.Azure.Pipelines.WebApi")
    parameters = payload.get("templateParameters") or {}
    if pipeline.parameters is not None:
        for name in parameters:
            if name not in pipeline.parameters:
                raise reject(400, f"/{pipeline.path}: Unexpected parameter '{name}'",
                             "PipelineValidationException", "Microsoft.Azure.Pipelines.WebApi")
    variables = payload.get("variables") or {}
    for name, value in variables.items():
        if not isinstance(value, dict) or "value" not in value:
            raise reject(400, f"Variable '{name}' must be an object with a 'value'.",
                         "InvalidArgumentValueException", "Microsoft.VisualStudio.Services.WebApi")
    pipeline.runs += 1
    now = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
    created = Run(id=state.next_id("run"), name=f"{time.strftime('%Y%m%d', time.gmtime())}.{pipeline.runs}",
                  pipeline=pipeline, ref_name=str(ref), created=now,
                  template_parameters=dict(parameters), variables=dict(variables))
    if pipeline.run_polls == 0:
        _complete(created)
    state.runs[created.id] = created
    return 200, body.run(request.base, project, created)


def _complete(item: Run) -> None:
    item.state, item.result = "completed", item.pipeline.run_result
    item.finished = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())


@router.add("GET", PIPELINES + "/(?P<pipeline>[^/]+)/runs/(?P<run>[^/]+)", "vso.build")
def get_run(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None
    project = _project(request.org, request.params["project"])
    pipeline = _pipeline(project, request.params["pipeline"])
    raw = request.params["run"]
    item = state.runs.get(int(raw)) if raw.isdigit() else None
    if item is None or item.pipeline is not pipeline:
        raise reject(404, f"Run with id {raw} not found.", "PipelineRunNotFoundException",
                     "Microsoft.Azure.Pipelines.WebApi")
    if item.state != "completed":
        item.polls += 1  # runs move on with each look, so tests need no clock
        if 0 <= pipeline.run_polls <= item.polls:
            _complete(item)
    return 200, body.run(request.base, project, item)


# --- Work items --------------------------------------------------------------------------------

@router.add("GET", "/(?P<project>[^/_][^/]*)/_apis/wit/workitemtypes", "vso.work")
def list_work_item_types(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None
    project = _project(request.org, request.params["project"])
    values = [body.work_item_type(request.base, project, t) for t in project.work_item_types]
    return 200, {"count": len(values), "value": values}


def _rule_error(field: str, codes: str) -> ApiError:
    return reject(400, f"TF401320: Rule Error for field {field}. Error code: {codes}.",
                  "RuleValidationException", "Microsoft.TeamFoundation.WorkItemTracking.Server")


@router.add("POST", r"/(?P<project>[^/_][^/]*)/_apis/wit/workitems/\$(?P<type>[^/]+)", "vso.work_write")
def create_work_item(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None and request.token is not None
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
    if content_type != "application/json-patch+json":
        raise reject(400, f'The request indicated a Content-Type of "{content_type}" for method '
                     'type "POST" which is not supported. Valid content types for this method '
                     "are: application/json-patch+json.", "VssRequestContentTypeNotSupportedException",
                     "Microsoft.VisualStudio.Services.WebApi")
    project = _project(request.org, request.params["project"])
    type_name = project.work_item_type(request.params["type"])
    if type_name is None:
        raise reject(404, f"VS402323: Work item type {request.params['type']} does not exist.",
                     "WorkItemTypeNotFoundException",
                     "Microsoft.TeamFoundation.WorkItemTracking.Server.Metadata")
    document = request.json()
    if not isinstance(document, list):
        raise reject(400, "You must pass a valid patch document in the body of the request.",
                     "VssPropertyValidationException", "Microsoft.VisualStudio.Services.Common")
    fields: dict[str, Any] = {}
    relations: list[dict[str, Any]] = []
    for operation in document:
        if not isinstance(operation, dict) or operation.get("op") not in ("add", "replace", "test"):
            raise reject(400, "You must pass a valid patch document in the body of the request.",
                         "VssPropertyValidationException", "Microsoft.VisualStudio.Services.Common")
        path = str(operation.get("path", ""))
        if path.startswith("/fields/"):
            fields[path[len("/fields/"):]] = operation.get("value")
        elif path == "/relations/-":
            relations.append(_relation(state, request, operation.get("value")))
    for name in fields:
        if name not in KNOWN_FIELDS and name not in project.custom_fields:
            raise reject(400, f"TF51535: Cannot find field {name}.", "WorkItemFieldInvalidException",
                         "Microsoft.TeamFoundation.WorkItemTracking.Server")
    title = fields.get("System.Title")
    if not isinstance(title, str) or not title.strip():
        raise _rule_error("Title", "Required, InvalidEmpty")
    if len(title) > 255:
        raise _rule_error("Title", "InvalidTooLong")
    priority = fields.get("Microsoft.VSTS.Common.Priority", 2)
    if priority not in (1, 2, 3, 4) and str(priority) not in ("1", "2", "3", "4"):
        raise _rule_error("Priority", "InvalidNotInList, HasValues, AllowedValues")
    for tree_field in ("System.AreaPath", "System.IterationPath"):
        value = fields.get(tree_field, project.name)
        if not isinstance(value, str) or value.split("\\")[0].lower() != project.name.lower():
            raise reject(400, f"TF401347: Invalid tree name given for work item -1, field "
                         f"'{tree_field}'.", "WorkItemTrackingTreeNodeNotFoundException",
                         "Microsoft.TeamFoundation.WorkItemTracking.Server")
    item_id = state.next_id("work_item")
    now = time.strftime("%Y-%m-%dT%H:%M:%S.%fZ", time.gmtime())
    creator = body.identity_ref(request.base, request.token)
    stored = {
        "System.AreaPath": project.name, "System.TeamProject": project.name,
        "System.IterationPath": project.name, "System.WorkItemType": type_name,
        "System.State": "New", "System.Reason": "New", "System.CreatedDate": now,
        "System.CreatedBy": creator, "System.ChangedDate": now, "System.ChangedBy": creator,
        "Microsoft.VSTS.Common.StateChangeDate": now, "Microsoft.VSTS.Common.Priority": 2,
        **{k: v for k, v in fields.items() if v is not None}}
    if "Microsoft.VSTS.Common.Priority" in fields:
        stored["Microsoft.VSTS.Common.Priority"] = int(fields["Microsoft.VSTS.Common.Priority"])
    item = WorkItem(id=item_id, rev=1, type=type_name, fields=stored, relations=relations)
    state.work_items[item_id] = item
    return 200, body.work_item(request.base, request.org, project, item)


def _relation(state: SandboxState, request: Request, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not value.get("rel") or not value.get("url"):
        raise reject(400, "A relation needs 'rel' and 'url'.", "VssPropertyValidationException",
                     "Microsoft.VisualStudio.Services.Common")
    target = str(value["url"]).rstrip("/").rsplit("/", 1)[-1]
    if not target.isdigit() or int(target) not in state.work_items:
        raise reject(400, f"TF201036: You cannot add a link to work item {target}. The work item "
                     "does not exist or you do not have permission to access it.",
                     "WorkItemLinkTargetNotFoundException",
                     "Microsoft.TeamFoundation.WorkItemTracking.Server")
    return {"rel": value["rel"], "url": value["url"], "attributes": value.get("attributes") or {"isLocked": False}}


@router.add("GET", r"/_apis/wit/workitems/(?P<id>\d+)", "vso.work")
def get_work_item(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None
    item = state.work_items.get(int(request.params["id"]))
    if item is None:
        raise reject(404, f"TF401232: Work item {request.params['id']} does not exist, or you do "
                     "not have permissions to read it.", "WorkItemUnauthorizedAccessException",
                     "Microsoft.TeamFoundation.WorkItemTracking.Server")
    project = request.org.project(item.fields["System.TeamProject"])
    assert project is not None
    return 200, body.work_item(request.base, request.org, project, item)


@router.add("GET", "/_apis/git/repositories", "vso.code")
def list_all_repositories(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None
    values = [body.repository(request.base, request.org, project, repo)
              for project in request.org.projects for repo in project.repositories]
    return 200, {"value": values, "count": len(values)}



# --- Location discovery, as the azure-devops SDK does it before its first call ------------------

# (id, area, resource, route template, max version): the locations the SDK's clients look up
# for the jobs adobot's actions do; ids and templates as the service publishes them.
LOCATIONS = [
    ("e81700f7-3be2-46de-8624-2eb35882fcaa", "Location", "ResourceAreas",
     "_apis/{resource}/{areaId}"),
    ("225f7195-f9c7-4d14-ab28-a83f7ff77e1f", "git", "repositories",
     "{project}/_apis/{area}/{resource}/{repositoryId}"),
    ("62d3d110-0047-428c-ad3c-4fe872c91c74", "wit", "workItems",
     "{project}/_apis/{area}/{resource}/${type}"),
    ("7859261e-d2e9-4a68-b820-a5d84cc5bb3d", "pipelines", "runs",
     "{project}/_apis/pipelines/{pipelineId}/runs/{runId}"),
    ("28e1305e-2afe-47bf-abaf-cbb0e6a91988", "pipelines", "pipelines",
     "{project}/_apis/pipelines/{pipelineId}"),
]
RESOURCE_AREAS = [("4e080c62-fa21-4fbc-8fef-2a10a2b38049", "git"),
                  ("5264459e-e5e0-4bd8-b118-0985e68a4ec5", "wit")]


@router.add("OPTIONS", "/_apis")
def resource_locations(state: SandboxState, request: Request) -> tuple[int, Any]:
    values = [{"id": loc_id, "area": area, "resourceName": resource, "routeTemplate": template,
               "resourceVersion": 1, "minVersion": "1.0", "maxVersion": "7.1",
               "releasedVersion": "7.0"} for loc_id, area, resource, template in LOCATIONS]
    return 200, {"count": len(values), "value": values}


@router.add("GET", "/_apis/ResourceAreas", preview=True)
def resource_areas(state: SandboxState, request: Request) -> tuple[int, Any]:
    assert request.org is not None
    values = [{"id": area_id, "name": name, "locationUrl": request.base}
              for area_id, name in RESOURCE_AREAS]
    return 200, {"count": len(values), "value": values}
