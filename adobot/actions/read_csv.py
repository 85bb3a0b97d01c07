"""ReadCsv: the rows of a CSV file as a list of maps (header -> value), for for_each."""
from __future__ import annotations

import csv
import io

from pydantic import Field

from adobot.actions.base import Action, ActionContext, ActionInputs, ActionOutputs
from adobot.actions.files import read_regular
from adobot.errors import InvalidInput

MAX_BYTES = 64 * 1024 * 1024


class Inputs(ActionInputs):
    path: str = Field(min_length=1, max_length=1024,
                      description="CSV file, relative to the bot's file; it must be inside the "
                                  "bot's folder (or one the run allows)", examples=["tasks.csv"])
    delimiter: str = Field(",", min_length=1, max_length=1, description="Field separator",
                           examples=[";"])


class Outputs(ActionOutputs):
    rows: list[dict[str, str]] = Field(description="One map per row, keyed by the header row")
    count: int

    def summary(self) -> str:
        return f"{self.count} rows"


def run(ctx: ActionContext, inputs: Inputs) -> Outputs:
    try:
        file = ctx.file(inputs.path)  # inside the bot's folder (or one the run allows)
        text = read_regular(file, MAX_BYTES, "CSV file").decode("utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput(f"path: {inputs.path!r} does not exist (looked in {ctx.bot_dir})",
                           "Paths are relative to the bot's file.", field="path") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"path: {inputs.path!r} cannot be read as CSV: {exc}",
                           field="path") from None
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=inputs.delimiter,
                            strict=True)
    try:
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
    except csv.Error as exc:
        raise InvalidInput(f"path: {inputs.path!r} cannot be read as CSV: {exc}",
                           field="path") from None
    return Outputs(rows=rows, count=len(rows))


ACTION = Action(
    name="ReadCsv", label="Read CSV file", group="Bots",
    read_only=True, idempotent=True,
    description="Reads a CSV file with a header row into a list of rows (maps), e.g. to file "
                "one work item per row with for_each. Sends no request.",
    inputs=Inputs, outputs=Outputs, run=run,
    errors={"INVALID_INPUT": "the file is missing, outside the bot's folder, not a regular "
                             "file, too large, or its rows do not match its header"})
