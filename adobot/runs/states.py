"""A run's states and what moves it between them, and the line between a business failure (the
bot's own refusal: never repeated) and a system failure (the machinery failed: repeated when the
bot says a repeat is safe)."""
from __future__ import annotations

from typing import Literal

QUEUED, RUNNING = "queued", "running"
SUCCEEDED, FAILED, CANCELLED, TIMED_OUT = "succeeded", "failed", "cancelled", "timed_out"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, TIMED_OUT)
FINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, TIMED_OUT})
State = Literal["queued", "running", "succeeded", "failed", "cancelled", "timed_out"]

LOCAL = "local"  # the runner name of the control room's own pool
PRIORITIES = {"high": 0, "normal": 1, "low": 2}  # a lower number is taken first
PRIORITY_NAMES = {number: name for name, number in PRIORITIES.items()}
Priority = Literal["high", "normal", "low"]
Failure = Literal["business", "system"]

RUNNER_LOST = "RUNNER_LOST"
# The machinery failed, not the bot: another attempt may succeed. Everything else a bot raises
# (INVALID_INPUT, NOT_FOUND, CONFLICT, PERMISSION_DENIED, AUTH_FAILED, …) is its business.
SYSTEM_CODES = frozenset({RUNNER_LOST, "THROTTLED", "NETWORK_ERROR", "TIMEOUT", "SERVICE_ERROR",
                          "INTERNAL_ERROR"})
# Seconds before the n-th repeat of a run (then the last, for every further one).
BACKOFF_SECONDS = (5.0, 30.0, 120.0, 300.0, 600.0)


def failure_of(code: str) -> Failure:
    return "system" if code in SYSTEM_CODES else "business"


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt`` (2: the first repeat)."""
    return BACKOFF_SECONDS[min(max(attempt - 2, 0), len(BACKOFF_SECONDS) - 1)]
