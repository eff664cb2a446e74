"""``trackdiag watch`` killed (SIGKILL) at many points and started again: every image arrives exactly once.

A real watcher process (``python -m trackdiag.cli watch``) follows a folder of kohya-named validation images
into a real sqlite MLflow store. It is killed again and again, at three kinds of points:

* just after the tracker acknowledged an image (an ``ack`` line in the session's spool), before the watcher
  could record the delivery in its state file: the window where a restart used to log the image again;
* just after the watcher recorded that it is logging a group (``pending`` in its state), before delivery;
* after a plain delay.

Then a last watcher (``--once``) finishes the folder. The MLflow store is read back with ``MlflowClient`` and
every ``(image, step)`` is counted: each must be there exactly once, with its marker metric and its
diagnosis once at its step.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
STEPS = list(range(0, 120, 10))
IDX = (0, 1)
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
    return env


def _fill(folder: Path) -> None:
    """Kohya's ``sample/`` folder of a finished training: two images per step, an 8-px grid on each."""
    out = folder / "sample"
    out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for step in STEPS:
        for idx in IDX:
            img = (rng.random((48, 48, 3)) * 80 + 90).astype(np.uint8)
            img[::8, :] -= 40
            img[:, ::8] -= 40
            Image.fromarray(img).save(out / f"wall_lora_{step:06d}_{idx:02d}_20261206120000_{1000 + idx}.png")


def _watch(folder: Path, tmp: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "trackdiag.cli", "watch", str(folder),
           "--tracking-uri", f"sqlite:///{tmp / 'mlruns.db'}", "--out-dir", str(tmp / "td"),
           "--poll", "0.1", "--settle", "0.2", "--group-wait", "1",
           "--override", "worker.render=thread", *extra]  # (no drawing process to start each time)
    return subprocess.Popen(cmd, cwd=tmp, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _state(tmp: Path) -> dict:
    for path in (tmp / "td" / "watch").glob("*/state.json"):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):  # replaced while read
            return {}
    return {}


def _journals(tmp: Path, pid: str = "*") -> list[Path]:
    """The spool journals of the watcher with process id ``pid`` (all: ``*``). (``glob.glob``, unlike
    ``Path.glob``, does not fail when the watcher removes a spool folder while it is being listed.)"""
    pattern = str(tmp / "td" / "**" / "spool" / f"*-{pid}-*" / "spool.jsonl")
    return [Path(p) for p in glob.glob(pattern, recursive=True)]


def _image_acks(tmp: Path, pid: int) -> int:
    """Images the tracker acknowledged in the spool of the watcher ``pid`` (0 before it has a spool)."""
    journals = _journals(tmp, str(pid))
    if not journals:
        return 0
    images, acked = set(), 0
    try:
        journal = journals[0].read_text()
    except FileNotFoundError:  # delivered everything and removed meanwhile
        return 0
    for text in journal.splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if line.get("op") == "put" and line.get("kind") == "image":
            images.add(line["id"])
        elif line.get("op") == "ack":
            acked += sum(1 for i in line.get("ids", []) if i in images)
    return acked


def _kill_at(proc: subprocess.Popen, tmp: Path, point: str, delay: float) -> dict:
    """SIGKILL the watcher at ``point``; returns the state it left."""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if point == "ack" and _image_acks(tmp, proc.pid) > 0:
                break
            # the watcher's session has started (what a previous kill left pending was settled before)
            started = bool(_journals(tmp, str(proc.pid)))
            if point == "intent" and started and _state(tmp).get("pending"):
                break
            if point == "delay" and started:
                time.sleep(delay)
                break
            time.sleep(0.005)
    finally:  # also when the test fails here: no watcher is left running
        proc.kill()
        proc.communicate(timeout=60)
    return _state(tmp)


def test_watch_killed_at_many_points_logs_every_image_exactly_once(tmp_path):
    from mlflow import MlflowClient

    folder = tmp_path / "my_wall_lora"
    _fill(folder)
    points = ["ack", "intent", "delay", "ack", "intent", "ack"]
    left_pending = 0
    progress = []
    for n, point in enumerate(points):
        state = _kill_at(_watch(folder, tmp_path), tmp_path, point, delay=0.3 * (n % 4))
        left_pending += bool(state.get("pending"))
        progress.append(len(state.get("logged", {})))
    last = _watch(folder, tmp_path, "--once")  # the folder is complete: log the rest now (no group/idle wait)
    out, _ = last.communicate(timeout=300)
    assert last.returncode == 0, out

    expected = {(f"{i:02d}_seed{1000 + i}", s) for s in STEPS for i in IDX}
    assert progress[-1] < len(expected), "the killed watchers had logged everything: the test proves nothing"
    assert left_pending >= 2, "no kill landed while a group was being logged: the test proves nothing"
    state = _state(tmp_path)
    assert len(state["logged"]) == len(expected) and not state["pending"] and not state["failed"]

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("trackdiag").experiment_id])
    run_id = run.info.run_id
    images = Counter()
    for art in client.list_artifacts(run_id, "images"):
        name = Path(art.path).name
        if name.endswith(".png") and name.startswith("trackdiag~watch~"):
            key, rest = name[len("trackdiag~watch~"):].split("+step+", 1)
            images[(key, int(rest.split("+", 1)[0]))] += 1
    assert images == Counter({k: 1 for k in expected})  # every image once, at its step
    for idx in IDX:
        hist = client.get_metric_history(run_id, f"trackdiag/watch/logged/{idx:02d}_seed{1000 + idx}")
        assert sorted(m.step for m in hist) == STEPS
    assert sum(m.value for m in client.get_metric_history(run_id, "trackdiag/watch/images")) == len(expected)
    tiling = sorted(k for k in run.data.metrics if k.startswith("trackdiag/tiling/"))
    assert tiling, "no diagnosis was logged"
    assert sorted(m.step for m in client.get_metric_history(run_id, tiling[0])) == STEPS  # diagnosis once
    # no spool of a killed watcher is left behind with something undelivered
    assert [p for p in _journals(tmp_path) if _pending_items(p.parent)] == []


def _pending_items(folder: Path) -> list:
    from trackdiag.backends.spool import Spool

    spool = Spool.open(folder)
    try:
        return spool.pending()
    finally:
        spool.close()
