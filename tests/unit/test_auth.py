"""Authorizers: the header of every attempt comes from them, and a 401 is retried once only when
the authorizer renewed its token (a PAT never is; a bearer token source is, under a lock)."""
from __future__ import annotations

import base64
import threading

import pytest

from adobot.credentials.secret import Secret
from adobot.rest.auth import BearerAuthorizer, PatAuthorizer
from adobot.rest.client import RestClient
from adobot.errors import AdobotError
from adobot.rest.retry import RetryPolicy

BASE = "https://dev.azure.com/contoso"
CANARY = "canary-bearer-7f3a9c"


class Tokens:
    """A token source: each fetch a new token, expiring ``lifetime`` seconds after ``now``."""

    def __init__(self, lifetime: float = 3600.0) -> None:
        self.now = 1000.0
        self.lifetime = lifetime
        self.issued: list[str] = []

    def clock(self) -> float:
        return self.now

    def __call__(self) -> tuple[Secret, float]:
        token = f"{CANARY}-{len(self.issued) + 1}"
        self.issued.append(token)
        return Secret(token), self.now + self.lifetime


def client_with(auth) -> RestClient:
    return RestClient(BASE, auth, policy=RetryPolicy(sleep=lambda s: None))


def sent_headers(requests_mock) -> list[str]:
    return [r.headers["Authorization"] for r in requests_mock.request_history]


def test_a_pat_is_basic_with_an_empty_user_on_every_attempt(requests_mock):
    requests_mock.get(f"{BASE}/x", [{"status_code": 503}, {"json": {"ok": True}}])
    client_with(PatAuthorizer(Secret("pat-123"))).get("x")
    expected = "Basic " + base64.b64encode(b":pat-123").decode()
    assert sent_headers(requests_mock) == [expected, expected]


def test_a_pat_refused_is_final(requests_mock):
    requests_mock.get(f"{BASE}/x", status_code=401, json={"message": "TF400813: anonymous"})
    with pytest.raises(AdobotError) as caught:
        client_with(PatAuthorizer(Secret("pat-123"))).get("x")
    assert caught.value.code == "AUTH_FAILED" and requests_mock.call_count == 1


def test_a_bearer_token_is_fetched_once_and_reused(requests_mock):
    tokens = Tokens()
    requests_mock.get(f"{BASE}/x", json={})
    client = client_with(BearerAuthorizer(tokens, clock=tokens.clock))
    for _ in range(5):
        client.get("x")
    assert tokens.issued == [f"{CANARY}-1"]
    assert set(sent_headers(requests_mock)) == {f"Bearer {CANARY}-1"}


def test_a_bearer_token_is_renewed_before_it_expires(requests_mock):
    tokens = Tokens(lifetime=3600)
    requests_mock.get(f"{BASE}/x", json={})
    auth = BearerAuthorizer(tokens, clock=tokens.clock, refresh_before=300)
    client = client_with(auth)
    client.get("x")
    tokens.now += 3600 - 301  # still more than five minutes left: the same token
    client.get("x")
    tokens.now += 2           # less than five minutes left: a new one, before any 401
    client.get("x")
    assert sent_headers(requests_mock) == [f"Bearer {CANARY}-1"] * 2 + [f"Bearer {CANARY}-2"]
    assert auth.fetched == 2


def test_a_refused_bearer_token_is_renewed_and_sent_once_more(requests_mock):
    tokens = Tokens()
    requests_mock.get(f"{BASE}/x", [{"status_code": 401, "json": {"message": "expired"}},
                                    {"json": {"ok": True}}])
    assert client_with(BearerAuthorizer(tokens, clock=tokens.clock)).get("x") == {"ok": True}
    assert sent_headers(requests_mock) == [f"Bearer {CANARY}-1", f"Bearer {CANARY}-2"]


def test_a_second_401_after_renewing_is_final(requests_mock):
    tokens = Tokens()
    requests_mock.get(f"{BASE}/x", status_code=401,
                      json={"message": "TF400813: Resource not available for anonymous access."})
    with pytest.raises(AdobotError) as caught:
        client_with(BearerAuthorizer(tokens, clock=tokens.clock)).get("x")
    assert caught.value.code == "AUTH_FAILED"
    assert requests_mock.call_count == 2 and len(tokens.issued) == 2


def test_a_source_that_gives_the_same_token_again_is_not_retried(requests_mock):
    requests_mock.get(f"{BASE}/x", status_code=401, json={"message": "no"})
    same = BearerAuthorizer(lambda: (Secret(CANARY), 10.0 ** 12))
    with pytest.raises(AdobotError):
        client_with(same).get("x")
    assert requests_mock.call_count == 1


def test_threads_sharing_a_client_renew_a_stale_token_once(requests_mock):
    tokens = Tokens()
    fetching = threading.Lock()
    calls = []

    def slow_source() -> tuple[Secret, float]:
        with fetching:  # would expose two fetches running at once
            calls.append(1)
            return tokens()

    requests_mock.get(f"{BASE}/x", json={})
    auth = BearerAuthorizer(slow_source, clock=tokens.clock)
    client = client_with(auth)
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        client.get("x")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and requests_mock.call_count == 8


def test_authorizers_never_show_their_token():
    tokens = Tokens()
    bearer = BearerAuthorizer(tokens, clock=tokens.clock)
    header = bearer.header()
    pat = PatAuthorizer(Secret(CANARY))
    shown = [repr(bearer), str(bearer), repr(pat), str(pat), repr(header), str(header),
             repr(pat.header())]
    assert all(CANARY not in text for text in shown)


def test_a_short_lived_token_is_renewed_at_half_its_life():
    now = [1000.0]
    tokens = iter(["one", "two", "three"])
    authorizer = BearerAuthorizer(lambda: (Secret(next(tokens)), now[0] + 2.0),
                                  clock=lambda: now[0])
    assert authorizer.header().reveal() == "Bearer one"
    now[0] += 0.9
    assert authorizer.header().reveal() == "Bearer one"
    now[0] += 0.2  # past half its two-second life (a five-minute margin would renew every call)
    assert authorizer.header().reveal() == "Bearer two" and authorizer.fetched == 2
