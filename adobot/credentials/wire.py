"""The control room's wire format for handing a connection's credential to a bot runner, and
its error envelope: one set of models that the control room answers with (and documents in its
OpenAPI) and the runner reads, so the two sides cannot drift apart."""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adobot.credentials.connections import ConnectionCredential
from adobot.credentials.secret import Secret


class ErrorDetail(BaseModel):
    code: str = Field(description="The stable error code (INVALID_INPUT, AUTH_FAILED, ...)")
    message: str = Field(description="What was wrong, naming the thing")
    hint: str = Field(description="What to do about it")
    field: Optional[str] = Field(None, description="The field, header or parameter at fault")


class ErrorBody(BaseModel):
    """Every answer that is not a success."""

    error: ErrorDetail


class CredentialRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    organization_url: Optional[str] = Field(None, description="The organization the bot names, "
                                            "if it names one: it must be the connection's")
    bot: Optional[str] = Field(None, max_length=200, description="The bot that connects (audit)")
    run: Optional[str] = Field(None, max_length=200, description="The run's id (audit)")


class CredentialAnswer(BaseModel):
    """A connection's credential for one run: the only answer that carries a secret."""

    name: str
    organization_url: str
    project: Optional[str] = None
    authentication_method: str
    tenant_id: Optional[str] = None
    client_id: Optional[str] = None
    secret: SecretStr = Field(description="For this run only: the PAT, or (authentication_method "
                              "access_token) an access token the control room signed in for")
    expires_on: Optional[float] = Field(None, description="When the access token expires (Unix "
                                        "time): ask again before then")

    @classmethod
    def of(cls, credential: ConnectionCredential) -> "CredentialAnswer":
        return cls(name=credential.name, organization_url=credential.organization_url,
                   project=credential.project,
                   authentication_method=credential.authentication_method,
                   tenant_id=credential.tenant_id, client_id=credential.client_id,
                   secret=SecretStr(credential.secret.reveal()),
                   expires_on=credential.expires_on)

    def wire(self) -> dict[str, Any]:
        """The JSON the runner receives (the secret in clear: it is what was asked for)."""
        return {**self.model_dump(mode="json"), "secret": self.secret.get_secret_value()}

    def credential(self) -> ConnectionCredential:
        return ConnectionCredential(
            name=self.name, organization_url=self.organization_url, project=self.project,
            authentication_method=self.authentication_method,
            secret=Secret(self.secret.get_secret_value()), tenant_id=self.tenant_id,
            client_id=self.client_id, expires_on=self.expires_on)
