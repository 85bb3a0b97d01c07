"""The only code in adobot that speaks HTTP.

One ``RestClient`` per connection: a pooled ``requests.Session`` with Basic auth from the PAT,
``api-version`` on every call, ``X-TFS-FedAuthRedirect: Suppress`` so a bad token is a 401 and
not a sign-in page, a User-Agent naming adobot, timeouts, and service errors turned into
``AdobotError`` subclasses (see ``rest.responses``).
"""
from __future__ import annotations

import base64
import contextvars
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from credentials.secret import Secret
from rest import __version__
from rest.errors import AdobotError, NetworkError, Timeout
from rest.responses import raise_for_response, read_json
from rest.retry import (
    IDEMPOTENT,
    RETRY_ON_IDEMPOTENT,
    RateLimitPacer,
    RetryPolicy,
    deadline,
    retry_after,
)

API_VERSION = "7.1"
# connectionData is a preview API: a bare "7.1" is refused there.
PREVIEW_API_VERSION = "7.1-preview.1"
USER_AGENT = f"adobot/{__version__} (+python-requests/{requests.__version__})"
DEFAULT_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds: a hung server never hangs a bot

log = logging.getLogger("adobot.rest")


@dataclass
class RequestCounter:
    count: int = 0


_counter: contextvars.ContextVar[RequestCounter | None] = contextvars.ContextVar(
    "adobot_request_counter", default=None)


@contextmanager
def count_requests() -> Iterator[RequestCounter]:
    """Count the HTTP requests sent in this context (the runtime wraps each step in one)."""
    counter = RequestCounter()
    token = _counter.set(counter)
    try:
        yield counter
    finally:
        _counter.reset(token)


class _PatAuth(requests.auth.AuthBase):
    """HTTP Basic with an empty user name and the PAT as password, built once."""

    def __init__(self, token: Secret) -> None:
        encoded = base64.b64encode(b":" + token.reveal().encode("utf-8")).decode("ascii")
        self._header = Secret("Basic " + encoded)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header.reveal()
        return request

    def __repr__(self) -> str:
        return "_PatAuth(***)"


class RestClient:
    """A connection to one organization: ``get``/``post`` return decoded JSON or raise."""

    def __init__(self, base_url: str, token: Secret, *,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 policy: RetryPolicy | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.pacer = RateLimitPacer()
        self._http = requests.Session()
        self._http.auth = _PatAuth(token)
        self._http.headers.update({
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "X-TFS-FedAuthRedirect": "Suppress",
        })
        # One pool per connection; threads of child bots share it.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=16)
        self._http.mount("https://", adapter)
        self._http.mount("http://", adapter)
        self.requests_sent = 0
        self.closed = False

    def __repr__(self) -> str:
        return f"RestClient({self.base_url!r})"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("POST", path, body=body, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request and return its JSON (see ``send`` for the arguments)."""
        return read_json(self.send(method, path, **kwargs))

    def pages(self, path: str, *, params: Mapping[str, Any] | None = None,
              **kwargs: Any) -> Iterator[list[Any]]:
        """GET a list route page by page, following ``x-ms-continuationtoken``."""
        query = dict(params or {})
        while True:
            response = self.send("GET", path, params=query, **kwargs)
            yield (read_json(response) or {}).get("value", [])
            token = response.headers.get("x-ms-continuationtoken")
            if not token:
                return
            query["continuationToken"] = token

    def send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             body: Any = None, content_type: str = "application/json",
             api_version: str = API_VERSION, scope: str | None = None,
             subject: str | None = None) -> requests.Response:
        """Send one request, retrying what the policy allows (see ``rest.retry``); return the
        response if it is a usable answer, else raise.

        ``scope`` names the PAT scope the route needs (said in PERMISSION_DENIED);
        ``subject`` names what the route addresses (said in NOT_FOUND and ALREADY_EXISTS).
        """
        query = {"api-version": api_version}
        if params:
            query.update({k: v for k, v in params.items() if v is not None})
        headers = {"Content-Type": content_type} if body is not None else None
        url = self.url(path)
        policy = self.policy
        started = policy.clock()
        until = deadline(policy, started)
        attempt = 0
        while True:
            attempt += 1
            pause = self.pacer.pause(policy)
            if pause:
                log.debug("rate limit nearly spent: pausing %.2f s", pause)
                policy.sleep(pause)
            self._count()
            response: requests.Response | None = None
            try:
                response = self._http.request(method, url, params=query, json=body,
                                              headers=headers, timeout=self.timeout,
                                              allow_redirects=False)
            except requests.RequestException as exc:
                sent = _maybe_sent(exc)
                failure = self._transport_error(method, url, exc, sent)
                retry, wait = (not sent or method in IDEMPOTENT), policy.backoff(attempt)
            else:
                log.debug("%s %s -> %s", method, response.url, response.status_code)
                status = response.status_code
                if status != 429:  # a 429's Retry-After already says how long to wait
                    self.pacer.note(response.headers)
                retry = status == 429 or (status in RETRY_ON_IDEMPOTENT and method in IDEMPOTENT)
                if not retry:
                    self._raise_for(response, method, scope, subject)
                    return response
                wait = retry_after(response.headers)
                wait = policy.backoff(attempt) if wait is None else wait
                failure = None
            if not retry:
                raise failure
            wait = min(wait, policy.max_delay)
            if attempt >= policy.max_attempts or policy.clock() + wait > until:
                self._give_up(failure, response, method, scope, subject, attempt,
                              policy.clock() - started)
            log.info("%s %s: %s; retrying in %.1f s (attempt %d of %d)", method,
                     url.split("?")[0], failure.code if failure else f"HTTP {response.status_code}",
                     wait, attempt + 1, policy.max_attempts)
            policy.sleep(wait)

    def _count(self) -> None:
        counter = _counter.get()
        if counter is not None:
            counter.count += 1
        self.requests_sent += 1

    def _raise_for(self, response: requests.Response, method: str, scope: str | None,
                   subject: str | None) -> None:
        try:
            raise_for_response(response, scope=scope, subject=subject)
        except AdobotError as error:
            if method not in IDEMPOTENT and response.status_code >= 500:
                error.details["outcome_unknown"] = True  # it may have acted before failing
            raise

    def _give_up(self, failure: AdobotError | None, response: requests.Response | None,
                 method: str, scope: str | None, subject: str | None, attempts: int,
                 elapsed: float) -> None:
        if failure is None:
            assert response is not None
            try:
                self._raise_for(response, method, scope, subject)
            except AdobotError as error:
                failure = error
        assert failure is not None
        failure.message += f" (gave up after {attempts} attempts over {elapsed:.1f} s)"
        failure.args = (failure.message,)
        failure.details["attempts"] = attempts
        failure.details["elapsed_seconds"] = round(elapsed, 1)
        raise failure

    def _transport_error(self, method: str, url: str, exc: requests.RequestException,
                         sent: bool) -> AdobotError:
        unknown = sent and method not in IDEMPOTENT
        after = (" The request may have been acted on: check before running it again."
                 if unknown else "")
        if isinstance(exc, requests.Timeout):
            error: AdobotError = Timeout(
                f"{method} {url.split('?')[0]} got no answer within "
                f"{self._timeout_text(exc)}.{after}", after_request=True)
        else:
            error = NetworkError(f"could not reach {self.base_url}: {_reason(exc)}.{after}",
                                 after_request=True)
        if unknown:
            error.details["outcome_unknown"] = True
        return error

    def _timeout_text(self, exc: requests.Timeout) -> str:
        connect, read = self.timeout
        if isinstance(exc, requests.ConnectTimeout):
            return f"{connect:g} s (connect timeout)"
        return f"{read:g} s (read timeout)"

    def close(self) -> None:
        self._http.close()
        self.closed = True


def _maybe_sent(exc: requests.RequestException) -> bool:
    """False only when the request cannot have left: no connection was ever made."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
    reason = getattr(inner, "reason", inner)
    return not isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _reason(exc: requests.RequestException) -> str:
    """The cause in a few words, without urllib3's wrapper text."""
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
    inner = getattr(inner, "reason", None) or inner  # urllib3's MaxRetryError wraps the cause
    # urllib3 prefixes "<urllib3.connection.HTTPConnection object at 0x...>: "
    return str(inner).split(">: ", 1)[-1] or type(inner).__name__
