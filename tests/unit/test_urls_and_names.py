"""Organization URLs and names: every accepted form, and the refusals."""
from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from adobot.actions.names import ProjectName, RepositoryName
from adobot.errors import AdobotError
from adobot.rest.urls import parse_organization_url


@pytest.mark.parametrize("url, name, base, kind", [
    ("https://dev.azure.com/contoso", "contoso", "https://dev.azure.com/contoso", "cloud"),
    ("https://dev.azure.com/contoso/", "contoso", "https://dev.azure.com/contoso", "cloud"),
    ("  https://dev.azure.com/Contoso-2\n", "Contoso-2", "https://dev.azure.com/Contoso-2", "cloud"),
    ("https://DEV.AZURE.COM/contoso", "contoso", "https://dev.azure.com/contoso", "cloud"),
    ("https://contoso.visualstudio.com", "contoso", "https://contoso.visualstudio.com", "legacy"),
    ("https://contoso.visualstudio.com/", "contoso", "https://contoso.visualstudio.com", "legacy"),
    ("https://contoso.visualstudio.com/DefaultCollection", "contoso",
     "https://contoso.visualstudio.com", "legacy"),
    ("https://tfs.corp.example:8443/DefaultCollection", "DefaultCollection",
     "https://tfs.corp.example:8443/DefaultCollection", "server"),
    ("http://localhost:8080/tfs_collection", "tfs_collection",
     "http://localhost:8080/tfs_collection", "server"),
    ("http://127.0.0.1:5000/contoso", "contoso", "http://127.0.0.1:5000/contoso", "server"),
    ("http://127.8.9.10/contoso", "contoso", "http://127.8.9.10/contoso", "server"),
    ("http://[::1]:8080/contoso", "contoso", "http://[::1]:8080/contoso", "server"),
])
def test_accepted_forms(url, name, base, kind):
    org = parse_organization_url(url)
    assert (org.name, org.base_url, org.kind) == (name, base, kind)


INVALID_URLS = [
    "", "   ", "dev.azure.com/contoso", "ftp://dev.azure.com/contoso",
    "http://dev.azure.com/contoso",                       # clear text off loopback
    "https://dev.azure.com", "https://dev.azure.com/",     # no organization
    "https://dev.azure.com/contoso/Payments",             # project in the URL
    "https://dev.azure.com/contoso/Payments/_git/api",
    "https://dev.azure.com/-contoso", "https://dev.azure.com/contoso-",
    "https://dev.azure.com/con_toso", "https://dev.azure.com/" + "a" * 51,
    "https://dev.azure.com/con%20toso", "https://dev.azure.com/contoso?x=1",
    "https://dev.azure.com/contoso#frag", "https://dev.azure.com:8443/contoso",
    "https://user:secret@dev.azure.com/contoso", "https://contoso.visualstudio.com/Payments",
    "https://a.b.visualstudio.com", "https://-bad.visualstudio.com",
    "http://tfs.corp.example/DefaultCollection",          # http off loopback
    "http://10.0.0.5:8080/tfs", "http://192.168.1.1/col", "https://tfs.corp.example",
    "https://tfs.corp.example/col/project", "https://bad_host!/col",
    "https://dev.azure.com/con toso", "https://dev.azure.com/contoso\x00",
    "https://dev.azure.com:notaport/contoso",
]


@pytest.mark.parametrize("url", INVALID_URLS)
def test_refused_forms_name_the_field(url):
    with pytest.raises(AdobotError) as caught:
        parse_organization_url(url)
    assert caught.value.code == "INVALID_INPUT"
    assert caught.value.field == "organization_url"
    assert caught.value.hint and caught.value.exit_code == 2


def test_credentials_in_url_are_not_echoed():
    with pytest.raises(AdobotError) as caught:
        parse_organization_url("https://me:hunter2-token@dev.azure.com/contoso")
    assert "hunter2-token" not in caught.value.message
    assert "credentials" in caught.value.message


def test_non_text_url_is_refused():
    with pytest.raises(AdobotError):
        parse_organization_url(42)


project = TypeAdapter(ProjectName)
repository = TypeAdapter(RepositoryName)


@pytest.mark.parametrize("name", ["Payments", "Fabrikam Fiber", "a", "x" * 64, "Proj-1.2",
                                  "Ünïcode", "CONSOLE", "bin2"])
def test_valid_project_names(name):
    assert project.validate_python(name) == name


@pytest.mark.parametrize("name, why", [
    ("", "empty"), ("x" * 65, "at most 64"), ("a/b", "/"), ("a:b", ":"), ("a\\b", "\\"),
    ("a~b", "~"), ("a&b", "&"), ("a%b", "%"), ("a;b", ";"), ("a@b", "@"), ("a'b", "'"),
    ('a"b', '"'), ("a?b", "?"), ("a<b", "<"), ("a>b", ">"), ("a|b", "|"), ("a#b", "#"),
    ("a$b", "$"), ("a*b", "*"), ("a}b", "}"), ("a{b", "{"), ("a,b", ","), ("a+b", "+"),
    ("a=b", "="), ("a[b", "["), ("a]b", "]"), ("_hidden", "start"), (".dot", "start"),
    ("dot.", "end"), ("tab\there", "control"), ("CON", "reserved"), ("com1", "reserved"),
    ("LPT9", "reserved"), ("App_Code", "reserved"), ("web.config", "reserved"),
    ("DefaultCollection", "reserved"), (" padded", "space"),
])
def test_invalid_project_names(name, why):
    with pytest.raises(ValidationError) as caught:
        project.validate_python(name)
    assert why in str(caught.value)


def test_repository_names_follow_the_same_character_rules():
    assert repository.validate_python("CON") == "CON"  # reserved names are a project rule
    for bad in ("a/b", "_x", "x.", "y" * 65):
        with pytest.raises(ValidationError):
            repository.validate_python(bad)
