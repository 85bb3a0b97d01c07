"""What the pipeline actions share: names, folders, the pipeline model, finding one by name."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from adobot.actions.scopes import BUILD_READ
from adobot.rest.versions import PIPELINES
from adobot.errors import InvalidInput, NotFound
from adobot.sessions.session import Session
_FORBIDDEN = set('\\/:*?"<>|')
PAGE_SIZE = 1000  # pipelines per page when looking a name up


def check_pipeline_name(value: str) -> str:
    if not value.strip():
        raise ValueError("a pipeline name must not be empty")
    if len(value) > 255:
        raise ValueError(f"a pipeline name has at most 255 characters; this one has {len(value)}")
    bad = sorted({ch for ch in value if ch in _FORBIDDEN})
    if bad:
        raise ValueError(f"a pipeline name must not contain {' '.join(bad)}")
    if any(ord(ch) < 32 for ch in value):
        raise ValueError("a pipeline name must not contain control characters")
    if value != value.strip() or value.endswith("."):
        raise ValueError("a pipeline name must not start or end with a space, nor end with '.'")
    return value


def normalize_folder(value: str) -> str:
    r"""``\``, ``\ci\nightly`` (``/`` works too) -> the backslash form the service uses."""
    text = value.strip().replace("/", "\\")
    if text in ("", "\\"):
        return "\\"
    segments = text.strip("\\").split("\\")
    if not all(segments):
        raise ValueError(f"folder {value!r} has an empty segment")
    for segment in segments:
        check_pipeline_name(segment)
    return "\\" + "\\".join(segments)


def _folder_key(folder: str) -> str:
    return folder.replace("/", "\\").strip("\\").lower()


def check_yaml_path(value: str) -> str:
    path = value.strip().replace("\\", "/")
    if not path or path.endswith("/"):
        raise ValueError("yaml_path must name a file, e.g. azure-pipelines.yml")
    if not path.lower().endswith((".yml", ".yaml")):
        raise ValueError(f"yaml_path {value!r} must end with .yml or .yaml")
    if any(part == ".." for part in path.split("/")):
        raise ValueError("yaml_path must stay inside the repository (no '..')")
    if len(path) > 400:
        raise ValueError("yaml_path has at most 400 characters")
    return path


PipelineName = Annotated[str, AfterValidator(check_pipeline_name),
                         Field(json_schema_extra={"minLength": 1, "maxLength": 255})]


class Pipeline(BaseModel):
    id: int
    name: str
    folder: str
    web_url: str | None = Field(None, description="Page of the pipeline in the web portal")


def pipeline_fields(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "name": item["name"], "folder": item.get("folder", "\\"),
            "web_url": item.get("_links", {}).get("web", {}).get("href")}


def _key(folder: str | None, name: str) -> str:
    return name.lower() if folder is None else f"{_folder_key(folder)}\\{name.lower()}"


def find_pipeline(session: Session, name: str) -> int:
    r"""The id of the pipeline called ``name`` (or ``\folder\name``), paging through the list.

    Ids learnt before (CreatePipeline, an earlier lookup) are kept in the session, so a bot that
    creates a pipeline and then queues it by name sends no lookup at all.
    """
    path = name.replace("/", "\\")
    folder, short = path.rsplit("\\", 1) if "\\" in path else (None, name)
    cached = session.pipeline_ids.get(_key(folder, short))
    if cached is not None:
        return cached
    matches = _pipelines_named(session, short, folder)
    if not matches:
        raise NotFound(f"pipeline {name!r} was not found in project {session.project_name!r}",
                       "Check the name (and folder), or give the pipeline's id.",
                       after_request=True)
    if len(matches) > 1:
        folders = ", ".join(sorted(p.get("folder", "\\") for p in matches))
        raise InvalidInput(f"pipeline name {name!r} is ambiguous: it exists in the folders "
                           f"{folders}", "Give the id, or the name with its folder: "
                           r"\folder\name.", field="pipeline", after_request=True)
    remember(session, matches[0])
    return matches[0]["id"]


def pipeline_id(session: Session, pipeline: int | str) -> int:
    """A pipeline input (an id, an id as text, a name or \\folder\\name) -> its id."""
    if isinstance(pipeline, int):
        return pipeline
    return int(pipeline) if pipeline.isdigit() else find_pipeline(session, pipeline)


def _pipelines_named(session: Session, name: str, folder: str | None) -> list[dict[str, Any]]:
    """Every pipeline of that name (in that folder, if given), paging through the list."""
    matches: list[dict[str, Any]] = []
    for page in session.rest.pages(f"{session.project_id}/_apis/pipelines",
                                   params={"$top": PAGE_SIZE}, scope=BUILD_READ, api=PIPELINES,
                                   subject=f"the pipelines of project {session.project_name!r}"):
        matches += [p for p in page if str(p.get("name", "")).lower() == name.lower()
                    and (folder is None or _folder_key(p.get("folder", "")) == _folder_key(folder))]
    return matches


def pipeline_named(session: Session, name: str, folder: str) -> dict[str, Any] | None:
    """The pipeline called ``name`` in ``folder``, or None."""
    matches = _pipelines_named(session, name, folder)
    return matches[0] if matches else None


def remember(session: Session, item: dict[str, Any]) -> None:
    session.pipeline_ids[_key(None, item["name"])] = item["id"]
    session.pipeline_ids[_key(item.get("folder", ""), item["name"])] = item["id"]
