"""Who am I, projects, and the location data the azure-devops SDK reads before its first call."""
from __future__ import annotations

from adobot.sandbox import errors
from adobot.sandbox import responses as body
from adobot.sandbox.routing import Answer, Call, Router

router = Router()
# Projects - List and Get name both (either will do): "vso.profile" also reads projects.
PROJECT = ("vso.profile", "vso.project")


@router.route("GET", "/_apis/connectionData", preview=True)
def connection_data(call: Call) -> Answer:
    return 200, body.connection_data(call.org, call.token)


@router.route("GET", "/_apis/identities", "vso.identity")
def read_identities(call: Call) -> Answer:
    """Identities by e-mail or display name (``searchFilter=General``), as vssps.dev.azure.com
    answers them; the sandbox knows the users of its tokens."""
    if call.query.get("searchFilter", "").lower() != "general" or not call.query.get("filterValue"):
        raise errors.invalid_argument("searchFilter=General and a filterValue are required.")
    wanted = call.query["filterValue"].lower()
    seen: dict[str, object] = {}
    for token in call.state.tokens.values():
        if wanted in (token.email.lower(), token.user.lower()) and token.user_id not in seen:
            seen[token.user_id] = body.identity(token)
    return 200, {"count": len(seen), "value": list(seen.values())}


@router.route("GET", "/_apis/projects", *PROJECT)
def list_projects(call: Call) -> Answer:
    values = [body.project_ref(call.base, p) for p in call.org.projects]
    return 200, {"count": len(values), "value": values}


@router.route("GET", "/_apis/projects/(?P<project>[^/]+)", *PROJECT)
def get_project(call: Call) -> Answer:
    project = call.org.project(call.params["project"])
    if project is None:
        raise errors.project_not_found(call.params["project"])
    return 200, body.project_full(call.base, call.org, project)


# (id, area, resource, route template, releasedVersion): every location a route of the sandbox
# answers, as the service publishes them, so Microsoft's SDK finds each of its clients' routes.
LOCATIONS = [
    ("e81700f7-3be2-46de-8624-2eb35882fcaa", "Location", "ResourceAreas",
     "_apis/{resource}/{areaId}", "7.0"),
    ("603fe2ac-9723-48b9-88ad-09305aa6c6e1", "core", "projects", "_apis/{resource}/{*projectId}",
     "7.0"),
    ("225f7195-f9c7-4d14-ab28-a83f7ff77e1f", "git", "repositories",
     "{project}/_apis/{area}/{resource}/{repositoryId}", "7.0"),
    ("2d874a60-a811-4f62-9c9f-963a6ea0a55b", "git", "refs",
     "{project}/_apis/{area}/repositories/{repositoryId}/{resource}/{*filter}", "7.0"),
    ("fb93c0db-47ed-4a31-8c20-47552878fb44", "git", "items",
     "{project}/_apis/{area}/repositories/{repositoryId}/{resource}/{*path}", "7.0"),
    ("ea98d07b-3c87-4971-8ede-a613694ffb55", "git", "pushes",
     "{project}/_apis/{area}/repositories/{repositoryId}/{resource}/{pushId}", "7.0"),
    ("28e1305e-2afe-47bf-abaf-cbb0e6a91988", "pipelines", "pipelines",
     "{project}/_apis/pipelines/{pipelineId}", "7.0"),
    ("7859261e-d2e9-4a68-b820-a5d84cc5bb3d", "pipelines", "runs",
     "{project}/_apis/pipelines/{pipelineId}/runs/{runId}", "7.0"),
    ("7c8d7a76-4a09-43e8-b5df-bd792f4ac6aa", "wit", "workItemTypes",
     "{project}/_apis/{area}/{resource}/{type}", "7.0"),
    ("62d3d110-0047-428c-ad3c-4fe872c91c74", "wit", "workItems",
     "{project}/_apis/{area}/{resource}/${type}", "7.0"),
    ("72c7ddf8-2cdc-4f60-90cd-ab71c14a399b", "wit", "workItems",
     "{project}/_apis/{area}/{resource}/{id}", "7.0"),
    ("c2570c3b-5b3f-41b8-98bf-5407bfde8d58", "git", "commits",
     "{project}/_apis/{area}/repositories/{repositoryId}/{resource}/{commitId}", "7.0"),
    ("9946fd70-0d40-406e-b686-b4744cbbcc37", "git", "pullRequests",
     "{project}/_apis/{area}/repositories/{repositoryId}/{resource}/{pullRequestId}", "7.0"),
    ("288d122c-dbd4-451d-aa5f-7dbbba070728", "wiki", "wikis",
     "{project}/_apis/{area}/{resource}/{wikiIdentifier}", "7.0"),
    ("25d3fbc7-fe3d-46cb-b5a5-0b6f79caf27b", "wiki", "pages",
     "{project}/_apis/{area}/wikis/{wikiIdentifier}/{resource}", "7.0"),
    ("1a9c53f7-f243-4447-b110-35ef023636e4", "wit", "wiql",
     "{project}/{team}/_apis/{area}/{resource}/{id}", "7.0"),
    ("908509b6-4248-4475-a1cd-829139ba419f", "wit", "workItemsBatch",
     "{project}/_apis/{area}/{resource}", "7.0"),
]
# The resource areas of the SDK clients for these routes: core, git, work item tracking
# (the pipelines client has none: it uses the organization's URL).
RESOURCE_AREAS = [("79134c72-4a58-4b42-976c-04e7115f32bf", "core"),
                  ("4e080c62-fa21-4fbc-8fef-2a10a2b38049", "git"),
                  ("5264459e-e5e0-4bd8-b118-0985e68a4ec5", "wit"),
                  ("bf7d82a0-8aa5-4613-94ef-6172a5ea01f3", "wiki")]


@router.route("OPTIONS", "/_apis")
def resource_locations(call: Call) -> Answer:
    values = [{"id": loc_id, "area": area, "resourceName": resource, "routeTemplate": template,
               "resourceVersion": 1, "minVersion": "1.0", "maxVersion": "7.1",
               "releasedVersion": released}
              for loc_id, area, resource, template, released in LOCATIONS]
    return 200, {"count": len(values), "value": values}


@router.route("GET", "/_apis/ResourceAreas", preview=True)
def resource_areas(call: Call) -> Answer:
    values = [{"id": area_id, "name": name, "locationUrl": call.base}
              for area_id, name in RESOURCE_AREAS]
    return 200, {"count": len(values), "value": values}
