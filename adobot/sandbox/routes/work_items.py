"""Work item types (list) and work items (create with JSON Patch, get)."""
from __future__ import annotations

from typing import Any

from adobot.sandbox import errors
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
    target = str(value["url"]).rstrip("/").rsplit("/", 1)[-1]
    if not target.isdigit() or int(target) not in call.state.work_items:
        raise errors.link_target_not_found(target)
    return {"rel": value["rel"], "url": value["url"],
            "attributes": value.get("attributes") or {"isLocked": False}}


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
