"""Named connections: an organization, a default project and a sign-in secret under one name.

Admins keep them (``adobot connection``, the control room); bots name them (Connect's
``connection``). They live in the vault's document, so they share its lock, atomic writes and
integrity seal; each secret is sealed to its connection and its one organization, and is handed
out only for that organization. Saving proves the secret first (``check``, given by the caller:
this module sends nothing) and saves nothing if the proof fails.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

from adobot.credentials.secret import Secret
from adobot.credentials.vault import Vault, connection_place, organization_key
from adobot.rest.errors import (
    AdobotError,
    AlreadyExists,
    CredentialNotFound,
    InvalidInput,
    PermissionDenied,
)
from adobot.rest.urls import ORGANIZATION_NAME, OrganizationUrl, parse_organization_url

CONNECTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{2,31}$")
METHODS = ("pat", "service_principal")
# Which token roles may fetch a connection's secret for a run (control_room.tokens.ROLES): a
# standard user never may.
FETCHING_ROLES = ("runner", "administrator")
NAME_TAKEN = "A connection with this name already exists"
ORGANIZATION_TAKEN = "A connection for this organization already exists"


def check_connection_name(name: object, what: str = "connection") -> str:
    """A connection's name (and a token's or runner's: the same rules)."""
    if not isinstance(name, str) or not CONNECTION_NAME.match(name):
        raise InvalidInput(f"{what} name {name!r} is not valid",
                           "Use 3-32 letters, digits and hyphens, starting with a letter.",
                           field="name")
    return name


def organization_of(organization: object) -> OrganizationUrl:
    """An organization given as its name (as after dev.azure.com/) or as a full URL
    (visualstudio.com, Azure DevOps Server; http only to this machine)."""
    if isinstance(organization, str) and "://" not in organization:
        if not ORGANIZATION_NAME.match(organization):
            raise InvalidInput(
                f"organization {organization!r} is not a valid organization name",
                "Give the name after https://dev.azure.com/ (1-50 letters, digits and hyphens, "
                "starting with a letter or digit, no trailing hyphen), or the full URL for "
                "visualstudio.com and Azure DevOps Server.", field="organization")
        organization = f"https://dev.azure.com/{organization}"
    try:
        return parse_organization_url(organization)
    except InvalidInput as bad:
        raise bad.derive(field="organization") from None


@dataclass(frozen=True)
class Status:
    state: str = "unchecked"          # connected | failed | unchecked
    reason: str | None = None         # why it failed: the error's message
    code: str | None = None           # and its code
    user: str | None = None           # who the secret signs in as
    checked_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "reason": self.reason, "code": self.code,
                "user": self.user, "checked_at": self.checked_at}


@dataclass(frozen=True)
class Connection:
    """A connection as anyone may see it: never its secret."""

    name: str
    organization: str        # as the admin gave it
    organization_url: str    # the base URL its secret may be sent to, and only there
    project: str | None = None
    authentication_method: str = "pat"
    tenant_id: str | None = None
    client_id: str | None = None
    runners: tuple[str, ...] = ()             # runner tokens that may fetch it (none: any)
    roles: tuple[str, ...] = ("runner",)      # token roles that may fetch it
    status: Status = field(default_factory=Status)
    created_at: str = ""
    updated_at: str = ""
    secret_set_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "organization": self.organization,
                "organization_url": self.organization_url, "project": self.project,
                "authentication_method": self.authentication_method,
                "tenant_id": self.tenant_id, "client_id": self.client_id,
                "runners": list(self.runners), "roles": list(self.roles),
                "status": self.status.to_dict(), "created_at": self.created_at,
                "updated_at": self.updated_at, "secret_set_at": self.secret_set_at}

    @classmethod
    def from_record(cls, name: str, item: Mapping[str, Any]) -> "Connection":
        return cls(name=name, organization=item["organization"],
                   organization_url=item["organization_url"], project=item.get("project"),
                   authentication_method=item.get("authentication_method", "pat"),
                   tenant_id=item.get("tenant_id"), client_id=item.get("client_id"),
                   runners=tuple(item.get("runners") or ()),
                   roles=tuple(item.get("roles") or ("runner",)),
                   status=Status(**(item.get("status") or {})),
                   created_at=item.get("created_at", ""), updated_at=item.get("updated_at", ""),
                   secret_set_at=item.get("secret_set_at", ""))

    def record(self, sealed: str) -> dict[str, Any]:
        data = self.to_dict()
        del data["name"]
        return {**data, "secret": sealed}


@dataclass(frozen=True)
class ConnectionCredential:
    """What Connect needs of a connection: where, as whom, and the secret (never printed)."""

    name: str
    organization_url: str
    project: str | None
    authentication_method: str
    secret: Secret
    tenant_id: str | None = None
    client_id: str | None = None


# Proves a secret for a connection; returns the display name it signs in as. Raises the
# service's refusal (AUTH_FAILED, PERMISSION_DENIED, NOT_FOUND, ...) with the cause named.
Check = Callable[[Connection, Secret], str]


def check_access_lists(runners: Iterable[str], roles: Iterable[str]) -> tuple[tuple[str, ...],
                                                                              tuple[str, ...]]:
    runners, roles = tuple(dict.fromkeys(runners)), tuple(dict.fromkeys(roles))
    for runner in runners:  # a runner is named by its token's name: the same rules
        try:
            check_connection_name(runner, "runner")
        except InvalidInput as bad:
            raise bad.derive(field="runners", hint="Name the runners by their token names "
                             "(3-32 letters, digits and hyphens, starting with a letter).") \
                from None
    for role in roles:
        if role not in FETCHING_ROLES:
            why = ("standard users never receive a secret" if role == "standard"
                   else f"the roles that may fetch a secret are {', '.join(FETCHING_ROLES)}")
            raise InvalidInput(f"role {role!r} cannot be given a connection's secret: {why}",
                               "Use runner (bot runners) and administrator.", field="roles")
    if not roles:
        raise InvalidInput("roles is empty: no one could use the connection",
                           "Give runner, administrator or both.", field="roles")
    return runners, roles


class Connections:
    """The vault's connections. ``check`` proves a secret before it is saved."""

    def __init__(self, vault: Vault, check: Check | None = None) -> None:
        self.vault = vault
        self.check = check

    # --- reading ---------------------------------------------------------------------------

    def list(self) -> list[Connection]:
        doc, _ = self.vault.snapshot()
        return [Connection.from_record(name, item)
                for name, item in sorted((doc.get("connections") or {}).items())]

    def get(self, name: str) -> Connection:
        doc, _ = self.vault.snapshot()
        return Connection.from_record(name, _find(doc, name))

    def credential(self, name: str, organization_url: str | None = None) -> ConnectionCredential:
        """A connection's secret, for its own organization only: ``organization_url`` (a bot's
        own, if it gave one) must be the connection's."""
        connection, credential = self.opened(name)
        check_destination(connection, organization_url)
        return credential

    def opened(self, name: str) -> tuple[Connection, ConnectionCredential]:
        """A connection and its credential, from one read of the vault (for callers that check
        the connection's own limits before handing the credential out)."""
        doc, keys = self.vault.snapshot()
        return _opened(doc, keys, name)

    # --- writing ---------------------------------------------------------------------------

    def add(self, name: str, organization: str, secret: Secret, *, project: str | None = None,
            authentication_method: str = "pat", tenant_id: str | None = None,
            client_id: str | None = None, runners: Iterable[str] = (),
            roles: Iterable[str] = ("runner",)) -> Connection:
        """Prove, then save a new connection; nothing is saved if either fails."""
        check_connection_name(name)
        org = organization_of(organization)
        _check_method(authentication_method, tenant_id, client_id)
        runners, roles = check_access_lists(runners, roles)
        now = _now()
        connection = Connection(name=name, organization=organization,
                                organization_url=org.base_url, project=project,
                                authentication_method=authentication_method,
                                tenant_id=tenant_id, client_id=client_id, runners=runners,
                                roles=roles, created_at=now, updated_at=now, secret_set_at=now)
        self._refuse_taken(self.vault.snapshot()[0], connection)  # before anything is sent
        connection = self._proved(connection, secret)
        with self.vault.transaction() as (doc, keys):
            self._refuse_taken(doc, connection)  # another admin may have saved one meanwhile
            doc.setdefault("connections", {})[name] = connection.record(
                keys.seal(secret.reveal(), connection_place(name, connection.organization_url)))
        return connection

    def edit(self, name: str, *, organization: str | None = None, project: Any = ...,
             secret: Secret | None = None, tenant_id: str | None = None,
             client_id: str | None = None, runners: Iterable[str] | None = None,
             roles: Iterable[str] | None = None) -> Connection:
        """Change a connection. A new organization, project or secret is proved first (with
        the new secret, or the saved one); ``project=None`` removes the default project. Only
        the fields given change: edits of other fields made meanwhile by other admins stay."""
        doc, keys = self.vault.snapshot()
        current, saved = _opened(doc, keys, name)
        sealed_before = _find(doc, name)["secret"]
        now = _now()
        changes: dict[str, Any] = {"updated_at": now}
        if organization is not None:
            changes.update(organization=organization,
                           organization_url=organization_of(organization).base_url)
        if project is not ...:
            changes["project"] = project
        if tenant_id is not None:
            changes["tenant_id"] = tenant_id
        if client_id is not None:
            changes["client_id"] = client_id
        if "tenant_id" in changes or "client_id" in changes:
            _check_method(current.authentication_method, changes.get("tenant_id", current.tenant_id),
                          changes.get("client_id", current.client_id))
        given_runners, given_roles = check_access_lists(
            current.runners if runners is None else runners,
            current.roles if roles is None else roles)
        if runners is not None:
            changes["runners"] = given_runners
        if roles is not None:
            changes["roles"] = given_roles
        if secret is not None:
            changes["secret_set_at"] = now
        target = replace(current, **changes)
        moved = target.organization_url.lower() != current.organization_url.lower()
        if moved:
            self._refuse_taken(doc, target, editing=name)
        needs_proof = secret is not None or _basis(target) != _basis(current)
        if needs_proof:
            changes["status"] = self._proved(
                target, secret or saved.secret).status
        with self.vault.transaction() as (doc, keys):
            item = _find(doc, name)
            fresh = Connection.from_record(name, item)
            if needs_proof and (_basis(fresh) != _basis(current) or (
                    secret is None and item["secret"] != sealed_before)):
                raise AlreadyExists(
                    f"connection {name!r} was changed by someone else while this edit was being "
                    "checked; nothing was saved", "Look at it again and repeat the edit.",
                    field="name")
            if moved:
                self._refuse_taken(doc, target, editing=name)
            merged = replace(fresh, **changes)
            place = connection_place(name, merged.organization_url)
            clear = secret.reveal() if secret is not None else keys.open(
                item["secret"], connection_place(name, fresh.organization_url))
            doc["connections"][name] = merged.record(keys.seal(clear, place))
        return merged

    def test(self, name: str) -> Connection:
        """Prove a saved connection again and record its status (connected, or failed and
        why); the secret is not changed either way."""
        connection, credential = self.opened(name)
        try:
            connection = self._proved(connection, credential.secret)
        except AdobotError as failed:
            connection = replace(connection, status=Status(
                "failed", failed.message, failed.code, checked_at=_now()))
        with self.vault.transaction() as (doc, _):
            item = _find(doc, name)
            if item["organization_url"] == connection.organization_url:
                item["status"] = connection.status.to_dict()
        return connection

    def remove(self, names: Iterable[str]) -> list[str]:
        """Remove connections, all or none: an unknown name removes nothing."""
        names = list(dict.fromkeys(names))
        if not names:
            raise InvalidInput("name the connections to remove", field="name")
        with self.vault.transaction() as (doc, _):
            missing = [name for name in names if name not in (doc.get("connections") or {})]
            if missing:
                raise _not_found(missing)
            for name in names:
                del doc["connections"][name]
        return names

    def register(self, organization: str, secret: Secret) -> tuple[Connection, bool]:
        """The CI/CD registration: rotate the PAT of the organization's connection, or create
        one named after the organization. Returns (connection, created)."""
        org = organization_of(organization)
        try:
            return self._register_once(org, organization, secret)
        except AlreadyExists:  # another registration of it landed meanwhile: rotate that one
            return self._register_once(org, organization, secret)

    def _register_once(self, org: OrganizationUrl, organization: str,
                       secret: Secret) -> tuple[Connection, bool]:
        known = self.list()
        key = organization_key(org.base_url)
        existing = [c for c in known if organization_key(c.organization_url) == key]
        if existing:
            return self.edit(existing[0].name, secret=secret), False
        return self.add(_name_for(org.name, {c.name for c in known}), organization, secret), True

    # --- helpers ---------------------------------------------------------------------------

    def _proved(self, connection: Connection, secret: Secret) -> Connection:
        if self.check is None:
            raise InvalidInput("this connection store cannot prove secrets",
                               "Give it a check.")
        user = self.check(connection, secret)
        return replace(connection, status=Status("connected", user=user, checked_at=_now()))

    @staticmethod
    def _refuse_taken(doc: Mapping[str, Any], connection: Connection,
                      editing: str | None = None) -> None:
        connections = doc.get("connections") or {}
        if editing is None and connection.name in connections:
            raise AlreadyExists(f"{NAME_TAKEN}: {connection.name!r}", "Choose another name.",
                                field="name")
        key = organization_key(connection.organization_url)
        for other, item in connections.items():
            if other != editing and organization_key(item["organization_url"]) == key:
                raise AlreadyExists(
                    f"{ORGANIZATION_TAKEN}: {other!r} ({item['organization_url']})",
                    f"Edit or delete the existing one: `adobot connection edit {other}` or "
                    f"`adobot connection remove {other}`.", field="organization")


def _basis(connection: Connection) -> tuple[Any, ...]:
    """What a proof of a connection's secret was made against."""
    return (connection.organization_url.lower(), connection.project, connection.tenant_id,
            connection.client_id)


def check_destination(connection: Connection, organization_url: str | None) -> None:
    """A connection's secret goes to its own organization and nowhere else."""
    if organization_url is None:
        return
    if organization_key(organization_url) != organization_key(connection.organization_url):
        raise PermissionDenied(
            f"connection {connection.name!r} may be used only with its own organization "
            f"{connection.organization_url}, not {organization_url}; nothing was sent",
            "Leave organization_url out: the connection says where it goes.",
            field="organization_url")


def _check_method(method: str, tenant_id: str | None, client_id: str | None) -> None:
    if method not in METHODS:
        raise InvalidInput(f"authentication_method {method!r} is not one a connection holds",
                           f"Use one of: {', '.join(METHODS)}.", field="authentication_method")
    app = (tenant_id, client_id)
    if method == "service_principal" and not all(app):
        raise InvalidInput("a service_principal connection needs tenant_id and client_id",
                           field="client_id" if tenant_id else "tenant_id")
    if method == "pat" and any(app):
        raise InvalidInput("tenant_id and client_id go with service_principal, not pat",
                           field="tenant_id")


def _opened(doc: Mapping[str, Any], keys: Any,
            name: str) -> tuple[Connection, ConnectionCredential]:
    item = _find(doc, name)
    connection = Connection.from_record(name, item)
    assert keys is not None  # a connection exists, so the vault has its key
    secret = Secret(keys.open(item["secret"], connection_place(name,
                                                               connection.organization_url)))
    return connection, ConnectionCredential(
        name, connection.organization_url, connection.project,
        connection.authentication_method, secret, connection.tenant_id, connection.client_id)


def _find(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    item = (doc.get("connections") or {}).get(name)
    if item is None:
        raise _not_found([name])
    return item


def _not_found(names: list[str]) -> CredentialNotFound:
    listed = ", ".join(repr(name) for name in names)
    return CredentialNotFound(
        f"connection {listed} was not found" if len(names) == 1
        else f"connections {listed} were not found; nothing was removed",
        "Ask a control-room admin to create it (`adobot connection add`), or check the name "
        "(`adobot connection list`).", field="connection")


def _name_for(organization: str, taken: set[str]) -> str:
    """A connection name for an organization registered by CI/CD: the organization's name,
    made a valid connection name, with a number if that is taken."""
    base = re.sub(r"[^A-Za-z0-9-]", "-", organization)[:28].strip("-") or "org"
    if not base[0].isalpha():
        base = f"ado-{base}"[:28]
    base = base.ljust(3, "0")
    name, number = base, 2
    while name.lower() in {t.lower() for t in taken}:
        name, number = f"{base}-{number}", number + 1
    return name


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
