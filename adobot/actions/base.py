"""What every action shares: the inputs base model, session references, the context, and the
``Action`` descriptor that the registry, the runner and the manifests read."""
from __future__ import annotations

import difflib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Mapping
from urllib.parse import quote

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from adobot.actions.environment import ConnectionSource, Environment, Route, SecretSource
from adobot.actions.files import confine
from adobot.credentials.secret import Secret
from adobot.credentials.sources import credential_inputs
from adobot.errors import AdobotError, InvalidInput
from adobot.rest.retry import RetryPolicy
from adobot.sessions.session import Session
from adobot.sessions.store import SessionScopes

SESSION_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"
SessionName = Field(
    "default", pattern=SESSION_NAME_PATTERN,
    description="Session name: starts with a letter; letters, digits, '-' and '_'; at most 32.")


class ActionInputs(BaseModel):
    """Inputs are strict about names: an unknown input is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class SessionRef(BaseModel):
    """The session an action uses: a name (``ado``) or ``{name, scope}``.

    Without a scope, a local session of that name is used first, then a global one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    name: str = SessionName
    scope: Literal["local", "global"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


def session_schema(scope_default: str | None, description: str, examples: list) -> dict:
    """The JSON Schema of a session input: a name, or {name, scope} (the manifests show it)."""
    scope: dict[str, Any] = {"enum": ["local", "global"],
                             "description": "local: this bot only; global: shared by the parent "
                                            "bot and every child bot it runs"}
    if scope_default:
        scope["default"] = scope_default
    name = {"type": "string", "pattern": SESSION_NAME_PATTERN, "maxLength": 32}
    return {"description": description, "examples": examples, "anyOf": [
        {**name, "description": "a session name"},
        {"type": "object", "additionalProperties": False, "required": ["name"],
         "properties": {"name": name, "scope": scope}}]}


# How every action but Connect names its session.
SessionInput = Annotated[SessionRef, WithJsonSchema(session_schema(
    None, "Session to use: a name, or {name, scope}; without a scope a local session of that "
    "name is used first, then a global one. Default: the session named 'default'.",
    ["ado", {"name": "ado", "scope": "global"}])),
    Field(default="default", validate_default=True)]


def path_segment(value: str) -> str:
    """A name or id made safe for one URL path segment."""
    return quote(value, safe="")


class ActionOutputs(BaseModel):
    """Base of every action's outputs; ``summary`` is the one line a person reads."""

    def summary(self) -> str:
        return ""


class NoOutputs(ActionOutputs):
    pass


@dataclass
class ActionContext:
    """What the runtime hands an action beside its inputs: its environment (``env``: routing,
    secrets, connections, Entra, redaction) and this run's own state."""

    sessions: SessionScopes
    env: Environment = field(default_factory=Environment)
    variables: dict[str, Any] = field(default_factory=dict)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("adobot"))
    # A one-line progress display (a terminal), or None where only log lines make sense.
    progress: Callable[[str], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    # The folder of the running bot's file: relative paths (RunBot, ReadCsv) start there.
    bot_dir: Path = field(default_factory=Path)
    # The folders files may be read from: the top-level bot's, and those the person running
    # it allows (empty: bot_dir alone).
    allowed_dirs: tuple[Path, ...] = ()
    # Runs a child bot (path, seed variables) and returns its final variables, secrets masked.
    run_bot: Callable[[str, Mapping[str, Any]], dict[str, Any]] | None = None
    step_path: str = ""  # the path of the step being run, e.g. "4"
    # Timeouts and retry policy for the sessions this bot connects (the bot's `settings:`).
    timeout: tuple[float, float] = (10.0, 60.0)
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)

    # The environment's parts, by the names actions use.
    @property
    def route(self) -> Route:
        """Where an organization's API calls go: its own URL, or the sandbox's."""
        return self.env.route

    def register_secret(self, secret: Secret) -> None:
        """Every secret an action handles: the run masks it in all output."""
        self.env.redactor.add(secret)

    @property
    def vault(self) -> Callable[[], SecretSource]:
        return self.env.secrets

    @property
    def entra(self) -> Any:  # adobot.credentials.identity.EntraRoute | None
        return self.env.entra

    @property
    def connection(self) -> ConnectionSource:
        return self.env.connections

    @property
    def allow_plain_http(self) -> bool:
        return self.env.allow_plain_http

    def session(self, ref: SessionRef) -> Session:
        return self.sessions.find(ref.name, ref.scope)

    def file(self, path: str, field: str = "path") -> Path:
        """A file a bot names, resolved, if it is inside the folders the run allows."""
        return confine(path, self.bot_dir, self.allowed_dirs or (self.bot_dir,), field)


def create_once(ctx: ActionContext, what: str, post: Callable[[], Any],
                find: Callable[[], Any | None]) -> Any:
    """Send a create; if its answer was lost (the service may have acted), look the thing up by
    name: found, it is taken as created; not found, the create is sent again. A create is so
    never sent twice for one thing."""
    try:
        return post()
    except AdobotError as lost:
        if not lost.outcome_unknown:
            raise
        found = find()
        if found is not None:
            ctx.log.info("the answer to creating %s was lost, but it exists now: taken as "
                         "created", what)
            return found
        ctx.log.info("the answer to creating %s was lost and it does not exist: sending the "
                     "create again", what)
        return post()


def say_where_to_look(error: AdobotError, place: str) -> AdobotError:
    """For creates that cannot be looked up safely: the outcome is unknown, say where to check."""
    if not error.outcome_unknown:
        return error
    return error.derive(
        message=f"{error.message} The outcome is unknown: look at {place} before running it again.",
        hint="Check whether it was created (the link above); run again only if not.")


# Errors any action that sends requests can raise, beside its own.
TRANSPORT_ERRORS = {
    "THROTTLED": "the service throttled the requests longer than the retries could wait",
    "TIMEOUT": "the service did not answer in time",
    "NETWORK_ERROR": "the service could not be reached",
    "SERVICE_ERROR": "the service failed (5xx) or answered something that is not JSON",
}
# ... and any action that uses a connected session.
SESSION_ERRORS = {
    "SESSION_NOT_FOUND": "the session is not connected",
    "AUTH_FAILED": "the token has expired or was revoked since Connect",
    **TRANSPORT_ERRORS,
}


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    description: str
    group: str
    inputs: type[ActionInputs]
    outputs: type[ActionOutputs]
    run: Callable[[ActionContext, Any], ActionOutputs]
    errors: Mapping[str, str]  # error code -> when it happens
    # What it does to Azure DevOps (the manifest says it; MCP hints, a read-only mode and
    # confirmations read it): changes nothing there, and whether running it twice with the same
    # inputs has no further effect than running it once.
    read_only: bool
    idempotent: bool
    # It may overwrite or remove what is there (not only add): MCP's destructiveHint.
    destructive: bool = False

    def parse_inputs(self, raw: Mapping[str, Any] | None,
                     allow_plain_http: bool = False) -> ActionInputs:
        """Validate raw (already interpolated) inputs; every problem is INVALID_INPUT.
        ``allow_plain_http``: the person running the bot allows http to another host."""
        if raw is not None and not isinstance(raw, Mapping):
            raise InvalidInput(f"the inputs of {self.name} must be a mapping of input names to "
                               f"values, not {type(raw).__name__}", field="inputs")
        try:
            return self.inputs.model_validate(dict(raw or {}),
                                              context={"allow_plain_http": allow_plain_http})
        except ValidationError as exc:
            raise input_error(self, exc) from None


def input_error(action: Action, exc: ValidationError) -> InvalidInput:
    problems = [describe_problem(action, err) for err in exc.errors()]
    first = exc.errors()[0]
    field_name = str(first["loc"][0]) if first["loc"] else None
    message = "; ".join(text for _, text in problems)
    hint = problems[0][0] or f"See `adobot manifest {action.name}` for the inputs it takes."
    return InvalidInput(f"{action.name}: {message}", hint, field=field_name)


def describe_problem(action: Action, err: Mapping[str, Any]) -> tuple[str, str]:
    """(hint, message) for one pydantic error, naming the input and never echoing secrets."""
    loc = [str(part) for part in err["loc"]]
    name = ".".join(loc) if loc else "inputs"
    kind = err["type"]
    known = list(action.inputs.model_fields)
    if kind == "missing":
        return "", f"input {name!r} is required"
    if kind == "extra_forbidden" and len(loc) == 1:
        close = difflib.get_close_matches(loc[0], known, n=1)
        hint = f"Did you mean {close[0]!r}?" if close else f"{action.name} takes: {', '.join(known)}."
        return hint, f"{name!r} is not an input of {action.name}"
    text = str(err["msg"]).removeprefix("Value error, ")
    if loc and loc[0] in credential_inputs(action.inputs):
        return "", f"input {name!r}: {text}"  # never show the value
    value = err.get("input")
    shown = f" (got {value!r})" if isinstance(value, (str, int, float, bool)) and \
        len(repr(value)) < 80 and str(value) not in text else ""
    return "", f"input {name!r}: {text}{shown}"
