"""A connected session: one organization, one project, one REST client."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from adobot.rest.client import RestClient

Scope = Literal["local", "global"]


@dataclass(eq=False)
class Session:
    name: str
    scope: Scope
    organization: str      # the organization (or collection) name
    organization_url: str  # as the user gave it, normalized
    project_id: str
    project_name: str
    user: str
    rest: RestClient = field(repr=False)
    # Pipeline names (and \folder\name) -> ids learnt during this session.
    pipeline_ids: dict[str, int] = field(default_factory=dict, repr=False)
    # Repositories this session created and nothing has been pushed to yet (ids and lower-cased
    # names): a first push needs no look at their (absent) branches.
    empty_repositories: set[str] = field(default_factory=set, repr=False)

    def close(self) -> None:
        self.rest.close()

    @property
    def closed(self) -> bool:
        return self.rest.closed
