"""Checks of a loaded bot that need no network: inputs that do not depend on variables, and
warnings (tokens written into the bot file)."""
from __future__ import annotations

import json

from pydantic import ValidationError

from actions import registry
from actions.base import describe_problem
from runtime.loader import Bot


def problems(bot: Bot) -> list[str]:
    found = []
    for step in bot.all_steps():
        if step.action is None:
            continue
        action = registry.get(step.action)
        # Inputs built from ${...} are known only at run time; check the rest now.
        dynamic = {k for k, v in step.inputs.items() if "${" in json.dumps(v, default=str)}
        literal = {k: v for k, v in step.inputs.items() if k not in dynamic}
        try:
            action.inputs.model_validate(literal)
        except ValidationError as exc:
            for err in exc.errors():
                if err["loc"] and err["loc"][0] in dynamic:
                    continue
                found.append(f"{bot.file.name}:{step.line}: step {step.path} ({step.action}): "
                             f"{describe_problem(action, err)[1]}")
    return found


def warnings(bot: Bot) -> list[str]:
    return [f"{bot.file.name}:{step.line}: step {step.path} ({step.action}) has its token as an "
            "insecure string in the bot file; store it in the vault or pass it in a variable "
            "(--var-env)" for step in bot.insecure_token_steps()]
