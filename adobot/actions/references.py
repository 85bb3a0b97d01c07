"""Repositories and wikis as people paste them: a name, an id, or the URL of their page.

``https://dev.azure.com/{org}/{project}/_git/{repo}``, ``https://{org}.visualstudio.com/
{project}/_git/{repo}`` (a clone URL's ``org@`` too), an Azure DevOps Server's
``http(s)://host/[tfs/]{collection}/{project}/_git/{repo}``, and for wikis ``…/{project}/_wiki/
wikis/{wiki}``. The URL is checked when the inputs are read; that it names the session's
organization and project is checked when the step runs (the session is known then).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator, Field

from adobot.errors import InvalidInput
from adobot.sessions.session import Session

_NAME = re.compile(r"^[^\x00-\x1f/\\?#]{1,256}$")


@dataclass(frozen=True)
class Reference:
    name: str                  # the repository's (or wiki's) name or id
    organization: str | None   # None: a bare name or id (the session's)
    project: str | None


def parse_reference(value: str, marker: str) -> Reference:
    """A name, an id, or a URL with ``/{marker}/`` (``_git`` or ``_wiki/wikis``) in its path."""
    text = value.strip()
    if not text.lower().startswith(("https://", "http://")):
        if not _NAME.match(text):
            raise ValueError(f"{value!r} is not a name, an id or a URL")
        return Reference(text, None, None)
    parts = urlsplit(text)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    lowered = [s.lower() for s in segments]
    head = marker.split("/")
    at = next((i for i in range(len(lowered)) if lowered[i:i + len(head)] == head), None)
    if at is None or at < 1 or at + len(head) >= len(segments):
        raise ValueError(f"{text!r} is not a {'repository' if marker == '_git' else 'wiki'} URL "
                         f"(…/{{project}}/{marker}/{{name}})")
    name, project = segments[at + len(head)], segments[at - 1]
    host = (parts.hostname or "").lower()
    if host == "dev.azure.com":
        organization = segments[0] if at >= 2 else None
    elif host.endswith(".visualstudio.com"):
        organization = host.split(".")[0]
    else:  # Azure DevOps Server: /[tfs/]{collection}/{project}/…
        organization = segments[at - 2] if at >= 2 else None
    if organization is None:
        raise ValueError(f"{text!r} does not name an organization and a project")
    return Reference(name, organization, project)


def _repository(value: str) -> str:
    parse_reference(value, "_git")
    return value.strip()


def _wiki(value: str) -> str:
    parse_reference(value, "_wiki/wikis")
    return value.strip()


RepositoryRef = Annotated[str, AfterValidator(_repository), Field(
    min_length=1, max_length=2000,
    description="Name, id or URL "
                "(https://dev.azure.com/{org}/{project}/_git/{repo})",
    examples=["payments-api"])]
WikiRef = Annotated[str, AfterValidator(_wiki), Field(
    min_length=1, max_length=2000,
    description="Wiki: a name (e.g. Payments.wiki), an id, or its URL "
                "(https://dev.azure.com/{org}/{project}/_wiki/wikis/{wiki})",
    examples=["Payments.wiki"])]


def _in_session(session: Session, reference: Reference, field: str) -> str:
    if reference.organization is None:
        return reference.name
    same_org = reference.organization.lower() == session.organization.lower()
    same_project = (reference.project or "").lower() in (session.project_name.lower(),
                                                         session.project_id.lower())
    if not (same_org and same_project):
        raise InvalidInput(
            f"{field} names {reference.organization}/{reference.project}, but the session is "
            f"connected to {session.organization}/{session.project_name}",
            "Connect a session to that organization and project, or give a name from the "
            "session's project.", field=field)
    return reference.name


def repository_in(session: Session, value: str, field: str = "repository") -> str:
    """The repository's name or id, after checking a URL names the session's project."""
    return _in_session(session, parse_reference(value, "_git"), field)


def wiki_in(session: Session, value: str, field: str = "wiki") -> str:
    return _in_session(session, parse_reference(value, "_wiki/wikis"), field)
