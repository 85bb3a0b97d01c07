"""The only code in adobot that speaks HTTP.

One ``RestClient`` per connection: a pooled ``requests.Session``, an ``Authorizer`` asked for
the Authorization header of every attempt (see ``rest.auth``), ``api-version`` on every call, ``X-TFS-FedAuthRedirect: Suppress`` so a bad token is a 401 and
not a sign-in page, a User-Agent naming adobot, timeouts, and service errors turned into
``AdobotError`` subclasses (see ``rest.responses``).
"""
from __future__ import annotations

import contextvars
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from adobot.credentials.secret import Secret
from adobot.rest import __version__
from adobot.rest.auth import Authorizer
from adobot.errors import AdobotError, NetworkError, ServiceError, Timeout
from adobot.rest.flow import MAX_IN_FLIGHT, FlowControl
from adobot.rest.responses import ServiceFault, error_for_response, read_json
from adobot.rest.retry import (
    IDEMPOTENT,
    RETRY_ON_IDEMPOTENT,
    RateLimitPacer,
    RetryPolicy,
    deadline,
    retry_after,
)
from adobot.rest.versions import GENERAL, LATEST, Api, Version, latest_supported, server_name, text

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


class _Authorization(requests.auth.AuthBase):
    """One attempt's Authorization header. Given per request, it also keeps requests from
    reading credentials out of ~/.netrc."""

    def __init__(self, header: Secret) -> None:
        self.header = header

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self.header.reveal()
        return request

    def __repr__(self) -> str:
        return "_Authorization(***)"


class RestClient:
    """A connection to one organization: ``get``/``post`` return decoded JSON or raise."""

    def __init__(self, base_url: str, auth: Authorizer, *,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 policy: RetryPolicy | None = None,
                 read_error: Callable[..., AdobotError | None] = error_for_response) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        # What a failed answer means: Azure DevOps's error bodies, unless the service is
        # another (an adobot control room's envelope).
        self.read_error = read_error
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.pacer = RateLimitPacer()
        self.flow = FlowControl(clock=self.policy.clock)
        self._http = requests.Session()
        # The environment is read once, here, not on every request; and a proxy never sees a
        # plain-http request, whose Authorization header it could read.
        self._http.trust_env = False
        self._http.proxies, self._http.verify = _environment(self.base_url)
        self._http.headers.update({
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "X-TFS-FedAuthRedirect": "Suppress",
        })
        # One pool per connection; the items of a parallel loop share it.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=MAX_IN_FLIGHT)
        self._http.mount("https://", adapter)
        self._http.mount("http://", adapter)
        self.requests_sent = 0
        self.closed = False
        # The REST API version the server speaks: 7.1 until a server says it speaks less.
        self.server_version: Version = LATEST

    def __repr__(self) -> str:
        return f"RestClient({self.base_url!r})"

    def url(self, path: str) -> str:
        """A route of the organization, or a whole URL (another host of the same organization,
        e.g. Code Search's, as the session names it)."""
        if path.startswith(("https://", "http://")):
            return path
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
        for response in self.page_responses(path, params=params, **kwargs):
            yield (read_json(response) or {}).get("value", [])

    def page_responses(self, path: str, *, params: Mapping[str, Any] | None = None,
                       **kwargs: Any) -> Iterator[requests.Response]:
        """The answers of a list route, page by page: the next page is asked for only when
        the caller comes back for it."""
        query = dict(params or {})
        seen: set[str] = set()
        while True:
            response = self.send("GET", path, params=query, **kwargs)
            token = response.headers.get("x-ms-continuationtoken")
            if token and token in seen:  # a page handed back again: it would loop for ever
                raise ServiceError(
                    f"GET {self.url(path)} handed back continuation token {token!r} a second "
                    f"time after {len(seen) + 1} pages: the listing would never end",
                    "Azure DevOps repeated a page of this list; try again later, or narrow the "
                    "request (e.g. a name or id instead of a lookup).", after_request=True)
            yield response
            if not token:
                return
            seen.add(token)
            query["continuationToken"] = token

    def send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             body: Any = None, content_type: str = "application/json",
             api: Api | str | None = GENERAL, scope: str | None = None,
             subject: str | None = None) -> requests.Response:
        """Send one request, retrying what the policy allows (see ``rest.retry``); return the
        response if it is a usable answer, else raise.

        ``api`` says which api-version the route needs on this server (``rest.versions``), or
        is the api-version itself (None: a route of a service that takes none); ``scope`` names the PAT scope the route needs (said in
        PERMISSION_DENIED); ``subject`` names what the route addresses (said in NOT_FOUND and
        ALREADY_EXISTS).
        """
        query = {} if api is None else {"api-version": api if isinstance(api, str)
                                        else api.version_for(self.server_version)}
        if params:
            query.update({k: v for k, v in params.items() if v is not None})
        headers = {"Content-Type": content_type} if body is not None else None
        url = self.url(path)
        policy = self.policy
        started = policy.clock()
        until = deadline(policy, started)
        attempt = 0
        renewed = False  # a refused token is renewed at most once per request
        negotiated = not isinstance(api, Api)  # the version is learnt at most once per request
        held: float | None = None  # the hold (a 429's Retry-After) this request waited out
        while True:
            attempt += 1
            pause = self.pacer.pause(policy)
            if pause:
                log.debug("rate limit nearly spent: pausing %.2f s", pause)
                policy.sleep(pause)
            authorization = self.auth.header()  # afresh for every attempt: it may be renewed
            # From here every path gives the place back: a lost one would shrink the
            # connection for good.
            ticket = self.flow.enter(policy.sleep, waited=held, until=until)
            self._count()
            response: requests.Response | None = None
            lost: tuple[requests.RequestException, bool] | None = None
            failure: AdobotError | None = None
            try:
                response = self._exchange(method, url, query, body, headers, authorization)
            except BaseException as exc:
                self.flow.leave(ticket, answered=False)
                if not isinstance(exc, requests.RequestException):
                    raise
                sent = _maybe_sent(exc)
                lost = (exc, sent)
                failure = self._transport_error(method, url, exc, sent)
                retry, wait = (not sent or method in IDEMPOTENT), policy.backoff(attempt)
                if _unresolved(exc):  # a name that does not resolve: one more try, not six
                    retry = retry and attempt < 2
            else:
                log.debug("%s %s -> %s", method, response.url, response.status_code)
                status = response.status_code
                wait = retry_after(response.headers) \
                    if status == 429 or status in RETRY_ON_IDEMPOTENT else None
                if status == 429:  # its Retry-After (not X-RateLimit-*) says how long to wait
                    wait = min(policy.max_delay,
                               policy.backoff(attempt) if wait is None else wait)
                    held = self.flow.leave(ticket, hold=wait)
                else:
                    self.pacer.note(response.headers)
                    self.flow.leave(ticket, low=self.pacer.nearly_spent(policy))
                if status == 401 and not renewed and self.auth.refresh(authorization):
                    renewed = True
                    log.info("%s %s: the token was refused; sending again with a renewed one",
                             method, url.split("?")[0])
                    continue
                if status == 400 and not negotiated:
                    negotiated = True
                    speaks = self._server_speaks(response)
                    if speaks is not None:
                        assert isinstance(api, Api)
                        query["api-version"] = api.version_for(speaks)
                        continue
                retry = status == 429 or (status in RETRY_ON_IDEMPOTENT and method in IDEMPOTENT)
                if not retry:
                    error = self._error(response, method, scope, subject)
                    if error is not None:
                        raise error
                    return response
                if wait is None:
                    wait = policy.backoff(attempt)
            if not retry:
                assert failure is not None
                raise failure
            wait = min(wait, policy.max_delay)
            if attempt >= policy.max_attempts or policy.clock() + wait > until:
                raise self._gave_up(lost, response, method, url, scope, subject, attempt,
                                    policy.clock() - started)
            log.info("%s %s: %s; retrying in %.1f s (attempt %d of %d)", method,
                     url.split("?")[0], failure.code if failure else f"HTTP {response.status_code}",
                     wait, attempt + 1, policy.max_attempts)
            policy.sleep(wait)

    def _exchange(self, method: str, url: str, query: Mapping[str, Any], body: Any,
                  headers: Mapping[str, str] | None, authorization: Secret) -> requests.Response:
        """One request, prepared here and sent on the connection's session: what
        ``Session.request`` adds per call (cookie jars built and merged, settings merged
        through typing-protocol checks) is nothing a REST client with a token needs, and costs
        more CPU than the rest of adobot's work for a request. No cookie is ever sent."""
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, params=query, json=body,
                         headers={**self._http.headers, **(headers or {})},
                         auth=_Authorization(authorization))
        return self._http.send(prepared, timeout=self.timeout, verify=self._http.verify,
                               proxies=self._http.proxies, allow_redirects=False)

    def _server_speaks(self, response: requests.Response) -> Version | None:
        """A server older than the version asked names its latest: remember it (once per
        connection, so one extra request per session at most)."""
        fault = ServiceFault(response)
        latest = latest_supported(fault.message) \
            if fault.type_key == "VssVersionOutOfRangeException" else None
        if latest is None or latest >= self.server_version:
            return None
        self.server_version = latest
        log.info("%s speaks REST API %s (%s): using it from now on", self.base_url, text(latest),
                 server_name(latest))
        return latest

    def _count(self) -> None:
        counter = _counter.get()
        if counter is not None:
            counter.count += 1
        self.requests_sent += 1

    def _error(self, response: requests.Response, method: str, scope: str | None,
               subject: str | None, suffix: str = "",
               details: dict[str, Any] | None = None) -> AdobotError | None:
        # A write that failed with a 5xx may have acted before failing.
        unknown = method not in IDEMPOTENT and response.status_code >= 500
        return self.read_error(response, scope=scope, subject=subject,
                               outcome_unknown=unknown, suffix=suffix, details=details)

    def _gave_up(self, lost: tuple[requests.RequestException, bool] | None,
                 response: requests.Response | None, method: str, url: str, scope: str | None,
                 subject: str | None, attempts: int, elapsed: float) -> AdobotError:
        """The last failure, told with how many attempts were made over how long."""
        suffix = f" (gave up after {attempts} attempts over {elapsed:.1f} s)"
        tally = {"attempts": attempts, "elapsed_seconds": round(elapsed, 1)}
        if lost is not None:
            return self._transport_error(method, url, *lost, suffix=suffix, details=tally)
        assert response is not None
        error = self._error(response, method, scope, subject, suffix=suffix, details=tally)
        assert error is not None  # only failed answers are retried
        return error

    def _transport_error(self, method: str, url: str, exc: requests.RequestException,
                         sent: bool, suffix: str = "",
                         details: dict[str, Any] | None = None) -> AdobotError:
        unknown = sent and method not in IDEMPOTENT
        after = (" The request may have been acted on: check before running it again."
                 if unknown else "")
        if isinstance(exc, requests.Timeout):
            return Timeout(f"{method} {url.split('?')[0]} got no answer within "
                           f"{self._timeout_text(exc)}.{after}{suffix}", after_request=True,
                           outcome_unknown=unknown, details=details)
        if _unresolved(exc):
            host = urlsplit(self.base_url).hostname
            return NetworkError(f"could not reach {self.base_url}: the host {host!r} could not "
                                f"be found (its name does not resolve){suffix}",
                                "Check the host name in organization_url, and this machine's "
                                "DNS and network.", after_request=True, details=details)
        return NetworkError(f"could not reach {self.base_url}: {_reason(exc)}.{after}{suffix}",
                            after_request=True, outcome_unknown=unknown, details=details)

    def _timeout_text(self, exc: requests.Timeout) -> str:
        connect, read = self.timeout
        if isinstance(exc, requests.ConnectTimeout):
            return f"{connect:g} s (connect timeout)"
        return f"{read:g} s (read timeout)"

    def close(self) -> None:
        self._http.close()
        self.closed = True


def _environment(base_url: str) -> tuple[dict[str, str], bool | str]:
    """Proxies and CA bundle for a connection, from the environment as requests reads them:
    HTTPS_PROXY (or ALL_PROXY) for https unless NO_PROXY names the host; never a proxy for plain
    http; REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE. Logged once, without credentials."""
    proxies: dict[str, str] = {}
    if base_url.startswith("https://") and not requests.utils.should_bypass_proxies(
            base_url, no_proxy=None):
        found = requests.utils.getproxies()
        proxy = found.get("https") or found.get("all")
        if proxy:
            proxies = {"https": proxy}
    verify: bool | str = os.environ.get("REQUESTS_CA_BUNDLE") or \
        os.environ.get("CURL_CA_BUNDLE") or True
    shown = _without_credentials(proxies["https"]) if proxies else "none" + (
        " (plain http never goes through a proxy)" if base_url.startswith("http://") else "")
    log.debug("connection to %s: proxy %s, CA bundle %s", base_url, shown,
              verify if isinstance(verify, str) else "the system's")
    return proxies, verify


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc="***@" + (parts.hostname or "") +
                          (f":{parts.port}" if parts.port else "")).geturl()


def _cause(exc: requests.RequestException) -> BaseException | None:
    """What urllib3 says went wrong, out of the wrappers requests and urllib3 put around it."""
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
    reason = getattr(inner, "reason", None)  # urllib3's MaxRetryError wraps the cause
    return reason if isinstance(reason, BaseException) else inner


def _unresolved(exc: requests.RequestException) -> bool:
    """The host name did not resolve (DNS): no request left, and retrying rarely helps."""
    return isinstance(_cause(exc), NameResolutionError)


def _maybe_sent(exc: requests.RequestException) -> bool:
    """False only when the request cannot have left: no connection was ever made."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    return not isinstance(_cause(exc), (NewConnectionError, ConnectTimeoutError))


def _reason(exc: requests.RequestException) -> str:
    """The cause in a few words, without urllib3's wrapper text."""
    inner = _cause(exc) or exc
    # urllib3 prefixes "<urllib3.connection.HTTPConnection object at 0x...>: "
    return str(inner).split(">: ", 1)[-1] or type(inner).__name__
