"""The last line of defence: every secret the run has seen is masked in all it prints.

Secrets are typed (``Secret``) and never formatted in the first place; this scrubber catches
what a bug or a service message might still carry (e.g. a token echoed back in an error).
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from adobot.credentials.secret import MASK, Secret

_MIN_LENGTH = 4  # shorter values would mask ordinary words


class Redactor:
    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: Secret) -> None:
        value = secret.reveal()
        if len(value) >= _MIN_LENGTH:
            with self._lock:
                self._values.add(value)

    def scrub(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        return text

    def mask(self, value: Any) -> Any:
        """A JSON-ready copy of value with secrets shown as ***."""
        if isinstance(value, Secret):
            return MASK
        if isinstance(value, dict):
            return {str(k): self.mask(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.mask(v) for v in value]
        if isinstance(value, str):
            return self.scrub(value)
        return value


class RedactingFilter(logging.Filter):
    """Masks secrets in every log record that passes the handler it is attached to."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.redactor.scrub(message)
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now, scrubbed, so the formatter does not render it raw.
            formatted = logging.Formatter().formatException(record.exc_info)
            scrubbed = f"{scrubbed}\n{self.redactor.scrub(formatted)}"
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = scrubbed, None
        return True
