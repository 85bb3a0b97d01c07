"""Runs a bot: variables, steps, for_each, outputs; times and counts each step; closes sessions."""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from adobot.actions.base import ActionContext
from adobot.actions.environment import Environment, RunLimits
from adobot.actions.files import confine
from adobot.credentials.secret import Secret
from adobot.errors import AdobotError, InternalError, InvalidBot, InvalidInput, Timeout
from adobot.runtime.execute import execute, hold_secrets
from adobot.runtime.interpolate import interpolate, whole_reference
from adobot.runtime.loader import Bot, Step, load_bot
from adobot.sessions.store import SessionScopes, SessionStore

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
    failures: list[dict[str, Any]] = field(default_factory=list)  # continued past (on_error)

    @property
    def requests(self) -> int:
        return sum(step.requests for step in self.steps)

    @classmethod
    def refused(cls, bot: str, error: dict[str, Any], exit_code: int) -> "RunResult":
        """A run that failed before its first step: no steps ran, nothing was sent."""
        return cls(bot=bot, status="failed", variables={}, steps=[], error=error,
                   exit_code=exit_code, duration_ms=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"bot": self.bot, "status": self.status, "variables": self.variables,
                "steps": [step.to_dict() for step in self.steps], "error": self.error,
                "failures": self.failures, "duration_ms": self.duration_ms,
                "requests": self.requests, "warnings": self.warnings}


class _StepFailed(AdobotError):
    """A step failed and the bot stops; ``path`` says where, through child bots too. A RunBot
    step passes its child's failure on as its own error, keeping the child's path."""

    def __init__(self, error: AdobotError, path: str, action: str) -> None:
        super().__init__(error.message, error.hint, after_request=error.after_request)
        self.code = error.code
        self.error, self.path, self.action = error, path, action

    def to_dict(self) -> dict[str, Any]:
        return {**self.error.to_dict(), "path": self.path, "action": self.action}


@dataclass
class _Tree:
    """What all the bots of one top-level run share."""

    allowed: tuple[Path, ...]  # folders its bots may read files from: the top bot's, and more
    records: list[StepRecord] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bots: dict[Path, Bot] = field(default_factory=dict)  # child bots, each parsed once a run
    lock: threading.Lock = field(default_factory=threading.Lock)
    budget: "_Budget | None" = None  # the run's limits, if it has some

    def load(self, parent: Bot, path: str) -> Bot:
        """A child bot of ``parent``: inside the allowed folders, parsed once per run."""
        file = confine(path, parent.file.parent, self.allowed, field="bot")
        with self.lock:
            if file not in self.bots:
                self.bots[file] = load_bot(file)
            return self.bots[file]

    def fork(self) -> "_Tree":
        """For one item of a parallel loop: its own records, failures and warnings (merged back
        in item order), the same child bots and folders."""
        return _Tree(allowed=self.allowed, bots=self.bots, lock=self.lock, budget=self.budget)

    def merge(self, item: "_Tree") -> None:
        self.records += item.records
        self.failures += item.failures
        self.warnings += item.warnings


@dataclass
class _Frame:
    """One bot of the tree running: its context and where it sits in the tree."""

    bot: Bot
    ctx: ActionContext
    store: SessionStore   # the global sessions, shared by the whole tree
    tree: _Tree
    depth: int


MAX_DEPTH = 10        # RunBot nesting: deeper is a loop of bots calling each other
PROGRESS_AFTER = 5    # loops of more items show progress on a terminal


class Runner:
    """Runs bots. A runner holds no state of a run, so threads may share one; each run has its
    own variables and local sessions, and, unless a global store is given, its own global
    sessions too (closed when the run ends, also when it fails)."""

    def __init__(self, env: Environment | None = None) -> None:
        # Everything a run takes from its surroundings (routing, the vault, connections, Entra,
        # redaction, folders and plain-http allowances): runtime.environment builds it.
        if env is None:
            from adobot.runtime.environment import build_environment

            env = build_environment()  # the local vault and its connections
        self.env = env
        self.redactor = self.env.redactor
        self.progress = self.env.progress
        self.debug = self.env.debug

    def run(self, bot: Bot, overrides: Mapping[str, Any] | None = None,
            global_sessions: SessionStore | None = None,
            parsed: Mapping[Path, Bot] | None = None) -> RunResult:
        """Run ``bot``; ``parsed``: child bots already parsed (by resolved path), e.g. by the
        check before the run."""
        started = time.perf_counter()
        owns_global = global_sessions is None
        store = global_sessions if global_sessions is not None else SessionStore("global")
        tree = _Tree(allowed=(bot.file.parent.resolve(), *self.env.allow_dirs),
                     bots=dict(parsed or {}),
                     budget=_Budget(self.env.limits) if self.env.limits else None)
        error: dict[str, Any] | None = None
        exit_code = 0
        variables = self._seed_variables(bot, overrides or {}, self._tree_secrets(bot, tree))
        try:
            self._execute(bot, variables, store, tree, prefix="", depth=0)
        except _StepFailed as failed:
            error, exit_code = failed.to_dict(), failed.error.exit_code
        finally:
            if owns_global:
                store.close_all()
        if tree.failures and not error:
            log.warning("warning: %s failed and the bot went on (on_error: continue)",
                        plural(len(tree.failures), "step"))
        return RunResult(
            bot=bot.name, status="failed" if error else "succeeded",
            variables=self.redactor.mask(variables), steps=tree.records,
            error=self.redactor.mask(error) if error else None, exit_code=exit_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            warnings=tree.warnings, failures=self.redactor.mask(tree.failures))

    def _execute(self, bot: Bot, variables: dict[str, Any], store: SessionStore, tree: _Tree,
                 prefix: str, depth: int) -> None:
        """Run one bot of the tree, updating its (seeded) variables as steps map outputs."""
        scopes = SessionScopes(global_=store)
        self._register_file_tokens(bot)
        for warning in bot.warnings():
            log.warning("warning: %s", warning)
            tree.warnings.append(warning)
        ctx = ActionContext(sessions=scopes, env=self.env, variables=variables, log=log,
                            progress=self.progress, bot_dir=bot.file.parent,
                            allowed_dirs=tree.allowed, timeout=bot.settings.timeout,
                            retry_policy=bot.settings.policy(),
                            sleep=tree.budget.sleep if tree.budget else time.sleep)
        frame = self._bind(_Frame(bot, ctx, store, tree, depth))
        try:
            self._run_steps(bot.steps, frame, prefix)
        finally:
            scopes.local.close_all()

    def _bind(self, frame: _Frame) -> _Frame:
        """RunBot in this frame runs its child as a step of this frame."""
        frame.ctx.run_bot = lambda path, seed: self._child(frame, path, seed)
        return frame

    def _child(self, frame: _Frame, path: str, seed: Mapping[str, Any]) -> dict[str, Any]:
        """RunBot: the child shares the global sessions; its local ones close when it ends."""
        parent, depth = frame.bot, frame.depth
        if depth + 1 > MAX_DEPTH:
            raise InvalidBot(f"bots call each other more than {MAX_DEPTH} deep (at "
                             f"{parent.file.name} calling {path})",
                             "Look for a bot that runs itself, directly or through others.")
        child = frame.tree.load(parent, path)
        variables = self._seed_variables(child, seed)
        self._execute(child, variables, frame.store, frame.tree,
                      prefix=f"{frame.ctx.step_path}/{child.file.name}:", depth=depth + 1)
        return self.redactor.mask(variables)

    def _seed_variables(self, bot: Bot, overrides: Mapping[str, Any],
                        secrets: Iterable[str] = ()) -> dict[str, Any]:
        variables = {**bot.variables, **overrides}
        hold_secrets(variables, bot.secret_variables() | set(secrets), self.redactor.add)
        return variables

    def _tree_secrets(self, bot: Bot, tree: _Tree, depth: int = 0) -> set[str]:
        """The variables of ``bot`` that hold a secret in it or in a child bot it passes them to
        (``RunBot`` with ``variables: {token: "${pat}"}``): known before anything runs."""
        names = bot.secret_variables()
        if depth >= MAX_DEPTH:
            return names
        for step in bot.all_steps():
            target, passed = step.inputs.get("bot"), step.inputs.get("variables")
            if step.action != "RunBot" or not isinstance(target, str) or "${" in target \
                    or not isinstance(passed, dict):
                continue
            try:
                child = tree.load(bot, target)
            except AdobotError:
                continue  # the run says so when it gets there
            inner = self._tree_secrets(child, tree, depth + 1)
            names |= {ref for name, value in passed.items()
                      if name in inner and (ref := whole_reference(value))}
        return names

    def _register_file_tokens(self, bot: Bot) -> None:
        """Secrets written into the bot file are masked like any other."""
        for _, value in bot.insecure_secrets():
            if isinstance(value, str):
                self.redactor.add(Secret(value.strip()))

    def _run_steps(self, steps: list[Step], frame: _Frame, prefix: str) -> None:
        for step in steps:
            path = prefix + step.path.rsplit(".", 1)[-1]
            try:
                if step.action is None:
                    self._run_loop(step, path, frame)
                else:
                    self._run_action(step, path, frame)
            except _StepFailed as failed:
                if step.on_error != "continue":
                    raise
                frame.tree.failures.append(failed.to_dict())
                log.info("step %s failed and the bot goes on (on_error: continue)", path)

    def _run_loop(self, step: Step, path: str, frame: _Frame) -> None:
        variables = frame.ctx.variables
        try:
            items = interpolate(step.for_each, variables, f"step {path} for_each")
            if not isinstance(items, list):
                raise InvalidInput(f"step {path}: for_each must be a list, not "
                                   f"{type(items).__name__}", field="for_each")
            if frame.tree.budget is not None:
                frame.tree.budget.items(len(items))
        except AdobotError as exc:
            raise _StepFailed(exc, path, "for_each") from None
        show = _Progress(self.progress, path, len(items)) \
            if self.progress is not None and len(items) > PROGRESS_AFTER else None
        try:
            if step.parallel > 1:
                self._run_parallel(step, path, items, frame, show)
                return
            for index, item in enumerate(items):
                variables[step.item_name] = item
                try:
                    self._run_steps(step.steps, frame, prefix=f"{path}[{index}].")
                except _StepFailed as failure:
                    if step.on_error != "continue":
                        raise
                    frame.tree.failures.append(failure.to_dict())
                    if show is not None:
                        show.failed()
                if show is not None:
                    show.done()
        finally:
            if show is not None:
                show.clear()

    def _run_parallel(self, step: Step, path: str, items: list[Any], frame: _Frame,
                      show: "_Progress | None") -> None:
        """Up to ``step.parallel`` items at once, each with its own copy of the variables in
        which the loop's outputs start undefined. Records and failures are kept in item order;
        afterwards each output variable holds a list, one value per item (None where an item
        did not set it). A failure (without on_error: continue) starts no more items; those
        running finish, and the loop fails with the first failed item's error."""
        assigned = step.assigned()
        start = {name: value for name, value in frame.ctx.variables.items()
                 if name not in assigned}
        forks: list[_Frame | None] = [None] * len(items)
        failures: dict[int, _StepFailed] = {}
        next_index = iter(range(len(items)))
        guard = threading.Lock()

        def worker() -> None:
            while True:
                with guard:
                    if failures and step.on_error != "continue":
                        return
                    index = next(next_index, None)
                if index is None:
                    return
                own = {**start, step.item_name: items[index]}
                item_frame = self._bind(_Frame(frame.bot, replace(frame.ctx, variables=own),
                                               frame.store, frame.tree.fork(), frame.depth))
                forks[index] = item_frame
                try:
                    self._run_steps(step.steps, item_frame, prefix=f"{path}[{index}].")
                except _StepFailed as failure:
                    with guard:
                        failures[index] = failure
                    if show is not None:
                        show.failed()
                except Exception as exc:  # a bug: fail the item, never hang the loop
                    error = InternalError(f"step {path}[{index}] failed unexpectedly: "
                                          f"{type(exc).__name__}: {exc}")
                    with guard:
                        failures[index] = _StepFailed(error, f"{path}[{index}]", "for_each")
                if show is not None:
                    show.done()

        threads = [threading.Thread(target=worker, name=f"adobot-loop-{path}-{n}", daemon=True)
                   for n in range(min(step.parallel, len(items)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        variables = frame.ctx.variables
        for index, item_frame in enumerate(forks):
            if item_frame is not None:
                frame.tree.merge(item_frame.tree)
            if index in failures and step.on_error == "continue":
                frame.tree.failures.append(failures[index].to_dict())
        for name in assigned:
            variables[name] = [item_frame.ctx.variables.get(name) if item_frame else None
                               for item_frame in forks]
        if items:
            variables[step.item_name] = items[-1]
        if failures and step.on_error != "continue":
            raise failures[min(failures)]

    def _run_action(self, step: Step, path: str, frame: _Frame) -> None:
        ctx, tree = frame.ctx, frame.tree
        action_name = step.action or ""
        ctx.step_path = path
        if tree.budget is not None:
            try:
                tree.budget.step()
            except AdobotError as stopped:
                raise _StepFailed(stopped, path, action_name) from None
        outcome = execute(action_name, step.inputs, ctx)
        failure = outcome.error
        if outcome.outputs is not None and step.outputs:
            values = outcome.outputs.model_dump(mode="json", include=set(step.outputs))
            for output, variable in step.outputs.items():
                ctx.variables[variable] = values[output]
            if tree.budget is not None and failure is None:
                try:
                    tree.budget.variables(ctx.variables)
                except AdobotError as grown:
                    failure = grown
        record = StepRecord(path=path, action=action_name, line=step.line,
                            status="failed" if failure else "succeeded",
                            duration_ms=outcome.duration_ms, requests=outcome.requests)
        clear = getattr(self.progress, "clear", None)
        if clear is not None:
            clear()
        tree.records.append(record)
        if failure is not None:
            # A child bot's failure (RunBot) keeps the child's path; this step records its error.
            child_failure = failure if isinstance(failure, _StepFailed) else None
            own = child_failure.error if child_failure is not None else failure
            record.error = self.redactor.mask(own.to_dict())
            log.info("step %s %s failed (%s, %.0f ms)", path, action_name,
                     plural(record.requests, "request"), record.duration_ms,
                     exc_info=failure if self.debug and child_failure is None else None)
            raise child_failure or _StepFailed(failure, path, action_name)
        assert outcome.outputs is not None
        record.summary = outcome.outputs.summary()
        log.info("step %s %s: %s (%s, %.0f ms)", path, action_name, record.summary or "done",
                 plural(record.requests, "request"), record.duration_ms)


class _Budget:
    """A run's limits as it goes (``RunLimits``): shared by every bot and loop item of the run,
    checked before each step, each loop and each wait."""

    def __init__(self, limits: RunLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds if limits.seconds else None
        self.steps = 0
        self.lock = threading.Lock()

    def check(self) -> None:
        if self.limits.stop is not None and self.limits.stop.is_set():
            raise Timeout("the run was stopped before it ended: whoever started it left, or "
                          "the service is stopping", "Run it again.", after_request=True)
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Timeout(f"the run took longer than the {self.limits.seconds:g} s it may",
                          "Try a smaller bot here; run the whole one with `adobot run`.",
                          after_request=True)

    def step(self) -> None:
        self.check()
        with self.lock:
            self.steps += 1
            count = self.steps
        if self.limits.steps is not None and count > self.limits.steps:
            raise InvalidBot(f"the run has more than the {self.limits.steps} steps it may run",
                             "Try a smaller bot here; run the whole one with `adobot run`.",
                             after_request=True)

    def items(self, count: int) -> None:
        if self.limits.loop_items is not None and count > self.limits.loop_items:
            raise InvalidBot(f"for_each has {count} items; a loop here may have "
                             f"{self.limits.loop_items}", "Try fewer items here; run the "
                             "whole bot with `adobot run`.", after_request=True)

    def variables(self, variables: Mapping[str, Any]) -> None:
        limit = self.limits.variable_bytes
        if limit is None:
            return
        size = len(json.dumps(variables, default=str))
        if size > limit:
            raise InvalidBot(f"the run's variables hold {size:,} bytes; a run here may hold "
                             f"{limit:,}", "Keep fewer or smaller outputs here; run the whole "
                             "bot with `adobot run`.", after_request=True)

    def sleep(self, seconds: float) -> None:
        """A wait (QueueRun's) that ends early, with the error, when the run must stop."""
        until = time.monotonic() + seconds
        while True:
            self.check()
            left = until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.25))


class _Progress:
    """A loop's progress line (done/total, failures, rate); items may end on several threads."""

    def __init__(self, show: Callable[[str], None], path: str, total: int) -> None:
        self.show, self.path, self.total = show, path, total
        self.finished = self.failures = 0
        self.started = time.perf_counter()
        self.lock = threading.Lock()

    def failed(self) -> None:
        with self.lock:
            self.failures += 1

    def done(self) -> None:
        with self.lock:
            self.finished += 1
            rate = self.finished / max(time.perf_counter() - self.started, 1e-9)
            self.show(f"step {self.path}: {self.finished}/{self.total} items, "
                      f"{self.failures} failed, {rate:.1f}/s")

    def clear(self) -> None:
        getattr(self.show, "clear", lambda: None)()
