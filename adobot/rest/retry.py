"""The one retry policy: when a request may be sent again, and how long to wait first.

- 429 (throttled) is retried for every method: the service refused it without acting.
  ``Retry-After`` (seconds or an HTTP date) is honoured, capped.
- 502, 503 and 504 are retried for idempotent methods only, with exponential backoff and
  jitter (or ``Retry-After`` when a 503 gives one). A POST that got one may have been acted on.
- A connection that failed before the request left (refused, DNS, connect timeout) is retried
  for every method; one that failed after (reset, read timeout) only for idempotent methods.
- All waits of one action share a time budget; before the budget or the attempts run out, the
  last failure is raised with how many attempts were made over how long.
- ``X-RateLimit-Remaining`` running low makes the client pause before the next request, so
  the service's limit is met ahead of a 429.
"""
from __future__ import annotations

import contextvars
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_ON_IDEMPOTENT = frozenset({502, 503, 504})


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    budget_seconds: float = 120.0  # all waits of one action, unless the runtime sets a budget
    base_delay: float = 0.5
    max_delay: float = 30.0        # no single wait is longer, whatever Retry-After says
    slow_down_below: float = 0.1   # pause when less than this share of the rate limit is left
    max_pause: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    jitter: Callable[[float, float], float] = field(default=random.uniform, repr=False)

    def backoff(self, attempt: int) -> float:
        """Exponential, with jitter so that many clients do not retry in step."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return self.jitter(ceiling / 2, ceiling)


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    raw = headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # rare: most services send seconds

    try:
        when = parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class RateLimitPacer:
    """Remembers the last X-RateLimit-* headers of a connection and says how long to pause."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._remaining: float | None = None
        self._limit: float | None = None
        self._reset: float | None = None

    def note(self, headers: Mapping[str, str]) -> None:
        """Keep the latest headers; an answer without them means the limit is far away."""
        try:
            remaining = float(headers["X-RateLimit-Remaining"])
            limit = float(headers.get("X-RateLimit-Limit") or 0) or None
            reset = float(headers.get("X-RateLimit-Reset") or 0) or None
        except (KeyError, ValueError):
            remaining = limit = reset = None
        with self._lock:
            self._remaining, self._limit, self._reset = remaining, limit, reset

    def nearly_spent(self, policy: RetryPolicy) -> bool:
        with self._lock:
            return _low(self._remaining, self._limit, policy)

    def pause(self, policy: RetryPolicy, now: float | None = None) -> float:
        """Spread what is left of the budget over the time left in the window."""
        with self._lock:
            remaining, limit, reset = self._remaining, self._limit, self._reset
        if remaining is None or not _low(remaining, limit, policy):
            return 0.0
        window = (reset - (time.time() if now is None else now)) if reset else policy.max_pause
        return min(policy.max_pause, max(0.0, window) / max(remaining, 1.0))


def _low(remaining: float | None, limit: float | None, policy: RetryPolicy) -> bool:
    """Less than the policy's share of the rate limit is left."""
    return remaining is not None and limit is not None and \
        remaining < limit * policy.slow_down_below


# The deadline of the action being run: all its retries share it (the runtime sets it).
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("adobot_deadline",
                                                                        default=None)


@contextmanager
def action_budget(seconds: float, clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    token = _deadline.set(clock() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def deadline(policy: RetryPolicy, started: float) -> float:
    return _deadline.get() or started + policy.budget_seconds
