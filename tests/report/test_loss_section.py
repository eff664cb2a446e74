"""``python -m trackdiag.diagnose --logdir``: the loss section end to end, on logs with planted events."""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest

from tests.analyzers.test_loss_detection import make_curve
from trackdiag.analyzers.loss import EVENT_COLUMNS, detect_series
from trackdiag.errors import TrackdiagError
from trackdiag.report.sections import loss as loss_section


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    loss_section.add_arguments(parser)
    return parser.parse_args(list(argv))


def _write_csv(path, steps, loss, t):
    with path.open("w") as fh:
        fh.write("step,train_loss,val_loss,timestep\n")
        for s, v, tt in zip(steps, loss, t, strict=True):
            fh.write(f"{s},{float(v)!r},,{int(tt)}\n")


@pytest.fixture(scope="module")
def curve():
    return make_curve(4)


def test_section_writes_figures_events_and_verdicts(curve, tmp_path):
    steps, loss, t, truth = curve
    _write_csv(tmp_path / "log.csv", steps, loss, t)
    (sec,) = loss_section.run(_args("--logdir", str(tmp_path / "log.csv")), tmp_path / "out", progress=False)
    out = tmp_path / "out"
    names = ("train_loss.png", "ema_loss.png", "smoothed_loss.png", "loss_ratio.png", "timestep_profile.png")
    for name in names:
        assert (out / name).stat().st_size > 5000, name
    assert [f.path for f in sec.figures][:3] == ["train_loss.png", "ema_loss.png", "smoothed_loss.png"]
    with (out / "events.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == EVENT_COLUMNS
    ref = detect_series(steps, loss, timesteps=t)                   # the same detector, fed directly
    assert [(int(r["step"]), r["kind"]) for r in rows] == [(e.step, e.kind) for e in ref.events]
    planted_spikes = {a for a, _ in truth["spike"]}
    found = {int(r["step"]) for r in rows if r["kind"] == "spike"}
    assert len(found & planted_spikes) >= 0.9 * len(planted_spikes)
    s = sec.summary
    assert (s["loss_tag"], s["timestep_tag"], s["loss_format"]) == ("train_loss", "timestep", "csv")
    assert s["n_steps"] == steps.size and s["nonfinite_count"] == 2 and s["plateau_count"] >= 1
    assert s["ema_divergence_count"] == 1 and s["n_spikes"] == len(found)
    causes = " | ".join(v.cause for v in sec.verdicts)
    for word in ("NaN/Inf", "diverges", "spikes", "plateau"):
        assert word in causes
    assert sec.verdicts[0].severity == "bad"


def test_higher_spike_sigma_flags_fewer_spikes():
    steps, loss, t, _ = make_curve(5, n=1200, spikes=25, plateaus=(), divergence=None, nonfinite=())
    lo = loss_section._params(_args("--logdir", "x"))
    hi = loss_section._params(_args("--logdir", "x", "--spike-sigma", "6", "--robust-spikes"))
    assert (lo.spike_sigma, lo.robust, hi.spike_sigma, hi.robust) == (3.0, False, 6.0, True)
    n_lo = detect_series(steps, loss, timesteps=t, params=lo).metrics["n_spikes"]
    n_hi = detect_series(steps, loss, timesteps=t, params=hi).metrics["n_spikes"]
    assert 0 < n_hi < n_lo


def test_clean_curve_gives_an_ok_verdict(tmp_path):
    steps, loss, t, _ = make_curve(9, n=1200, spikes=0, plateaus=(), divergence=None, nonfinite=())
    _write_csv(tmp_path / "log.csv", steps, loss, t)
    (sec,) = loss_section.run(_args("--logdir", str(tmp_path / "log.csv")), tmp_path / "out", progress=False)
    assert sec.summary["ema_divergence_count"] == 0 and sec.summary["nonfinite_count"] == 0
    assert all(v.severity == "info" for v in sec.verdicts), [(v.cause, v.evidence) for v in sec.verdicts]


def test_no_loss_series_is_a_clear_error(tmp_path):
    (tmp_path / "log.csv").write_text("step,accuracy\n0,0.1\n1,0.2\n")
    with pytest.raises(TrackdiagError, match="no loss series found.*accuracy.*--loss-tag"):
        loss_section.run(_args("--logdir", str(tmp_path / "log.csv")), tmp_path / "out", progress=False)


def _tensorboard_log(folder, steps, loss, t):
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(folder))
    for s, v, tt in zip(steps, loss, t, strict=True):
        if np.isfinite(v):
            w.add_scalar("train/loss", float(v), int(s))
        w.add_scalar("train/timestep", float(tt), int(s))
    w.close()


def test_cli_tensorboard_logdir_report(curve, tmp_path, capsys):
    from trackdiag.diagnose import main

    steps, loss, t, _ = curve
    _tensorboard_log(tmp_path / "tb", steps[:1500], loss[:1500], t[:1500])
    rc = main(["--logdir", str(tmp_path / "tb"), "--report", str(tmp_path / "rep"), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["loss"]["loss_tag"] == "train/loss" and summary["loss"]["timestep_tag"] == "train/timestep"
    assert summary["loss"]["n_spikes"] > 10
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "train_loss.png" in html and "events" in html
    assert (tmp_path / "rep" / "events.csv").is_file()


def test_cli_exits_nonzero_with_a_reason(tmp_path, capsys):
    from trackdiag.diagnose import main

    (tmp_path / "log.jsonl").write_text('{"step": 0, "lr": 0.1}\n{"step": 1, "lr": 0.1}\n')
    rc = main(["--logdir", str(tmp_path / "log.jsonl"), "--out", str(tmp_path / "rep"), "--no-progress"])
    assert rc == 1
    assert "no loss series found" in capsys.readouterr().err
    (tmp_path / "cut.jsonl").write_text('{"step": 0, "loss": 1.0}\n{"step": 1, "lo')
    rc = main(["--logdir", str(tmp_path / "cut.jsonl"), "--out", str(tmp_path / "rep2"), "--no-progress"])
    assert rc == 1 and "--allow-truncated-logs" in capsys.readouterr().err
    rc = main(["--logdir", str(tmp_path / "cut.jsonl"), "--out", str(tmp_path / "rep3"), "--no-progress",
               "--allow-truncated-logs", "--loss-tag", "loss"])
    assert rc == 0
