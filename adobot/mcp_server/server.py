"""The MCP server: the tools of ``tools.py`` over one connected session, in one of three modes.

- ``read-only``: only the tools that change nothing are listed (and the others are refused).
- ``review`` (the default): a change is sent only after the person confirms it. A client that
  supports elicitation is asked (an ``InputRequiredResult`` on the 2026-07-28 protocol, an
  ``elicitation/create`` request before it); any other client gets a preview of exactly what
  would be sent and a confirmation to pass to the ``Confirm`` tool, which sends it once.
- ``autonomous``: changes are sent directly.

Each call runs the action through ``execute`` (the same validation, secrets, retries and errors
as a bot) in a worker thread. A failure is a tool result with ``isError`` carrying the error's
code, message and hint; never a protocol error, a traceback or a secret. QueueRun's wait and
QueryWorkItems' batches report progress; a cancelled call stops at its next wait or batch.
"""
from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server

from adobot import __version__
from adobot.actions.base import ActionContext
from adobot.actions.environment import Environment
from adobot.mcp_server.tools import TOOL_DESCRIPTION, ToolSpec, short, tool_specs
from adobot.errors import AdobotError, InvalidInput, PermissionDenied
from adobot.runtime.execute import execute
from adobot.credentials.redact import Redactor

MODES = ("read-only", "review", "autonomous")
CONFIRM_TOOL = "Confirm"
MODERN = "2026-07-28"        # the protocol revision where elicitation rides the tool result
PENDING_SECONDS = 600        # how long a preview's confirmation stays good


class Cancelled(AdobotError):
    code = "CANCELLED"


class ConfirmationRequired(PermissionDenied):
    """A change in review mode, shown and not sent: the person's yes comes first."""

    code = "CONFIRMATION_REQUIRED"


@dataclass
class _Pending:
    kind: str  # "confirm" (for Confirm) or "elicit" (an elicitation's request_state)
    tool: str
    arguments: dict[str, Any]
    expires: float


@dataclass
class McpServer:
    """The server's state: the connected context, the mode and the changes awaiting a yes."""

    ctx: ActionContext
    mode: str = "review"
    redactor: Redactor = field(default_factory=Redactor)
    organization: str = ""
    project: str = ""
    # review: refuse clients that cannot ask the person (without elicitation, the model
    # itself could call Confirm).
    require_elicitation: bool = False
    # One-time nonces, each bound to the exact call it previews, until it expires: a
    # confirmation for Confirm, or the request_state of an elicitation (protocol 2026-07-28).
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInput(f"mode {self.mode!r} is not one of {', '.join(MODES)}",
                               field="--mode")
        self.all_specs = {spec.name: spec for spec in tool_specs()}
        self.specs = {name: spec for name, spec in self.all_specs.items()
                      if self.mode != "read-only" or not spec.changes}

    # --- the tool list -------------------------------------------------------------------

    def tools(self) -> list[types.Tool]:
        listed = [_tool(spec) for spec in self.specs.values()]
        if self.mode == "review" and not self.require_elicitation:
            listed.append(types.Tool(
                name=CONFIRM_TOOL, description="Sends a previewed change the person approved",
                input_schema={"type": "object", "required": ["confirmation"],
                              "properties": {"confirmation": {
                                  "description": "What the preview gave"}}},
                annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=True,
                                                  idempotent_hint=False, open_world_hint=True)))
        return listed

    # --- a call ----------------------------------------------------------------------------

    async def call(self, request: Any, params: types.CallToolRequestParams) -> Any:
        arguments = dict(params.arguments or {})
        try:
            if params.name == CONFIRM_TOOL and self.mode == "review":
                return await self._confirmed(request, arguments)
            spec = self._spec(params.name)
            self._check_arguments(spec, arguments)
            if spec.changes and self.mode == "review":
                return await self._review(request, params, spec, arguments)
            return await self._run(request, spec, arguments)
        except AdobotError as error:
            return self._failure(error)

    def _spec(self, name: str) -> ToolSpec:
        if name in self.specs:
            return self.specs[name]
        if name in self.all_specs:
            raise PermissionDenied(f"{name} changes Azure DevOps, and this server runs in "
                                   "read-only mode: nothing was sent",
                                   "Start the server with --mode review (each change confirmed) "
                                   "or --mode autonomous to allow it.", field="tool")
        raise InvalidInput(f"there is no tool {name!r}",
                           f"The tools are: {', '.join(sorted(self.specs))}.", field="tool")

    @staticmethod
    def _check_arguments(spec: ToolSpec, arguments: dict[str, Any]) -> None:
        known = spec.input_schema.get("properties", {})
        stray = sorted(set(arguments) - set(known))
        if stray:
            raise InvalidInput(f"{spec.name} has no input {stray[0]!r}",
                               f"Its inputs are: {', '.join(known)}.", field=stray[0])
        # The model's own validation, before anything is asked or sent.
        spec.action.parse_inputs(arguments)

    async def _run(self, request: Any, spec: ToolSpec, arguments: dict[str, Any]) -> Any:
        cancelled = threading.Event()
        token = anyio.lowlevel.current_token()
        steps = 0

        def progress(message: str) -> None:
            nonlocal steps
            if cancelled.is_set():
                raise Cancelled(f"{spec.name} was cancelled by the client",
                                "Whatever was sent before the cancellation stays done.")
            steps += 1
            anyio.from_thread.run(self._progress, request, steps, self.redactor.scrub(message),
                                  token=token)

        def sleep(seconds: float) -> None:
            if cancelled.wait(seconds):
                raise Cancelled(f"{spec.name} was cancelled by the client while it waited",
                                "The run goes on in Azure DevOps; cancel it there if need be.")

        context = _with(self.ctx, progress=progress, sleep=sleep)
        try:
            outcome = await anyio.to_thread.run_sync(
                lambda: execute(spec.name, arguments, context, literal=True),
                abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise
        if outcome.error is not None:
            return self._failure(outcome.error)
        data = self.redactor.mask(outcome.outputs.model_dump(mode="json"))
        summary = getattr(outcome.outputs, "summary", None)
        text = summary() if callable(summary) else json.dumps(data)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=self.redactor.scrub(
                f"{text}\n{json.dumps(data, ensure_ascii=False)}"))],
            structured_content=data)

    @staticmethod
    async def _progress(request: Any, steps: int, message: str) -> None:
        await request.session.report_progress(steps, None, message)

    def _failure(self, error: AdobotError) -> types.CallToolResult:
        said = {"code": error.code, "message": error.message, "hint": error.hint,
                "field": error.field}
        said = self.redactor.mask(said)
        return types.CallToolResult(
            is_error=True, structured_content={"error": said},
            content=[types.TextContent(type="text", text=self.redactor.scrub(
                f"{said['code']}: {said['message']}\nhint: {said['hint']}"))])

    # --- review ----------------------------------------------------------------------------

    def _preview(self, spec: ToolSpec, arguments: dict[str, Any]) -> str:
        return (f"{spec.name} ({short(spec.action.description, 80)}) in "
                f"{self.organization}/{self.project} with:\n"
                f"{json.dumps(arguments, indent=1, sort_keys=True, ensure_ascii=False)}")

    def _nonce(self, kind: str, spec: ToolSpec, arguments: dict[str, Any]) -> str:
        """A new one-time nonce of ``kind`` for this exact call, good for PENDING_SECONDS."""
        nonce = secrets.token_urlsafe(18)
        with self._lock:
            now = time.monotonic()
            self._pending = {k: v for k, v in self._pending.items() if v.expires > now}
            self._pending[nonce] = _Pending(kind, spec.name, json.loads(json.dumps(arguments)),
                                            now + PENDING_SECONDS)
        return nonce

    def _redeem(self, kind: str, nonce: object) -> _Pending | None:
        """The call a nonce of ``kind`` was given for, once: it is gone after this, used or not.
        (An elicitation's request_state is no confirmation: the model must not skip the
        person's answer by passing it to Confirm.)"""
        if not isinstance(nonce, str):
            return None
        with self._lock:
            pending = self._pending.pop(nonce, None)
        if pending is None or pending.kind != kind or pending.expires < time.monotonic():
            return None
        return pending

    async def _review(self, request: Any, params: types.CallToolRequestParams, spec: ToolSpec,
                      arguments: dict[str, Any]) -> Any:
        preview = self._preview(spec, arguments)
        capabilities = request.session.client_capabilities
        if capabilities is None or capabilities.elicitation is None:
            if self.require_elicitation:
                return self._failure(PermissionDenied(
                    f"{spec.name} needs the person's yes, and this client cannot ask them "
                    "(no elicitation): nothing was sent", "Use a client that supports MCP "
                    "elicitation; this server was started with --require-elicitation.",
                    field="confirm"))
            return self._ask_for_confirmation(spec, arguments, preview)
        question = {"type": "object", "required": ["confirm"], "properties": {"confirm": {
            "type": "boolean", "title": "Send this change?"}}}
        message = f"Send this change to Azure DevOps?\n{preview}"
        if request.protocol_version >= MODERN:
            answer = (params.input_responses or {}).get("confirm")
            # The answer counts once, for the call it was asked about: a replayed or reused
            # request_state asks again instead of sending again.
            asked = self._redeem("elicit", params.request_state) if answer is not None else None
            if asked is None or asked.tool != spec.name or asked.arguments != arguments:
                return types.InputRequiredResult(
                    input_requests={"confirm": types.ElicitRequest(
                        params=types.ElicitRequestFormParams(message=message,
                                                             requested_schema=question))},
                    request_state=self._nonce("elicit", spec, arguments))
        else:
            answer = await request.session.elicit_form(message, question, request.request_id)
        if not (isinstance(answer, types.ElicitResult) and answer.action == "accept"
                and (answer.content or {}).get("confirm") is True):
            return self._failure(PermissionDenied(
                f"the person did not confirm {spec.name}: nothing was sent",
                "Ask again if the change is wanted.", field="confirm"))
        return await self._run(request, spec, arguments)

    def _ask_for_confirmation(self, spec: ToolSpec, arguments: dict[str, Any],
                              preview: str) -> types.CallToolResult:
        confirmation = self._nonce("confirm", spec, arguments)
        error = ConfirmationRequired(
            f"{spec.name} changes Azure DevOps and needs the person's yes first; nothing was "
            f"sent. It would send: {preview}",
            f"Show the person this preview. If they agree, call {CONFIRM_TOOL} with "
            f"confirmation {confirmation!r} (good for {PENDING_SECONDS // 60} minutes, once). "
            "--mode autonomous sends changes without asking.", field="confirm")
        result = self._failure(error)
        result.structured_content = {**result.structured_content, "confirmation": confirmation,
                                     "preview": {"tool": spec.name, "arguments": arguments}}
        return result

    async def _confirmed(self, request: Any, arguments: dict[str, Any]) -> Any:
        pending = self._redeem("confirm", arguments.get("confirmation"))
        if pending is None:
            raise InvalidInput("that confirmation is unknown, used or expired: nothing was sent",
                               "Call the tool again for a new preview.", field="confirmation")
        return await self._run(request, self.specs[pending.tool], pending.arguments)

    # --- the MCP server --------------------------------------------------------------------

    def server(self) -> Server:
        async def list_tools(request: Any, params: Any) -> types.ListToolsResult:
            return types.ListToolsResult(tools=self.tools())

        async def call_tool(request: Any, params: types.CallToolRequestParams) -> Any:
            return await self.call(request, params)

        return Server("adobot", version=__version__, instructions=(
            f"Azure DevOps organization {self.organization}, project {self.project}; mode "
            f"{self.mode}. " + {"read-only": "Only tools that change nothing are offered.",
                                "review": f"Each change is confirmed by the person first "
                                          f"(elicitation, or a preview and {CONFIRM_TOOL}).",
                                "autonomous": "Changes are sent directly."}[self.mode]),
            on_list_tools=list_tools, on_call_tool=call_tool)


def _tool(spec: ToolSpec) -> types.Tool:
    action = spec.action
    return types.Tool(
        name=spec.name, description=short(action.description, TOOL_DESCRIPTION),
        input_schema=spec.input_schema, output_schema=spec.output_schema,
        annotations=types.ToolAnnotations(
            read_only_hint=action.read_only, destructive_hint=action.destructive,
            idempotent_hint=action.idempotent, open_world_hint=True))


def _with(ctx: ActionContext, **changes: Callable[..., Any]) -> ActionContext:
    """The server's context for one call: the same session and secrets, its own progress and
    sleep (which is where a cancellation is noticed)."""
    return replace(ctx, **changes)


def open_session(connect: dict[str, Any], env: Environment, *,
                 variables: dict[str, Any] | None = None) -> tuple[ActionContext, Any]:
    """Connect once, as a bot's Connect step would (the same checks, the same errors): the
    context every tool call then uses, and Connect's outputs."""
    from adobot.sessions.store import SessionScopes

    ctx = ActionContext(sessions=SessionScopes(), env=env, variables=dict(variables or {}))
    outcome = execute("Connect", connect, ctx)
    if outcome.error is not None:
        raise outcome.error
    return ctx, outcome.outputs
