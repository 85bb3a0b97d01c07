"""HTTP requests per action against the sandbox, vs the minimum each action needs.

Runs examples/quickstart.yaml (and a by-name variant) in-process against the embedded sandbox and
prints, per step, the requests the --json result reports beside the minimum. QueueRun's polls
are shown apart: how many a wait takes depends on the run, not on adobot.

    .venv/bin/python bench/requests_per_action.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adobot.actions.environment import Environment  # noqa: E402
from adobot.runtime.loader import load_bot, parse_bot  # noqa: E402
from adobot.runtime.runner import Runner  # noqa: E402
from adobot.sandbox import Sandbox  # noqa: E402

# The minimum a careful hand-written script needs for the same job.
MINIMUM = {"Connect": 2, "ListRepos": 1, "CreateRepo": 1, "PushFiles": 1, "CreatePipeline": 1,
           "QueueRun": 1, "CreateWorkItem": 1, "Disconnect": 0}

BY_NAME = {
    "name": "by-name",
    "steps": [
        {"action": "Connect", "inputs": {"organization_url": "https://dev.azure.com/contoso",
                                         "project": "Payments",
                                         "personal_access_token": {"variable": "pat"}}},
        {"action": "CreatePipeline", "inputs": {"name": "bench-ci", "repository": "payments-api"}},
        {"action": "QueueRun", "inputs": {"pipeline": "payments-api-ci"}},
        {"action": "QueueRun", "inputs": {"pipeline": "bench-ci"}},
        {"action": "Disconnect"},
    ],
}
BY_NAME_MINIMUM = {"CreatePipeline": 2, "QueueRun": 2}  # one lookup of a name, then the call


def measure(bot, minimum: dict[str, int], label: str) -> list[tuple]:
    with Sandbox() as sandbox:
        runner = Runner(Environment(route=sandbox.route))
        result = runner.run(bot, {"pat": "sandbox-demo-pat"})
        if result.error:
            raise SystemExit(f"{label}: {result.error}")
        sent_total = len(sandbox.state.requests)
    rows = []
    for step in result.steps:
        polls = 0
        sent = step.requests
        if step.action == "QueueRun" and result.variables.get("run", {}).get("state") == "completed":
            polls, sent = sent - 1, 1
        rows.append((label, step.path, step.action, sent, minimum.get(step.action, MINIMUM[step.action]), polls))
    assert sent_total == sum(step.requests for step in result.steps), "counts disagree"
    return rows


def main() -> None:
    rows = measure(load_bot(ROOT / "examples" / "quickstart.yaml"), MINIMUM, "quickstart")
    rows += measure(parse_bot(json.dumps(BY_NAME)), {**MINIMUM, **BY_NAME_MINIMUM}, "by name")
    print(f"{'bot':<11}{'step':<6}{'action':<16}{'sent':>5}{'minimum':>9}{'ratio':>7}{'polls':>7}")
    for bot, path, action, sent, minimum, polls in rows:
        ratio = f"{sent / minimum:.2f}" if minimum else ("1.00" if sent == 0 else "inf")
        print(f"{bot:<11}{path:<6}{action:<16}{sent:>5}{minimum:>9}{ratio:>7}{polls:>7}")
    over = [r for r in rows if r[3] > r[4]]
    print("every action within its minimum" if not over else f"OVER BUDGET: {over}")


if __name__ == "__main__":
    main()
