"""The three sources of a secret (a personal access token, later a client secret), the
``Credential`` input type that marks every secret input, and turning a source into a ``Secret``.

Secrets are recognised by their type, never by an input's name: the runtime, the loader,
``validate`` and input errors ask ``credential_inputs(model)`` which inputs hold one.
"""
from __future__ import annotations

import functools
import typing
from typing import TYPE_CHECKING, Annotated, Any, Callable, Mapping, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from adobot.credentials.secret import Secret
from adobot.errors import InvalidInput

if TYPE_CHECKING:
    from adobot.credentials.vault import Vault

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
SOURCE_KINDS = ("credential", "variable", "insecure")


def check_source_shape(value: Any) -> Any:
    """A clear message for the common mistakes, before the union reports each member."""
    if isinstance(value, (FromCredential, FromVariable, FromInsecure)):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"must be one of {SHAPES}; a plain string is not accepted, "
                         "so a token is never written into a bot by accident")
    kinds = [k for k in SOURCE_KINDS if k in value]
    if len(kinds) != 1 or len(value) != 1:
        raise ValueError(f"must have exactly one of {SHAPES}")
    return value


class _Mark:
    """Marks an input type, wherever the input is declared."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


# The input holds a secret: one of the three sources.
CREDENTIAL = _Mark("CREDENTIAL")
# The input may pass secret values on as they are (RunBot's variables, to a child bot).
PASSES_SECRETS = _Mark("PASSES_SECRETS")
# The type of every secret input: one of the three sources; the manifest carries x-credential.
Credential = Annotated[TokenSource, CREDENTIAL, BeforeValidator(check_source_shape),
                       Field(json_schema_extra={"x-credential": {"sources": list(SOURCE_KINDS)}})]
# A secret input that only some uses need (Connect's, per sign-in method): None, or a source.
OptionalCredential = Annotated[
    Optional[TokenSource], CREDENTIAL,
    BeforeValidator(lambda value: value if value is None else check_source_shape(value)),
    Field(json_schema_extra={"x-credential": {"sources": list(SOURCE_KINDS)}})]


def _marked(annotation: Any, mark: _Mark) -> bool:
    if typing.get_origin(annotation) is Annotated and any(
            meta is mark for meta in annotation.__metadata__):
        return True
    return any(_marked(inner, mark) for inner in typing.get_args(annotation))


def _inputs_marked(model: type[BaseModel], mark: _Mark) -> tuple[str, ...]:
    return tuple(name for name, info in model.model_fields.items()
                 if any(meta is mark for meta in info.metadata) or _marked(info.annotation, mark))


@functools.cache
def credential_inputs(model: type[BaseModel]) -> tuple[str, ...]:
    """The names of the inputs of ``model`` that hold a secret (typed ``Credential``)."""
    return _inputs_marked(model, CREDENTIAL)


@functools.cache
def secret_passing_inputs(model: type[BaseModel]) -> tuple[str, ...]:
    """The inputs that may carry a secret value as it is (marked ``PASSES_SECRETS``)."""
    return _inputs_marked(model, PASSES_SECRETS)


def sources_in(inputs: Mapping[str, Any], names: tuple[str, ...]) -> list[tuple[str, Mapping[str, Any]]]:
    """(input name, raw source) of each credential input given as a mapping in raw inputs."""
    return [(name, inputs[name]) for name in names if isinstance(inputs.get(name), Mapping)]


def clean_token(raw: object, where: str, field: str = FIELD, multiline: bool = False) -> Secret:
    """Strip a pasted newline or spaces; refuse what is still not a token (``multiline``: a
    PEM certificate, whose lines stay)."""
    if not isinstance(raw, str):
        raise InvalidInput(f"{field}: {where} does not hold text", field=field)
    token = raw.strip()
    if not token:
        raise InvalidInput(f"{field}: {where} is empty", "Give the secret itself.", field=field)
    if multiline:
        return Secret(token)
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in token):
        raise InvalidInput(f"{field}: {where} has spaces or control characters inside the token",
                           "Copy the token again: it is one word of letters and digits.",
                           field=field)
    return Secret(token)


def resolve_token(source: TokenSource, variables: Mapping[str, Any],
                  vault: Callable[[], "Vault"] | None = None, field: str = FIELD, *,
                  organization: str, multiline: bool = False) -> Secret:
    """The secret a source names, to be sent to ``organization`` (a vault credential is handed
    out only for an organization it is bound to). ``vault`` opens the vault, only when a
    credential is asked for; ``field`` is the input that named the source (said in errors)."""
    if isinstance(source, FromInsecure):
        return clean_token(source.insecure.get_secret_value(), "the insecure token", field,
                           multiline)
    if isinstance(source, FromVariable):
        if source.variable not in variables:
            raise InvalidInput(
                f"variable {source.variable!r} named by {field} is not defined",
                f"Define it, e.g. `adobot run BOT.yaml --var-env {source.variable}=ADO_PAT`.",
                field=field)
        value = variables[source.variable]
        if isinstance(value, Secret):
            value = value.reveal()
        return clean_token(value, f"variable {source.variable!r}", field, multiline)
    from adobot.credentials.vault import Vault

    ref = source.credential
    store = vault() if vault is not None else Vault()
    secret = store.get(ref.locker, ref.name, ref.attribute, organization=organization)
    return clean_token(secret.reveal(), f"credential {ref}", field, multiline)
