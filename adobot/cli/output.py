"""What every command prints the same way: the error line and its hint."""
from __future__ import annotations

import sys
from typing import Any

from adobot.credentials.redact import Redactor


def print_error(error: dict[str, Any], redactor: Redactor) -> None:
    where = ""
    if error.get("path"):
        where = f" at step {error['path']} ({error.get('action')})"
    text = f"error{where}: {error['code']}: {error['message']}\n  hint: {error['hint']}"
    print(redactor.scrub(text), file=sys.stderr)
