"""JSON shapes of the service's answers, as in the captured examples of ../shared/ado-rest."""
from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from adobot.sandbox import errors
from adobot.sandbox.state import (
    Commit,
    Organization,
    Pipeline,
    Project,
    PullRequest,
    Repository,
    Run,
    Token,
    WorkItem,
    stable_id,
)

LAST_UPDATE = "2026-01-05T09:30:00.000Z"


def timestamp() -> str:
    """Now, as work item dates are written: ``2017-10-06T01:04:51.57Z`` (fraction trimmed)."""
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + (f"{now.microsecond // 1000:03d}".rstrip("0")
                                                  or "0") + "Z"


def project_ref(base: str, project: Project) -> dict[str, Any]:
    data = {"id": project.id, "name": project.name, "url": f"{base}/_apis/projects/{project.id}",
            "state": "wellFormed", "revision": project.revision, "visibility": "private",
            "lastUpdateTime": LAST_UPDATE}
    if project.description:
        data["description"] = project.description
    return data


def project_full(base: str, org: Organization, project: Project) -> dict[str, Any]:
    data = project_ref(base, project)
    data["_links"] = {
        "self": {"href": f"{base}/_apis/projects/{project.id}"},
        "collection": {"href": f"{base}/_apis/projectCollections/{org.id}"},
        "web": {"href": f"{base}/{quote(project.name)}"},
    }
    team_id = f"{project.id[:-4]}7eam"
    data["defaultTeam"] = {"id": team_id, "name": f"{project.name} Team",
                           "url": f"{base}/_apis/projects/{project.id}/teams/{team_id}"}
    return data


def repository(base: str, org: Organization, project: Project, repo: Repository,
               links: bool = False) -> dict[str, Any]:
    web = f"{base}/{quote(project.name)}/_git/{quote(repo.name)}"
    data: dict[str, Any] = {
        "id": repo.id, "name": repo.name, "url": f"{base}/_apis/git/repositories/{repo.id}",
        "project": {"id": project.id, "name": project.name,
                    "url": f"{base}/_apis/projects/{project.id}", "state": "wellFormed",
                    "revision": project.revision, "visibility": "private",
                    "lastUpdateTime": LAST_UPDATE},
    }
    if repo.default_branch:  # an empty repository has no default branch
        data["defaultBranch"] = repo.default_branch
    data.update({"size": repo.size, "remoteUrl": web,
                 "sshUrl": f"git@ssh.dev.azure.com:v3/{quote(org.name)}/{quote(project.name)}/"
                           f"{quote(repo.name)}",
                 "webUrl": web, "isDisabled": False, "isInMaintenance": False})
    if links:
        api = f"{base}/_apis/git/repositories/{repo.id}"
        data["_links"] = {
            "self": {"href": api},
            "project": {"href": f"vstfs:///Classification/TeamProject/{project.id}"},
            "web": {"href": web},
            **{name: {"href": f"{api}/{name}"}
               for name in ("commits", "refs", "pullRequests", "items", "pushes")},
        }
    return data


def ref(base: str, project: Project, repo: Repository, name: str,
        commit_id: str) -> dict[str, Any]:
    tip = repo.commits[commit_id]  # the sandbox names the tip's author as the ref's creator
    return {"name": name, "objectId": commit_id,
            "creator": person(base, tip.author, tip.email),
            "url": f"{base}/{project.id}/_apis/git/repositories/{repo.id}/refs?filter="
                   f"{quote(name.removeprefix('refs/'), safe='')}"}


def item(base: str, project: Project, repo: Repository, commit: Commit, path: str,
         folder: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "objectId": stable_id("object", commit.id, path).replace("-", "")[:40],
        "gitObjectType": "tree" if folder else "blob", "commitId": commit.id, "path": path,
        "url": f"{base}/{project.id}/_apis/git/repositories/{repo.id}/items?path="
               f"{quote(path, safe='')}&versionType=Commit&version={commit.id}"}
    if folder:
        data["isFolder"] = True
    return data


def _git_user(commit: Commit) -> dict[str, str]:
    return {"name": commit.author, "email": commit.email, "date": commit.date}


def push(base: str, org: Organization, project: Project, repo: Repository, token: Token,
         commit: Commit, ref_name: str, old: str, push_id: int) -> dict[str, Any]:
    api = f"{base}/_apis/git/repositories/{repo.id}"
    return {
        "commits": [{"treeId": stable_id("tree", commit.id).replace("-", "")[:40],
                     "commitId": commit.id, "author": _git_user(commit),
                     "committer": _git_user(commit), "comment": commit.comment,
                     "parents": commit.parents, "url": f"{api}/commits/{commit.id}"}],
        "refUpdates": [{"repositoryId": repo.id, "name": ref_name, "oldObjectId": old,
                        "newObjectId": commit.id}],
        "repository": repository(base, org, project, repo),
        "pushedBy": identity_ref(base, token),
        "pushId": push_id, "date": commit.date, "url": f"{api}/pushes/{push_id}",
        "_links": {"self": {"href": f"{api}/pushes/{push_id}"}, "repository": {"href": api},
                   "commits": {"href": f"{api}/pushes/{push_id}/commits"},
                   "pusher": {"href": f"{base}/_apis/Identities/{token.user_id}"},
                   "refs": {"href": f"{api}/refs/{ref_name}"}},
    }


def identity(token: Token) -> dict[str, Any]:
    return {
        "id": token.user_id,
        "descriptor": f"Microsoft.IdentityModel.Claims.ClaimsIdentity;sandbox\\{token.email}",
        "subjectDescriptor": f"aad.{token.user_id.replace('-', '')}",
        "providerDisplayName": token.user,
        "isActive": True,
        "properties": {"Account": {"$type": "System.String", "$value": token.email}},
        "resourceVersion": 2,
        "metaTypeId": 0,
    }


def connection_data(org: Organization, token: Token) -> dict[str, Any]:
    user = identity(token)
    return {
        "authenticatedUser": user, "authorizedUser": user, "instanceId": org.id,
        "deploymentId": org.id,
        "deploymentType": "onPremises" if org.server_version else "hosted",
        "locationServiceData": {"serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
                                "defaultAccessMappingMoniker": "PublicAccessMapping",
                                "lastChangeId": 1, "lastChangeId64": 1},
    }


SIGN_IN_PAGE = ("<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head>"
                "<body><p>Sign in to continue to Azure DevOps.</p></body></html>")


def pipeline(base: str, project: Project, item: Pipeline) -> dict[str, Any]:
    api = f"{base}/{project.id}/_apis/pipelines/{item.id}?revision={item.revision}"
    return {
        "_links": {"self": {"href": api},
                   "web": {"href": f"{base}/{quote(project.name)}/_build/definition?definitionId={item.id}"}},
        "configuration": {"path": item.path,
                          "repository": {"id": item.repository_id, "type": "azureReposGit"},
                          "type": "yaml"},
        "url": api, "id": item.id, "revision": item.revision, "name": item.name,
        "folder": item.folder,
    }


def pipeline_ref(base: str, project: Project, item: Pipeline) -> dict[str, Any]:
    return {"url": f"{base}/{project.id}/_apis/pipelines/{item.id}?revision={item.revision}",
            "id": item.id, "revision": item.revision, "name": item.name, "folder": item.folder}


def pipeline_listed(base: str, project: Project, item: Pipeline) -> dict[str, Any]:
    data = pipeline(base, project, item)
    del data["configuration"]  # the list leaves the configuration out
    return data


def run(base: str, project: Project, item: Run) -> dict[str, Any]:
    api = f"{base}/{project.id}/_apis/pipelines/{item.pipeline.id}/runs/{item.id}"
    web = f"{base}/{quote(project.name)}/_build/results?buildId={item.id}"
    data: dict[str, Any] = {
        "_links": {"self": {"href": api}, "web": {"href": web},
                   "pipeline.web": {"href": f"{base}/{quote(project.name)}/_build/definition?definitionId={item.pipeline.id}"},
                   "pipeline": {"href": f"{base}/{project.id}/_apis/pipelines/{item.pipeline.id}?revision={item.pipeline.revision}"}},
        "pipeline": pipeline_ref(base, project, item.pipeline),
        "state": item.state,
        "createdDate": item.created,
        "url": api,
        "resources": {"repositories": {"self": {
            "repository": {"id": item.pipeline.repository_id, "type": "azureReposGit"},
            "refName": item.ref_name,
            "version": item.version}}},
        "id": item.id,
        "name": item.name,
    }
    if item.template_parameters:
        data["templateParameters"] = item.template_parameters
    if item.result is not None:
        data["result"] = item.result
        data["finishedDate"] = item.finished
    return data


def identity_ref(base: str, token: Token) -> dict[str, Any]:
    return person(base, token.user, token.email)


def person(base: str, name: str, email: str) -> dict[str, Any]:
    """An IdentityRef: who created, changed or pushed something."""
    user_id = stable_id("user", email)
    return {"displayName": name, "url": f"{base}/_apis/Identities/{user_id}",
            "_links": {"avatar": {"href": f"{base}/_apis/GraphProfile/MemberAvatars/aad.{user_id}"}},
            "id": user_id, "uniqueName": email,
            "imageUrl": f"{base}/_api/_common/identityImage?id={user_id}",
            "descriptor": f"aad.{user_id.replace('-', '')}"}


def work_item(base: str, org: Organization, project: Project, item: WorkItem) -> dict[str, Any]:
    api = f"{base}/_apis/wit/workItems/{item.id}"
    data: dict[str, Any] = {"id": item.id, "rev": item.rev, "fields": item.fields}
    if item.relations:
        data["relations"] = item.relations
    data["_links"] = {
        "self": {"href": api}, "workItemUpdates": {"href": f"{api}/updates"},
        "workItemRevisions": {"href": f"{api}/revisions"},
        "workItemHistory": {"href": f"{api}/history"},
        "html": {"href": f"{base}/web/wi.aspx?pcguid={org.id}&id={item.id}"},
        "workItemType": {"href": f"{base}/{project.id}/_apis/wit/workItemTypes/{quote(item.type)}"},
        "fields": {"href": f"{base}/_apis/wit/fields"},
    }
    data["url"] = api
    return data


def work_item_type(base: str, project: Project, name: str) -> dict[str, Any]:
    return {"name": name, "referenceName": f"Microsoft.VSTS.WorkItemTypes.{name.replace(' ', '')}",
            "description": f"{name} work item", "color": "009CCC",
            "icon": {"id": "icon_clipboard", "url": f"{base}/_apis/wit/workItemIcons/icon_clipboard"},
            "isDisabled": False, "xmlForm": "<FORM/>", "fields": [], "fieldInstances": [],
            "transitions": {}, "url": f"{base}/{project.id}/_apis/wit/workItemTypes/{quote(name)}"}


def fault_answer(fault) -> tuple[int, Any, dict[str, str]]:
    """The answer an injected fault gives instead of the route's."""
    if fault.kind == "signin":
        return 203, SIGN_IN_PAGE, {}
    if fault.kind == "throttle":
        headers = {"X-RateLimit-Resource": "Core", "X-RateLimit-Limit": "200",
                   "X-RateLimit-Remaining": "0", "X-RateLimit-Delay": "0"}
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        return 429, errors.throttled(), headers
    headers = {"Retry-After": fault.retry_after} if fault.status == 503 and fault.retry_after else {}
    return fault.status, errors.unavailable(fault.id), headers


def commit(base: str, project: Project, repo: Repository, item: Commit) -> dict[str, Any]:
    """A commit as the commits list gives it, with the counts of its changes."""
    before = repo.commits[item.parents[0]].files if item.parents else {}
    counts = {"Add": sum(1 for p in item.files if p not in before),
              "Edit": sum(1 for p in item.files if p in before and before[p] != item.files[p]),
              "Delete": sum(1 for p in before if p not in item.files)}
    return {"commitId": item.id, "author": _git_user(item), "committer": _git_user(item),
            "comment": item.comment, "changeCounts": counts,
            "url": f"{base}/{project.id}/_apis/git/repositories/{repo.id}/commits/{item.id}",
            "remoteUrl": f"{base}/{quote(project.name)}/_git/{quote(repo.name)}/commit/{item.id}"}


def content_metadata(path: str, binary: bool) -> dict[str, Any]:
    name = path.rsplit("/", 1)[-1]
    extension = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    data: dict[str, Any] = {"encoding": 65001 if not binary else 0, "fileName": name,
                            "extension": extension}
    if binary:
        data["isBinary"] = True
        data["contentType"] = "application/octet-stream"
    else:
        data["contentType"] = "text/plain"
    return data


def pull_request(base: str, org: Organization, project: Project, item: PullRequest
                 ) -> dict[str, Any]:
    repo = item.repository
    api = f"{base}/{project.id}/_apis/git/repositories/{repo.id}"
    reviewers = [{"reviewerUrl": f"{api}/pullRequests/{item.id}/reviewers/{r}", "vote": 0,
                  "hasDeclined": False, "isFlagged": False, "id": r,
                  "url": f"{base}/_apis/Identities/{r}"} for r in item.reviewers]
    return {
        "repository": repository(base, org, project, repo),
        "pullRequestId": item.id, "codeReviewId": item.id, "status": item.status,
        "createdBy": identity_ref(base, item.created_by), "creationDate": item.created,
        "title": item.title, "description": item.description,
        "sourceRefName": item.source, "targetRefName": item.target,
        "mergeStatus": "queued", "isDraft": item.is_draft,
        "mergeId": stable_id("merge", str(item.id), repo.id),
        "lastMergeSourceCommit": {"commitId": item.source_commit,
                                  "url": f"{api}/commits/{item.source_commit}"},
        "lastMergeTargetCommit": {"commitId": item.target_commit,
                                  "url": f"{api}/commits/{item.target_commit}"},
        "reviewers": reviewers, "url": f"{api}/pullRequests/{item.id}",
        "supportsIterations": True,
        "artifactId": f"vstfs:///Git/PullRequestId/{project.id}%2f{repo.id}%2f{item.id}",
    }
