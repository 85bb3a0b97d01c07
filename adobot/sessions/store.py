"""Session stores: ``local`` belongs to one bot, ``global`` is shared by a bot tree.

A store is locked so that child bots running in threads can connect, use and disconnect
sessions of one global store at the same time.
"""
from __future__ import annotations

import threading

from adobot.errors import SessionExists, SessionNotFound
from adobot.sessions.session import Scope, Session


class SessionStore:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._sessions: dict[str, Session] = {}
        self._lock = threading.RLock()

    def __contains__(self, name: str) -> bool:
        with self._lock:
            return name in self._sessions

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._sessions)

    def get(self, name: str) -> Session | None:
        with self._lock:
            return self._sessions.get(name)

    def add(self, session: Session) -> None:
        with self._lock:
            if session.name in self._sessions:
                raise SessionExists(f"session {session.name!r} is already connected ({self.scope})")
            self._sessions[session.name] = session

    def pop(self, name: str) -> Session | None:
        with self._lock:
            return self._sessions.pop(name, None)

    def close_all(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()


class SessionScopes:
    """The two stores a bot sees: its own local one and its tree's global one."""

    def __init__(self, local: SessionStore | None = None,
                 global_: SessionStore | None = None) -> None:
        # "is None", not "or": an empty store is falsy but must still be shared.
        self.local = local if local is not None else SessionStore("local")
        self.global_ = global_ if global_ is not None else SessionStore("global")

    def store(self, scope: Scope) -> SessionStore:
        return self.local if scope == "local" else self.global_

    def find(self, name: str, scope: Scope | None = None) -> Session:
        """The connected session of that name; a local one hides a global one of the same name."""
        stores = [self.store(scope)] if scope else [self.local, self.global_]
        for store in stores:
            session = store.get(name)
            if session is not None:
                return session
        known = sorted(set(self.local.names()) | set(self.global_.names()))
        where = f" in the {scope} scope" if scope else ""
        raise SessionNotFound(
            f"session {name!r} is not connected{where}"
            + (f"; connected sessions: {', '.join(known)}" if known else "; no session is connected"),
            field="session")

    def check_free(self, name: str) -> None:
        """SESSION_EXISTS if the name is visible in either scope."""
        for store in (self.local, self.global_):
            if name in store:
                raise SessionExists(f"session {name!r} is already connected ({store.scope})",
                                    field="session")

    def add(self, session: Session) -> None:
        """Register a new session; a name visible in either scope is taken."""
        # Both locks, always local first, so two bots cannot take one name at once.
        with self.local._lock, self.global_._lock:
            self.check_free(session.name)
            self.store(session.scope).add(session)

    def remove(self, name: str, scope: Scope | None = None) -> Session:
        session = self.find(name, scope)
        self.store(session.scope).pop(name)
        session.close()
        return session
