"""Connections as admins name them (issue #33): an organization by its name, its dev.azure.com
or visualstudio.com URL, or the URL of a project, repository or wiki in it — the organization
and the default project taken from it — and one organization whichever way it is named."""
from __future__ import annotations

import pytest

from adobot.control_room.state import open_state
from adobot.credentials.connections import named_in
from adobot.credentials.secret import Secret
from adobot.credentials.vault import Vault
from adobot.errors import AlreadyExists, InvalidInput
from adobot.rest.urls import same_organization


@pytest.mark.parametrize("given, base, project", [
    ("contoso", "https://dev.azure.com/contoso", None),
    ("https://dev.azure.com/contoso", "https://dev.azure.com/contoso", None),
    ("https://contoso.visualstudio.com", "https://contoso.visualstudio.com", None),
    ("https://dev.azure.com/contoso/Payments/_git/payments-api",
     "https://dev.azure.com/contoso", "Payments"),
    ("https://dev.azure.com/contoso/Payments/_git/payments-api?path=/README.md",
     "https://dev.azure.com/contoso", "Payments"),
    ("https://contoso.visualstudio.com/Payments/_git/payments-api",
     "https://contoso.visualstudio.com", "Payments"),
    ("https://contoso.visualstudio.com/DefaultCollection/Payments/_git/payments-api",
     "https://contoso.visualstudio.com", "Payments"),
    ("https://dev.azure.com/contoso/Payments/_wiki/wikis/Payments.wiki",
     "https://dev.azure.com/contoso", "Payments"),
    ("https://dev.azure.com/contoso/Fabrikam%20Fiber/_git/web",
     "https://dev.azure.com/contoso", "Fabrikam Fiber"),
    ("https://dev.azure.com/contoso/Payments", "https://dev.azure.com/contoso", "Payments"),
    ("https://dev.azure.com/contoso/_git/payments", "https://dev.azure.com/contoso", None),
])
def test_an_organization_and_its_project_from_what_admins_paste(given, base, project):
    org, named = named_in(given)
    assert (org.base_url, org.name, named) == (base, "contoso", project)


@pytest.mark.parametrize("given", ["https://user:hunter2@dev.azure.com/contoso/P/_git/r",
                                   "http://dev.azure.com/contoso/P/_git/r", "not a url!"])
def test_what_is_not_an_organization_is_refused_without_echoing_a_password(given):
    with pytest.raises(InvalidInput) as refused:
        named_in(given)
    assert refused.value.field == "organization" and "hunter2" not in refused.value.message


def test_one_organization_however_it_is_named(tmp_path):
    assert {same_organization(url) for url in (
        "https://dev.azure.com/contoso", "https://dev.azure.com/Contoso",
        "https://contoso.visualstudio.com", "https://contoso.visualstudio.com/DefaultCollection",
    )} == {"https://dev.azure.com/contoso"}
    with open_state(Vault(tmp_path / "v.json"), check=lambda c, s: "Someone") as state:
        added = state.connections.add(
            "contoso-main", "https://contoso.visualstudio.com/Payments/_git/payments-api",
            Secret("first-pat"))
        assert (added.organization_url, added.project) == ("https://contoso.visualstudio.com",
                                                           "Payments")
        for other in ("contoso", "https://dev.azure.com/contoso/Web/_git/site"):
            with pytest.raises(AlreadyExists):
                state.connections.add("contoso-two", other, Secret("second-pat"))
        # the CI registration finds it by the other name, and rotates its PAT
        connection, created = state.connections.register("https://dev.azure.com/contoso",
                                                         Secret("third-pat"))
        assert (connection.name, created) == ("contoso-main", False)
