"""Pipelines (list with continuation tokens, get, create) and their runs (queue, get)."""
from __future__ import annotations

import time
from typing import Any

import yaml

from adobot.sandbox import errors
from adobot.sandbox import responses as body
from adobot.sandbox.routing import Answer, ProjectCall, Router
from adobot.sandbox.state import Pipeline, Project, Run

router = Router()
# The Pipelines API came with Server 2020 (6.0) as a preview; it is general from 7.0.
SINCE, PREVIEW_BEFORE = (6, 0), (7, 0)
BUILD = "vso.build"
BUILD_EXECUTE = "vso.build_execute"
PIPELINES = "/_apis/pipelines"
MAX_TOP = 10000


@router.route("GET", PIPELINES, BUILD, project=True,
              since=SINCE, preview_before=PREVIEW_BEFORE)
def list_pipelines(call: ProjectCall) -> Answer:
    ordered = call.project.pipelines  # kept in (name, id) order as they are added
    try:
        top = min(int(call.query.get("$top", MAX_TOP)), MAX_TOP)
        start = int(call.query.get("continuationToken") or 0)
    except ValueError:
        raise errors.invalid_argument("The value of $top or continuationToken is not valid.") \
            from None
    page = ordered[start:start + max(top, 1)]
    values = [body.pipeline_listed(call.base, call.project, p) for p in page]
    headers = {}
    if start + len(page) < len(ordered):  # the header appears only when more rows exist
        headers["x-ms-continuationtoken"] = str(start + len(page))
    return 200, {"count": len(values), "value": values}, headers


@router.route("POST", PIPELINES, BUILD_EXECUTE, project=True,
              since=SINCE, preview_before=PREVIEW_BEFORE)
def create_pipeline(call: ProjectCall) -> Answer:
    project = call.project
    payload = call.json_object()
    config = payload.get("configuration") or {}
    if config.get("type") != "yaml":
        raise errors.unsupported_configuration(config.get("type") or "Unknown")
    for key, value in (("Path", config.get("path")), ("Repository", config.get("repository")),
                       ("Name", payload.get("name"))):
        if not value:
            raise errors.argument_null(key)
    repo_id = str(config["repository"].get("id", ""))
    repo = project.repository(repo_id)
    if repo is None or repo.id != repo_id.lower():
        raise errors.repository_not_found(repo_id)
    folder = "\\" + "\\".join(p for p in str(payload.get("folder") or "\\").replace("/", "\\").split("\\") if p)
    name = str(payload["name"])
    if any(p.name.lower() == name.lower() and p.folder.lower() == folder.lower()
           for p in project.pipelines):
        raise errors.pipeline_exists(name, project.name)
    created = Pipeline(id=call.state.next_id("pipeline"), name=name, folder=folder,
                       repository_id=repo.id, path=str(config["path"]))
    project.add_pipeline(created)
    return 200, body.pipeline(call.base, project, created)


def _pipeline(project: Project, raw_id: str) -> Pipeline:
    found = project.pipeline(int(raw_id)) if raw_id.isdigit() else None
    if found is None:
        raise errors.pipeline_not_found(raw_id)
    return found


@router.route("GET", PIPELINES + "/(?P<pipeline>[^/]+)", BUILD, project=True,
              since=SINCE, preview_before=PREVIEW_BEFORE)
def get_pipeline(call: ProjectCall) -> Answer:
    return 200, body.pipeline(call.base, call.project,
                              _pipeline(call.project, call.params["pipeline"]))


@router.route("POST", PIPELINES + "/(?P<pipeline>[^/]+)/runs", BUILD_EXECUTE, project=True,
              since=SINCE, preview_before=PREVIEW_BEFORE)
def run_pipeline(call: ProjectCall) -> Answer:
    pipeline = _pipeline(call.project, call.params["pipeline"])
    payload = call.json_object(required_as="runParameters")
    repo = call.project.repository(pipeline.repository_id)
    assert repo is not None  # a pipeline's repository is never deleted in the sandbox
    ref = ((payload.get("resources") or {}).get("repositories") or {}).get("self", {}).get(
        "refName") or repo.default_branch
    tip = repo.tip(str(ref)) if ref else None
    if tip is None:  # no such branch, or an empty repository (no default branch)
        raise errors.pipeline_validation(
            f"Unable to resolve the reference '{ref or ''}' to a specific version. Verify the "
            "reference exists in the source repository.")
    definition = tip.files.get("/" + pipeline.path.lstrip("/"))
    if definition is None:
        raise errors.pipeline_validation(
            f"File /{pipeline.path.lstrip('/')} not found in repository {repo.name} branch "
            f"{ref} version {tip.id}.")
    parameters = payload.get("templateParameters") or {}
    _check_parameters(pipeline, definition, parameters)
    variables = payload.get("variables") or {}
    for name, value in variables.items():
        if not isinstance(value, dict) or "value" not in value:
            raise errors.invalid_argument(f"Variable '{name}' must be an object with a 'value'.")
    pipeline.runs += 1
    now = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
    created = Run(id=call.state.next_id("run"),
                  name=f"{time.strftime('%Y%m%d', time.gmtime())}.{pipeline.runs}",
                  pipeline=pipeline, ref_name=str(ref), version=tip.id, created=now,
                  template_parameters=dict(parameters), variables=dict(variables))
    if pipeline.run_polls == 0:
        _complete(created)
    call.state.runs[created.id] = created
    return 200, body.run(call.base, call.project, created)


def _check_parameters(pipeline: Pipeline, definition: bytes, given: Any) -> None:
    """Template parameters: a map of string to string (the spec), each declared by the YAML."""
    where = f"/{pipeline.path.lstrip('/')}"
    if not isinstance(given, dict):
        raise errors.invalid_argument("templateParameters must be a map of names to strings.")
    for name, value in given.items():
        if not isinstance(value, str):
            raise errors.invalid_argument(
                f"The value of template parameter '{name}' must be a string, not "
                f"{type(value).__name__}.")
    try:
        document = yaml.safe_load(definition.decode("utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise errors.pipeline_validation(f"{where}: {exc}") from None
    declared = {str(p.get("name")): p for p in (document.get("parameters") or [])
                if isinstance(p, dict)} if isinstance(document, dict) else {}
    for name, value in given.items():
        if name not in declared:
            raise errors.pipeline_validation(f"{where}: Unexpected parameter '{name}'")
        allowed = declared[name].get("values")
        if isinstance(allowed, list) and value not in [str(v) for v in allowed]:
            raise errors.pipeline_validation(
                f"{where}: The '{name}' parameter value '{value}' is not a valid value.")


def _complete(item: Run) -> None:
    item.state, item.result = "completed", item.pipeline.run_result
    item.finished = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())


@router.route("GET", PIPELINES + "/(?P<pipeline>[^/]+)/runs", BUILD, project=True,
              since=SINCE, preview_before=PREVIEW_BEFORE)
def list_runs(call: ProjectCall) -> Answer:
    """The pipeline's runs, newest first (the service's order), at most 10,000."""
    pipeline = _pipeline(call.project, call.params["pipeline"])
    runs = sorted((r for r in call.state.runs.values() if r.pipeline is pipeline),
                  key=lambda r: r.id, reverse=True)[:MAX_TOP]
    values = [body.run(call.base, call.project, r) for r in runs]
    return 200, {"count": len(values), "value": values}


@router.route("GET", PIPELINES + "/(?P<pipeline>[^/]+)/runs/(?P<run>[^/]+)", BUILD, project=True,
              since=SINCE, preview_before=PREVIEW_BEFORE)
def get_run(call: ProjectCall) -> Answer:
    pipeline = _pipeline(call.project, call.params["pipeline"])
    raw = call.params["run"]
    item = call.state.runs.get(int(raw)) if raw.isdigit() else None
    if item is None or item.pipeline is not pipeline:
        raise errors.run_not_found(raw)
    if item.state != "completed":
        item.polls += 1  # runs move on with each look, so tests need no clock
        if 0 <= pipeline.run_polls <= item.polls:
            _complete(item)
    return 200, body.run(call.base, call.project, item)
