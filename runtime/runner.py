"""Runs a bot: variables, steps, for_each, outputs; times and counts each step; closes sessions."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from actions import registry
from actions.base import ActionContext
from credentials.secret import Secret
from rest.client import count_requests
from rest.errors import AdobotError, InternalError, InvalidInput
from rest.urls import OrganizationUrl
from runtime.interpolate import interpolate
from runtime.loader import Bot, Step
from runtime.redact import Redactor
from runtime.validate import warnings
from sessions.store import SessionScopes, SessionStore

log = logging.getLogger("adobot")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


@dataclass
class StepRecord:
    path: str
    action: str
    status: str
    duration_ms: float
    requests: int
    line: int = 0
    summary: str = ""
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"path": self.path, "action": self.action, "status": self.status,
                "duration_ms": self.duration_ms, "requests": self.requests}
        if self.error:
            data["error"] = self.error
        return data


@dataclass
class RunResult:
    bot: str
    status: str
    variables: dict[str, Any]
    steps: list[StepRecord]
    error: dict[str, Any] | None
    exit_code: int
    duration_ms: float
    warnings: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(step.requests for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"bot": self.bot, "status": self.status, "variables": self.variables,
                "steps": [step.to_dict() for step in self.steps], "error": self.error,
                "duration_ms": self.duration_ms, "requests": self.requests,
                "warnings": self.warnings}


class _StepFailed(Exception):
    def __init__(self, error: AdobotError, path: str, action: str) -> None:
        super().__init__(error.message)
        self.error, self.path, self.action = error, path, action


class Runner:
    """Runs bots. One runner can run many bots; each run has its own variables and local
    sessions, and, unless a global store is given, its own global sessions too."""

    def __init__(self, *, route: Callable[[OrganizationUrl], str] | None = None,
                 redactor: Redactor | None = None, debug: bool = False,
                 progress: Callable[[str], None] | None = None,
                 vault_path: str | None = None) -> None:
        self.route = route or (lambda org: org.base_url)
        self.progress = progress
        self.vault_path = vault_path
        self.redactor = redactor or Redactor()
        self.debug = debug

    def run(self, bot: Bot, overrides: Mapping[str, Any] | None = None,
            global_sessions: SessionStore | None = None) -> RunResult:
        started = time.perf_counter()
        owns_global = global_sessions is None
        scopes = SessionScopes(global_=global_sessions)
        variables = self._seed_variables(bot, overrides or {})
        self._register_file_tokens(bot)
        found_warnings = warnings(bot)
        for warning in found_warnings:
            log.warning("warning: %s", warning)
        records: list[StepRecord] = []
        ctx = ActionContext(sessions=scopes, variables=variables, route=self.route,
                            register_secret=self.redactor.add, log=log, progress=self.progress,
                            vault=self._open_vault)
        error: dict[str, Any] | None = None
        exit_code = 0
        try:
            self._run_steps(bot.steps, ctx, records, prefix="")
        except _StepFailed as failed:
            error = {**failed.error.to_dict(), "path": failed.path, "action": failed.action}
            exit_code = failed.error.exit_code
        finally:
            scopes.local.close_all()
            if owns_global:
                scopes.global_.close_all()
        return RunResult(
            bot=bot.name, status="failed" if error else "succeeded",
            variables=self.redactor.mask(variables), steps=records,
            error=self.redactor.mask(error) if error else None, exit_code=exit_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 1), warnings=found_warnings)

    def _open_vault(self):
        from credentials.vault import Vault

        return Vault(self.vault_path)

    def _seed_variables(self, bot: Bot, overrides: Mapping[str, Any]) -> dict[str, Any]:
        variables = {**bot.variables, **overrides}
        for name in bot.secret_variables() & set(variables):
            value = variables[name]
            if isinstance(value, str):
                variables[name] = Secret(value)
                self.redactor.add(Secret(value.strip()))
        return variables

    def _register_file_tokens(self, bot: Bot) -> None:
        """Tokens written into the bot file are masked like any other."""
        for step in bot.insecure_token_steps():
            value = step.inputs["personal_access_token"]["insecure"]
            if isinstance(value, str):
                self.redactor.add(Secret(value.strip()))

    def _run_steps(self, steps: list[Step], ctx: ActionContext, records: list[StepRecord],
                   prefix: str) -> None:
        for step in steps:
            path = prefix + step.path.rsplit(".", 1)[-1]
            if step.action is None:
                self._run_loop(step, path, ctx, records)
            else:
                self._run_action(step, path, ctx, records)

    def _run_loop(self, step: Step, path: str, ctx: ActionContext,
                  records: list[StepRecord]) -> None:
        variables = ctx.variables
        try:
            items = interpolate(step.for_each, variables, f"step {path} for_each")
            if not isinstance(items, list):
                raise InvalidInput(f"step {path}: for_each must be a list, not "
                                   f"{type(items).__name__}", field="for_each")
        except AdobotError as exc:
            raise _StepFailed(exc, path, "for_each") from None
        for index, item in enumerate(items):
            variables[step.item_name] = item  # type: ignore[index]
            self._run_steps(step.steps, ctx, records, prefix=f"{path}[{index}].")

    def _run_action(self, step: Step, path: str, ctx: ActionContext,
                    records: list[StepRecord]) -> None:
        started = time.perf_counter()
        action_name = step.action or ""
        with count_requests() as counter:
            try:
                action = registry.get(action_name)
                inputs = action.parse_inputs(interpolate(step.inputs, ctx.variables, "inputs"))
                outputs = action.run(ctx, inputs)
                if step.outputs:
                    values = outputs.model_dump(mode="json", include=set(step.outputs))
                    for output, variable in step.outputs.items():
                        ctx.variables[variable] = values[output]  # type: ignore[index]
            except AdobotError as exc:
                failure = exc
            except Exception as exc:  # a bug: say so, keep the traceback for --debug
                failure = InternalError(
                    f"{action_name} failed unexpectedly: {type(exc).__name__}: {exc}")
                failure.__cause__ = exc
            else:
                failure = None
        record = StepRecord(path=path, action=action_name, line=step.line,
                            status="failed" if failure else "succeeded",
                            duration_ms=round((time.perf_counter() - started) * 1000, 1),
                            requests=counter.count)
        clear = getattr(self.progress, "clear", None)
        if clear is not None:
            clear()
        records.append(record)
        if failure is not None:
            record.error = self.redactor.mask(failure.to_dict())
            log.info("step %s %s failed (%s, %.0f ms)", path, action_name,
                     plural(record.requests, "request"), record.duration_ms,
                     exc_info=failure if self.debug else None)
            raise _StepFailed(failure, path, action_name)
        record.summary = outputs.summary()
        log.info("step %s %s: %s (%s, %.0f ms)", path, action_name, record.summary or "done",
                 plural(record.requests, "request"), record.duration_ms)
