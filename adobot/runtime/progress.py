"""One line of progress on a terminal, rewritten in place (QueueRun's wait uses it)."""
from __future__ import annotations

import threading
from typing import Callable, TextIO


class TerminalProgress:
    def __init__(self, stream: TextIO, scrub: Callable[[str], str] = lambda text: text) -> None:
        self.stream = stream
        self.scrub = scrub
        self.active = False
        self._lock = threading.Lock()  # items of a parallel loop end on several threads

    def __call__(self, text: str) -> None:
        with self._lock:
            self.stream.write("\r\x1b[2K" + self.scrub(text))
            self.stream.flush()
            self.active = True

    def clear(self) -> None:
        """Erase the line, so the next log line starts clean."""
        with self._lock:
            if self.active:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()
                self.active = False
