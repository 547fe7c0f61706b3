"""The progress display: the live line's standings and estimate, and plain lines elsewhere."""

from __future__ import annotations

import io

from toolchain.progress import LiveLine, Progress, Quiet, Status, progress_for

CLEAR = "\r\x1b[2K"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def live() -> tuple[LiveLine, list[str], Clock]:
    written: list[str] = []
    clock = Clock()
    return LiveLine(written.append, clock=clock), written, clock


def test_live_line_shows_counts_best_phase_and_the_rest_at_this_runs_pace() -> None:
    line, written, clock = live()
    line.log("loading digits")
    assert written == ["loading digits\n"]  # no standings before the search has read its study
    line.status(Status(finished=2, planned=6, best=None))  # two models from an earlier run
    line.phase("model 3/6 (trial 2, child of 0)", "training, epoch 1/4, loss 2.100")
    assert line.line() == (
        "[2/6 done, 0s, estimating] trial 2: training, epoch 1/4, loss 2.100 "
        "| none under the budget yet"
    )
    clock.now += 90  # this run's first model took 90 s: the other three take 270 s
    line.status(Status(finished=3, planned=6, best="61.20% (trial 2)"))
    assert line.line() == (
        "[3/6 done, 1m30s, ~4m30s left] choosing what to train next | best 61.20% (trial 2)"
    )
    clock.now += 30  # a third of the next model is done: the rest shrinks while it trains
    assert "[3/6 done, 2m00s, ~4m00s left]" in line.line()
    line.status(Status(finished=3, planned=6, best=None, deadline=clock.now + 60))
    assert "~1m00s left" in line.line()  # the time limit comes first
    line.status(Status(finished=6, planned=6, best="62.00% (trial 5)"))
    assert "] done | best 62.00% (trial 5)" in line.line()


def test_live_line_keeps_milestones_above_itself() -> None:
    line, written, _ = live()
    line.status(Status(finished=0, planned=2))
    written.clear()
    line.log("model 1/2 (trial 0, from scratch): val 50.00%")
    assert written[0] == CLEAR  # the status line is wiped, the milestone printed, then redrawn
    assert written[1] == "model 1/2 (trial 0, from scratch): val 50.00%\n"
    assert written[2].startswith(CLEAR + "[0/2 done")
    line.close()
    assert written[-1] == "\n"


def test_plain_lines_for_logs_and_quiet_for_nothing() -> None:
    written: list[str] = []
    plain = Progress(written.append, verbose=True)
    plain.status(Status(finished=1, planned=3))
    plain.phase("model 2/3 (trial 1, child of 0)", "exporting to ONNX")
    plain.phase_done("model 2/3 (trial 1, child of 0)", "export", 1.25)
    assert written == [
        "model 2/3 (trial 1, child of 0): exporting to ONNX\n",
        "model 2/3 (trial 1, child of 0): export took 1.2 s\n",
    ]
    quiet = Quiet()
    quiet.log("x")  # says nothing, raises nothing
    assert type(progress_for(io.StringIO())) is Progress  # not a terminal: plain lines
    assert type(progress_for(io.StringIO(), quiet=True)) is Quiet
