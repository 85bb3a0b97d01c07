"""ReadCsv: the rows of a CSV file as a list of maps (header -> value), for for_each."""
from __future__ import annotations

import csv
from pathlib import Path

from pydantic import Field

from actions.base import Action, ActionContext, ActionInputs, ActionOutputs
from rest.errors import InvalidInput

MAX_BYTES = 64 * 1024 * 1024


class Inputs(ActionInputs):
    path: str = Field(min_length=1, max_length=1024,
                      description="CSV file, relative to the bot's file", examples=["tasks.csv"])
    delimiter: str = Field(",", min_length=1, max_length=1, description="Field separator",
                           examples=[";"])


class Outputs(ActionOutputs):
    rows: list[dict[str, str]] = Field(description="One map per row, keyed by the header row")
    count: int

    def summary(self) -> str:
        return f"{self.count} rows"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    file = Path(inputs.path) if Path(inputs.path).is_absolute() else ctx.bot_dir / inputs.path
    try:
        if file.stat().st_size > MAX_BYTES:
            raise InvalidInput(f"path: {inputs.path!r} is larger than {MAX_BYTES // 2**20} MiB",
                               field="path")
        with open(file, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, delimiter=inputs.delimiter, strict=True)
            if not reader.fieldnames or any(not (name or "").strip() for name in reader.fieldnames):
                raise InvalidInput(f"path: {inputs.path!r} needs a header row naming every column",
                                   field="path")
            rows = []
            for row in reader:
                if None in row or None in row.values():
                    raise InvalidInput(f"path: {inputs.path!r} line {reader.line_num} has "
                                       f"{'more' if None in row else 'fewer'} fields than the "
                                       "header", field="path")
                rows.append(row)
    except FileNotFoundError:
        raise InvalidInput(f"path: {inputs.path!r} does not exist (looked in {file.parent})",
                           "Paths are relative to the bot's file.", field="path") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"path: {inputs.path!r} cannot be read as CSV: {exc}",
                           field="path") from None
    return Outputs(rows=rows, count=len(rows))


ACTION = Action(
    name="ReadCsv", label="Read CSV file", group="Bots",
    read_only=True, idempotent=True,
    description="Reads a CSV file with a header row into a list of rows (maps), e.g. to file "
                "one work item per row with for_each. Sends no request.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={"INVALID_INPUT": "the file is missing, unreadable, too large, or its rows do not "
                             "match its header"})
