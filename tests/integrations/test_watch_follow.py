"""``trackdiag watch`` on a folder that a running process fills with kohya-named images.

Real subprocesses (the writer and the watcher), a real sqlite MLflow store read back with MlflowClient. The
writer writes every PNG in two halves with a pause between them (the watcher must wait for the whole file);
the watcher is stopped (SIGTERM) in the middle of the run and started again: every image is logged exactly
once, at its step, into one run named after the folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent("""
    import io, sys, time
    from pathlib import Path
    import numpy as np
    from PIL import Image
    out = Path(sys.argv[1]) / "sample"
    out.mkdir(parents=True, exist_ok=True)
    steps = [int(s) for s in sys.argv[2].split(",")]
    pause = float(sys.argv[3])
    gate = Path(sys.argv[4])
    rng = np.random.default_rng(0)
    for n, step in enumerate(steps):
        if n == len(steps) // 2:
            while not gate.exists():   # training goes on only after the test restarted the watcher
                time.sleep(0.1)
        for idx in range(2):
            img = (rng.random((48, 48, 3)) * 80 + 90).astype(np.uint8)
            img[::8, :] -= 40   # an 8-px grid on every image: the fingerprint must see it
            img[:, ::8] -= 40
            buf = io.BytesIO(); Image.fromarray(img).save(buf, format="PNG"); data = buf.getvalue()
            ts = time.strftime("%Y%m%d%H%M%S")
            path = out / f"wall_lora_{step:06d}_{idx:02d}_{ts}_{1000 + idx}.png"
            with open(path, "wb") as f:          # half a file, visible to the watcher, then the rest
                f.write(data[: len(data) // 2]); f.flush()
                time.sleep(pause)
                f.write(data[len(data) // 2:])
        time.sleep(pause)
""")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
    return env


def _watch(folder: Path, tmp: Path, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "trackdiag.cli",
        "watch",
        str(folder),
        "--tracking-uri",
        f"sqlite:///{tmp / 'mlruns.db'}",
        "--out-dir",
        str(tmp / "td"),
        "--poll",
        "0.2",
        "--settle",
        "0.4",
        "--group-wait",
        "3",
        *extra,
    ]
    return subprocess.Popen(
        cmd, cwd=tmp, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _state(tmp: Path) -> dict:
    files = list((tmp / "td" / "watch").glob("*/state.json"))
    return json.loads(files[0].read_text()) if files else {}


@pytest.mark.slow
def test_watch_logs_every_image_once_at_its_step_across_a_restart(tmp_path):
    from mlflow import MlflowClient

    folder = tmp_path / "my_wall_lora"
    steps = [0, 50, 100, 150, 200, 250, 300, 350]
    folder.mkdir()
    first = _watch(folder, tmp_path)
    seen = []
    while not any("following" in line for line in seen):  # the watcher is up: now training starts writing
        line = first.stdout.readline()
        assert line, "".join(seen)
        seen.append(line)
    gate = tmp_path / "go_on"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), ",".join(map(str, steps)), "0.3", str(gate)], env=_env()
    )
    second = None
    try:
        deadline = time.time() + 240
        while len(_state(tmp_path).get("logged", {})) < 4 and time.time() < deadline:
            time.sleep(0.3)
        assert len(_state(tmp_path).get("logged", {})) >= 4, "the first watcher logged nothing"
        assert writer.poll() is None, "the writer finished before the restart: the test proves nothing"
        first.send_signal(signal.SIGTERM)  # stop mid-run ...
        out1, _ = first.communicate(timeout=120)
        assert first.returncode == 0, out1
        logged_before = set(_state(tmp_path)["logged"])
        second = _watch(folder, tmp_path)  # ... and start again
        gate.touch()  # training goes on
        writer.wait(timeout=240)
        # stopped (SIGTERM) once its state holds every image: waiting on that, not on an idle time
        deadline = time.time() + 240
        while (len(_state(tmp_path).get("logged", {})) < 2 * len(steps) and time.time() < deadline
               and second.poll() is None):
            time.sleep(0.2)
        second.send_signal(signal.SIGTERM)
        out2, _ = second.communicate(timeout=240)
        assert second.returncode == 0, out2
    finally:
        for p in (writer, first, second):
            if p is not None and p.poll() is None:
                p.kill()
    state = _state(tmp_path)
    expected = {f"sample/wall_lora_{s:06d}_{i:02d}" for s in steps for i in range(2)}
    assert {k.rsplit("_", 2)[0] for k in state["logged"]} == expected
    assert 0 < len(logged_before) < len(expected)
    assert not state["failed"]

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    exp = client.get_experiment_by_name("trackdiag")
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.run_name for r in runs] == ["my_wall_lora"]  # one run, resumed, named after the folder
    run_id = runs[0].info.run_id
    assert state["run_id"] == run_id
    for idx in range(2):
        hist = client.get_metric_history(run_id, f"trackdiag/watch/logged/{idx:02d}_seed{1000 + idx}")
        assert sorted(m.step for m in hist) == steps  # each image once, at its own step
    counts = client.get_metric_history(run_id, "trackdiag/watch/images")
    assert sum(m.value for m in counts) == len(expected)
    tiling = [k for k in client.get_run(run_id).data.metrics if k.startswith("trackdiag/tiling/")]
    assert tiling, "no diagnosis was logged"
    fp = client.get_metric_history(run_id, "trackdiag/fingerprint/grid_s8")
    # every step has its fingerprint (a step whose images straddle the restart, or that the trainer wrote
    # slower than --group-wait, gets one per part)
    assert {m.step for m in fp} == set(steps)
    assert min(m.value for m in fp) > 0.5  # the 8-px grid of every image is found at every step
    images = [a.path for a in client.list_artifacts(run_id, "images")]
    assert len(images) >= len(expected)


@pytest.mark.slow
def test_a_start_that_died_before_saving_its_run_id_is_found_again(tmp_path):
    """The first start created its MLflow run and died before the state file held the run's id: the next
    start finds that run by the key it was created with (the state folder's), instead of making a second."""
    import numpy as np
    from mlflow import MlflowClient
    from PIL import Image

    folder = tmp_path / "wall_lora" / "sample"
    folder.mkdir(parents=True)
    img = (np.random.default_rng(0).random((48, 48, 3)) * 80 + 90).astype(np.uint8)
    Image.fromarray(img).save(folder / "wall_lora_000010_00_20261206120000_1000.png")
    # --once: log what is there and stop (the folder is complete; --idle-exit would sit out --group-wait and
    # the idle time, 5 s of each start's 6-7 s on CI; the run is created or found when the watcher starts)
    first = _watch(folder, tmp_path, "--once")
    out, _ = first.communicate(timeout=240)
    assert first.returncode == 0, out
    state_file = next((tmp_path / "td" / "watch").glob("*/state.json"))
    state = json.loads(state_file.read_text())
    assert state["run_id"]
    state["run_id"] = None  # what a SIGKILL between creating the run and saving the state leaves
    state_file.write_text(json.dumps(state))
    second = _watch(folder, tmp_path, "--once")
    out, _ = second.communicate(timeout=240)
    assert second.returncode == 0, out

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    runs = client.search_runs([client.get_experiment_by_name("trackdiag").experiment_id])
    assert len(runs) == 1  # one run, found again
    assert json.loads(state_file.read_text())["run_id"] == runs[0].info.run_id
