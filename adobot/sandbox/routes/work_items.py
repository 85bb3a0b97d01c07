"""Work item types (list), work items (create and update with JSON Patch, get, read in
batches) and WIQL queries."""
from __future__ import annotations

from typing import Any

from adobot.sandbox import errors, wiql
from adobot.sandbox import responses as body
from adobot.sandbox.routing import Answer, Call, ProjectCall, Router
from adobot.sandbox.state import KNOWN_FIELDS, Project, WorkItem

# Fields the service sets itself: present on every item, refused in a create by name only if
# unknown, so an update that reads them back may carry them.
SYSTEM_FIELDS = {"System.TeamProject", "System.WorkItemType", "System.CreatedDate",
                 "System.CreatedBy", "System.ChangedDate", "System.ChangedBy",
                 "Microsoft.VSTS.Common.StateChangeDate"}

router = Router()
WORK = "vso.work"
WORK_WRITE = "vso.work_write"
JSON_PATCH = "application/json-patch+json"


@router.route("GET", "/_apis/wit/workitemtypes", WORK, project=True)
def list_work_item_types(call: ProjectCall) -> Answer:
    values = [body.work_item_type(call.base, call.project, t)
              for t in call.project.work_item_types]
    return 200, {"count": len(values), "value": values}


@router.route("POST", r"/_apis/wit/workitems/\$(?P<type>[^/]+)", WORK_WRITE, project=True,
              content_type=JSON_PATCH)
def create_work_item(call: ProjectCall) -> Answer:
    project = call.project
    type_name = project.work_item_type(call.params["type"])
    if type_name is None:
        raise errors.work_item_type_not_found(call.params["type"])
    fields, relations = _read_patch(call, call.json())
    _check_fields(project, fields)
    item_id = call.state.next_id("work_item")
    now = body.timestamp()
    creator = body.identity_ref(call.base, call.token)
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
    call.state.work_items[item_id] = item
    return 200, body.work_item(call.base, call.org, project, item)


def _read_patch(call: Call, document: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The fields and relations a JSON Patch document adds."""
    if not isinstance(document, list):
        raise errors.invalid_patch_document()
    fields: dict[str, Any] = {}
    relations: list[dict[str, Any]] = []
    for operation in document:
        if not isinstance(operation, dict) or operation.get("op") not in ("add", "replace", "test"):
            raise errors.invalid_patch_document()
        path = str(operation.get("path", ""))
        if path.startswith("/fields/"):
            fields[path[len("/fields/"):]] = operation.get("value")
        elif path == "/relations/-":
            relations.append(_relation(call, operation.get("value")))
    return fields, relations


def _check_fields(project: Project, fields: dict[str, Any],
                  changed: set[str] | None = None) -> None:
    """The project's rules: known fields, a title, a priority in its list, paths of the project.
    ``changed`` names the fields an update sets (the others were checked when they were set)."""
    for name in fields if changed is None else changed:
        if name not in KNOWN_FIELDS and name not in project.custom_fields \
                and name not in SYSTEM_FIELDS:
            raise errors.field_not_found(name)
    title = fields.get("System.Title")
    if not isinstance(title, str) or not title.strip():
        raise errors.rule_error("Title", "Required, InvalidEmpty")
    if len(title) > 255:
        raise errors.rule_error("Title", "InvalidTooLong")
    priority = fields.get("Microsoft.VSTS.Common.Priority", 2)
    if priority not in (1, 2, 3, 4) and str(priority) not in ("1", "2", "3", "4"):
        raise errors.rule_error("Priority", "InvalidNotInList, HasValues, AllowedValues")
    for tree_field, tree in (("System.AreaPath", "area"), ("System.IterationPath", "iteration")):
        value = fields.get(tree_field, project.name)
        if not isinstance(value, str) or not project.has_node(tree, value):
            raise errors.tree_node_not_found(tree_field)


def _relation(call: Call, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not value.get("rel") or not value.get("url"):
        raise errors.invalid_relation()
    if value["rel"] == "ArtifactLink":
        _check_artifact(call, str(value["url"]))
        return {"rel": value["rel"], "url": value["url"],
                "attributes": value.get("attributes") or {}}
    target = str(value["url"]).rstrip("/").rsplit("/", 1)[-1]
    if not target.isdigit() or int(target) not in call.state.work_items:
        raise errors.link_target_not_found(target)
    return {"rel": value["rel"], "url": value["url"],
            "attributes": value.get("attributes") or {"isLocked": False}}


def _check_artifact(call: Call, url: str) -> None:
    """A link to a pull request or a commit: vstfs:///Git/PullRequestId/{project}%2F{repo}%2F{id}
    or vstfs:///Git/Commit/{project}%2F{repo}%2F{commit}; what it names must exist."""
    kind, _, key = url.removeprefix("vstfs:///Git/").partition("/")
    parts = key.replace("%2f", "%2F").split("%2F")
    project = call.org.project(parts[0]) if len(parts) == 3 else None
    repo = project.repository(parts[1]) if project else None
    found = repo is not None and (
        (kind == "PullRequestId" and parts[2].isdigit()
         and int(parts[2]) in call.state.pull_requests
         and call.state.pull_requests[int(parts[2])].repository is repo)
        or (kind == "Commit" and parts[2].lower() in repo.commits))
    if not url.startswith("vstfs:///Git/") or not found:
        raise errors.artifact_link_invalid(url)


WORK_ITEM = r"/_apis/wit/workitems/(?P<id>\d+)"


def _work_item(call: Call) -> WorkItem:
    """The work item of the route: of the route's project, if the route names one."""
    item = call.state.work_items.get(int(call.params["id"]))
    if item is None or (isinstance(call, ProjectCall) and
                        item.fields["System.TeamProject"].lower() != call.project.name.lower()):
        raise errors.work_item_not_found(call.params["id"])
    return item


def _answer(call: Call, item: WorkItem) -> Answer:
    project = call.org.project(item.fields["System.TeamProject"])
    assert project is not None
    return 200, body.work_item(call.base, call.org, project, item)


@router.route("GET", WORK_ITEM, WORK)
@router.route("GET", WORK_ITEM, WORK, project=True)
def get_work_item(call: Call) -> Answer:
    return _answer(call, _work_item(call))


@router.route("PATCH", WORK_ITEM, WORK_WRITE, content_type=JSON_PATCH)
@router.route("PATCH", WORK_ITEM, WORK_WRITE, project=True, content_type=JSON_PATCH)
def update_work_item(call: Call) -> Answer:
    """Apply a JSON Patch document: fields added, replaced or removed, relations added."""
    item = _work_item(call)
    project = call.org.project(item.fields["System.TeamProject"])
    assert project is not None
    document = call.json()
    if not isinstance(document, list) or not document:
        raise errors.invalid_patch_document()
    for op in document:  # a guard on the revision read: refused if the item moved on
        if isinstance(op, dict) and op.get("op") == "test" and op.get("path") == "/rev" \
                and op.get("value") != item.rev:
            raise errors.revision_mismatch()
    removed = [str(op.get("path", ""))[len("/fields/"):] for op in document
               if isinstance(op, dict) and op.get("op") == "remove"
               and str(op.get("path", "")).startswith("/fields/")]
    fields, relations = _read_patch(call, [op for op in document
                                           if not (isinstance(op, dict) and op.get("op") == "remove")])
    merged = {**{k: v for k, v in item.fields.items() if k not in removed}, **fields}
    _check_fields(project, merged, changed=set(fields) | set(removed))
    now = body.timestamp()
    editor = body.identity_ref(call.base, call.token)
    item.fields = {**merged, "System.ChangedDate": now, "System.ChangedBy": editor}
    item.relations += relations
    item.rev += 1
    return _answer(call, item)


# Fields every query may name, beside the project's: what the service sets itself.
QUERYABLE = KNOWN_FIELDS | SYSTEM_FIELDS | {"System.Id", "System.Rev", "System.State"}


def _value(item: WorkItem, name: str) -> Any:
    if name == "System.Id":
        return item.id
    if name == "System.Rev":
        return item.rev
    return item.fields.get(name)


@router.route("POST", "/_apis/wit/wiql", WORK, project=True)
@router.route("POST", "/(?P<team>[^/_][^/]*)/_apis/wit/wiql", WORK, project=True)
def query_by_wiql(call: ProjectCall) -> Answer:
    """A flat WIQL query: the ids of the matching items (no fields), in the query's order.
    More matches than the limit (20,000) are refused, unless ``$top`` asks for no more."""
    query_text = call.json_object(required_as="wiql").get("query")
    query = wiql.parse(query_text, {"project": call.project.name, "me": call.token.email},
                       _value)
    for name in query.referenced:
        if name not in QUERYABLE and name not in call.project.custom_fields:
            raise errors.wiql_field_not_found(name)
    raw_top = call.query.get("$top")
    if raw_top is not None and not raw_top.isdigit():
        raise errors.invalid_argument(f"The value '{raw_top}' is not valid for $top.")
    top = int(raw_top) if raw_top else None
    matched = [item for item in sorted(call.state.work_items.values(), key=lambda w: w.id)
               if query.where(item)]
    if len(matched) > call.state.wiql_limit and (top is None or top > call.state.wiql_limit):
        raise errors.wiql_too_many(call.state.wiql_limit)
    for name, descending in reversed(query.order):
        matched.sort(key=lambda w: (_value(w, name) is None, str(_value(w, name) or "")
                                    if not isinstance(_value(w, name), (int, float))
                                    else _value(w, name)), reverse=descending)
    if top is not None:
        matched = matched[:top]
    api = f"{call.base}/_apis/wit/fields"
    return 200, {
        "queryType": "flat", "queryResultType": "workItem", "asOf": body.timestamp(),
        "columns": [{"referenceName": f, "name": f.rsplit(".", 1)[-1], "url": f"{api}/{f}"}
                    for f in query.fields],
        "sortColumns": [{"field": {"referenceName": f, "name": f.rsplit(".", 1)[-1],
                                   "url": f"{api}/{f}"}, "descending": d}
                        for f, d in query.order],
        "workItems": [{"id": w.id, "url": f"{call.base}/_apis/wit/workItems/{w.id}"}
                      for w in matched]}


BATCH_LIMIT = 200


@router.route("POST", "/_apis/wit/workitemsbatch", WORK, project=True)
@router.route("POST", "/_apis/wit/workitemsbatch", WORK)
def get_work_items_batch(call: Call) -> Answer:
    """Up to 200 work items by id, with the fields asked (all without ``fields``)."""
    payload = call.json_object(required_as="workItemGetRequest")
    ids, wanted = payload.get("ids"), payload.get("fields")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
        raise errors.argument_null("ids")
    if len(ids) > BATCH_LIMIT:
        raise errors.batch_too_large(BATCH_LIMIT)
    if wanted is not None and payload.get("$expand") not in (None, "none", "None"):
        raise errors.invalid_argument("The expand parameter can not be used with the fields "
                                      "parameter.")
    omit = str(payload.get("errorPolicy", "fail")).lower() == "omit"
    values: list[Any] = []
    for item_id in ids:
        item = call.state.work_items.get(item_id)
        if item is None:
            if omit:
                values.append(None)
                continue
            raise errors.work_item_not_found(str(item_id))
        project = call.org.project(item.fields["System.TeamProject"])
        assert project is not None
        data = body.work_item(call.base, call.org, project, item)
        fields = {"System.Id": item.id, **item.fields}
        data["fields"] = fields if wanted is None else \
            {name: fields[name] for name in wanted if name in fields}
        data.pop("_links", None)
        data.pop("relations", None)
        values.append(data)
    return 200, {"count": len(values), "value": values}
