"""Progress on stderr for the command line: bars on a terminal, plain lines in a log.

tqdm draws several bars at once by moving the cursor up and down; piped to a file or a CI log
those moves become stray ``[A`` codes and one endless line. So a terminal gets tqdm bars and
anything else gets a line per stage now and then ("embedding: 128/256 chunks").
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

UNITS = {"files": "file", "embedding": "chunk", "ocr": "page"}
"""The unit each stage counts; other stages (an evaluation's questions) say theirs when they start."""


class StderrProgress:
    """A ``progress(stage, done, total)`` callback for ``Index.build`` and ``rag eval``."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 10.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self.bars: dict[str, Any] = {}
        self.units: dict[str, str] = {}
        self.last_line: dict[str, float] = {}
        self.finished: dict[str, int] = {}

    def start(self, stage: str, unit: str) -> None:
        """Name the unit of a stage that is not one of ``UNITS``."""
        self.units[stage] = unit

    def __call__(self, stage: str, done: int, total: int) -> None:
        if total <= 0:
            return
        unit = self.units.get(stage) or UNITS.get(stage, "item")
        if self.interactive:
            self._bar(stage, unit, done, total)
            return
        now = time.monotonic()
        finished = done >= total
        if finished and self.finished.get(stage) == total:
            return  # already said so (a stage's total can grow: more files, more chunks)
        if finished or now - self.last_line.get(stage, -self.interval) >= self.interval:
            self.last_line[stage] = now
            if finished:
                self.finished[stage] = total
            print(f"{stage}: {done}/{total} {unit}s", file=self.stream, flush=True)

    def _bar(self, stage: str, unit: str, done: int, total: int) -> None:
        # tqdm loads only for a progress bar on a terminal
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit=unit, file=self.stream, leave=True,
                                          dynamic_ncols=True, mininterval=0.5)
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
