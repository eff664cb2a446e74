"""Real photographs shipped with scikit-image (no download): brick, gravel and grass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.support.tiling_cases import one_thread
from trackdiag.analyzers.tiling import tiling_metrics


@pytest.fixture(scope="module")
def photos():
    from skimage import data

    imgs = {name: torch.from_numpy(getattr(data, name)()).float() / 255 for name in ("brick", "gravel",
                                                                                     "grass")}
    with one_thread():
        out = tiling_metrics(torch.stack(list(imgs.values()))[:, None])
    return {name: {k: (v[i] if not k.startswith("map/") else v) for k, v in out.items()}
            for i, name in enumerate(imgs)}


def test_brick_horizontal_period_is_about_37_px(photos):
    b = photos["brick"]
    assert float(b["fundamental_period_px"]) == pytest.approx(37.0, rel=0.05)
    assert float(b["acf_first_peak_period_px"]) == pytest.approx(37.0, rel=0.05)
    assert float(b["periodicity_score"]) >= 0.5


def test_brick_local_period_rises_steadily_from_top_to_bottom(photos):
    lp = photos["brick"]["map/local_period_px"].numpy()  # sample 0 is the brick
    rows = np.nanmean(lp, axis=1)
    assert np.isfinite(rows).all()
    # Steadily: a rank correlation with the row index near 1, and a clear overall rise.
    ranks = np.argsort(np.argsort(rows))
    rho = np.corrcoef(ranks, np.arange(len(rows)))[0, 1]
    assert rho > 0.85, rows
    assert rows[-1] > 1.15 * rows[0], rows
    assert float(photos["brick"]["local_period_trend_y"]) > 0.15


@pytest.mark.parametrize("name", ["gravel", "grass"])
def test_gravel_and_grass_are_aperiodic(photos, name):
    assert float(photos[name]["periodicity_score"]) < 0.3
    assert float(photos[name]["periodicity_score"]) < float(photos["brick"]["periodicity_score"]) - 0.3
