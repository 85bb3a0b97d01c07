"""Named connections: an organization, a default project and a sign-in secret under one name.

Admins keep them (``adobot connection``, the control room); bots name them (Connect's
``connection``). They live in the control room's store (``adobot.store``); each secret is
sealed there with the vault's key, bound to its connection and its one organization, and is
handed out only for that organization. Saving proves the secret first (``check``, given by the
caller: this module sends nothing) and saves nothing if the proof fails.
"""
from __future__ import annotations

import datetime as dt
import re
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from adobot.credentials.secret import Secret
from adobot.credentials.vault import Vault, connection_place, open_sealed
from adobot.errors import (
    AdobotError,
    AlreadyExists,
    CredentialNotFound,
    InvalidInput,
    PermissionDenied,
    VaultError,
)
from adobot.rest.urls import (
    ORGANIZATION_NAME,
    OrganizationUrl,
    parse_organization_url,
    same_organization,
)

if TYPE_CHECKING:  # the store is imported where it is used: a bot's run never needs it
    from adobot.store.records import ConnectionRepository, Taken

CONNECTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{2,31}$")
METHODS = ("pat", "service_principal", "managed_identity")
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


def named_in(organization: object) -> tuple[OrganizationUrl, str | None]:
    """An organization as admins name it, and the project the name carries if it carries one:
    its name, its dev.azure.com or visualstudio.com URL, or the URL of a project, repository or
    wiki in it (``https://dev.azure.com/{org}/{project}/_git/{repo}``,
    ``https://{org}.visualstudio.com/{project}/_git/{repo}``,
    ``https://dev.azure.com/{org}/{project}/_wiki/wikis/{wiki}``)."""
    from urllib.parse import unquote, urlsplit

    if isinstance(organization, str) and "://" in organization:
        try:
            parts = urlsplit(organization.strip())
        except ValueError:
            parts = None
        if parts and parts.scheme == "https" and parts.username is None and \
                parts.password is None:
            host = (parts.hostname or "").lower()
            path = [unquote(s) for s in parts.path.split("/") if s]
            base, rest = None, path
            if host == "dev.azure.com" and len(path) >= 2:
                base, rest = f"https://dev.azure.com/{path[0]}", path[1:]
            elif host.endswith(".visualstudio.com"):
                rest = path[1:] if path and path[0].lower() == "defaultcollection" else path
                base = f"https://{host}" if rest else None
            if base is not None:  # a project (or _git, _wiki… of the organization) follows
                return organization_of(base), None if rest[0].startswith("_") else rest[0]
    return organization_of(organization), None


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


# A failed connection's headline, by the code of its last test's refusal.
HEADLINES = {"AUTH_FAILED": "Invalid or expired token",
             "PERMISSION_DENIED": "Token lacks Code.Read permission",
             "NOT_FOUND": "Organization not configured for this connector"}


@dataclass(frozen=True)
class Status:
    state: str = "unchecked"          # connected | failed | unchecked
    reason: str | None = None         # why it failed: the error's message
    code: str | None = None           # and its code
    user: str | None = None           # who the secret signs in as
    checked_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "reason": self.reason, "code": self.code,
                "user": self.user, "checked_at": self.checked_at, "headline": self.headline}

    @property
    def headline(self) -> str:
        """The status in the words admins know from the agent connectors' pages."""
        if self.state == "connected":
            return f"Connected as {self.user}"
        if self.state == "unchecked":
            return "Azure DevOps access token not configured. Please authenticate."
        return HEADLINES.get(self.code or "", "Azure DevOps could not be reached: test again")


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
    identity_client_id: str | None = None     # managed_identity across tenants: which identity
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
                "identity_client_id": self.identity_client_id,
                "runners": list(self.runners), "roles": list(self.roles),
                "status": self.status.to_dict(), "created_at": self.created_at,
                "updated_at": self.updated_at, "secret_set_at": self.secret_set_at}

    @classmethod
    def from_record(cls, name: str, item: Mapping[str, Any]) -> "Connection":
        return cls(name=name, organization=item["organization"],
                   organization_url=item["organization_url"], project=item.get("project"),
                   authentication_method=item.get("authentication_method", "pat"),
                   tenant_id=item.get("tenant_id"), client_id=item.get("client_id"),
                   identity_client_id=item.get("identity_client_id"),
                   runners=tuple(item.get("runners") or ()),
                   roles=tuple(item.get("roles") or ("runner",)),
                   status=Status(**(item.get("status") or {})),
                   created_at=item.get("created_at", ""), updated_at=item.get("updated_at", ""),
                   secret_set_at=item.get("secret_set_at", ""))

    def with_secret(self, secret: Secret) -> "ConnectionCredential":
        """What Connect needs of it, with its (opened) secret."""
        return ConnectionCredential(
            self.name, self.organization_url, self.project, self.authentication_method, secret,
            self.tenant_id, self.client_id, identity_client_id=self.identity_client_id)

    def record(self, sealed: str) -> dict[str, Any]:
        data = self.to_dict()
        del data["name"]
        return {**data, "secret": sealed}


# What a run is handed for a connection that signs in with Entra: an access token the control
# room signed in for, never the identity's own secret.
ACCESS_TOKEN = "access_token"
# A token handed out has at least this long to live (a runner renews 5 minutes before the end).
TOKEN_LEFT_SECONDS = 600.0


@dataclass(frozen=True)
class ConnectionCredential:
    """What Connect needs of a connection: where, as whom, and the secret (never printed):
    a PAT, an app's client secret, or (``ACCESS_TOKEN``) an access token and its end."""

    name: str
    organization_url: str
    project: str | None
    authentication_method: str
    secret: Secret
    tenant_id: str | None = None
    client_id: str | None = None
    expires_on: float | None = None
    identity_client_id: str | None = None


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
    """Connections in the control room's store, their secrets sealed with the vault's key.
    ``check`` proves a secret before it is saved; ``entra``: where Entra sign-in goes (the
    sandbox's ``EntraRoute``; None: Microsoft's)."""

    def __init__(self, repository: "ConnectionRepository", vault: Vault,
                 check: Check | None = None, entra: Any = None) -> None:
        self.repository = repository
        self.vault = vault
        self.check = check
        self.entra = entra
        self._keys: Any = None
        # Access tokens signed in for runs, by connection (and its secret's age): reused while
        # they have TOKEN_LEFT_SECONDS to live.
        self._tokens: dict[tuple[Any, ...], tuple[Secret, float]] = {}
        self._tokens_lock = threading.Lock()

    # --- reading ---------------------------------------------------------------------------

    def list(self) -> list[Connection]:
        return [Connection.from_record(item["name"], item) for item in self.repository.list()]

    def get(self, name: str) -> Connection:
        return Connection.from_record(name, self._find(name))

    def credential(self, name: str, organization_url: str | None = None) -> ConnectionCredential:
        """A connection's secret, for its own organization only: ``organization_url`` (a bot's
        own, if it gave one) must be the connection's."""
        connection, credential = self.opened(name)
        check_destination(connection, organization_url)
        return credential

    def handed_to(self, name: str, caller: str, role: str,
                  organization_url: str | None = None) -> ConnectionCredential:
        """A connection's secret for a run by ``caller`` (a token's name, or the control room's
        own pool) with ``role``: refused unless the connection allows the role and, for a
        runner, that runner; and only for its own organization."""
        connection, credential = self.opened(name)
        if role not in connection.roles:
            why = ("standard users never receive a secret" if role == "standard"
                   else f"connection {name!r} is open to {', '.join(connection.roles)} "
                        "tokens only")
            raise PermissionDenied(f"token {caller!r} ({role}) may not fetch the credential "
                                   f"of connection {name!r}: {why}",
                                   "Run the bot on a bot runner the connection allows.")
        if role == "runner" and connection.runners and caller not in connection.runners:
            raise PermissionDenied(f"runner {caller!r} may not use connection {name!r}: it is "
                                   f"limited to {', '.join(connection.runners)}",
                                   "Run the bot on one of those runners, or ask an admin to "
                                   "add this one.")
        check_destination(connection, organization_url)
        return self._short_lived(connection, credential)

    def _short_lived(self, connection: Connection,
                     credential: ConnectionCredential) -> ConnectionCredential:
        """What leaves the control room for a run: a PAT as it is (there is nothing else); for
        an identity that signs in with Entra (an app, the control room's managed identity), an
        access token of at most an hour that the control room signs in for. The client secret
        stays here."""
        if credential.authentication_method == "pat":
            return credential
        key = (connection.name, connection.secret_set_at, connection.authentication_method,
               connection.tenant_id, connection.client_id, connection.identity_client_id)
        with self._tokens_lock:
            held = self._tokens.get(key)
        if held is None or held[1] - time.time() < TOKEN_LEFT_SECONDS:
            held = sign_in(credential, self.entra)()
            with self._tokens_lock:
                self._tokens[key] = held
        token, expires_on = held
        return replace(credential, authentication_method=ACCESS_TOKEN, secret=token,
                       expires_on=expires_on)

    def opened(self, name: str) -> tuple[Connection, ConnectionCredential]:
        """A connection and its credential, from one read (for callers that check the
        connection's own limits before handing the credential out)."""
        item = self._find(name)
        connection = Connection.from_record(name, item)
        secret = Secret(self._open(item))
        return connection, connection.with_secret(secret)

    # --- writing ---------------------------------------------------------------------------

    def add(self, name: str, organization: str, secret: Secret | None, *,
            project: str | None = None,
            authentication_method: str = "pat", tenant_id: str | None = None,
            client_id: str | None = None, runners: Iterable[str] = (),
            roles: Iterable[str] = ("runner",),
            identity_client_id: str | None = None) -> Connection:
        """Prove, then save a new connection; nothing is saved if either fails. A
        managed_identity connection holds no secret (``secret`` None): the control room's own
        identity signs in."""
        check_connection_name(name)
        org, named_project = named_in(organization)
        if named_project is not None:  # a project's, repository's or wiki's URL
            organization, project = org.base_url, project or named_project
        _check_method(authentication_method, tenant_id, client_id, identity_client_id, secret)
        if secret is None:
            if authentication_method != "managed_identity":
                raise InvalidInput(f"a {authentication_method} connection needs its secret",
                                   field="pat" if authentication_method == "pat"
                                   else "client_secret")
            secret = Secret("")  # sealed as nothing: every connection's row holds a secret
        runners, roles = check_access_lists(runners, roles)
        now = _now()
        connection = Connection(name=name, organization=organization,
                                organization_url=org.base_url, project=project,
                                authentication_method=authentication_method,
                                tenant_id=tenant_id, client_id=client_id,
                                identity_client_id=identity_client_id, runners=runners,
                                roles=roles, created_at=now, updated_at=now, secret_set_at=now)
        from adobot.store.records import Taken

        self._refuse_taken(connection)  # before anything is sent
        connection = self._proved(connection, secret)
        try:  # the database refuses a name or organization another admin took meanwhile
            self.repository.insert(self._row(connection, secret.reveal()))
        except Taken as taken:
            raise _taken_error(taken, connection.name) from None
        return connection

    def edit(self, name: str, *, organization: str | None = None, project: Any = ...,
             secret: Secret | None = None, tenant_id: str | None = None,
             client_id: str | None = None, runners: Iterable[str] | None = None,
             roles: Iterable[str] | None = None) -> Connection:
        """Change a connection. A new organization, project or secret is proved first (with
        the new secret, or the saved one; a new organization needs a new secret, since the
        saved one goes only to its own); ``project=None`` removes the default project. Only
        the fields given change: edits of other fields made meanwhile by other admins stay,
        but an edit proved against a connection that changed meanwhile is refused."""
        item = self._find(name)
        current = Connection.from_record(name, item)
        sealed_before = item["secret"]
        now = _now()
        changes: dict[str, Any] = {"updated_at": now}
        if organization is not None:
            org, named_project = named_in(organization)
            if named_project is not None:
                organization = org.base_url
                project = named_project if project is ... else project
            changes.update(organization=organization, organization_url=org.base_url)
        if project is not ...:
            changes["project"] = project
        if tenant_id is not None:
            changes["tenant_id"] = tenant_id
        if client_id is not None:
            changes["client_id"] = client_id
        if "tenant_id" in changes or "client_id" in changes:
            _check_method(current.authentication_method, changes.get("tenant_id", current.tenant_id),
                          changes.get("client_id", current.client_id),
                          current.identity_client_id, secret)
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
            self._refuse_taken(target, editing=name)
            if secret is None and current.authentication_method != "managed_identity":
                # The saved secret was sealed for the old organization and goes nowhere else:
                # not even to prove the new one. (A managed identity holds none.)
                raise InvalidInput(
                    f"moving connection {name!r} to {target.organization_url} needs a new "
                    "secret in the same edit: its saved secret is never sent to another "
                    "organization", "Give the new organization's PAT (pat, or --secret) with "
                    "the organization.", field="pat")
        needs_proof = secret is not None or _basis(target) != _basis(current)
        if needs_proof:
            changes["status"] = self._proved(
                target, secret or Secret(self._open(item))).status
        from adobot.store.records import Taken

        for _ in range(_WRITE_TRIES):
            fresh = Connection.from_record(name, item)
            if needs_proof and (_basis(fresh) != _basis(current) or (
                    secret is None and item["secret"] != sealed_before)):
                raise AlreadyExists(
                    f"connection {name!r} was changed by someone else while this edit was being "
                    "checked; nothing was saved", "Look at it again and repeat the edit.",
                    field="name")
            merged = replace(fresh, **changes)
            clear = secret.reveal() if secret is not None else self._open(item)
            try:
                if self.repository.update(name, item["version"], self._row(merged, clear)):
                    return merged
            except Taken as taken:
                raise _taken_error(taken, name) from None
            item = self._find(name)  # someone wrote it meanwhile: apply the changes to theirs
        raise AlreadyExists(f"connection {name!r} is being changed by others too often to save "
                            "this edit; nothing was saved", "Repeat the edit.", field="name")

    def test(self, name: str) -> Connection:
        """Prove a saved connection again and record its status (connected, or failed and
        why); the secret is not changed either way."""
        connection, credential = self.opened(name)
        try:
            connection = self._proved(connection, credential.secret)
        except AdobotError as failed:
            connection = replace(connection, status=Status(
                "failed", failed.message, failed.code, checked_at=_now()))
        self.repository.set_status(name, same_organization(connection.organization_url),
                                   connection.status.to_dict())
        return connection

    def remove(self, names: Iterable[str]) -> list[str]:
        """Remove connections, all or none: an unknown name removes nothing."""
        names = list(dict.fromkeys(names))
        if not names:
            raise InvalidInput("name the connections to remove", field="name")
        missing = self.repository.delete(names)
        if missing:
            raise _not_found(missing)
        return names

    def register(self, organization: str, secret: Secret) -> tuple[Connection, bool]:
        """The CI/CD registration: rotate the PAT of the organization's connection, or create
        one named after the organization. Returns (connection, created)."""
        org, _ = named_in(organization)
        try:
            return self._register_once(org, organization, secret)
        except AlreadyExists:  # another registration of it landed meanwhile: rotate that one
            return self._register_once(org, organization, secret)

    def _register_once(self, org: OrganizationUrl, organization: str,
                       secret: Secret) -> tuple[Connection, bool]:
        existing = self.repository.find_organization(same_organization(org.base_url))
        if existing is not None:
            return self.edit(existing["name"], secret=secret), False
        taken = {item["name"] for item in self.repository.list()}
        return self.add(_name_for(org.name, taken), organization, secret), True

    def reseal(self, old: Any, new: Any) -> int:
        """A key rotation's first half (``vault rotate-key``, before the vault changes key):
        each secret sealed under the new key too, beside the one sealed under the old."""
        count = 0
        for item in self.repository.list(secrets=True):
            place = connection_place(item["name"], item["organization_url"])
            row = {**item, "secret_next": new.seal(self._open(item, old), place),
                   "key_id_next": new.key_id}
            if not self.repository.update(item["name"], item["version"], row):
                raise VaultError(f"connection {item['name']!r} changed during the key rotation",
                                 "Run `adobot vault rotate-key` again.")
            count += 1
        return count

    def promote(self) -> int:
        """A key rotation's second half, once the vault has the new key: the secrets sealed
        under it become the secrets (done again harmlessly; reads manage without it)."""
        keys = self.vault.keys()
        self._keys = keys
        count = 0
        for item in self.repository.list(secrets=True):
            if item["key_id_next"] == keys.key_id and item["key_id"] != keys.key_id:
                row = {**item, "secret": item["secret_next"], "key_id": keys.key_id,
                       "secret_next": None, "key_id_next": None}
                count += self.repository.update(item["name"], item["version"], row)
        return count

    # --- helpers ---------------------------------------------------------------------------

    def _find(self, name: str) -> dict[str, Any]:
        item = self.repository.find(name)
        if item is None:
            raise _not_found([name])
        return item

    def _sealing_keys(self, item: Mapping[str, Any]) -> Any:
        """The vault's keys for reading ``item``: read once, and again when the row was sealed
        with a key the cached one is not (the vault's key was rotated meanwhile)."""
        if self._keys is None or self._keys.key_id not in (item["key_id"], item["key_id_next"]):
            self._keys = self.vault.keys()
        return self._keys

    def _open(self, item: Mapping[str, Any], keys: Any = None) -> str:
        """A row's secret, opened with ``keys`` (default: the vault's), from whichever of its
        two seals they open (mid-rotation, the new one may be the vault's already)."""
        return open_sealed(keys or self._sealing_keys(item), item, "secret",
                           connection_place(item["name"], item["organization_url"]),
                           f"the secret of connection {item['name']!r}",
                           "Give the control room the vault key it was saved with "
                           "(ADOBOT_VAULT_KEY), or re-authenticate the connection.")

    def _row(self, connection: Connection, clear: str) -> dict[str, Any]:
        """The row of a connection whose secret is ``clear``, sealed with the vault's key as it
        is now (read afresh: a long-running control room may have seen the key rotate)."""
        if not self.vault.has_key():
            # A second instance started without the shared key would make a key of its own
            # and seal what no other instance can open: refuse, naming the key to give it.
            # (Asked again after the rows: a writer beside this one may have just made the key,
            # and it always makes the key before a row sealed with it.)
            sealed_with = sorted(self.repository.key_ids())
            if sealed_with and not self.vault.has_key():
                raise VaultError(
                    f"this control room has no vault key, and the database's connections are "
                    f"sealed with key id {', '.join(sealed_with)}; nothing was saved",
                    "Give every instance the same key: ADOBOT_VAULT_KEY (or the key file "
                    f"{self.vault.key_path.name} beside the vault).")
        keys = self._keys = self.vault.keys(create=True)
        place = connection_place(connection.name, connection.organization_url)
        return {**connection.record(keys.seal(clear, place)), "name": connection.name,
                "organization_key": same_organization(connection.organization_url),
                "key_id": keys.key_id, "secret_next": None, "key_id_next": None}

    def _proved(self, connection: Connection, secret: Secret) -> Connection:
        if self.check is None:
            raise InvalidInput("this connection store cannot prove secrets",
                               "Give it a check.")
        user = self.check(connection, secret)
        return replace(connection, status=Status("connected", user=user, checked_at=_now()))

    def _refuse_taken(self, connection: Connection, editing: str | None = None) -> None:
        if editing is None and self.repository.find(connection.name) is not None:
            raise AlreadyExists(f"{NAME_TAKEN}: {connection.name!r}", "Choose another name.",
                                field="name")
        other = self.repository.find_organization(same_organization(connection.organization_url))
        if other is not None and other["name"] != editing:
            from adobot.store.records import Taken

            raise _taken_error(Taken("organization", other["name"], other["organization_url"]),
                               connection.name)


# Writes of one connection that lost to another writer re-read it and try again. Every round
# has a winner (one update per version succeeds), so N admins at once need at most N rounds.
_WRITE_TRIES = 50


def _taken_error(taken: "Taken", name: str) -> AlreadyExists:
    if taken.what == "name":
        return AlreadyExists(f"{NAME_TAKEN}: {name!r}", "Choose another name.", field="name")
    return AlreadyExists(
        f"{ORGANIZATION_TAKEN}: {taken.other!r} ({taken.organization_url})",
        f"Edit or delete the existing one: `adobot connection edit {taken.other}` or "
        f"`adobot connection remove {taken.other}`.", field="organization")


def _basis(connection: Connection) -> tuple[Any, ...]:
    """What a proof of a connection's secret was made against."""
    return (connection.organization_url.lower(), connection.project, connection.tenant_id,
            connection.client_id)


def check_destination(connection: Connection, organization_url: str | None) -> None:
    """A connection's secret goes to its own organization and nowhere else."""
    if organization_url is None:
        return
    if same_organization(organization_url) != same_organization(connection.organization_url):
        raise PermissionDenied(
            f"connection {connection.name!r} may be used only with its own organization "
            f"{connection.organization_url}, not {organization_url}; nothing was sent",
            "Leave organization_url out: the connection says where it goes.",
            field="organization_url")


def _check_method(method: str, tenant_id: str | None, client_id: str | None,
                  identity_client_id: str | None = None, secret: Secret | None = None) -> None:
    if method not in METHODS:
        raise InvalidInput(f"authentication_method {method!r} is not one a connection holds",
                           f"Use one of: {', '.join(METHODS)}.", field="authentication_method")
    app = (tenant_id, client_id)
    if method == "service_principal" and not all(app):
        raise InvalidInput("a service_principal connection needs tenant_id and client_id",
                           field="client_id" if tenant_id else "tenant_id")
    if method == "pat" and any(app):
        raise InvalidInput("tenant_id and client_id go with service_principal or "
                           "managed_identity, not pat", field="tenant_id")
    if method != "managed_identity":
        if identity_client_id:
            raise InvalidInput("managed_identity_client_id goes with managed_identity",
                               field="managed_identity_client_id")
        return
    if secret is not None and secret.reveal():
        raise InvalidInput("a managed_identity connection holds no secret: the control "
                           "room's own identity signs in", "Leave pat and client_secret out.",
                           field="pat")
    if tenant_id and not client_id:
        raise InvalidInput("a managed_identity connection across tenants needs client_id: the "
                           "app in the organization's tenant whose federated credential "
                           "trusts the identity", field="client_id")
    if identity_client_id and not tenant_id:
        raise InvalidInput("managed_identity_client_id goes with tenant_id (across tenants); "
                           "in the identity's own tenant give its client_id",
                           field="managed_identity_client_id")


def sign_in(credential: ConnectionCredential, entra: Any = None,
            register: Callable[[Secret], None] = lambda secret: None) -> Any:
    """A token source (``identity.token_source``) for a connection that signs in with Entra:
    a service principal with its client secret, or the control room's managed identity (in
    its own tenant, or as the assertion of an app in the organization's)."""
    from adobot.credentials.identity import token_source

    method = credential.authentication_method
    return token_source(method, tenant_id=credential.tenant_id, client_id=credential.client_id,
                        client_secret=credential.secret if method == "service_principal"
                        else None, identity_client_id=credential.identity_client_id,
                        route=entra, register=register)


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
