"""The three sources of a personal access token, and turning one into a ``Secret``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from credentials.secret import Secret
from rest.errors import InvalidInput

if TYPE_CHECKING:
    from credentials.vault import Vault

FIELD = "personal_access_token"
SHAPES = ("{credential: {locker, name, attribute}}, {variable: NAME} or {insecure: VALUE}")


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class CredentialRef(_Source):
    locker: str = Field(min_length=1, description="Vault locker")
    name: str = Field(min_length=1, description="Credential in the locker")
    attribute: str = Field(min_length=1, description="Attribute of the credential, e.g. pat")

    def __str__(self) -> str:
        return f"{self.locker}/{self.name}/{self.attribute}"


class FromCredential(_Source):
    """A token stored by a control-room admin in the encrypted vault."""

    credential: CredentialRef


class FromVariable(_Source):
    """A token held by a bot variable (filled e.g. by ``--var-env NAME=ENVVAR``)."""

    variable: str = Field(min_length=1, description="Name of the bot variable")


class FromInsecure(_Source):
    """A token written in the bot file: works, but validate and run warn."""

    insecure: SecretStr


TokenSource = Union[FromCredential, FromVariable, FromInsecure]


def check_source_shape(value: Any) -> Any:
    """A clear message for the common mistakes, before the union reports each member."""
    if isinstance(value, (FromCredential, FromVariable, FromInsecure)):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"must be one of {SHAPES}; a plain string is not accepted, "
                         "so a token is never written into a bot by accident")
    kinds = [k for k in ("credential", "variable", "insecure") if k in value]
    if len(kinds) != 1 or len(value) != 1:
        raise ValueError(f"must have exactly one of {SHAPES}")
    return value


def clean_token(raw: object, where: str) -> Secret:
    """Strip a pasted newline or spaces; refuse what is still not a token."""
    if not isinstance(raw, str):
        raise InvalidInput(f"{FIELD}: {where} does not hold text", field=FIELD)
    token = raw.strip()
    if not token:
        raise InvalidInput(f"{FIELD}: {where} is empty", "Give a personal access token.",
                           field=FIELD)
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in token):
        raise InvalidInput(f"{FIELD}: {where} has spaces or control characters inside the token",
                           "Copy the token again: it is one word of letters and digits.",
                           field=FIELD)
    return Secret(token)


def resolve_token(source: TokenSource, variables: Mapping[str, Any],
                  vault: Callable[[], "Vault"] | None = None) -> Secret:
    """The token a source names. ``vault`` opens the vault, only when a credential is asked for."""
    if isinstance(source, FromInsecure):
        return clean_token(source.insecure.get_secret_value(), "the insecure token")
    if isinstance(source, FromVariable):
        if source.variable not in variables:
            raise InvalidInput(
                f"variable {source.variable!r} named by personal_access_token is not defined",
                f"Define it, e.g. `adobot run BOT.yaml --var-env {source.variable}=ADO_PAT`.",
                field=FIELD)
        value = variables[source.variable]
        if isinstance(value, Secret):
            value = value.reveal()
        return clean_token(value, f"variable {source.variable!r}")
    from credentials.vault import Vault

    ref = source.credential
    store = vault() if vault is not None else Vault()
    secret = store.get(ref.locker, ref.name, ref.attribute)
    return clean_token(secret.reveal(), f"credential {ref}")
