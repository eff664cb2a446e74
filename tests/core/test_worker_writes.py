"""The worker's metrics writes keep up with a fast loop: the linger that gathers steps into one write never
throttles a lane that already holds more than one write (issue 15: a fast loop's backlog waited for
``finish()``). Counted on the local backend's ``metrics.jsonl``; no wall-clock assertion (the poll bound is
generous: the old code lingered ``metrics_every_s`` = 1 h per write)."""

from __future__ import annotations

import time
from pathlib import Path

from trackdiag.backends.base import RunInfo
from trackdiag.backends.local import LocalBackend
from trackdiag.core.worker import STEPS_PER_WRITE, Record, Worker


def _lines(path: Path) -> int:
    return sum(1 for _ in open(path, encoding="utf-8")) if path.exists() else 0


def test_a_lane_holding_several_writes_sends_them_without_lingering(tmp_path):
    backend = LocalBackend(run=RunInfo(run_name="fast", out_dir=tmp_path))
    worker = Worker([backend], metrics_every_s=3600.0)
    steps = 2 * STEPS_PER_WRITE + 88  # two full writes and a partial one
    for step in range(steps):
        worker.submit(Record(step=step, metrics={"train/loss": 1.0 / (step + 1), "train/lr": 1e-3}))
    out = backend.dir / "metrics.jsonl"
    # at most one partial write may linger, gathering (durable in the spool meanwhile); how the steps fell
    # into writes depends on when the worker woke, so that is all that holds. The old code sent one write,
    # then lingered an hour: at most STEPS_PER_WRITE steps.
    deadline = time.monotonic() + 120.0
    while _lines(out) < steps - STEPS_PER_WRITE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _lines(out) >= steps - STEPS_PER_WRITE
    assert worker.close(timeout=60.0)
    assert _lines(out) == steps  # close() does not linger: every step delivered
