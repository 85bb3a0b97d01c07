"""How many requests of one connection may be in flight: the service decides.

A parallel loop can have many requests out at once on one connection. The service's answers
set how many, the way TCP sets its window (additive increase, multiplicative decrease):

- a 429 halves the limit and holds every request of the connection until its Retry-After has
  passed, so the others wait exactly as long as a sequential bot would, instead of piling
  more requests onto a service that said stop;
- ``X-RateLimit-Remaining`` running low halves it too, before a 429 comes;
- answers that are not throttled let it grow back by one per ``limit`` answers.

One burst of 429s (requests sent before the limit was last halved) halves it once, not once
per answer. A sequential bot (one request in flight) only ever meets the hold.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

MAX_IN_FLIGHT = 32  # a connection's pool holds as many; a loop runs at most as many items


class FlowControl:
    def __init__(self, ceiling: int = MAX_IN_FLIGHT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = ceiling
        self.clock = clock
        self.limit = float(ceiling)
        self.in_flight = 0
        self.resume_at = 0.0  # no request leaves before this (a 429's Retry-After)
        self.halved = 0       # how often the limit was halved: a request's ticket
        self._cond = threading.Condition()

    def enter(self, sleep: Callable[[float], None], waited: float | None = None,
              until: float = float("inf")) -> int:
        """Wait for a hold to pass and for a free place, then take it; returns the ticket that
        ``leave`` takes back. ``waited``: the hold this request has already slept through
        (the request that was throttled waits in its own retry loop); ``until``: the request's
        deadline; a hold that lasts beyond it is not waited out (the request goes, and gives up
        on the service's own answer)."""
        while True:
            with self._cond:
                delay = self.resume_at - self.clock()
                if delay <= 0 or self.resume_at == waited or self.resume_at > until:
                    if self.in_flight < max(1, int(self.limit)):
                        self.in_flight += 1
                        return self.halved
                    self._cond.wait(1.0)
                    continue
                waited = self.resume_at
            sleep(delay)  # outside the lock: the others still answer and leave

    def leave(self, ticket: int, *, hold: float | None = None, low: bool = False,
              answered: bool = True) -> float:
        """Give the place back. ``hold``: the service throttled this request and asked for that
        many seconds; ``low``: its rate limit is nearly spent; ``answered``: False when no
        answer came (a network failure says nothing about the service's limits). Returns the
        time the connection is held until."""
        with self._cond:
            self.in_flight -= 1
            if hold is not None:
                self.resume_at = max(self.resume_at, self.clock() + hold)
            if hold is not None or low:
                if ticket == self.halved:  # the first sign of this burst, not an echo of it
                    self.limit = max(1.0, min(self.limit, self.in_flight + 1.0) / 2)
                    self.halved += 1
            elif answered:
                self.limit = min(float(self.ceiling), self.limit + 1 / self.limit)
            self._cond.notify_all()
            return self.resume_at
