"""The torch tiling metrics against the plain per-image numpy reference
(trackdiag/testing/numpy_reference.py),
which computes them the direct way: full 2-D FFTs, a zero-padded 2-D ACF sampled along f*, a full
periodic-plus-smooth decomposition, ring masks and a Python loop over the local windows."""

from __future__ import annotations

import math

import pytest
import torch

from tests.support.tiling_cases import one_thread
from trackdiag.analyzers.tiling import tiling_metrics
from trackdiag.testing import synth as S
from trackdiag.testing.numpy_reference import reference_metrics

#: key → relative tolerance (resize_* use other filters in the reference and are not compared).
KEYS = {"fundamental_period_px": 1e-3, "acf_first_peak_period_px": 0.01, "periodicity_score": 0.03,
        "E2f_over_Ef": 0.05, "axis_ratio_at_f": 0.01, "checkerboard_score": 0.02, "grid_s8": 0.02,
        "grid_s16": 0.02, "border_cross_index": 0.02, "shift_mse_dx1": 1e-3, "shift_mse_dy1": 1e-3,
        "band_base_period_px": 0.01}


@pytest.mark.parametrize("case", ["brick", "tiles_noise", "deconv", "frame", "masked"])
def test_torch_metrics_match_the_numpy_reference(case):
    g = torch.Generator().manual_seed(50)
    mask = None
    if case == "brick":
        img = S.brick(256, 320, period_px=13.0, angle_deg=1.0, generator=g)
    elif case == "tiles_noise":
        img = S.add_noise(S.tiles(256, 256, period_px=20.0, generator=g), 0.05, generator=g)
    elif case == "deconv":
        img = S.upsample_x2(S.tiles(128, 128, period_px=9.0, generator=g))
    elif case == "frame":
        img = S.nonperiodic_frame(S.grating(256, 256, period_px=16.0), generator=g)
    else:
        mask = S.ellipse_mask(256, 256, radii=(0.4, 0.4))
        img = S.composite(S.tiles(256, 256, period_px=15.0, generator=g), S.plaster(256, 256, generator=g),
                          mask)
    with one_thread():
        out = tiling_metrics(img[None, None], mask=mask, maps=False)
    ref = reference_metrics(img.numpy(), mask=mask.numpy().astype(float) if mask is not None else None)
    for key, tol in KEYS.items():
        a, b = float(out[key][0]), ref[key]
        if math.isnan(b):
            assert math.isnan(a), key
            continue
        assert a == pytest.approx(b, rel=tol, abs=1e-4), (key, a, b)


def test_every_key_is_per_sample_with_a_reference_of_one():
    """A batch of three outputs against one reference patch: every metric is a ``(3,)`` tensor, so that
    sample i's summary (``{k: v[i]}``) exists for each key, the reference's own keys included."""
    g = torch.Generator().manual_seed(21)
    walls = torch.stack([S.tiles(192, 192, period_px=16.0, generator=g) for _ in range(3)])[:, None]
    ref = S.tiles(128, 128, period_px=16.0, generator=g)[None]
    out = tiling_metrics(walls, ref=ref, maps=False)
    shapes = {k: tuple(v.shape) for k, v in out.items() if isinstance(v, torch.Tensor)}
    wrong = {k: s for k, s in shapes.items() if s != (3,)}
    assert not wrong
