"""Authorizers: what ``RestClient`` asks for the Authorization header of every attempt.

An authorizer has two duties: give the header for the next attempt, and after a 401 say whether
the request may be sent once more with a fresh token. ``rest/`` never learns how a token was
obtained: a PAT and an Entra token source are two implementations of the same two methods.
"""
from __future__ import annotations

import base64
import threading
import time
from typing import Callable, Protocol

from adobot.credentials.secret import Secret


class Authorizer(Protocol):
    def header(self) -> Secret:
        """The Authorization header value for the next attempt."""

    def refresh(self, rejected: Secret) -> bool:
        """The service refused ``rejected`` with a 401: True if a new header is worth one
        more attempt (the token was renewed, or another thread renewed it meanwhile)."""


class _FixedAuthorizer:
    """A header that never changes: nothing to renew, so a 401 is final."""

    def __init__(self, header: Secret) -> None:
        self._header = header

    def header(self) -> Secret:
        return self._header

    def refresh(self, rejected: Secret) -> bool:
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(***)"


class PatAuthorizer(_FixedAuthorizer):
    """HTTP Basic with an empty user name and the PAT as password, built once."""

    def __init__(self, token: Secret) -> None:
        encoded = base64.b64encode(b":" + token.reveal().encode("utf-8")).decode("ascii")
        super().__init__(Secret("Basic " + encoded))


class TokenAuthorizer(_FixedAuthorizer):
    """A bearer token that does not change (an adobot control room's API token)."""

    def __init__(self, token: Secret) -> None:
        super().__init__(Secret("Bearer " + token.reveal()))


# Fetches a token and says when it expires (epoch seconds).
TokenFetcher = Callable[[], "tuple[Secret, float]"]


class BearerAuthorizer:
    """A bearer token from a source (e.g. Microsoft Entra), cached until a few minutes before it
    expires, renewed once when the service refuses it. Threads of child bots share one client,
    so renewing is locked: many threads that find the token stale fetch one new token."""

    def __init__(self, source: TokenFetcher, *, refresh_before: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._source = source
        self._refresh_before = refresh_before
        self._clock = clock
        self._lock = threading.Lock()
        self._header: Secret | None = None
        self._renew_at = 0.0
        self.fetched = 0  # how many tokens were asked for (tests and benchmarks count them)

    def header(self) -> Secret:
        with self._lock:
            if self._header is None or self._clock() >= self._renew_at:
                self._fetch()
            assert self._header is not None
            return self._header

    def refresh(self, rejected: Secret) -> bool:
        with self._lock:
            if self._header is not None and self._header != rejected:
                return True  # another thread renewed it while this request was out
            self._fetch()
            return self._header != rejected  # the same token again is not worth a retry

    def _fetch(self) -> None:
        now = self._clock()
        token, expires_on = self._source()
        self._header = Secret("Bearer " + token.reveal())
        # Renew a few minutes before the end; a short-lived token at half its life.
        self._renew_at = expires_on - min(self._refresh_before, max(0.0, expires_on - now) / 2)
        self.fetched += 1

    def __repr__(self) -> str:
        return f"BearerAuthorizer(fetched={self.fetched})"
