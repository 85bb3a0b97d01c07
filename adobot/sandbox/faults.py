"""Faults on demand, so tests and users can rehearse failure.

A fault is a rule: which requests (method, a regex searched in the path), what happens, how
often. Add them in the seed (``"faults": [...]``), through the admin route
``POST /_sandbox/faults`` (``GET`` lists them, ``DELETE`` removes them all), or in Python with
``sandbox.state.faults.add({...})``.

kinds:
  throttle      429 with Retry-After and X-RateLimit-* headers (nothing is done)
  error         ``status`` (500, 502, 503, 504…) with a service error body (nothing is done)
  reset_before  the connection is dropped before the request is acted on
  reset_after   the request is acted on, then the connection is dropped (the answer is lost)
  slow          the answer comes after ``delay`` seconds
  signin        a 203 HTML sign-in page, as the service gives a browser without credentials
  headers       the normal answer, with ``headers`` added (e.g. X-RateLimit-Remaining: 0)
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

KINDS = ("throttle", "error", "reset_before", "reset_after", "slow", "signin", "headers")


@dataclass
class Fault:
    kind: str
    method: str = "*"
    path: str = ""
    times: int | None = 1          # how often it fires; None: every time it matches
    every: int = 1                 # fire on every Nth matching request
    status: int = 503
    retry_after: str | None = "1"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    id: int = 0
    seen: int = 0
    fired: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def parse(rule: dict[str, Any], fault_id: int) -> Fault:
    if not isinstance(rule, dict):
        raise ValueError("a fault is a JSON object")
    unknown = set(rule) - {"kind", "method", "path", "times", "every", "status", "retry_after",
                           "delay", "headers"}
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    fault = Fault(**rule, id=fault_id)
    if fault.kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    re.compile(fault.path)
    if fault.every < 1 or (fault.times is not None and fault.times < 1):
        raise ValueError("every and times must be at least 1")
    if fault.retry_after is not None:
        fault.retry_after = str(fault.retry_after)
    return fault


class FaultSet:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, rule: dict[str, Any]) -> Fault:
        with self._lock:
            fault = parse(rule, self._next_id)
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def take(self, method: str, path: str) -> Fault | None:
        """The fault that fires for this request, if any (the first matching rule)."""
        with self._lock:
            for fault in self._faults:
                if fault.method not in ("*", method) or not re.search(fault.path, path):
                    continue
                if fault.times is not None and fault.fired >= fault.times:
                    continue
                fault.seen += 1
                if fault.seen % fault.every:
                    continue
                fault.fired += 1
                return fault
        return None
