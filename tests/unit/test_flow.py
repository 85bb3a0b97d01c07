"""Flow control of one connection: the service's 429s and rate-limit headers decide how many
requests are in flight, and a 429 holds all of them. A fake clock: no test waits."""
from __future__ import annotations

import threading

import pytest

from adobot.credentials.secret import Secret
from adobot.rest.auth import PatAuthorizer
from adobot.rest.client import RestClient
from adobot.rest.flow import MAX_IN_FLIGHT, FlowControl
from adobot.rest.retry import RetryPolicy
from tests.unit.test_retry import BASE, FakeClock


def test_a_429_halves_the_requests_in_flight_and_holds_every_one_of_them():
    clock = FakeClock()
    flow = FlowControl(clock=clock)
    tickets = [flow.enter(clock.sleep) for _ in range(8)]
    held_until = flow.leave(tickets[0], hold=2.0)

    assert flow.limit == 4  # half of the eight that were out
    assert held_until == clock.now + 2.0
    for ticket in tickets[1:5]:  # their answers come in; three are still out
        flow.leave(ticket)
    flow.enter(clock.sleep)  # another item's next request waits out the hold first
    assert clock.waits == [2.0]


def test_one_burst_of_429s_halves_once_and_the_throttled_request_does_not_wait_twice():
    clock = FakeClock()
    flow = FlowControl(clock=clock)
    tickets = [flow.enter(clock.sleep) for _ in range(8)]
    held = flow.leave(tickets[0], hold=1.0)
    for ticket in tickets[1:4]:  # sent before the limit was halved: echoes of one burst
        flow.leave(ticket, hold=1.0)
    assert flow.limit == 4 and flow.halved == 1
    for ticket in tickets[4:]:
        flow.leave(ticket)

    clock.sleep(1.0)  # the throttled request slept in its own retry loop
    flow.enter(clock.sleep, waited=held)
    assert clock.waits == [1.0]


def test_the_limit_grows_back_by_one_per_window_of_calm_answers_up_to_the_ceiling():
    clock = FakeClock()
    flow = FlowControl(ceiling=8, clock=clock)
    flow.leave(flow.enter(clock.sleep), hold=0.0)
    assert flow.limit == 1.0  # one was out: it cannot go lower
    flow.leave(flow.enter(clock.sleep))
    assert flow.limit == 2.0  # each calm answer adds 1/limit: one per window of answers
    flow.leave(flow.enter(clock.sleep))
    flow.leave(flow.enter(clock.sleep))
    assert flow.limit == pytest.approx(2.9)
    for _ in range(200):
        flow.leave(flow.enter(clock.sleep))
    assert flow.limit == 8.0


def test_a_nearly_spent_rate_limit_halves_too_and_a_lost_answer_changes_nothing():
    clock = FakeClock()
    flow = FlowControl(clock=clock)
    tickets = [flow.enter(clock.sleep) for _ in range(6)]
    flow.leave(tickets[0], answered=False)
    assert flow.limit == MAX_IN_FLIGHT
    flow.leave(tickets[1], low=True)
    assert flow.limit == 2.5 and clock.waits == []  # (4 out + this one) / 2, and no hold


def test_a_request_waits_for_a_free_place_when_the_limit_is_reached():
    clock = FakeClock()
    flow = FlowControl(ceiling=2, clock=clock)
    first, second = flow.enter(clock.sleep), flow.enter(clock.sleep)
    entered = threading.Event()
    waiter = threading.Thread(target=lambda: (flow.enter(clock.sleep), entered.set()))
    waiter.start()
    assert not entered.wait(0.2)  # both places taken
    flow.leave(first)
    assert entered.wait(5)
    waiter.join()
    flow.leave(second)
    assert flow.in_flight == 1


def test_the_transport_shares_a_429s_hold_with_the_connections_other_requests(requests_mock):
    clock = FakeClock()
    policy = RetryPolicy(sleep=clock.sleep, clock=clock, jitter=lambda low, high: high)
    client = RestClient(BASE, PatAuthorizer(Secret("pat")), policy=policy)
    requests_mock.post(f"{BASE}/x", [{"status_code": 429, "headers": {"Retry-After": "3"},
                                      "json": {"message": "slow down"}},
                                     {"status_code": 200, "json": {"id": 1}}])
    requests_mock.get(f"{BASE}/y", json={"ok": True})

    assert client.post("x", {}) == {"id": 1}
    assert clock.waits == [3.0]  # the throttled request waited once, in its retry loop
    clock.now -= 3.0  # another item's request, sent while the hold still stands
    assert client.get("y") == {"ok": True}
    assert clock.waits == [3.0, 3.0]
    client.close()


def test_a_hold_beyond_the_requests_deadline_is_not_waited_out():
    clock = FakeClock()
    flow = FlowControl(clock=clock)
    flow.leave(flow.enter(clock.sleep), hold=30.0)
    flow.enter(clock.sleep, until=clock.now + 5.0)  # it goes, and meets the service's 429
    assert clock.waits == []


def test_a_request_that_fails_oddly_gives_its_place_back(requests_mock):
    clock = FakeClock()
    policy = RetryPolicy(sleep=clock.sleep, clock=clock, jitter=lambda low, high: high)
    client = RestClient(BASE, PatAuthorizer(Secret("pat")), policy=policy)
    requests_mock.get(f"{BASE}/x", exc=RuntimeError("a bug below us"))
    with pytest.raises(RuntimeError):
        client.get("x")
    assert client.flow.in_flight == 0
    client.close()
