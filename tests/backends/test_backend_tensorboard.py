"""TensorBoard specifics: the user's own SummaryWriter (the seed's ``writer=``), read back with
EventAccumulator."""

from __future__ import annotations

import pytest

import trackdiag
from tests.support.probes import batch, mean_config
from tests.support.readback import read_tensorboard

KEY = "trackdiag/mean/mean"


def test_users_own_writer_is_used_and_left_open(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path / "tb" / "mine"))
    writer.add_scalar("train/loss", 1.0, 0)
    s = trackdiag.init(config=mean_config(), overrides=["analyzer=[]"], allow_external_targets=True,
                       backend="tensorboard", writer=writer, on_error="raise", out_dir=str(tmp_path / "out"))
    preds = {step: batch(seed=step) for step in range(3)}
    for step, pred in preds.items():
        s.log(step, pred)
    s.log_scalars({"band_axis_hint": "rows"}, step=2, prefix="trackdiag/user/")
    summary = s.finish()
    assert summary.clean, str(summary)
    writer.add_scalar("train/loss", 0.5, 3)  # still the user's, still open
    writer.close()
    assert not (tmp_path / "out" / "tensorboard").exists()  # no second event folder

    back = read_tensorboard(tmp_path / "tb" / "mine")
    assert back.metrics["train/loss"] == {0: 1.0, 3: 0.5}
    expected = {k: float(p.mean(dim=(1, 2, 3)).mean()) for k, p in preds.items()}
    assert back.metrics[KEY] == pytest.approx(expected)
    assert set(back.images["trackdiag/mean/img"]) == {0, 1, 2}
    assert back.tables["trackdiag/user/texts"] == [{"step": "2", "trackdiag/user/band_axis_hint": "rows"}]
    assert back.params["analyzer.mean.schedule"] == "every step"
    layout = back.extra["layout"]
    assert [c.title for c in layout.category] == ["trackdiag/mean"]
    assert [ch.title for ch in layout.category[0].chart] == ["mean"]
