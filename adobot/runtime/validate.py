"""Checks a bot tree without any network: every problem at once, each with file, line and step.

What it finds: bot-file structure, unknown actions (with the closest name), unknown outputs,
inputs that break the action's own input model (those that do not depend on ``${...}``),
variables used before anything defines them, sessions used where no Connect could have made
them (and names connected twice), RunBot children (checked too, with the sessions and variables
they are given), parallel loops (no sessions connected in them, no value read from another
item, no parallel loop inside another), and tokens written into a bot file (a warning).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from pydantic import ValidationError

from adobot.actions import registry
from adobot.actions.base import describe_problem
from adobot.actions.files import confine
from adobot.credentials.sources import credential_inputs, sources_in
from adobot.errors import AdobotError, InvalidBot
from adobot.runtime.interpolate import whole_reference
from adobot.runtime.loader import INSECURE_TOKEN, Bot, Step, load_bot

_REFERENCE = re.compile(r"(?<!\$)\$\{\s*([A-Za-z_][A-Za-z0-9_]*)")
MAX_DEPTH = 10


@dataclass
class Finding:
    severity: str  # "error" or "warning"
    where: str     # "bot.yaml:12: step 3 (ListRepos)"
    message: str
    hint: str | None = None
    order: tuple[int, int] = (0, 0)  # (which file, line): findings are listed in this order
    code: str = "INVALID_BOT"        # the error code the run would have failed with
    path: str | None = None          # the step's path in the top-level bot ("2", "3[0].1")
    action: str | None = None

    def __str__(self) -> str:
        text = f"{self.severity}: {self.where}: {self.message}" if self.where else \
            f"{self.severity}: {self.message}"
        return text + (f"\n  hint: {self.hint}" if self.hint else "")


@dataclass
class _Scope:
    """What is known at a point of a bot: defined variables and connected sessions."""

    variables: set[str]
    local: set[str] = field(default_factory=set)
    global_: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)  # variables that hold a token
    # Inside a parallel loop: its step (this bot's items share its sessions); or this bot is
    # run by a RunBot in one (each item runs it at once beside the others).
    parallel: Step | None = None
    run_in_parallel: bool = False


def validate_file(path: str | Path, declared: Iterable[str] = (),
                  sessions: Iterable[str] = (), allow_plain_http: bool = False,
                  vault: str | None = None, allow_dirs: Iterable[str | Path] = (),
                  parsed: dict[Path, Bot] | None = None) -> list[Finding]:
    """Every finding of the bot at ``path`` and the bots it runs. ``declared`` names variables
    the run will be given; ``sessions`` names global sessions a parent will have connected;
    ``allow_plain_http``: the run will allow plain http to another host; ``vault``: the vault
    the run will use (default: $ADOBOT_VAULT or the user's), whose bindings are checked;
    ``allow_dirs``: folders beyond the bot's own the run will let it read; ``parsed``: bots
    already parsed (by resolved path), to which every bot found without problems is added, so a
    run that follows parses nothing twice."""
    checker = _Checker(allow_plain_http, vault)
    if parsed is not None:
        checker.parsed = parsed
    checker.allowed = (Path(path).resolve().parent, *(Path(d).resolve() for d in allow_dirs))
    checker.file(Path(path), _Scope(variables=set(declared), global_=set(sessions)), stack=())
    return sorted(checker.findings, key=lambda finding: finding.order)


class _Checker:
    def __init__(self, allow_plain_http: bool = False, vault: str | None = None) -> None:
        self.allow_plain_http = allow_plain_http
        self.vault = vault
        self._bindings: dict[tuple[str, str, str], tuple[str, ...]] | None = None
        self.allowed: tuple[Path, ...] = ()  # folders files may be read from
        self.findings: list[Finding] = []
        self.files: dict[Path, int] = {}
        self.parsed: dict[Path, Bot] = {}

    def add(self, bot: Bot, step: Step | None, message: str, hint: str | None = None,
            severity: str = "error", code: str = "INVALID_BOT") -> None:
        where = bot.file.name
        if step is not None:
            where = f"{bot.file.name}:{step.line}: step {step.path}" + (
                f" ({step.action})" if step.action else "")
        index = self.files.get(bot.file, 0)
        top = step is not None and index == 0
        self.findings.append(Finding(severity, where, message, hint,
                                     (index, step.line if step is not None else 0), code,
                                     step.path if top and step else None,
                                     step.action if step else None))

    def file(self, path: Path, scope: _Scope, stack: tuple[Path, ...],
             caller: tuple[Bot, Step] | None = None) -> Bot | None:
        problems: list[InvalidBot] = []
        key = path.resolve()
        try:
            bot = self.parsed.get(key) or load_bot(path, problems)
        except AdobotError as error:  # unreadable, not YAML: nothing more to check
            if caller:
                self.add(*caller, error.message, error.hint, code=error.code)
            else:
                self.findings.append(Finding("error", "", error.message, error.hint))
            return None
        if not problems:
            self.parsed[key] = bot
        index = self.files.setdefault(bot.file, len(self.files))
        self.findings += [Finding("error", "", p.message, p.hint, (index, _line_of(p.message)))
                          for p in problems]
        for step, _ in bot.insecure_secrets():
            self.add(bot, step, INSECURE_TOKEN, severity="warning")
        scope.variables |= set(bot.variables)
        scope.secrets |= bot.secret_variables()
        self.steps(bot, bot.steps, scope, stack + (path.resolve(),))
        return bot

    def steps(self, bot: Bot, steps: list[Step], scope: _Scope, stack: tuple[Path, ...]) -> None:
        for step in steps:
            if step.action is None:
                self.references(bot, step, step.for_each, scope)
                if step.parallel > 1:
                    self.parallel(bot, step, scope, stack)
                    continue
                scope.variables.add(step.item_name)
                self.steps(bot, step.steps, scope, stack)
            elif step.known:
                self.action(bot, step, scope, stack)

    def parallel(self, bot: Bot, step: Step, scope: _Scope, stack: tuple[Path, ...]) -> None:
        """A parallel loop's items run at once, each in its own copy of the variables: what
        its steps set starts undefined in every item and is a list (one value per item) after
        the loop. Its items share the bot's sessions, so none of its steps may connect one."""
        if scope.parallel is not None:
            self.add(bot, step, f"a parallel loop inside the parallel loop of step "
                     f"{scope.parallel.path}: the items would multiply",
                     "Set parallel on one of the two loops.")
        assigned = step.assigned()
        inner = replace(scope, variables=(scope.variables - assigned) | {step.item_name},
                        parallel=step)
        self.steps(bot, step.steps, inner, stack)
        scope.variables |= assigned | {step.item_name}

    def references(self, bot: Bot, step: Step, value: Any, scope: _Scope) -> None:
        text = json.dumps(value, default=str)
        for name in dict.fromkeys(_REFERENCE.findall(text)):
            if name not in scope.variables:
                loop = scope.parallel
                if loop is not None and name in loop.assigned():
                    self.add(bot, step, f"variable {name!r} is read before a step of the "
                             f"parallel loop (step {loop.path}) sets it: its items run at once "
                             "and do not see each other's values",
                             "Read it after the loop (a list, one value per item), or set it "
                             "in an earlier step of the same item.")
                    continue
                self.add(bot, step, f"variable {name!r} is not defined here",
                         f"Define it under 'variables:', map an earlier step's output to it, or "
                         f"declare it with `adobot validate --var {name}` if the run gives it.")
        for piece in _texts(value):  # a token written into text would be sent as text
            if whole_reference(piece) is None:
                for name in dict.fromkeys(_REFERENCE.findall(piece)):
                    if name in scope.secrets:
                        self.add(bot, step, f"variable {name!r} holds a secret (a token) and "
                                 "cannot be written into text", "Give the token only as the source of a "
                                 "credential input: {variable: NAME}.", code="INVALID_INPUT")

    def action(self, bot: Bot, step: Step, scope: _Scope, stack: tuple[Path, ...]) -> None:
        action = registry.get(step.action)
        self.references(bot, step, step.inputs, scope)
        self.secret_variables(bot, step, action, scope)
        dynamic = {k for k, v in step.inputs.items() if "${" in json.dumps(v, default=str)}
        try:
            action.inputs.model_validate({k: v for k, v in step.inputs.items() if k not in dynamic},
                                         context={"allow_plain_http": self.allow_plain_http,
                                                  "given_at_run_time": dynamic})
        except ValidationError as exc:
            for err in exc.errors():
                if not (err["loc"] and err["loc"][0] in dynamic):
                    hint, message = describe_problem(action, err)
                    self.add(bot, step, message, hint or None, code="INVALID_INPUT")
        self.sessions(bot, step, scope)
        if step.action == "ReadCsv":
            self.confined(bot, step, step.inputs.get("path"), "path")
        if step.action == "RunBot":
            self.child(bot, step, scope, stack)
        scope.variables |= set(step.outputs.values())

    def secret_variables(self, bot: Bot, step: Step, action: Any, scope: _Scope) -> None:
        """A secret from a variable the bot does not define is given at run time: say so. A
        vault credential must be bound to the organization the step sends it to."""
        for _, source in sources_in(step.inputs, credential_inputs(action.inputs)):
            variable = source.get("variable")
            if isinstance(variable, str) and variable not in scope.variables:
                self.add(bot, step, f"token variable {variable!r} is not defined in the bot",
                         f"Give it when running: --var-env {variable}=ENVVAR.", severity="warning")
            credential = source.get("credential")
            if isinstance(credential, dict):
                self.binding(bot, step, credential, step.inputs.get("organization_url"))

    def binding(self, bot: Bot, step: Step, credential: dict, url: Any) -> None:
        """Refuse a credential the vault will not hand out for the step's organization."""
        key = (str(credential.get("locker")), str(credential.get("name")),
               str(credential.get("attribute")))
        bound = self.bindings().get(key)
        if bound is None or not isinstance(url, str) or "${" in url:
            return  # not in this vault (the run says so) or known only at run time
        from adobot.credentials.vault import organization_key

        try:
            target = organization_key(url)
        except AdobotError:
            return  # the URL itself is reported as an input problem
        place = "/".join(key)
        if not bound:
            self.add(bot, step, f"credential {place} is not bound to any organization: the run "
                     "refuses it", f"An admin binds it: `adobot vault bind {key[0]} {key[1]} "
                     "--org URL`.", code="PERMISSION_DENIED")
        elif target not in bound:
            self.add(bot, step, f"credential {place} may be sent only to {', '.join(bound)}, "
                     f"not to {target}: the run refuses it (PERMISSION_DENIED)",
                     "Use the organization it was stored for, or ask an admin to bind it.",
                     code="PERMISSION_DENIED")

    def bindings(self) -> dict[tuple[str, str, str], tuple[str, ...]]:
        """The vault's credentials and their organizations (names only: no key is needed)."""
        if self._bindings is None:
            from adobot.credentials.vault import Vault

            try:
                vault = Vault(self.vault)
                entries = vault.entries() if vault.path.exists() else []
            except AdobotError:
                entries = []  # an unreadable vault is the run's VAULT_ERROR, not a bot problem
            self._bindings = {(e.locker, e.credential, e.attribute): e.organizations
                              for e in entries}
        return self._bindings

    def sessions(self, bot: Bot, step: Step, scope: _Scope) -> None:
        raw = step.inputs.get("session", "default")
        name = raw.get("name", "default") if isinstance(raw, dict) else raw
        wanted = raw.get("scope") if isinstance(raw, dict) else None
        if not isinstance(name, str) or "${" in name or "session" not in registry.get(
                step.action).inputs.model_fields:
            return
        if step.action in ("Connect", "Disconnect") and scope.parallel is not None:
            self.add(bot, step, f"{step.action} inside the parallel loop of step "
                     f"{scope.parallel.path}: its items run at once and share the bot's sessions",
                     "Connect before the loop and Disconnect after it.")
            return
        if step.action == "Connect" and scope.run_in_parallel and wanted == "global":
            self.add(bot, step, "this bot runs in a parallel loop (RunBot), so every item would "
                     f"connect the global session {name!r} at once (SESSION_EXISTS)",
                     "Connect it in the parent before the loop, or use scope: local here.",
                     code="SESSION_EXISTS")
            return
        if step.action == "Connect":
            if name in scope.local or name in scope.global_:
                self.add(bot, step, f"session {name!r} is already connected here "
                         "(SESSION_EXISTS at run time)", "Use another name, or Disconnect first.",
                         code="SESSION_EXISTS")
            (scope.global_ if wanted == "global" else scope.local).add(name)
            return
        visible = {"local": scope.local, "global": scope.global_}.get(
            wanted, scope.local | scope.global_)
        if name not in visible:
            self.add(bot, step, f"session {name!r} is used but no Connect before this step makes "
                     "it" + (f" in the {wanted} scope" if wanted else ""),
                     "Connect it earlier in this bot, or (for a child bot) in the parent with "
                     "scope: global.", code="SESSION_NOT_FOUND")
        elif step.action == "Disconnect":
            scope.local.discard(name) if name in scope.local else scope.global_.discard(name)

    def confined(self, bot: Bot, step: Step, target: Any, field: str) -> Path | None:
        """The file a step names, if it is inside the allowed folders (else a finding)."""
        if not isinstance(target, str) or "${" in target:
            return None
        try:
            return confine(target, bot.file.parent, self.allowed, field=field)
        except AdobotError as error:
            self.add(bot, step, error.message, error.hint, code=error.code)
            return None

    def child(self, bot: Bot, step: Step, scope: _Scope, stack: tuple[Path, ...]) -> None:
        target = step.inputs.get("bot")
        path = self.confined(bot, step, target, "bot")
        if path is None:
            return
        if path.resolve() in stack:
            self.add(bot, step, f"{target} is already running in this chain of bots: it would "
                     "call itself without end", "Break the cycle of RunBot steps.")
            return
        if len(stack) >= MAX_DEPTH:
            self.add(bot, step, f"bots call each other more than {MAX_DEPTH} deep")
            return
        seed = step.inputs.get("variables")
        passed = seed if isinstance(seed, dict) else {}
        child_scope = _Scope(variables=set(passed), global_=scope.global_,  # shared both ways
                             secrets={name for name, value in passed.items()
                                      if whole_reference(value) in scope.secrets},
                             run_in_parallel=scope.parallel is not None or scope.run_in_parallel)
        self.file(path, child_scope, stack, caller=(bot, step))


def _texts(value: Any) -> list[str]:
    """Every text in a value (through lists and maps)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def _line_of(message: str) -> int:
    found = re.match(r"^[^:]+:(\d+):", message)
    return int(found.group(1)) if found else 0
