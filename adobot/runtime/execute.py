"""One way to run an action: raw inputs and a context in; outputs or the error, the requests
sent and the time taken out. The bot runner and the Python API call it (and so will every other
front end), so validation, secret handling, request counting, the retry budget and the wrapping
of unexpected failures live here once.

The request counter and the retry deadline are context variables set inside ``execute``: they
belong to whichever thread runs it, so an async server may run it with ``asyncio.to_thread``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from adobot.actions import registry
from adobot.actions.base import Action, ActionContext, ActionOutputs
from adobot.credentials.secret import Secret
from adobot.credentials.sources import credential_inputs, secret_passing_inputs, sources_in
from adobot.rest.client import count_requests
from adobot.errors import AdobotError, InternalError, InvalidInput
from adobot.rest.retry import action_budget
from adobot.runtime.interpolate import interpolate


@dataclass
class Outcome:
    """What running one action came to: ``outputs`` or ``error``, never both."""

    action: str
    outputs: ActionOutputs | None
    error: AdobotError | None
    requests: int
    duration_ms: float


def execute(name: str, raw_inputs: Mapping[str, Any] | None, ctx: ActionContext, *,
            literal: bool = False) -> Outcome:
    """Run the action called ``name``: hold the secrets its credential inputs name, resolve
    ``${...}``, validate, run with one retry budget, and count its requests. ``literal``: the
    inputs are taken as they are, ``${...}`` included (an agent's text is not a bot's)."""
    started = time.perf_counter()
    outputs: ActionOutputs | None = None
    error: AdobotError | None = None
    with count_requests() as counter, action_budget(ctx.retry_policy.budget_seconds):
        try:
            action = registry.get(name)
            if isinstance(raw_inputs, Mapping):
                named = [source.get("variable") for _, source in
                         sources_in(raw_inputs, credential_inputs(action.inputs))]
                hold_secrets(ctx.variables, named, ctx.register_secret)
            given = raw_inputs if literal else interpolate(raw_inputs, ctx.variables, "inputs")
            _refuse_stray_secrets(action, given)
            inputs = action.parse_inputs(given, allow_plain_http=ctx.allow_plain_http)
            outputs = action.run(ctx, inputs)
        except AdobotError as exc:
            error = exc
        except Exception as exc:  # a bug: say so, keep the traceback for --debug
            error = InternalError(f"{name} failed unexpectedly: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
    return Outcome(action=name, outputs=outputs, error=error, requests=counter.count,
                   duration_ms=round((time.perf_counter() - started) * 1000, 1))


def _refuse_stray_secrets(action: Action, given: Any) -> None:
    """A secret variable may go into a credential input (as its source) or be passed on to a
    child bot; anywhere else (a map of fields, a template parameter) it would be sent in clear
    as data, so it is refused before sending, naming the place."""
    if not isinstance(given, Mapping):
        return
    allowed = set(credential_inputs(action.inputs)) | set(secret_passing_inputs(action.inputs))
    for name, value in given.items():
        if name not in allowed:
            place = _secret_in(value, name)
            if place:
                raise InvalidInput(f"input {place!r} holds a secret variable: a token may only "
                                   "be the source of a credential input (e.g. "
                                   "personal_access_token: {variable: NAME})",
                                   "Do not send a token as data.", field=name)


def _secret_in(value: Any, where: str) -> str | None:
    if isinstance(value, Secret):
        return where
    if isinstance(value, Mapping):
        return next((found for key, item in value.items()
                     if (found := _secret_in(item, f"{where}.{key}"))), None)
    if isinstance(value, (list, tuple)):
        return next((found for index, item in enumerate(value)
                     if (found := _secret_in(item, f"{where}[{index}]"))), None)
    return None


def hold_secrets(variables: dict[str, Any], names: Iterable[object],
                 register: Callable[[Secret], None]) -> None:
    """The variables named hold secrets from now on: wrapped, so they never print, and
    registered, so any copy of the value is masked in all output."""
    for name in names:
        if isinstance(name, str) and isinstance(variables.get(name), str):
            value = variables[name]
            variables[name] = Secret(value)
            register(Secret(value.strip()))
