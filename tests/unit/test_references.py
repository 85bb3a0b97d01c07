"""Repository and wiki references as people paste them, and the hosts Code Search lives on."""
from __future__ import annotations

import pytest

from adobot.actions.references import Reference, parse_reference
from adobot.rest.urls import parse_organization_url


@pytest.mark.parametrize("text, expected", [
    ("payments-api", Reference("payments-api", None, None)),
    ("abe029c2-08a7-51e7-b240-8a7ae93146e8", Reference("abe029c2-08a7-51e7-b240-8a7ae93146e8",
                                                       None, None)),
    ("https://dev.azure.com/contoso/Payments/_git/payments-api",
     Reference("payments-api", "contoso", "Payments")),
    ("https://dev.azure.com/contoso/My%20Project/_git/api?path=/src&version=GBmain",
     Reference("api", "contoso", "My Project")),
    ("https://contoso.visualstudio.com/Payments/_git/payments-api/pullrequest/3",
     Reference("payments-api", "contoso", "Payments")),
    ("https://contoso@dev.azure.com/contoso/Payments/_git/payments-api",
     Reference("payments-api", "contoso", "Payments")),
    ("https://ado.corp.example/tfs/Main/Payments/_git/payments-api",
     Reference("payments-api", "Main", "Payments")),
])
def test_repository_references(text, expected):
    assert parse_reference(text, "_git") == expected


def test_wiki_references():
    assert parse_reference("https://dev.azure.com/contoso/Payments/_wiki/wikis/Payments.wiki/5/Home",
                           "_wiki/wikis") == Reference("Payments.wiki", "contoso", "Payments")


@pytest.mark.parametrize("text", [
    "https://dev.azure.com/contoso/Payments/_git",          # no repository
    "https://dev.azure.com/contoso/_git/payments-api",      # no project
    "https://dev.azure.com/contoso/Payments/_wiki/wikis/W",  # a wiki, not a repository
    "pay/ments", "",
])
def test_what_is_not_a_repository(text):
    with pytest.raises(ValueError):
        parse_reference(text, "_git")


@pytest.mark.parametrize("url, search, identities", [
    ("https://dev.azure.com/contoso", "https://almsearch.dev.azure.com/contoso",
     "https://vssps.dev.azure.com/contoso"),
    ("https://contoso.visualstudio.com", "https://contoso.almsearch.visualstudio.com",
     "https://contoso.vssps.visualstudio.com"),
    ("https://ado.corp.example/tfs/Main", "https://ado.corp.example/tfs/Main",
     "https://ado.corp.example/tfs/Main"),
])
def test_search_and_identities_hosts(url, search, identities):
    organization = parse_organization_url(url)
    assert organization.area("almsearch").base_url == search
    assert organization.area("vssps").base_url == identities
