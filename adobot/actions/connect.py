"""Connect: prove a token against an organization and a project, and keep the session."""
from __future__ import annotations

import time
from typing import Annotated, Any, Literal, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from adobot.actions.base import (
    TRANSPORT_ERRORS,
    Action,
    ActionContext,
    ActionInputs,
    ActionOutputs,
    SessionName,
    path_segment,
    session_schema,
)
from adobot.actions.names import ProjectName
from adobot.actions.scopes import PROJECT_READ
from adobot.credentials.connections import ACCESS_TOKEN, CONNECTION_NAME, TOKEN_LEFT_SECONDS
from adobot.credentials.sources import OptionalCredential, resolve_token
from adobot.credentials.secret import Secret
from adobot.rest.auth import Authorizer, BearerAuthorizer, PatAuthorizer
from adobot.rest.client import RestClient
from adobot.errors import AdobotError, AuthFailed, InvalidInput, NotFound
from adobot.rest.urls import FORMS, OrganizationUrl, parse_organization_url
from adobot.rest.versions import PREVIEW
from adobot.sessions.session import Session


Method = Literal["pat", "service_principal", "managed_identity", "workload_identity", "azure_cli"]
# The inputs that belong to one sign-in method or another, and which go with which.
METHOD_INPUTS = {"personal_access_token", "tenant_id", "client_id", "client_secret",
                 "certificate", "certificate_password", "managed_identity_resource_id",
                 "managed_identity_client_id", "token_file"}
METHOD_INPUTS_OF = {
    "pat": {"personal_access_token"},
    "service_principal": {"tenant_id", "client_id", "client_secret", "certificate",
                          "certificate_password"},
    "managed_identity": {"tenant_id", "client_id", "managed_identity_resource_id",
                         "managed_identity_client_id"},
    "workload_identity": {"tenant_id", "client_id", "token_file"},
    "azure_cli": {"tenant_id"},
}


class NewSession(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    name: str = SessionName
    scope: Literal["local", "global"] = Field(
        "local", description="local: this bot only; global: shared with parent and child bots")


class Inputs(ActionInputs):
    # Where and as whom: an organization URL with a sign-in method, or a connection.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["organization_url", "project"]}, {"required": ["connection"]}]})

    organization_url: Optional[str] = Field(
        None, description=f"Organization URL: {FORMS}. Required unless a connection is named "
                          "(which says where it goes; given with one, it must be the "
                          "connection's).",
        examples=["https://dev.azure.com/contoso"],
        json_schema_extra={"format": "uri", "pattern": "^https?://"})
    connection: Optional[str] = Field(
        None, pattern=CONNECTION_NAME.pattern,
        description="A control-room connection, by name: its organization and secret in one "
                    "(an admin's `adobot connection add`; with `adobot run --control-room URL` "
                    "the runner fetches it for this run). Instead of organization_url and "
                    "personal_access_token.", examples=["contoso-main"])
    project: Optional[ProjectName] = Field(
        None, description="Project name (or id) in that organization. Required, unless the "
                          "connection has a default project.", examples=["Payments"])
    authentication_method: Method = Field(
        "pat", description="How to sign in: pat (a personal access token); service_principal "
        "(tenant_id, client_id, and client_secret or certificate); managed_identity (the "
        "machine's, or a user-assigned one by client_id or managed_identity_resource_id; "
        "across tenants, tenant_id and client_id name the app in the organization's tenant "
        "whose federated credential trusts the identity); "
        "workload_identity (tenant_id, client_id, token_file: a federated credential); "
        "azure_cli (the account signed in with az login)", examples=["pat"])
    personal_access_token: OptionalCredential = Field(
        None, description="Required for pat. A credential input: where the token comes from, one "
                    "of {credential: {locker, name, attribute}} (the encrypted vault), "
                    "{variable: NAME} (a bot variable) or {insecure: VALUE} (plain text in the "
                    "bot file: works, with a warning). The value is never shown.",
        examples=[{"credential": {"locker": "ado", "name": "ci-bot", "attribute": "pat"}},
                  {"variable": "pat"}])
    tenant_id: str | None = Field(None, pattern=r"^[A-Za-z0-9.-]{1,100}$",
                                  description="Directory (tenant) id: service_principal, "
                                              "workload_identity; managed_identity across "
                                              "tenants: the organization's (azure_cli: "
                                              "optional)",
                                  examples=["72f988bf-86f1-41af-91ab-2d7cd011db47"])
    client_id: str | None = Field(None, pattern=r"^[A-Za-z0-9.-]{1,100}$",
                                  description="Application (client) id: service_principal, "
                                              "workload_identity, managed_identity across "
                                              "tenants (the multi-tenant app); in its own "
                                              "tenant, a user-assigned managed_identity's",
                                  examples=["6f1b2c3d-0000-4000-8000-000000000001"])
    client_secret: OptionalCredential = Field(
        None, description="service_principal: the app's client secret, from the same three "
                          "sources as a token (vault, variable, insecure)",
        examples=[{"credential": {"locker": "ado", "name": "release-app", "attribute": "secret"}}])
    certificate: OptionalCredential = Field(
        None, description="service_principal instead of a secret: the certificate and its "
                          "private key as PEM text, from the same three sources",
        examples=[{"variable": "app_pem"}])
    certificate_password: OptionalCredential = Field(
        None, description="The password of an encrypted certificate key",
        examples=[{"variable": "app_pem_password"}])
    managed_identity_resource_id: str | None = Field(
        None, min_length=1, max_length=1024,
        description="managed_identity: a user-assigned identity's resource id (instead of "
                    "client_id)",
        examples=["/subscriptions/0000/resourceGroups/bots/providers/"
                  "Microsoft.ManagedIdentity/userAssignedIdentities/release-bot"])
    managed_identity_client_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9.-]{1,100}$",
        description="managed_identity across tenants: the user-assigned identity whose token "
                    "is the app's assertion (default: the machine's system-assigned identity)",
        examples=["0e5d6c1b-0000-4000-8000-000000000002"])
    token_file: str | None = Field(
        None, min_length=1, max_length=4096,
        description="workload_identity: the federated token file (default: "
                    "$AZURE_FEDERATED_TOKEN_FILE, as Kubernetes and CI platforms set it)",
        examples=["/var/run/secrets/azure/tokens/azure-identity-token"])
    session: Annotated[NewSession, WithJsonSchema(session_schema(
        "local", "Name and scope of the new session: a name, or {name, scope}. Default: "
        "{name: default, scope: local}.", ["ado", {"name": "ado", "scope": "global"}])),
        Field(default="default", validate_default=True)]

    @field_validator("organization_url")
    @classmethod
    def _valid_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        try:
            parse_organization_url(value, allow_plain_http=bool(
                (info.context or {}).get("allow_plain_http")))
        except AdobotError as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("session", mode="before")
    @classmethod
    def _session_by_name(cls, value: object) -> object:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _method_inputs(self, info: ValidationInfo) -> "Inputs":
        """Each method's inputs, checked before anything is sent (and by adobot validate,
        which leaves out the inputs given as ${...}: they are there at run time)."""
        method = self.authentication_method
        later = (info.context or {}).get("given_at_run_time") or set()
        given = {name for name in METHOD_INPUTS
                 if getattr(self, name) is not None or name in later}
        if self.connection is not None or "connection" in later:
            stray = sorted(given | ({"authentication_method"}
                                    if "authentication_method" in self.model_fields_set else set()))
            if stray:
                raise ValueError(f"{', '.join(stray)} do not go with connection: the "
                                 "connection holds the sign-in")
            return self
        if self.organization_url is None and not {"organization_url", "connection"} & later:
            raise ValueError("organization_url is required (or name a connection)")
        if self.project is None and "project" not in later:
            raise ValueError("project is required")
        needed = {"pat": {"personal_access_token"},
                  "service_principal": {"tenant_id", "client_id"},
                  "workload_identity": {"tenant_id", "client_id"}}.get(method, set())
        missing = sorted(needed - given)
        if missing:
            raise ValueError(f"authentication_method {method} needs {', '.join(missing)}")
        stray = sorted(given - METHOD_INPUTS_OF[method])
        if stray:
            raise ValueError(f"{', '.join(stray)} do not go with authentication_method {method}")
        if method == "service_principal" and (self.client_secret is None) == (
                self.certificate is None):
            raise ValueError("service_principal needs exactly one of client_secret and "
                             "certificate")
        if self.certificate_password is not None and self.certificate is None:
            raise ValueError("certificate_password goes with a certificate")
        if method == "managed_identity":
            _check_managed_identity(self.tenant_id, self.client_id,
                                    self.managed_identity_client_id,
                                    self.managed_identity_resource_id, given)
        return self


def _check_managed_identity(tenant_id: str | None, client_id: str | None,
                            identity_client_id: str | None, resource_id: str | None,
                            given: set[str]) -> None:
    """In its own tenant, the identity by client_id or resource id; across tenants (tenant_id),
    the app by client_id and the identity by managed_identity_client_id or resource id."""
    if "tenant_id" in given:
        if "client_id" not in given:
            raise ValueError("managed_identity across tenants needs client_id: the app in the "
                             "organization's tenant whose federated credential trusts the "
                             "identity")
        if identity_client_id and resource_id:
            raise ValueError("give the managed identity's client id or its resource id, not "
                             "both")
    elif "managed_identity_client_id" in given:
        raise ValueError("managed_identity_client_id goes with tenant_id (across tenants); in "
                         "the identity's own tenant give its client_id")
    elif client_id and resource_id:
        raise ValueError("give a managed identity's client_id or its resource id, not both")


class Outputs(ActionOutputs):
    session: str = Field(description="Name of the connected session")
    organization: str = Field(description="Organization (or collection) name")
    project_id: str = Field(description="Id of the project")
    project_name: str = Field(description="Name of the project as the service spells it")
    user: str = Field(description="Display name of the token's user")

    def summary(self) -> str:
        return f"connected to {self.organization}/{self.project_name} as {self.user} (session {self.session!r})"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    allowed = ctx.env.sign_in
    if allowed is not None and inputs.authentication_method not in allowed:
        raise InvalidInput(f"authentication_method {inputs.authentication_method} is not "
                           f"available to this run: it signs in with {', '.join(allowed)} "
                           "only, and nothing was tried", "A bot tried on the page runs against "
                           "a sandbox of its own: use personal_access_token: {variable: pat} "
                           "(the sandbox's token is sandbox-demo-pat).",
                           field="authentication_method")
    if inputs.connection is not None:
        ctx.sessions.check_free(inputs.session.name)
        return _connect(ctx, inputs, *_by_connection(ctx, inputs))
    assert inputs.organization_url is not None and inputs.project is not None  # the validator's
    organization = parse_organization_url(inputs.organization_url,
                                          allow_plain_http=ctx.allow_plain_http)
    return _connect(ctx, inputs, organization, inputs.project,
                    _authorizer(ctx, inputs, organization.base_url))


def _by_connection(ctx: ActionContext, inputs: Inputs) -> tuple[OrganizationUrl, str, Authorizer]:
    """A named connection's organization, project and sign-in. Its secret goes only to its own
    organization: the bot cannot name another."""
    assert inputs.connection is not None
    given = (parse_organization_url(inputs.organization_url,
                                    allow_plain_http=ctx.allow_plain_http).base_url
             if inputs.organization_url else None)
    credential = ctx.connection(inputs.connection, given)
    ctx.register_secret(credential.secret)
    project = inputs.project or credential.project
    if not project:
        raise InvalidInput(f"connection {credential.name!r} has no default project: give "
                           "project", "Add project: NAME to the Connect step, or ask an admin "
                           "to give the connection a default project.", field="project")
    organization = parse_organization_url(credential.organization_url)
    if credential.authentication_method == "pat":
        return organization, project, PatAuthorizer(credential.secret)
    if credential.authentication_method == ACCESS_TOKEN:  # signed in by the control room
        return organization, project, BearerAuthorizer(_asked_again(ctx, credential, given))
    from adobot.credentials.connections import sign_in

    return organization, project, BearerAuthorizer(sign_in(credential, ctx.entra,
                                                           register=ctx.register_secret))


def _asked_again(ctx: ActionContext, first: Any, given: str | None) -> Any:
    """The access token the control room handed out, then a new one asked of it each time
    the last nears its end."""
    waiting = [first]

    def fetch() -> tuple[Secret, float]:
        credential = waiting.pop() if waiting else ctx.connection(first.name, given)
        ctx.register_secret(credential.secret)
        return credential.secret, credential.expires_on or time.time() + TOKEN_LEFT_SECONDS
    return fetch


def _connect(ctx: ActionContext, inputs: Inputs, organization: OrganizationUrl, project_name: str,
             authorizer: Authorizer) -> Outputs:
    if organization.clear_text:
        ctx.log.warning("warning: %s is plain http: the token crosses the network in clear "
                        "text (allowed by the person running the bot)", organization.base_url)
    name, scope = inputs.session.name, inputs.session.scope
    ctx.sessions.check_free(name)  # SESSION_EXISTS before anything is sent
    client = RestClient(ctx.route(organization), authorizer, timeout=ctx.timeout,
                        policy=ctx.retry_policy)
    try:
        try:
            user = who_am_i(client, organization.name)
        except AuthFailed as refused:
            if inputs.authentication_method == "pat" or refused.status != 401:
                raise  # a PAT refused, or Entra's own refusal (said as it is)
            # Entra signed the identity in; the organization does not know it.
            raise refused.derive(
                message=f"the organization {organization.name!r} refused the identity Entra "
                        f"signed in ({inputs.authentication_method}): it is not a member of "
                        f"the organization, or its token was not accepted (the service said: "
                        f"{refused.service_message or 'HTTP 401'})",
                hint="Add the service principal or managed identity to the organization "
                     "(Organization settings > Users > Add users, by its name or client id), "
                     "then give it access to the project.") from None
        project = client.get(f"_apis/projects/{path_segment(project_name)}", scope=PROJECT_READ,
                             subject=f"project {project_name!r} in organization {organization.name!r}")
        session = Session(name=name, scope=scope, organization=organization.name,
                          organization_url=organization.base_url, project_id=project["id"],
                          project_name=project["name"], user=user, rest=client,
                          search_url=ctx.route(organization.area("almsearch")),
                          identity_url=ctx.route(organization.area("vssps")))
        ctx.sessions.add(session)
    except BaseException:
        client.close()
        raise
    return Outputs(session=name, organization=organization.name, project_id=session.project_id,
                   project_name=session.project_name, user=user)


def _authorizer(ctx: ActionContext, inputs: Inputs, organization: str) -> Authorizer:
    """The session's Authorization header source. Every secret is read here, before anything is
    sent; a vault credential only if it is bound to this organization (its URL as the bot gives
    it; --sandbox routes it afterwards)."""
    def secret(name: str) -> Secret | None:
        source = getattr(inputs, name)
        if source is None:
            return None
        value = resolve_token(source, ctx.variables, ctx.vault, field=name,
                              organization=organization, multiline=name == "certificate")
        ctx.register_secret(value)
        return value

    method = inputs.authentication_method
    if method == "pat":
        token = secret("personal_access_token")
        assert token is not None  # the inputs' validator requires it for pat
        return PatAuthorizer(token)
    from adobot.credentials.identity import token_source

    return BearerAuthorizer(token_source(
        method, tenant_id=inputs.tenant_id, client_id=inputs.client_id,
        client_secret=secret("client_secret"), certificate=secret("certificate"),
        certificate_password=secret("certificate_password"),
        resource_id=inputs.managed_identity_resource_id, token_file=inputs.token_file,
        identity_client_id=inputs.managed_identity_client_id, route=ctx.entra,
        register=ctx.register_secret))


def who_am_i(client: RestClient, organization: str) -> str:
    """The display name of the token's user: the first proof that the token works."""
    try:
        data = client.get("_apis/connectionData", api=PREVIEW,
                          subject=f"organization {organization!r}")
    except NotFound as missing:
        raise missing.derive(hint=(
            f"Check the organization in organization_url: {organization!r} must be the name "
            "after https://dev.azure.com/ (or before .visualstudio.com), or the collection of "
            "your Azure DevOps Server, and the token's user must belong to it.")) from None
    user = (data or {}).get("authenticatedUser") or {}
    return str(user.get("providerDisplayName") or user.get("customDisplayName") or user.get("id") or "")


ACTION = Action(
    name="Connect", label="Connect to Azure DevOps", group="Session",
    read_only=True, idempotent=True,
    description="Signs in to an organization (a personal access token, or Microsoft Entra: a "
                "service principal, a managed identity, a workload identity or the Azure CLI), "
                "proves access to a project and keeps the connection as a local or global "
                "session for later actions.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        "INVALID_INPUT": "the organization URL, project name or token source is malformed, or "
                         "the token variable is missing",
        "CREDENTIAL_NOT_FOUND": "the vault has no such locker/credential/attribute, or no "
                                "connection of that name exists",
        "SESSION_EXISTS": "a session of that name is already connected",
        "AUTH_FAILED": "the token is invalid, expired or revoked; or Entra refused the sign-in "
                       "(the AADSTS code and its meaning are said), or no managed identity is "
                       "available on this machine",
        "PERMISSION_DENIED": f"the token lacks {PROJECT_READ} or may not read the project; or "
                             "the connection may not be used by this runner, or not with the "
                             "organization the bot names",
        "NOT_FOUND": "the organization or the project does not exist",
        **TRANSPORT_ERRORS,
    })
