"""Proving a secret before it is saved, as Connect would use it: who it signs in as, that it
may read code in the organization (the scope an agent connector needs), and that the default
project exists. Each refusal names its cause in the words of the troubleshooting table."""
from __future__ import annotations

import logging
from typing import Callable

from adobot.credentials.secret import Secret
from adobot.errors import NotFound, PermissionDenied
from adobot.rest.urls import OrganizationUrl, parse_organization_url

log = logging.getLogger("adobot")

Route = Callable[[OrganizationUrl], str]


def prove(organization_url: str, secret: Secret, *, project: str | None = None,
          sign_in: Callable[[], tuple[Secret, float]] | None = None, what: str = "the token",
          route: Route | None = None) -> str:
    """The display name ``secret`` signs in as at ``organization_url``. ``sign_in``: an Entra
    token source to use instead (a service principal, a managed identity), named ``what`` in
    refusals. ``route``: where the organization's requests go (the sandbox)."""
    from adobot.actions.base import path_segment
    from adobot.actions.connect import who_am_i
    from adobot.actions.scopes import CODE_READ, PROJECT_READ
    from adobot.rest.auth import Authorizer, BearerAuthorizer, PatAuthorizer
    from adobot.rest.client import RestClient

    organization = parse_organization_url(organization_url)
    authorizer: Authorizer = PatAuthorizer(secret) if sign_in is None \
        else BearerAuthorizer(sign_in)
    client = RestClient((route or (lambda org: org.base_url))(organization), authorizer)
    try:
        try:
            user = who_am_i(client, organization.name)  # AUTH_FAILED says invalid or expired
        except NotFound as missing:
            raise missing.derive(
                message=f"organization {organization.name!r} ({organization.base_url}) does "
                        "not exist, or the token's user does not belong to it",
                hint="Check the organization's name: it is the part after "
                     "https://dev.azure.com/.") from None
        try:
            client.get("_apis/git/repositories", scope=CODE_READ,
                       subject=f"the repositories of organization {organization.name!r}")
        except PermissionDenied as lacking:
            raise lacking.derive(
                message=f"{what} lacks {CODE_READ} in organization {organization.name!r}",
                hint=f"Re-authenticate with an account or a token that has {CODE_READ}.") \
                from None
        if project:
            try:
                client.get(f"_apis/projects/{path_segment(project)}", scope=PROJECT_READ,
                           subject=f"project {project!r} in organization {organization.name!r}")
            except NotFound as missing:
                raise missing.derive(
                    message=f"project {project!r} does not exist in organization "
                            f"{organization.name!r}, or {what}'s user cannot see it",
                    hint="Check the project's name, or leave the default project out.") \
                    from None
    finally:
        client.close()
    log.info("checked: %s works in %s as %s and can read code", what, organization.name, user)
    return user


def connection_check(route: Route | None = None, entra=None):
    """A ``Connections`` check that proves each connection against its organization."""
    from adobot.credentials.connections import sign_in

    def check(connection, secret: Secret) -> str:
        method = connection.authentication_method
        if method == "pat":
            return prove(connection.organization_url, secret, project=connection.project,
                         route=route)
        source = sign_in(connection.with_secret(secret), entra)
        what = "the app's secret" if method == "service_principal" else "the managed identity"
        return prove(connection.organization_url, secret, project=connection.project,
                     sign_in=source, what=what, route=route)
    return check
