"""Disconnect: close a session and forget it (no request is sent)."""
from __future__ import annotations

from adobot.actions.base import Action, ActionContext, ActionInputs, NoOutputs, SessionInput


class Inputs(ActionInputs):
    session: SessionInput


def run(ctx: ActionContext, inputs: Inputs) -> NoOutputs:
    ctx.sessions.remove(inputs.session.name, inputs.session.scope)
    return NoOutputs()


ACTION = Action(
    name="Disconnect", label="Disconnect", group="Session",
    read_only=True, idempotent=True,
    description="Closes a session and its connections; later actions can no longer use it.",
    inputs=Inputs, outputs=NoOutputs, run=run,
    errors={"SESSION_NOT_FOUND": "the session is not connected (or was already disconnected)"})
