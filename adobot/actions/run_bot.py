"""RunBot: run a child bot file and get its final variables back; global sessions are shared."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from adobot.actions.base import Action, ActionContext, ActionInputs, ActionOutputs
from adobot.credentials.sources import PASSES_SECRETS
from adobot.errors import ERROR_CODES, InternalError


class Inputs(ActionInputs):
    bot: str = Field(min_length=1, max_length=1024, pattern=r"\.(ya?ml|json)$",
                     description="Child bot file, relative to this bot's file; it must be "
                                 "inside the top-level bot's folder (or one the run allows)",
                     examples=["child.yaml"])
    variables: Annotated[dict[str, Any], PASSES_SECRETS] = Field(
        default_factory=dict, description="Variables to seed the child with (a token variable "
                                          "stays a secret in the child)",
                                      examples=[{"service": "ledger"}])


class Outputs(ActionOutputs):
    variables: dict[str, Any] = Field(description="The child's final variables (secrets as ***)")

    def summary(self) -> str:
        return f"child bot finished with {len(self.variables)} variables"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    if ctx.run_bot is None:
        raise InternalError("RunBot needs the bot runner (it cannot run on its own)")
    return Outputs(variables=ctx.run_bot(inputs.bot, inputs.variables))


ACTION = Action(
    name="RunBot", label="Run child bot", group="Bots",
    read_only=False, idempotent=False,
    description="Runs another bot file (relative to this one) with seed variables and returns "
                "its final variables. Global sessions are shared both ways; the child's local "
                "sessions close when it ends.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={
        **{code: "a step of the child bot failed with it; the error's path says where "
                 "(e.g. 4/child.yaml:2)" for code in ERROR_CODES if code != "INTERNAL_ERROR"},
        "INVALID_BOT": "the child file is missing or invalid, or bots call each other too deep "
                       "(or a step of the child found its bot invalid)",
    })
