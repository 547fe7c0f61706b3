"""What a search says while it works (DESIGN §7: a progress display on long work).

The search reports three kinds of news to a :class:`Progress`: a milestone worth a line of
its own (``log``), what the current model is doing (``phase``: growing, training epoch i/n,
export, parity, measuring), and where the whole run stands (``status``: models finished of
planned, the best accuracy under the budget). :class:`LogLines` writes plain lines, for logs
and pipes; :class:`LiveLine` keeps one status line at the bottom of a terminal, rewritten in
place, with the milestones scrolling above it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

Write = Callable[[str], None]  # writes a string as is (no newline added)

# PhaseClock's phase names -> what the user reads (growing and training say more themselves)
PHASE_WORDS = {
    "export": "exporting to ONNX",
    "parity": "checking ONNX parity",
    "measure": "measuring latency",
    "store": "storing",
}


@dataclass
class Status:
    finished: int = 0
    planned: int = 0
    best: str | None = None  # e.g. "61.20% (trial 4)"
    deadline: float | None = None  # Unix time of --time-limit's end


class Progress:
    """The contract, and its plain form: each milestone and each phase on a line of its own.

    ``verbose`` adds what only a close look needs: the time each phase took, and on a
    terminal every phase as a line too.
    """

    def __init__(self, write: Write, verbose: bool = False) -> None:
        self.write = write
        self.verbose = verbose

    def log(self, line: str) -> None:
        self.write(line + "\n")

    def phase(self, label: str, what: str) -> None:
        self.log(f"{label}: {what}")

    def phase_done(self, label: str, name: str, seconds: float) -> None:
        if self.verbose:
            self.log(f"{label}: {name} took {seconds:.1f} s")

    def status(self, status: Status) -> None:
        """Plain lines leave the standings to the milestones (model i/n: val ..., ms ...)."""

    def close(self) -> None:
        """The command is done reporting."""


class Quiet(Progress):
    def __init__(self) -> None:
        super().__init__(lambda _: None)


class LiveLine(Progress):
    """One status line kept at the bottom of a terminal, redrawn in place."""

    def __init__(self, write: Write, verbose: bool = False, clock: Callable[[], float] = time.time):
        super().__init__(write, verbose)
        self.clock = clock
        self.started = clock()
        self.first_finished: int | None = None  # models already finished when this run began
        self.last_finished_at = self.started  # when the count last went up
        self.standing = Status()
        self.doing = "starting"
        self.shown = False

    def log(self, line: str) -> None:
        self._clear()
        self.write(line + "\n")
        self._draw()

    def phase(self, label: str, what: str) -> None:
        if self.verbose:
            self.log(f"{label}: {what}")
        self.doing = f"{_short_label(label)}: {what}"
        self._draw()

    def status(self, status: Status) -> None:
        if self.first_finished is None:
            self.first_finished = status.finished
        if status.finished > self.standing.finished:
            self.last_finished_at = self.clock()
        self.standing = status
        done = status.finished >= status.planned
        self.doing = "done" if done else "choosing what to train next"
        self._draw()

    def line(self) -> str:
        """Counts and times first, then the phase: a narrow terminal cuts the best last."""
        s = self.standing
        elapsed = self.clock() - self.started
        best = f"best {s.best}" if s.best else "none under the budget yet"
        return (
            f"[{s.finished}/{s.planned} done, {_duration(elapsed)}, {self.remaining(elapsed)}] "
            f"{self.doing} | {best}"
        )

    def remaining(self, elapsed: float) -> str:
        """The rest at this run's pace so far, less what the model in training has had, cut
        at the time limit."""
        s = self.standing
        done = s.finished - (self.first_finished or 0)
        estimates = []
        if done > 0:
            per_model = (self.last_finished_at - self.started) / done
            underway = self.clock() - self.last_finished_at
            estimates.append(max(per_model * max(s.planned - s.finished, 0) - underway, 0.0))
        if s.deadline is not None:
            estimates.append(max(s.deadline - self.clock(), 0.0))
        return f"~{_duration(min(estimates))} left" if estimates else "estimating"

    def _draw(self) -> None:
        if self.first_finished is None:  # no standings before the search has read its study
            return
        width = shutil.get_terminal_size().columns - 1
        self.write("\r\x1b[2K" + self.line()[:width])
        self.shown = True

    def _clear(self) -> None:
        if self.shown:
            self.write("\r\x1b[2K")
            self.shown = False

    def close(self) -> None:
        """Leave the last status on screen and the cursor on a new line."""
        if self.shown:
            self.write("\n")
            self.shown = False


def _short_label(label: str) -> str:
    """ "model 3/8 (trial 5, child of 2)" -> "trial 5": the status line has the count."""
    start = label.find("(trial ")
    if start < 0:
        return label
    return label[start + 1 :].split(",")[0].rstrip(")")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def progress_for(stream: TextIO, quiet: bool = False, verbose: bool = False) -> Progress:
    """A live line on a terminal, plain lines elsewhere, nothing with ``quiet``."""
    if quiet:
        return Quiet()

    def write(text: str) -> None:
        stream.write(text)
        stream.flush()

    return LiveLine(write, verbose) if stream.isatty() else Progress(write, verbose)
