"""Log readers against real logs written by the real libraries, and against damaged files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from trackdiag.errors import InputFileError
from trackdiag.io.logreaders import (
    guess_loss_tag,
    guess_timestep_tag,
    iter_wandb_records,
    read_loss_log,
    read_wandb_offline,
    wait_for_wandb_run,
)

N = 60


def _curve():
    steps = np.arange(N) * 2                      # every other step, so steps are not row numbers
    loss = 1.0 / (1.0 + 0.1 * steps)
    t = (steps * 37) % 1000
    return steps, loss, t


def test_guessing_prefers_the_training_loss():
    assert guess_loss_tag(["val/loss", "train/loss", "loss"]) == "train/loss"
    assert guess_loss_tag(["val_loss", "Loss"]) == "Loss"
    assert guess_loss_tag(["eval/loss", "lr", "train/mse_loss"]) == "train/mse_loss"
    assert guess_loss_tag(["lr", "val_loss", "test/loss"]) is None
    assert guess_timestep_tag(["train_loss", "train/timestep"]) == "train/timestep"
    assert guess_timestep_tag(["T", "loss"]) == "T"
    assert guess_timestep_tag(["temperature"]) is None


# ------------------------------------------------------------------------------------------------------
# TensorBoard
# ------------------------------------------------------------------------------------------------------
def _write_tb(folder: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    steps, loss, t = _curve()
    w = SummaryWriter(str(folder))
    for s, v, tt in zip(steps, loss, t, strict=True):
        w.add_scalar("train/loss", v, int(s))
        w.add_scalar("val/loss", 2 * v, int(s))
        w.add_scalar("timestep", tt, int(s))
    w.add_image("sample", np.zeros((3, 4, 4), np.uint8), 0)
    w.close()


def test_tensorboard_roundtrip_with_timesteps(tmp_path):
    _write_tb(tmp_path / "run")
    log = read_loss_log(tmp_path / "run")
    steps, loss, t = _curve()
    assert (log.format, log.tag, log.timestep_tag) == ("tensorboard", "train/loss", "timestep")
    np.testing.assert_array_equal(log.steps, steps)
    np.testing.assert_allclose(log.values, loss, rtol=1e-6)
    np.testing.assert_allclose(log.timesteps, t)
    assert set(log.tags) == {"train/loss", "val/loss", "timestep"}
    explicit = read_loss_log(tmp_path / "run", tag="val/loss")
    np.testing.assert_allclose(explicit.values, 2 * loss, rtol=1e-6)
    event_file = next((tmp_path / "run").glob("events.out.tfevents.*"))
    assert read_loss_log(event_file).tag == "train/loss"   # one event file works too


def test_tensorboard_damaged_or_empty(tmp_path):
    _write_tb(tmp_path / "run")
    f = next((tmp_path / "run").glob("events.out.tfevents.*"))
    data = f.read_bytes()
    f.write_bytes(data[:-9])
    with pytest.raises(InputFileError, match="truncated.*allow-truncated-logs"):
        read_loss_log(tmp_path / "run")
    log = read_loss_log(tmp_path / "run", allow_truncated=True)
    assert 0 < log.steps.size <= N and any("truncated" in w for w in log.warnings)
    f.write_bytes(b"\x00garbage" * 40)
    with pytest.raises(InputFileError, match="corrupt"):
        read_loss_log(tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no training log"):
        read_loss_log(tmp_path / "empty")
    with pytest.raises(InputFileError, match="no such file"):
        read_loss_log(tmp_path / "missing")
    with pytest.raises(InputFileError, match="no series named 'nope'.*train/loss"):
        _write_tb(tmp_path / "ok")
        read_loss_log(tmp_path / "ok", tag="nope")


# ------------------------------------------------------------------------------------------------------
# CSV / JSONL
# ------------------------------------------------------------------------------------------------------
def test_csv_sparse_lightning_style_and_long_format(tmp_path):
    steps, loss, t = _curve()
    lines = ["epoch,step,train_loss,val_loss,timesteps"]
    for s, v, tt in zip(steps, loss, t, strict=True):
        lines.append(f"0,{s},{float(v)!r},,{tt}")
        if s % 20 == 0:
            lines.append(f"0,{s},,{2 * float(v)!r},")          # validation rows leave the other cells empty
    (tmp_path / "metrics.csv").write_text("\n".join(lines) + "\n")
    log = read_loss_log(tmp_path)                        # a folder with one CSV
    assert (log.format, log.tag, log.timestep_tag) == ("csv", "train_loss", "timesteps")
    np.testing.assert_array_equal(log.steps, steps)
    np.testing.assert_allclose(log.values, loss)
    np.testing.assert_allclose(log.timesteps, t)
    long = ["key,value,step,timestamp"] + [f"loss,{float(v)!r},{s},0" for s, v in zip(steps, loss,
                                                                                      strict=True)]
    (tmp_path / "long.csv").write_text("\n".join(long) + "\n")
    log = read_loss_log(tmp_path / "long.csv")
    assert log.tag == "loss" and log.timesteps is None
    np.testing.assert_allclose(log.values, loss)


def test_csv_problems(tmp_path):
    bad = tmp_path / "a.csv"
    bad.write_text("step,train_loss\n0,1.0\n1,0.9\n2")
    with pytest.raises(InputFileError, match=r"last row \(line 4\) is cut off"):
        read_loss_log(bad)
    assert read_loss_log(bad, allow_truncated=True).steps.tolist() == [0, 1]
    bad.write_text("step,train_loss\n0,1.0\n1,0.9,7,7\n2,0.8\n")
    with pytest.raises(InputFileError, match="line 3 has 4 fields"):
        read_loss_log(bad)
    bad.write_text("")
    with pytest.raises(InputFileError, match="empty"):
        read_loss_log(bad)
    bad.write_text("step,train_loss\n")
    with pytest.raises(InputFileError, match="no rows"):
        read_loss_log(bad)
    bad.write_text("step,accuracy\n0,0.5\n")
    with pytest.raises(InputFileError, match="no loss series found.*'accuracy'.*--loss-tag"):
        read_loss_log(bad)


def test_jsonl_nested_and_problems(tmp_path):
    steps, loss, t = _curve()
    f = tmp_path / "log.jsonl"
    f.write_text("".join(json.dumps({"global_step": int(s), "train": {"loss": float(v)}, "t": int(tt),
                                     "note": "x"}) + "\n" for s, v, tt in zip(steps, loss, t, strict=True)))
    log = read_loss_log(f)
    assert (log.format, log.tag, log.timestep_tag) == ("jsonl", "train/loss", "t")
    np.testing.assert_array_equal(log.steps, steps)
    np.testing.assert_allclose(log.timesteps, t)
    text = f.read_text()
    f.write_text(text + '{"global_step": 999, "train": {"lo')
    with pytest.raises(InputFileError, match=f"last line \\({N + 1}\\) is cut off"):
        read_loss_log(f)
    assert read_loss_log(f, allow_truncated=True).steps.size == N
    f.write_text('{"step": 0, "loss": 1}\nnot json\n{"step": 1, "loss": 2}\n')
    with pytest.raises(InputFileError, match="line 2 is not valid JSON"):
        read_loss_log(f)
    f.write_text("\n\n")
    with pytest.raises(InputFileError, match="empty|no records"):
        read_loss_log(f)


# ------------------------------------------------------------------------------------------------------
# MLflow (a real sqlite store)
# ------------------------------------------------------------------------------------------------------
def test_mlflow_run_roundtrip(tmp_path):
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("diag", artifact_location=(tmp_path / "art").as_uri())
    run = client.create_run(exp)
    steps, loss, t = _curve()
    now = int(time.time() * 1000)
    metrics = [Metric("train_loss", float(v), now, int(s)) for s, v in zip(steps, loss, strict=True)]
    metrics += [Metric("timestep", float(tt), now, int(s)) for s, tt in zip(steps, t, strict=True)]
    metrics += [Metric("lr", 1e-4, now, int(s)) for s in steps]
    for i in range(0, len(metrics), 1000):
        client.log_batch(run.info.run_id, metrics=metrics[i:i + 1000])
    client.set_terminated(run.info.run_id)
    log = read_loss_log(run_id=run.info.run_id, tracking_uri=uri)
    assert (log.format, log.tag, log.timestep_tag) == ("mlflow", "train_loss", "timestep")
    np.testing.assert_array_equal(log.steps, steps)
    np.testing.assert_allclose(log.values, loss)
    np.testing.assert_allclose(log.timesteps, t)
    assert set(log.tags) == {"train_loss", "timestep", "lr"}
    db_path_log = read_loss_log(tmp_path / "mlflow.db", run_id=run.info.run_id)   # --logdir x.db --run-id
    np.testing.assert_allclose(db_path_log.values, loss)
    # the report section's --run-id / --tracking-uri flags reach the same reader
    import argparse

    from trackdiag.report.sections import loss as loss_section

    parser = argparse.ArgumentParser()
    loss_section.add_arguments(parser)
    args = parser.parse_args(["--run-id", run.info.run_id, "--tracking-uri", uri])
    assert loss_section.wanted(args)
    (sec,) = loss_section.run(args, tmp_path / "report", progress=False)
    assert sec.summary["loss_format"] == "mlflow" and sec.summary["n_steps"] == N
    assert (tmp_path / "report" / "events.csv").is_file()
    with pytest.raises(InputFileError, match="cannot open the run"):
        read_loss_log(run_id="0" * 32, tracking_uri=uri)
    with pytest.raises(InputFileError, match="no loss series found.*'lr'"):
        other = client.create_run(exp)
        client.log_metric(other.info.run_id, "lr", 0.1, step=0)
        read_loss_log(run_id=other.info.run_id, tracking_uri=uri)


# ------------------------------------------------------------------------------------------------------
# W&B offline run (the real wandb library)
# ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory):
    import os

    import wandb

    root = tmp_path_factory.mktemp("wb")
    old = {k: os.environ.get(k) for k in ("WANDB_MODE", "WANDB_DIR", "WANDB_SILENT")}
    os.environ.update(WANDB_MODE="offline", WANDB_DIR=str(root), WANDB_SILENT="true")
    try:
        run = wandb.init(project="trackdiag-test", config={"lr": 1e-4, "model": {"rank": 8}}, dir=str(root))
        steps, loss, t = _curve()
        for s, v, tt in zip(steps, loss, t, strict=True):
            row = {"train_loss": float(v), "timestep": int(tt), "eval": {"loss": 2 * float(v)}}
            run.log(row, step=int(s))
        run.log({"sample": wandb.Image(np.zeros((8, 8, 3), np.uint8))}, step=int(steps[-1]) + 1)
        run.finish()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    # wandb-core may still be flushing the run file when finish() returns on a loaded machine
    assert wait_for_wandb_run(root / "wandb").exit_code is not None
    return root / "wandb"


def test_wandb_offline_run_is_decoded(wandb_run):
    steps, loss, t = _curve()
    run = read_wandb_offline(wandb_run)                 # the wandb/ folder with one run
    assert run.project == "trackdiag-test" and run.run_id and run.exit_code == 0 and not run.truncated
    assert run.config["lr"] == pytest.approx(1e-4) and run.config["model"] == {"rank": 8}
    assert len(run.history) == N + 1
    assert run.history[0]["eval"]["loss"] == pytest.approx(2 * loss[0])
    image = run.history[-1]["sample"]
    assert image["_type"] == "image-file" and image["path"].endswith(".png")
    assert run.summary["train_loss"] == pytest.approx(loss[-1])
    log = read_loss_log(wandb_run)
    assert (log.format, log.tag, log.timestep_tag) == ("wandb", "train_loss", "timestep")
    np.testing.assert_array_equal(log.steps, steps)
    np.testing.assert_allclose(log.values, loss)
    np.testing.assert_allclose(log.timesteps, t)
    run_dir = next(wandb_run.glob("offline-run-*"))
    assert read_wandb_offline(run_dir).run_id == run.run_id
    assert read_wandb_offline(next(run_dir.glob("*.wandb"))).run_id == run.run_id


def _inside_a_record(data: bytes, near: int) -> int:
    """A cut position in the middle of the payload of the record that spans byte ``near`` (a cut on a record
    boundary leaves a shorter but valid file, which no reader can tell from a run that ended there)."""
    import struct

    pos = 7  # the file header
    while True:
        left = 32768 - pos % 32768  # W&B's level-db-style blocks: a chunk header never spans two blocks
        if left < 7:
            pos += left
            continue
        (length,) = struct.unpack("<H", data[pos + 4:pos + 6])
        end = pos + 7 + length
        if end > near:
            return pos + 7 + max(length // 2, 1)
        pos = end


def test_wandb_damaged_files(wandb_run, tmp_path):
    src = next(wandb_run.glob("offline-run-*/*.wandb"))
    data = src.read_bytes()
    cut = tmp_path / "cut" / "run-x.wandb"
    cut.parent.mkdir()
    cut.write_bytes(data[: _inside_a_record(data, len(data) // 2)])
    with pytest.raises(InputFileError, match="cut|truncated|ends after"):
        read_wandb_offline(cut.parent)
    partial = read_wandb_offline(cut.parent, allow_truncated=True)
    assert 0 < len(partial.history) < N and partial.truncated
    flipped = bytearray(data)
    flipped[200] ^= 0xFF
    bad = tmp_path / "bad" / "run-y.wandb"
    bad.parent.mkdir()
    bad.write_bytes(bytes(flipped))
    with pytest.raises(InputFileError, match="corrupt|checksum"):
        list(iter_wandb_records(bad))
    junk = tmp_path / "junk" / "run-z.wandb"
    junk.parent.mkdir()
    junk.write_bytes(b"not a wandb file")
    with pytest.raises(InputFileError, match="not a W&B run file"):
        read_wandb_offline(junk)
    empty = tmp_path / "empty" / "run-e.wandb"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        read_wandb_offline(empty)


def test_wait_for_wandb_run_waits_for_the_exit_record(wandb_run, tmp_path):
    """A run file still being flushed (only its first half on disk, no exit record) is waited for."""
    import threading

    src = next(wandb_run.glob("offline-run-*/*.wandb"))
    data = src.read_bytes()
    live = tmp_path / "live" / "run-l.wandb"
    live.parent.mkdir()
    live.write_bytes(data[: len(data) // 2])
    partial = wait_for_wandb_run(live, timeout_s=0.3, poll_s=0.05)  # times out: returns what is there
    assert partial.exit_code is None and len(partial.history) < N
    writer = threading.Timer(0.3, live.write_bytes, args=(data,))
    writer.start()
    full = wait_for_wandb_run(live, timeout_s=60, poll_s=0.05)
    writer.join()
    assert full.exit_code == 0 and len(full.history) == N + 1
    with pytest.raises(InputFileError, match="no such file"):
        wait_for_wandb_run(tmp_path / "nothing", timeout_s=0.2, poll_s=0.05)
