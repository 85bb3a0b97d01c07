"""The retry policy, with requests-mock and a fake clock: what is retried, how long it waits."""
from __future__ import annotations

import time
from email.utils import formatdate

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from adobot.credentials.secret import Secret
from adobot.rest.auth import PatAuthorizer
from adobot.rest.client import RestClient
from adobot.errors import AdobotError
from adobot.rest.retry import RateLimitPacer, RetryPolicy, action_budget, retry_after

BASE = "https://dev.azure.com/contoso"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def client(clock):
    policy = RetryPolicy(sleep=clock.sleep, clock=clock, jitter=lambda low, high: high)
    rest = RestClient(BASE, PatAuthorizer(Secret("pat")), policy=policy)
    yield rest
    rest.close()


def answers(*statuses: int, retry: str | None = None) -> list[dict]:
    out = []
    for status in statuses:
        item: dict = {"status_code": status, "json": {"message": f"status {status}"}}
        if retry is not None and status in (429, 503):
            item["headers"] = {"Retry-After": retry}
        out.append(item)
    return out


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("status", [502, 503, 504])
def test_idempotent_requests_are_retried_on_gateway_errors(client, clock, requests_mock, method, status):
    requests_mock.register_uri(method, f"{BASE}/x", answers(status, status, 200))
    client.request(method, "x", body={} if method == "PUT" else None)
    assert requests_mock.call_count == 3
    assert clock.waits == [0.5, 1.0]  # exponential (jitter fixed to its ceiling here)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_post_that_may_have_been_acted_on_is_not_resent(client, requests_mock, status):
    requests_mock.post(f"{BASE}/x", answers(status, 200))
    with pytest.raises(AdobotError) as caught:
        client.post("x", {})
    assert caught.value.code == "SERVICE_ERROR"
    assert caught.value.outcome_unknown is True
    assert requests_mock.call_count == 1


def test_429_is_retried_for_every_method_after_retry_after(client, clock, requests_mock):
    requests_mock.post(f"{BASE}/x", answers(429, 429, 200, retry="7"))
    client.post("x", {})
    assert requests_mock.call_count == 3 and clock.waits == [7.0, 7.0]


def test_retry_after_is_capped(client, clock, requests_mock):
    requests_mock.get(f"{BASE}/x", answers(429, 200, retry="3600"))
    client.get("x")
    assert clock.waits == [30.0]


def test_429_without_retry_after_backs_off(client, clock, requests_mock):
    requests_mock.get(f"{BASE}/x", answers(429, 429, 429, 200))
    client.get("x")
    assert clock.waits == [0.5, 1.0, 2.0]


def test_attempts_run_out_with_a_count_and_a_duration(client, clock, requests_mock):
    requests_mock.get(f"{BASE}/x", answers(*[429] * 10, retry="2"))
    with pytest.raises(AdobotError) as caught:
        client.get("x")
    error = caught.value
    assert error.code == "THROTTLED" and requests_mock.call_count == 6
    assert "gave up after 6 attempts over 10.0 s" in error.message
    assert error.details["attempts"] == 6 and error.details["elapsed_seconds"] == 10.0


def test_the_action_budget_ends_retries_early(client, clock, requests_mock):
    requests_mock.get(f"{BASE}/x", answers(*[503] * 10, retry="20"))
    with action_budget(45, clock=clock), pytest.raises(AdobotError) as caught:
        client.get("x")
    assert caught.value.code == "SERVICE_ERROR" and clock.waits == [20.0, 20.0]
    assert "gave up after 3 attempts over 40.0 s" in caught.value.message


def refused() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: Connection refused")
    return requests.ConnectionError(MaxRetryError(None, "/x", reason))


def reset() -> requests.ConnectionError:
    return requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))


@pytest.mark.parametrize("failure, resent", [
    (refused, True), (requests.ConnectTimeout, True),     # never left: safe for a POST
    (reset, False), (requests.ReadTimeout, False),        # may have been acted on
])
def test_a_post_is_resent_only_if_it_cannot_have_left(client, requests_mock, failure, resent):
    requests_mock.post(f"{BASE}/x", [{"exc": failure()}, {"json": {"ok": True}}])
    if resent:
        assert client.post("x", {}) == {"ok": True}
    else:
        with pytest.raises(AdobotError) as caught:
            client.post("x", {})
        assert caught.value.outcome_unknown is True
        assert "may have been acted on" in caught.value.message
    assert requests_mock.call_count == (2 if resent else 1)


@pytest.mark.parametrize("failure", [refused, reset, requests.ReadTimeout])
def test_a_get_is_resent_after_any_connection_failure(client, requests_mock, failure):
    requests_mock.get(f"{BASE}/x", [{"exc": failure()}, {"json": {"ok": True}}])
    assert client.get("x") == {"ok": True}


def test_retry_after_forms():
    assert retry_after({"Retry-After": "12"}) == 12.0
    assert retry_after({"Retry-After": "1.5"}) == 1.5
    assert retry_after({"Retry-After": "-3"}) == 0.0
    assert retry_after({}) is None and retry_after({"Retry-After": "soon"}) is None
    now = time.time()
    assert 29 <= retry_after({"Retry-After": formatdate(now + 30, usegmt=True)}, now) <= 30
    assert retry_after({"Retry-After": formatdate(now - 30, usegmt=True)}, now) == 0.0


def test_backoff_has_jitter_within_bounds():
    policy = RetryPolicy()
    for attempt in range(1, 10):
        ceiling = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
        delays = {policy.backoff(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 1


def test_pacing_spreads_what_is_left_of_the_limit():
    pacer, policy, now = RateLimitPacer(), RetryPolicy(), 5000.0
    assert pacer.pause(policy, now) == 0.0
    pacer.note({"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "150",
                "X-RateLimit-Reset": str(now + 60)})
    assert pacer.pause(policy, now) == 0.0  # plenty left
    pacer.note({"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "10",
                "X-RateLimit-Reset": str(now + 20)})
    assert pacer.pause(policy, now) == 2.0  # 20 s left for 10 requests
    pacer.note({"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "1",
                "X-RateLimit-Reset": str(now + 300)})
    assert pacer.pause(policy, now) == policy.max_pause
    pacer.note({})  # an answer without the headers: the limit is far away again
    assert pacer.pause(policy, now) == 0.0


def test_the_client_pauses_before_the_next_request(client, clock, requests_mock):
    requests_mock.get(f"{BASE}/x", [
        {"json": {}, "headers": {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "1",
                                 "X-RateLimit-Reset": str(time.time() + 60)}},
        {"json": {}}])
    client.get("x")
    assert clock.waits == []
    client.get("x")
    assert clock.waits == [5.0]


def unresolved() -> requests.ConnectionError:
    from urllib3.exceptions import NameResolutionError

    reason = NameResolutionError("no-such-host.invalid", None, "Name or service not known")
    return requests.ConnectionError(MaxRetryError(None, "/x", reason))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_host_that_does_not_resolve_fails_after_one_retry(client, clock, requests_mock, method):
    """Issue 15: an unknown host was retried six times over 13 s."""
    requests_mock.register_uri(method, f"{BASE}/x", exc=unresolved())
    with pytest.raises(AdobotError) as caught:
        client.request(method, "x", body={} if method == "POST" else None)
    assert requests_mock.call_count == 2 and len(clock.waits) == 1
    assert caught.value.code == "NETWORK_ERROR"
    assert "'dev.azure.com' could not be found" in caught.value.message
    assert caught.value.outcome_unknown is False  # nothing left: safe to run again
