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
    # The organization on the service's other hosts (Code Search, identities); empty: the
    # same as ``rest`` (Azure DevOps Server).
    search_url: str = ""
    identity_url: str = ""
    # Pipeline names (and \folder\name) -> ids learnt during this session.
    pipeline_ids: dict[str, int] = field(default_factory=dict, repr=False)
    # Repositories this session created and nothing has been pushed to yet (ids and lower-cased
    # names): a first push needs no look at their (absent) branches.
    empty_repositories: set[str] = field(default_factory=set, repr=False)

    def search(self, route: str) -> str:
        """A route on the Code/Wiki Search host (``{project}/_apis/search/...``)."""
        return f"{self.search_url or self.rest.base_url}/{route}"

    def identities(self, route: str) -> str:
        return f"{self.identity_url or self.rest.base_url}/{route}"

    def close(self) -> None:
        self.rest.close()

    @property
    def closed(self) -> bool:
        return self.rest.closed
