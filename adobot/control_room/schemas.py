"""What the control room's API takes and answers: request bodies and response models. The
OpenAPI document is made from these, so it describes every answer; errors are
``credentials.wire.ErrorBody`` with the statuses each route declares (``errors``)."""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adobot.credentials.secret import Secret
from adobot.credentials.wire import ErrorBody
from adobot.errors import InvalidInput

# What each error status means in this API (every route lists the ones it can answer).
ERROR_STATUSES = {
    400: "The body cannot be read (not JSON, not a form, a field given twice)",
    401: "No API token, or one that is unknown, revoked or expired",
    403: "The token's role (or name) may not do this",
    404: "No such connection, bot, version or run",
    409: "The name or the organization is taken, or it changed meanwhile; or the run a job "
         "brought may not start yet",
    413: "The body is larger than the route takes (a route that takes none takes none)",
    415: "The body is of another content type than the route takes",
    429: "Too many failed sign-ins from this address, or bots running on the page at once "
         "(Retry-After says when to try again)",
    422: "An invalid field, or a secret the organization refused when it was tested",
    500: "The vault or the database cannot be used",
    502: "The organization could not be reached to test the secret",
}


def errors(*statuses: int, inputs: bool = True) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route, for its OpenAPI description: 401, 413 and 429 on every
    route (the guard checks the token, the body's size and failed sign-ins first), and 422 on
    every route that takes input (a path, a query or a body)."""
    always = {401, 413, 422, 429} if inputs else {401, 413, 429}
    return {status: {"model": ErrorBody, "description": ERROR_STATUSES[status]}
            for status in sorted(always | set(statuses))}


# --- request bodies ----------------------------------------------------------------------------

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewConnection(_Body):
    name: str = Field(description="3-32 letters, digits and hyphens, starting with a letter",
                      examples=["contoso-main"])
    organization: str = Field(description="The organization's name (as after dev.azure.com/), "
                                          "its URL (dev.azure.com, visualstudio.com, Azure DevOps "
                                          "Server), or the URL of a project, repository or wiki "
                                          "in it (its project is then the default project)",
                              examples=["contoso"])
    project: Optional[str] = Field(None, description="Default project of bots that connect "
                                                     "with this connection")
    authentication_method: Literal["pat", "service_principal", "managed_identity"] = Field(
        "pat", description="pat (the last resort); service_principal (an app's client secret); "
        "managed_identity (the control room's own identity: no secret at all, the choice for "
        "unattended production)")
    pat: Optional[SecretStr] = Field(None, description="pat: the personal access token")
    client_secret: Optional[SecretStr] = Field(None, description="service_principal: the app's "
                                                                 "client secret")
    tenant_id: Optional[str] = Field(None, max_length=100, description=(
        "service_principal: directory (tenant) id; managed_identity across tenants: the "
        "organization's tenant"))
    client_id: Optional[str] = Field(None, max_length=100, description=(
        "service_principal: application id; managed_identity: a user-assigned identity's "
        "client id, or across tenants the app there whose federated credential trusts the "
        "identity"))
    managed_identity_client_id: Optional[str] = Field(None, max_length=100, description=(
        "managed_identity across tenants: the user-assigned identity behind the app (default: "
        "the control room's system-assigned identity)"))
    runners: list[str] = Field(default_factory=list, description="Runner tokens (by name) that "
                               "may fetch the secret; empty: every runner")
    roles: list[Literal["runner", "administrator"]] = Field(
        default_factory=lambda: ["runner"], description="Token roles that may fetch the secret "
        "for a run (standard users never may)")


class ConnectionChanges(_Body):
    organization: Optional[str] = None
    project: Optional[str] = Field(None, description="A new default project; \"\" removes it")
    pat: Optional[SecretStr] = Field(None, description="Re-authenticate: a new token")
    client_secret: Optional[SecretStr] = Field(None, description="Re-authenticate: a new secret")
    tenant_id: Optional[str] = None
    client_id: Optional[str] = None
    runners: Optional[list[str]] = None
    roles: Optional[list[Literal["runner", "administrator"]]] = None


def secret_of(body: NewConnection | ConnectionChanges) -> Secret | None:
    """The secret a body carries (a PAT or a client secret, not both), cleaned."""
    if body.pat is not None and body.client_secret is not None:
        raise InvalidInput("give pat or client_secret, not both", field="client_secret")
    given = body.pat if body.pat is not None else body.client_secret
    if given is None:
        return None
    from adobot.credentials.sources import clean_token

    return clean_token(given.get_secret_value(), "the secret",
                       field="pat" if body.pat is not None else "client_secret")


# --- answers -----------------------------------------------------------------------------------

class Me(BaseModel):
    name: str
    role: Literal["administrator", "standard", "runner"]
    expires_at: str


class ConnectionStatus(BaseModel):
    state: Literal["connected", "failed", "unchecked"]
    reason: Optional[str] = Field(None, description="Why it failed: the error's message")
    code: Optional[str] = Field(None, description="... and its code")
    user: Optional[str] = Field(None, description="Who the secret signs in as")
    checked_at: Optional[str] = None
    headline: str = Field(description="The status in the words of the agent connectors' "
                          "pages: \"Connected as …\", \"Invalid or expired token\", \"Token "
                          "lacks Code.Read permission\", \"Organization not configured for "
                          "this connector\", \"Azure DevOps access token not configured. "
                          "Please authenticate.\"")


class ConnectionOut(BaseModel):
    """A connection as anyone may see it: never its secret."""

    name: str
    organization: str
    organization_url: str = Field(description="The only place its secret is ever sent")
    project: Optional[str] = None
    authentication_method: str
    tenant_id: Optional[str] = None
    client_id: Optional[str] = None
    identity_client_id: Optional[str] = Field(None, description="managed_identity across "
                                              "tenants: the identity behind the app")
    runners: list[str]
    roles: list[str]
    status: ConnectionStatus
    created_at: str
    updated_at: str
    secret_set_at: str


class ConnectionList(BaseModel):
    count: int
    connections: list[ConnectionOut]


class Registered(BaseModel):
    connection: ConnectionOut
    created: bool = Field(description="True: a new connection (201); False: a rotated PAT (200)")


class Removed(BaseModel):
    removed: list[str]


class AuditEntry(BaseModel):
    seq: int = Field(description="The row's number in the chain")
    at: str
    event: str
    actor: str
    role: str
    outcome: str
    connection: Optional[str] = None
    organization: Optional[str] = None
    detail: Optional[str] = None
    client: Optional[str] = None
    run: Optional[dict[str, str]] = None


class AuditEntries(BaseModel):
    count: int
    entries: list[AuditEntry]


class Finding(BaseModel):
    severity: Literal["error", "warning"]
    where: str
    line: Optional[int] = None
    step: Optional[str] = None
    action: Optional[str] = None
    code: str
    message: str
    hint: Optional[str] = None


class CheckResult(BaseModel):
    valid: bool
    errors: int
    warnings: int
    findings: list[Finding]


class RunDocument(BaseModel):
    """The document of `adobot run --json`, and its exit code."""

    model_config = ConfigDict(extra="allow")
    bot: str
    status: Literal["succeeded", "failed"]
    variables: dict[str, Any]
    steps: list[dict[str, Any]]
    error: Optional[dict[str, Any]] = None
    exit_code: int


class Catalogue(BaseModel):
    package: dict[str, Any]
    groups: list[dict[str, Any]] = Field(description="{name, actions: [manifest, ...]}")


# --- bots and runs ---------------------------------------------------------------------------

class BotVersion(BaseModel):
    name: str
    version: int
    digest: str = Field(description="SHA-256 of the bundle: the same files are one version")
    main: str
    files: Optional[dict[str, int]] = Field(None, description="The bundle's files and their "
                                            "sizes in bytes (not in a list of versions)")
    variables: list[str] = Field(description="Variables every run gives")
    connections: list[str] = Field(description="The connections it names: only runners they "
                                               "allow take its runs")
    retries: int = Field(description="Repeats after a system failure (settings.retries)")
    timeout_seconds: int
    uploaded_by: str
    uploaded_at: str


class BotList(BaseModel):
    bots: list[BotVersion]


class RunError(BaseModel):
    code: str
    message: str
    hint: Optional[str] = None
    path: Optional[str] = None
    action: Optional[str] = None


class Attempt(BaseModel):
    number: int
    runner: str
    started_at: str
    ended_at: Optional[str] = None
    state: str
    failure: Optional[Literal["business", "system"]] = None
    error: Optional[RunError] = None


class RunOut(BaseModel):
    id: str
    bot: str
    bot_version: int
    state: Literal["queued", "running", "succeeded", "failed", "cancelled", "timed_out"]
    failure: Optional[Literal["business", "system"]] = None
    priority: Literal["high", "normal", "low"]
    pool: str
    idempotency_key: Optional[str] = None
    started_by: str
    created_at: str
    started_at: Optional[str] = None
    ended_at: Optional[str] = None
    runner: Optional[str] = None
    attempt: int = Field(description="Attempts so far (the first is 1)")
    retries: int
    cancel_requested: bool
    waiting: Optional[str] = Field(None, description="Why a queued run has not started")
    error: Optional[RunError] = None
    requests: int
    steps: Optional[list[dict[str, Any]]] = Field(None, description="One run: its step table")
    outputs: Optional[dict[str, Any]] = Field(None, description="One run: its final "
                                                                "variables, secrets masked")
    log: Optional[str] = Field(None, description="One run: its log, secrets masked")
    attempts: Optional[list[Attempt]] = None


class RunList(BaseModel):
    runs: list[RunOut]


class PoolOut(BaseModel):
    name: str
    paused: bool
    runners: int = Field(description="Runners online in it")
    queued: int
    running: int


class PoolList(BaseModel):
    pools: list[PoolOut]


class PoolChange(_Body):
    paused: bool = Field(description="A paused pool's runs wait; its runners take none")


class RunnerOut(BaseModel):
    name: str
    pool: str
    concurrency: int
    version: str
    host: str
    state: Literal["online", "draining", "offline"]
    heartbeat_at: str


class RunnerList(BaseModel):
    runners: list[RunnerOut]


# --- runner machines ---------------------------------------------------------------------------

class RunnerHello(_Body):
    pool: str = Field("default", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
    concurrency: int = Field(1, ge=1, le=64)
    version: str = Field(max_length=32)
    host: str = Field(max_length=255)


class RunnerTerms(BaseModel):
    name: str = Field(description="The runner's name (its token's)")
    lease_seconds: int = Field(description="A run not renewed within it is taken back")
    heartbeat_seconds: int = Field(description="How often the runner says it is alive")
    engine: Literal["claims", "procrastinate"] = Field(
        description="How runs reach runners: claims (POST /runners/claim waits for the "
                    "pool's next run; SQLite), or procrastinate jobs read from the database "
                    "(PostgreSQL: the runner needs --database)")


class Claim(_Body):
    pool: str = Field("default", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
    wait_seconds: float = Field(20.0, ge=0, le=30, description="Wait this long for a run")
    run: str | None = Field(None, pattern=r"^[0-9a-f]{32}$", description=(
        "This run only, which a procrastinate job brought (engine procrastinate): 200 with "
        "it, 204 if it is no longer queued, 409 if it may not start yet"))


class ClaimedRun(BaseModel):
    id: str
    bot: str
    bot_version: int
    attempt: int
    timeout_seconds: int
    bundle: dict[str, Any] = Field(description="main, and files by path")
    variables: dict[str, Any] = Field(description="The run's variables (may hold secrets)")


class Heartbeat(_Body):
    holding: list[str] = Field(default_factory=list, max_length=64,
                               description="The ids of the runs the runner holds")
    draining: bool = Field(False, description="It takes no more runs (it is stopping)")


class HeartbeatAnswer(BaseModel):
    stop: list[str] = Field(description="Runs to stop: cancelled, or no longer this runner's")


class RunReport(_Body):
    attempt: int = Field(ge=1, le=2**31 - 1)
    state: Literal["succeeded", "failed", "cancelled", "timed_out"]
    error: Optional[dict[str, Any]] = None
    steps: list[dict[str, Any]] = Field(default_factory=list)
    outputs: Optional[dict[str, Any]] = None
    log: str = Field("", max_length=1_000_000)
    requests: int = Field(0, ge=0, le=2**31 - 1)


class Ended(BaseModel):
    state: str = Field(description="The run's state now (queued: it will be repeated; "
                                   "taken back: it was no longer this runner's)")


class ScheduleOut(BaseModel):
    name: str
    bot: str
    version: int | Literal["latest"]
    cron: str
    timezone: str
    priority: Literal["high", "normal", "low"]
    pool: str
    paused: bool
    next: list[str] = Field(description="Its next ticks (UTC); none while it is paused")
    variables: list[str] = Field(description="The names of the variables each run is given")
    last_run: Optional[str] = None
    last_fired_at: Optional[str] = None
    created_by: str
    created_at: str
    updated_at: str


class ScheduleList(BaseModel):
    schedules: list[ScheduleOut]
