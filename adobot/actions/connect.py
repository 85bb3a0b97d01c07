"""Connect: prove a token against an organization and a project, and keep the session."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
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
from adobot.credentials.sources import Credential, resolve_token
from adobot.rest.auth import PatAuthorizer
from adobot.rest.client import RestClient
from adobot.rest.errors import AdobotError, NotFound
from adobot.rest.urls import FORMS, parse_organization_url
from adobot.rest.versions import PREVIEW
from adobot.sessions.session import Session


class NewSession(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    name: str = SessionName
    scope: Literal["local", "global"] = Field(
        "local", description="local: this bot only; global: shared with parent and child bots")


class Inputs(ActionInputs):
    organization_url: str = Field(description=f"Organization URL: {FORMS}",
                                  examples=["https://dev.azure.com/contoso"],
                                  json_schema_extra={"format": "uri", "pattern": "^https?://"})
    project: ProjectName = Field(description="Project name (or id) in that organization",
                                 examples=["Payments"])
    authentication_method: Literal["pat"] = Field(
        "pat", description="How to authenticate: a personal access token", examples=["pat"])
    personal_access_token: Credential = Field(
        description="A credential input: where the token comes from, one of "
                    "{credential: {locker, name, attribute}} (the encrypted vault), "
                    "{variable: NAME} (a bot variable) or {insecure: VALUE} (plain text in the "
                    "bot file: works, with a warning). The value is never shown.",
        examples=[{"credential": {"locker": "ado", "name": "ci-bot", "attribute": "pat"}},
                  {"variable": "pat"}])
    session: Annotated[NewSession, WithJsonSchema(session_schema(
        "local", "Name and scope of the new session: a name, or {name, scope}. Default: "
        "{name: default, scope: local}.", ["ado", {"name": "ado", "scope": "global"}])),
        Field(default="default", validate_default=True)]

    @field_validator("organization_url")
    @classmethod
    def _valid_url(cls, value: str, info: ValidationInfo) -> str:
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


class Outputs(ActionOutputs):
    session: str = Field(description="Name of the connected session")
    organization: str = Field(description="Organization (or collection) name")
    project_id: str = Field(description="Id of the project")
    project_name: str = Field(description="Name of the project as the service spells it")
    user: str = Field(description="Display name of the token's user")

    def summary(self) -> str:
        return f"connected to {self.organization}/{self.project_name} as {self.user} (session {self.session!r})"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    organization = parse_organization_url(inputs.organization_url,
                                          allow_plain_http=ctx.allow_plain_http)
    if organization.clear_text:
        ctx.log.warning("warning: %s is plain http: the token crosses the network in clear "
                        "text (allowed by the person running the bot)", organization.base_url)
    name, scope = inputs.session.name, inputs.session.scope
    ctx.sessions.check_free(name)  # SESSION_EXISTS before anything is sent
    # A vault credential is refused here, before anything is sent, unless it is bound to this
    # organization (its URL as the bot gives it; --sandbox routes it afterwards).
    token = resolve_token(inputs.personal_access_token, ctx.variables, ctx.vault,
                          field="personal_access_token", organization=organization.base_url)
    ctx.register_secret(token)
    client = RestClient(ctx.route(organization), PatAuthorizer(token), timeout=ctx.timeout,
                        policy=ctx.retry_policy)
    try:
        user = who_am_i(client, organization.name)
        project = client.get(f"_apis/projects/{path_segment(inputs.project)}", scope=PROJECT_READ,
                             subject=f"project {inputs.project!r} in organization {organization.name!r}")
        session = Session(name=name, scope=scope, organization=organization.name,
                          organization_url=organization.base_url, project_id=project["id"],
                          project_name=project["name"], user=user, rest=client)
        ctx.sessions.add(session)
    except BaseException:
        client.close()
        raise
    return Outputs(session=name, organization=organization.name, project_id=session.project_id,
                   project_name=session.project_name, user=user)


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
    description="Proves a personal access token against an organization and a project "
                "and keeps the connection as a local or global session for later actions.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        "INVALID_INPUT": "the organization URL, project name or token source is malformed, or "
                         "the token variable is missing",
        "CREDENTIAL_NOT_FOUND": "the vault has no such locker/credential/attribute",
        "SESSION_EXISTS": "a session of that name is already connected",
        "AUTH_FAILED": "the token is invalid, expired or revoked",
        "PERMISSION_DENIED": f"the token lacks {PROJECT_READ} or may not read the project",
        "NOT_FOUND": "the organization or the project does not exist",
        **TRANSPORT_ERRORS,
    })
