"""Errors by stage: transport failures share a base class, a lost answer is a typed attribute,
and an error is built whole where its message is known, never changed after it is raised."""
from __future__ import annotations

import pytest
import requests

from adobot.actions.base import say_where_to_look
from adobot.credentials.secret import Secret
from adobot.rest.auth import PatAuthorizer
from adobot.rest.client import RestClient
from adobot.errors import (
    ERROR_CODES,
    AdobotError,
    AlreadyExists,
    NetworkError,
    ServiceError,
    Throttled,
    Timeout,
    TransportError,
)
from adobot.rest.retry import RetryPolicy

BASE = "https://dev.azure.com/contoso"


@pytest.fixture
def client():
    rest = RestClient(BASE, PatAuthorizer(Secret("pat")),
                      policy=RetryPolicy(sleep=lambda s: None, max_attempts=3))
    yield rest
    rest.close()


def test_the_transport_stage_has_one_base_class():
    assert {cls.code for cls in TransportError.__subclasses__()} == {
        "THROTTLED", "TIMEOUT", "NETWORK_ERROR", "SERVICE_ERROR"}
    assert not issubclass(AlreadyExists, TransportError)
    assert all(code in ERROR_CODES for code in ("THROTTLED", "TIMEOUT"))


@pytest.mark.parametrize("answer, kind", [
    ({"status_code": 429}, Throttled), ({"status_code": 503}, ServiceError),
    ({"exc": requests.ReadTimeout}, Timeout), ({"exc": requests.ConnectionError}, NetworkError),
])
def test_transport_failures_are_transport_errors(client, requests_mock, answer, kind):
    requests_mock.get(f"{BASE}/x", [answer] * 3)
    with pytest.raises(TransportError) as caught:
        client.get("x")
    assert type(caught.value) is kind and caught.value.outcome_unknown is False


def test_a_lost_write_is_typed_and_its_final_message_is_built_whole(client, requests_mock):
    requests_mock.post(f"{BASE}/x", exc=requests.ReadTimeout)
    with pytest.raises(Timeout) as caught:
        client.post("x", {})
    error = caught.value
    assert error.outcome_unknown is True and "outcome_unknown" not in error.details
    assert str(error) == error.message


def test_giving_up_raises_a_new_error_with_the_tally(client, requests_mock):
    requests_mock.get(f"{BASE}/x", [{"status_code": 503}] * 3)
    with pytest.raises(ServiceError) as caught:
        client.get("x")
    assert str(caught.value) == caught.value.message
    assert caught.value.message.endswith("(gave up after 3 attempts over 0.0 s)")


def test_derive_leaves_the_raised_error_as_it_was():
    lost = NetworkError("could not reach it", after_request=True, outcome_unknown=True,
                        status=None, details={"attempts": 2})
    told = say_where_to_look(lost, "the runs page")
    assert told is not lost and type(told) is NetworkError
    assert lost.message == "could not reach it" and str(lost) == "could not reach it"
    assert "look at the runs page" in told.message and str(told) == told.message
    assert told.outcome_unknown and told.details == {"attempts": 2} and told.exit_code == 1
    known = NetworkError("down", after_request=True)
    assert say_where_to_look(known, "x") is known


def test_an_error_never_shows_more_than_its_message():
    error = AdobotError("boom")
    assert repr(error) == "AdobotError(SERVICE_ERROR: 'boom')"
