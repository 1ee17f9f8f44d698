"""A text progress bar for the command line (`ProgressBar`): the ``progress(fraction, text)`` of every long function,
drawn on stderr so that stdout keeps only the results."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """``progress(fraction, text)`` drawn as a text bar on a stream: redrawn in place on a terminal, one line per
    5% step otherwise (logs stay short)."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self._last_step = -1
        self._last_len = 0

    def __call__(self, fraction: float, text: str) -> None:
        f = min(max(float(fraction), 0.0), 1.0)
        filled = int(round(f * self.width))
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {f:4.0%} {time.perf_counter() - self.start:6.1f}s {text}"
        if self.tty:
            pad = max(0, self._last_len - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._last_len = len(line)
        else:
            step = int(f * 20)
            if step == self._last_step:
                return
            self._last_step = step
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
