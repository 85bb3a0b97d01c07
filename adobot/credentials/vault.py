"""The encrypted vault: lockers -> credentials -> attributes, each value sealed on its own.

- Values: AES-256-GCM with a fresh nonce, bound to their place (``locker/credential/attribute``)
  and to the organizations they may be sent to (both are the associated data), so a value moved
  to another entry, or given another organization, no longer opens.
- Organizations: each value carries the organization URLs an admin allowed it to go to (in
  clear, so ``vault list`` and ``validate`` can show them); ``get`` hands a value out only for
  one of them. A value stored before bindings existed is refused until an admin binds it.
- The file: JSON with names and dates in clear (``vault list`` needs no key), then a last line
  with an HMAC over the exact bytes before it, so any change — a flipped byte, re-indenting, a
  duplicated key — is caught. A key id tells a wrong key from a tampered file. (Version 1 files,
  whose MAC was over the parsed document, are still read, and rewritten as version 2.)
- The files and their folder must be the user's own, not symbolic links, and private (0600 /
  0700): anything else is refused, so a planted key or a link cannot be slipped in.
- The key: ``ADOBOT_VAULT_KEY`` (base64 of 32 bytes), else a key file beside the vault, created
  with mode 0600 on first write.
- The control room's connections live in its database, their secrets sealed with this vault's
  key (``keys``), bound to the connection and its one organization (``connection_place``).
  Vaults written before that held them beside the lockers (``connections``, ``api_tokens``):
  such a document is still read, and its sections are moved into the database on first start
  (``store.from_vault``).
- Writes: under an exclusive lock (a ``.lock`` file beside the vault), to a temporary file that
  is fsync'ed and renamed over the vault, so a crash leaves the old vault whole (and its stale
  temporary file is swept by the next writer). Reads take the lock shared, so a key rotation
  never shows a reader a vault and a key that do not match.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from adobot.credentials.secret import Secret
from adobot.errors import CredentialNotFound, InvalidInput, PermissionDenied, VaultError

VERSION = 2
READS = (1, 2)
_MAC_LINE = b"\nmac "
KEY_ENV = "ADOBOT_VAULT_KEY"
NEW_KEY_ENV = "ADOBOT_VAULT_NEW_KEY"
PATH_ENV = "ADOBOT_VAULT"
# The control room's sections of a document written before the database (moved out on first
# start; kept in a rewrite until then, so nothing is lost in between).
SECTIONS = ("connections", "api_tokens")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# File locks do not exclude threads of one process: each vault file also has a thread lock.
_thread_locks: dict[Path, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(path.resolve(), threading.Lock())


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "adobot" / "vault.json"


def vault_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--vault, else $ADOBOT_VAULT, else the per-user default."""
    return Path(explicit or os.environ.get(PATH_ENV) or default_path()).expanduser()


def check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise InvalidInput(f"{what} {value!r} is not a valid name",
                           "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter "
                           "or digit.", field=what)
    return value


@dataclass(frozen=True)
class Entry:
    locker: str
    credential: str
    attribute: str
    set_at: str
    organizations: tuple[str, ...] = ()  # where the value may be sent; none: not bound yet


def organization_key(url: str) -> str:
    """The form a binding is stored and compared in: the organization's base URL, lower-cased
    (organization and collection names are not case-sensitive)."""
    from adobot.rest.urls import parse_organization_url

    return parse_organization_url(url, allow_plain_http=True).base_url.lower()


def _sealed_with(place: str, organizations: list[str] | tuple[str, ...] | None) -> str:
    """The associated data of a value: its place, and its organizations when it has some."""
    return place if not organizations else place + "\n" + "\n".join(sorted(organizations))


class _Keys:
    """The three keys derived from the vault key: values, file MAC, and the key id."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        def derive(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)

        self.aead = AESGCM(derive(b"adobot-vault/values"))
        self.mac_key = derive(b"adobot-vault/file-mac")
        self.key_id = derive(b"adobot-vault/key-id")[:8].hex()

    def seal(self, value: str, place: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self.aead.encrypt(nonce, value.encode("utf-8"), place.encode("utf-8"))
        return base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, place: str) -> str:
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.b64decode(sealed, validate=True)
            return self.aead.decrypt(raw[:12], raw[12:], place.encode("utf-8")).decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error):
            raise VaultError(f"the value of {place} does not decrypt: the vault file was "
                             "modified", "Restore the vault from a backup, or store the "
                             "credential again.") from None

    def mac(self, data: bytes) -> str:
        return hmac.new(self.mac_key, data, hashlib.sha256).hexdigest()

    def mac_v1(self, body: dict[str, Any]) -> str:
        """Version 1: the MAC of the parsed document (blind to formatting)."""
        return self.mac(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != 32:
        raise VaultError(f"the vault key in {source} is not valid (it must be base64 of 32 bytes)",
                         "Create one with `adobot vault generate-key`.")
    return key


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode("ascii")


class Vault:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = vault_path(path)
        self.key_path = self.path.with_name(self.path.name + ".key")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        # Where the key comes from is decided once, when the vault is opened: the environment,
        # else the key file beside the vault.
        self._env_key = os.environ.get(KEY_ENV) or None

    def __repr__(self) -> str:
        return f"Vault({str(self.path)!r})"

    # --- the key ---------------------------------------------------------------------------

    def _key(self, create: bool) -> bytes:
        if self._env_key is not None:
            return decode_key(self._env_key, KEY_ENV)
        self._check_private(self.key_path, "key file")
        try:
            return decode_key(self.key_path.read_text(encoding="ascii"), str(self.key_path))
        except FileNotFoundError:
            if not create:
                raise VaultError(f"no vault key: {KEY_ENV} is not set and {self.key_path} "
                                 "does not exist", f"Set {KEY_ENV}, or restore the key file.") from None
        key = secrets.token_bytes(32)
        _write_atomically(self.key_path, encode_key(key) + "\n")
        return key

    def _has_key(self) -> bool:
        return self._env_key is not None or self.key_path.exists()

    def has_key(self) -> bool:
        """Whether a key is at hand ($ADOBOT_VAULT_KEY, or the key file): none is made here."""
        return self._has_key()

    # --- the files -------------------------------------------------------------------------

    def _check_private(self, path: Path, what: str, folder: bool = False) -> None:
        """A vault file (or folder) must be the user's own, not a link, and private."""
        if os.name != "posix":
            return
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(info.st_mode):
            raise VaultError(f"the vault's {what} {path} is a symbolic link: refused (it could "
                             "lead anywhere)", "Put the real file there, not a link.")
        if info.st_uid != os.getuid():
            raise VaultError(f"the vault's {what} {path} belongs to another user (uid "
                             f"{info.st_uid}): refused", "Use a vault of your own user.")
        if info.st_mode & 0o077:
            mode = "700" if folder else "600"
            raise VaultError(f"the vault's {what} {path} can be read or written by others "
                             f"(mode {stat.S_IMODE(info.st_mode):o}): refused",
                             f"Make it private: `chmod {mode} {path}`, and check who could have "
                             "changed it.")

    def _check_files(self) -> None:
        self._check_private(self.path.parent, "folder", folder=True)
        for path, what in ((self.path, "file"), (self.lock_path, "lock file"),
                           (self._pending, "pending key file")):
            self._check_private(path, what)
        if self._env_key is None:
            self._check_private(self.key_path, "key file")

    @property
    def _pending(self) -> Path:
        return self.key_path.with_name(self.key_path.name + ".new")

    # --- reading ---------------------------------------------------------------------------

    def _read(self, keys: _Keys | None) -> dict[str, Any]:
        """The vault's document; empty if there is no file yet. Checks integrity when keyed."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {"version": VERSION, "lockers": {}}
        except OSError as exc:
            raise VaultError(f"the vault {self.path} cannot be read: {exc.strerror}") from None
        body, _, mac = raw.rpartition(_MAC_LINE)
        try:
            doc = json.loads((body if body else raw).decode("utf-8"),
                             object_pairs_hook=_no_duplicate_keys)
            if not isinstance(doc, dict) or not isinstance(doc.get("lockers"), dict):
                raise ValueError("no lockers")
        except (ValueError, UnicodeDecodeError):
            empty = " (it is empty)" if not raw.strip() else ""
            raise VaultError(f"the vault {self.path} is truncated or not a vault file{empty}",
                             "Restore the vault from a backup.") from None
        if doc.get("version") not in READS:
            raise VaultError(f"the vault {self.path} has version {doc.get('version')!r}; this "
                             f"adobot reads versions {', '.join(map(str, READS))}")
        if (doc.get("version") == VERSION) != bool(body):
            raise VaultError(f"the vault {self.path} was modified outside adobot (its "
                             "integrity seal is missing)", "Restore the vault from a backup.")
        if keys is not None:
            if doc.get("key_id") != keys.key_id:
                raise VaultError(f"the vault key does not open {self.path}: it was sealed with "
                                 "another key", f"Use the key it was made with ({KEY_ENV} or "
                                 f"{self.key_path.name}).")
            expected = keys.mac(body) if body else keys.mac_v1(
                {k: v for k, v in doc.items() if k != "mac"})
            found = mac.decode("ascii", "replace").strip() if body else str(doc.get("mac", ""))
            if not hmac.compare_digest(found, expected):
                raise VaultError(f"the vault {self.path} was modified outside adobot (its "
                                 "integrity check failed)", "Restore the vault from a backup.")
        return doc

    def entries(self) -> list[Entry]:
        """Names, dates and organizations; needs no key (``listing`` says if they were checked)."""
        return self.listing()[0]

    def listing(self) -> tuple[list[Entry], bool]:
        """The entries, and whether the file's integrity could be checked (a key is at hand)."""
        self._check_files()
        if not self.path.exists():
            return [], True
        with self._locked(shared=True):
            keys = _Keys(self._key(create=False)) if self._has_key() else None
            doc = self._read(keys)
        return [Entry(locker, credential, attribute, item.get("set_at", ""),
                      tuple(item.get("organizations") or ()))
                for locker, credentials in sorted(doc["lockers"].items())
                for credential, attributes in sorted(credentials.items())
                for attribute, item in sorted(attributes.items())], keys is not None

    def _recover(self) -> None:
        if self._pending.exists():
            self.finish_rotation()

    def get(self, locker: str, credential: str, attribute: str,
            organization: str | None = None) -> Secret:
        """The value of an attribute, for ``organization`` (a URL it must be bound to).

        Without ``organization`` the value is handed out whatever its binding: only for the
        vault's own commands, never for sending."""
        place = f"{locker}/{credential}/{attribute}"
        self._check_files()
        self._recover()
        if not self.path.exists():
            raise CredentialNotFound(f"credential {place} was not found: there is no vault at "
                                     f"{self.path}", "Ask a control-room admin to store it with "
                                     f"`adobot vault put {locker} {credential} {attribute} --org "
                                     "URL`, or point --vault / ADOBOT_VAULT at the vault.")
        with self._locked(shared=True):  # a rotation never shows a key and a vault apart
            keys = _Keys(self._key(create=False))
            doc = self._read(keys)
        item = self._item(doc, locker, credential, attribute)
        bound = item.get("organizations") or []
        if organization is not None:
            _check_binding(place, bound, organization)
        return Secret(keys.open(item["value"], _sealed_with(place, bound)))

    def _item(self, doc: dict[str, Any], locker: str, credential: str,
              attribute: str) -> dict[str, Any]:
        lockers = doc["lockers"]
        missing = (f"locker {locker!r}" if locker not in lockers
                   else f"credential {credential!r} in locker {locker!r}"
                   if credential not in lockers[locker]
                   else f"attribute {attribute!r} of {locker}/{credential}"
                   if attribute not in lockers[locker][credential] else None)
        if missing:
            raise CredentialNotFound(f"credential {locker}/{credential}/{attribute} was not "
                                     f"found: the vault has no {missing}",
                                     f"Ask a control-room admin to store it with `adobot vault put "
                                     f"{locker} {credential} {attribute} --org URL`.")
        return lockers[locker][credential][attribute]

    # --- writing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, shared: bool = False) -> Iterator[None]:
        """The vault's lock: exclusive for writers (which then sweep what a crashed writer
        left), shared for readers. The lock file is never followed if it is a link."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._check_files()
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0),
                         0o600)
        except OSError as exc:
            raise VaultError(f"the vault's lock file {self.lock_path} cannot be opened: "
                             f"{exc.strerror}", "It must be a regular file of yours, not a "
                             "link.") from None
        with contextlib.ExitStack() as stack:
            handle = stack.enter_context(os.fdopen(fd, "r+b"))
            if not shared:  # threads of one process: file locks alone do not exclude them
                stack.enter_context(_thread_lock(self.path))
            _lock_file(handle, shared)
            try:
                if not shared:
                    self._sweep()
                yield
            finally:
                _unlock_file(handle)

    def _sweep(self) -> None:
        """Temporary files of a writer that crashed (no writer is at work: we hold the lock)."""
        for name in (self.path.name, self.key_path.name, self._pending.name):
            for stale in self.path.parent.glob(f".{name}.*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()

    def _write(self, doc: dict[str, Any], keys: _Keys) -> None:
        sections = {name: doc[name] for name in SECTIONS if doc.get(name)}
        body = json.dumps({"version": VERSION, "key_id": keys.key_id, "lockers": doc["lockers"],
                           **sections}, indent=1, sort_keys=True)
        _write_atomically(self.path, f"{body}\nmac {keys.mac(body.encode('utf-8'))}\n")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[tuple[dict[str, Any], "_Keys"]]:
        """The document and its keys under the exclusive lock; written back when the block ends
        without an exception (whole, or not at all), left as it was otherwise."""
        self._recover()
        with self._locked():
            keys = _Keys(self._key(create=not self.path.exists()))
            doc = self._read(keys)
            yield doc, keys
            self._write(doc, keys)

    def keys(self, create: bool = False) -> "_Keys":
        """The vault's keys, for values it seals elsewhere (the control room's database keeps
        connections' secrets sealed with them). ``create``: make the key if there is none."""
        self._check_files()
        self._recover()
        if not create or self._has_key():
            with self._locked(shared=True):
                return _Keys(self._key(create=False))
        with self._locked():
            return _Keys(self._key(create=True))

    def peek_sections(self) -> list[str]:
        """The control room's sections (``SECTIONS``) the document still holds anything in,
        read without the key (their contents are not checked here: read them with
        ``snapshot``)."""
        self._check_files()
        try:
            doc = json.loads(self.path.read_bytes().rpartition(_MAC_LINE)[0] or b"{}")
        except (FileNotFoundError, ValueError):
            return []
        return [name for name in SECTIONS if isinstance(doc, dict) and doc.get(name)]

    def snapshot(self) -> tuple[dict[str, Any], "_Keys | None"]:
        """The document and its keys, read under the shared lock (integrity checked); no keys
        when there is no vault yet (and so nothing sealed)."""
        self._check_files()
        if not self.path.exists():
            return {"version": VERSION, "lockers": {}}, None
        self._recover()
        with self._locked(shared=True):
            keys = _Keys(self._key(create=False))
            return self._read(keys), keys

    def put(self, locker: str, credential: str, attribute: str, value: Secret, *,
            organizations: list[str] | tuple[str, ...]) -> None:
        """Store a value that may be sent to ``organizations`` (organization URLs) only."""
        for name, what in ((locker, "locker"), (credential, "credential"), (attribute, "attribute")):
            check_name(name, what)
        bound = _organizations(organizations)
        self._recover()
        with self._locked():
            keys = _Keys(self._key(create=not self.path.exists()))
            doc = self._read(keys)
            place = f"{locker}/{credential}/{attribute}"
            doc["lockers"].setdefault(locker, {}).setdefault(credential, {})[attribute] = {
                "value": keys.seal(value.reveal(), _sealed_with(place, bound)),
                "organizations": bound, "set_at": _now()}
            self._write(doc, keys)

    def bind(self, locker: str, credential: str, organizations: list[str] | tuple[str, ...]) -> int:
        """Let every attribute of a credential go to ``organizations`` (and nowhere else): how
        an admin binds a credential stored before bindings existed, or changes where it may go.
        Returns how many values were re-sealed."""
        bound = _organizations(organizations)
        self._recover()
        with self._locked():
            keys = _Keys(self._key(create=False))
            doc = self._read(keys)
            attributes = doc["lockers"].get(locker, {}).get(credential)
            if attributes is None:
                raise CredentialNotFound(f"credential {locker}/{credential} is not in the vault",
                                         "`adobot vault list` shows what it holds.")
            for attribute, item in attributes.items():
                place = f"{locker}/{credential}/{attribute}"
                clear = keys.open(item["value"], _sealed_with(place, item.get("organizations")))
                item.update(value=keys.seal(clear, _sealed_with(place, bound)),
                            organizations=bound, set_at=_now())
            self._write(doc, keys)
            return len(attributes)

    def remove(self, locker: str, credential: str) -> None:
        self._recover()
        with self._locked():
            keys = _Keys(self._key(create=False))
            doc = self._read(keys)
            if credential not in doc["lockers"].get(locker, {}):
                raise CredentialNotFound(f"credential {locker}/{credential} is not in the vault",
                                         "`adobot vault list` shows what it holds.")
            del doc["lockers"][locker][credential]
            if not doc["lockers"][locker]:
                del doc["lockers"][locker]
            self._write(doc, keys)

    def rotate_key(self, elsewhere: "Callable[[_Keys, _Keys], int] | None" = None) -> int:
        """Re-seal every value under a new key; returns how many values were re-sealed.
        ``elsewhere(old, new)`` re-seals the values kept outside the file (the control room's
        database), after the new key is safe on disk and before the vault is rewritten.

        With a key file, the new key is written beside it first (``.key.new``), then the vault,
        then the key file is replaced: a crash in between leaves a vault that opens with one of
        the two files, and the next use finishes the rotation. With ADOBOT_VAULT_KEY the new key
        comes from ADOBOT_VAULT_NEW_KEY, and the admin swaps the variables afterwards.
        """
        self._recover()
        with self._locked():
            old = _Keys(self._key(create=False))
            doc = self._read(old)
            from_env = self._env_key is not None
            if from_env:
                if not os.environ.get(NEW_KEY_ENV):
                    raise VaultError(f"the key comes from {KEY_ENV}: give the new key in "
                                     f"{NEW_KEY_ENV}", "Create one with `adobot vault "
                                     "generate-key`, rotate, then set it as ADOBOT_VAULT_KEY.")
                new_key = decode_key(os.environ[NEW_KEY_ENV], NEW_KEY_ENV)
            else:
                new_key = secrets.token_bytes(32)
            new = _Keys(new_key)
            count = 0
            for item, field, sealed_with in _sealed_values(doc):
                item[field] = new.seal(old.open(item[field], sealed_with), sealed_with)
                count += 1
            if from_env:
                count += elsewhere(old, new) if elsewhere else 0
                self._write(doc, new)
                return count
            _write_atomically(self._pending, encode_key(new_key) + "\n")
            count += elsewhere(old, new) if elsewhere else 0
            self._write(doc, new)
            os.replace(self._pending, self.key_path)
            _fsync_dir(self.key_path.parent)
            return count

    def finish_rotation(self) -> bool:
        """After a crash mid-rotation: adopt the pending key if the vault was sealed with it;
        drop it only if the vault is known to be sealed with the old key; else keep both."""
        with self._locked():
            if not self._pending.exists():
                return False  # another process finished it meanwhile
            try:
                self._read(_Keys(decode_key(self._pending.read_text(encoding="ascii"),
                                            str(self._pending))))
            except VaultError:
                try:
                    self._read(_Keys(self._key(create=False)))
                except VaultError:
                    raise VaultError(
                        f"a key rotation of {self.path} was cut short and the vault opens with "
                        f"neither {self.key_path.name} nor {self._pending.name}",
                        "Restore the vault from a backup; both key files were kept.") from None
                self._pending.unlink()  # the vault was not written: the old key opens it
                return False
            os.replace(self._pending, self.key_path)
            return True


def _sealed_values(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, str]]:
    """Every sealed value of the document: (its item, the item's field, its associated data)."""
    for locker, credentials in doc["lockers"].items():
        for credential, attributes in credentials.items():
            for attribute, item in attributes.items():
                yield item, "value", _sealed_with(f"{locker}/{credential}/{attribute}",
                                                  item.get("organizations"))
    for name, item in (doc.get("connections") or {}).items():
        yield item, "secret", connection_place(name, item["organization_url"])


def open_sealed(keys: "_Keys", row: Any, field: str, place: str, what: str, hint: str) -> str:
    """A database row's ``field`` (``what``, in an error), opened with ``keys`` from the seal
    that is theirs: a key rotation keeps it sealed under the old key (``key_id``) and under the
    new (``key_id_next``, ``field_next``) until the vault has the new key."""
    if row.get("key_id") == keys.key_id:
        sealed = row[field]
    elif row.get("key_id_next") == keys.key_id:
        sealed = row[f"{field}_next"]
    else:
        raise VaultError(f"{what} was sealed with another vault key (id {row.get('key_id')}, "
                         f"the vault's is {keys.key_id})", hint)
    return keys.open(sealed, place)


def connection_place(name: str, organization_url: str) -> str:
    """A connection's secret is sealed to the connection and its one organization."""
    return _sealed_with(f"connection:{name}", [organization_key(organization_url)])


def _organizations(urls: list[str] | tuple[str, ...]) -> list[str]:
    if isinstance(urls, str) or not urls:
        raise InvalidInput("say where the secret may be sent: one organization URL or more "
                           "(--org https://dev.azure.com/yourorg)",
                           "A stored secret goes only to the organizations it was stored for.",
                           field="--org")
    return sorted({organization_key(url) for url in urls})


def _check_binding(place: str, bound: list[str], organization: str) -> None:
    if not bound:
        raise PermissionDenied(
            f"credential {place} is not bound to any organization, so it is sent nowhere "
            "(it was stored before credentials were bound to their organizations)",
            f"An admin binds it: `adobot vault bind {place.rsplit('/', 1)[0].replace('/', ' ')} "
            "--org https://dev.azure.com/yourorg`.", field="personal_access_token")
    if organization_key(organization) not in bound:
        raise PermissionDenied(
            f"credential {place} may be sent only to {', '.join(bound)}, not to "
            f"{organization_key(organization)}; nothing was sent",
            "Use the organization the credential was stored for, or ask an admin to bind it "
            "to this one (`adobot vault bind ... --org URL`).", field="personal_access_token")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("a key appears twice")
    return dict(pairs)


def generate_key() -> str:
    return encode_key(secrets.token_bytes(32))


def _write_atomically(path: Path, text: str) -> None:
    """Temporary file (0600) in the same folder, fsync, rename over, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


try:
    import fcntl

    def _lock_file(handle, shared: bool = False) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)

    def _unlock_file(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
except ImportError:  # Windows
    import msvcrt

    def _lock_file(handle, shared: bool = False) -> None:  # no shared locks: exclusive
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)

    def _unlock_file(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
