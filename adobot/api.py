"""The Python API, for builders who script rather than write YAML.

Run a bot file (or a loaded bot) with variables::

    from adobot import api
    result = api.run("examples/quickstart.yaml", {"pat": os.environ["ADO_PAT"]})
    result.status, result.variables["repo_count"], result.exit_code

Or call actions one by one with a context that holds the sessions::

    with api.Context(variables={"pat": token}) as ctx:
        ctx.run("Connect", organization_url="https://dev.azure.com/contoso", project="Payments",
                personal_access_token={"variable": "pat"}, session={"name": "ado", "scope": "global"})
        repos = ctx.run("ListRepos", session="ado")["repositories"]
        ctx.run("QueueRun", {"pipeline": "ci", "variables": {"verbose": "true"}})  # any input
        git = ctx.sdk_connection("ado").clients.get_git_client()  # Microsoft's SDK, same sign-in

Child bots may run in threads on one global session: pass ``global_sessions=ctx.global_sessions``
to ``api.run`` from each thread; the session store is locked and the HTTP pool is shared.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from adobot.actions.base import ActionContext
from adobot.runtime.environment import Settings, build_environment
from adobot.runtime.execute import execute
from adobot.runtime.loader import Bot, load_bot
from adobot.credentials.redact import Redactor
from adobot.runtime.runner import Runner, RunResult
from adobot.sessions.store import SessionScopes, SessionStore

if TYPE_CHECKING:
    from adobot.sandbox import Sandbox

__all__ = ["Context", "load", "run"]


def load(path: str | Path) -> Bot:
    """Load and check a bot file (INVALID_BOT is raised as an AdobotError)."""
    return load_bot(path)


def run(bot: Bot | str | Path, variables: Mapping[str, Any] | None = None, *,
        sandbox: "Sandbox | bool | None" = None, vault: str | None = None,
        global_sessions: SessionStore | None = None, allow_plain_http: bool = False,
        allow_dirs: tuple[str | Path, ...] = ()) -> RunResult:
    """Run a bot; never raises for the bot's own failures: read ``status`` and ``error``.

    ``sandbox=True`` runs against a fresh embedded sandbox; a ``Sandbox`` instance is used as
    is. ``global_sessions`` shares global sessions with the caller (they stay open).
    """
    loaded = bot if isinstance(bot, Bot) else load_bot(bot)
    with contextlib.ExitStack() as stack:
        if sandbox is True:
            from adobot.sandbox import Sandbox

            sandbox = stack.enter_context(Sandbox())
        runner = Runner(build_environment(Settings(
            vault=vault, sandbox=sandbox or None, allow_plain_http=allow_plain_http,
            allow_dirs=allow_dirs)))
        return runner.run(loaded, variables, global_sessions=global_sessions)


class Context:
    """Sessions and variables for calling actions one at a time; closes its sessions on exit.

    ``sandbox=True`` starts a sandbox for the context's lifetime (a ``Sandbox`` is used as is);
    ``variables`` seeds the context's variables (``ctx.variables`` can be changed any time).
    """

    def __init__(self, *, sandbox: "Sandbox | bool | None" = None, vault: str | None = None,
                 global_sessions: SessionStore | None = None, bot_dir: str | Path = ".",
                 allow_plain_http: bool = False,
                 variables: Mapping[str, Any] | None = None) -> None:
        self._stack = contextlib.ExitStack()
        if sandbox is True:
            from adobot.sandbox import Sandbox

            sandbox = self._stack.enter_context(Sandbox())
        self.redactor = Redactor()
        self.global_sessions = global_sessions if global_sessions is not None else SessionStore("global")
        self._owns_global = global_sessions is None
        env = build_environment(Settings(vault=vault, sandbox=sandbox or None,
                                         redactor=self.redactor,
                                         allow_plain_http=allow_plain_http))
        self._context = ActionContext(
            sessions=SessionScopes(global_=self.global_sessions), env=env,
            variables=dict(variables or {}), bot_dir=Path(bot_dir),
            allowed_dirs=(Path(bot_dir).resolve(),))
        self.requests = 0

    @property
    def variables(self) -> dict[str, Any]:
        return self._context.variables

    def run(self, action: str, inputs: Mapping[str, Any] | None = None, /,
            **more_inputs: Any) -> dict[str, Any]:
        """Run one action; returns its outputs as plain data, or raises AdobotError.

        Inputs come as a mapping, as keywords, or both (every input name works as a keyword:
        nothing here is reserved); ``${...}`` in them reads the context's variables.
        """
        outcome = execute(action, {**(inputs or {}), **more_inputs}, self._context)
        self.requests += outcome.requests
        if outcome.error is not None:
            raise outcome.error
        assert outcome.outputs is not None
        return outcome.outputs.model_dump(mode="json")

    def sdk_connection(self, session: str = "default") -> Any:
        """Microsoft's SDK on a connected session: an ``azure.devops.connection.Connection``
        signed with the session's credentials (renewed Entra tokens included), to its
        organization, or the sandbox's. Needs ``pip install 'adobot[sdk]'``::

            git = ctx.sdk_connection("ado").clients.get_git_client()
            git.get_repositories("Payments")
        """
        from adobot.actions.base import SessionRef
        from adobot.sdk import connection

        return connection(self._context.session(SessionRef.model_validate(session)))

    def close(self) -> None:
        self._context.sessions.local.close_all()
        if self._owns_global:
            self.global_sessions.close_all()
        self._stack.close()  # the sandbox it started, if any

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
