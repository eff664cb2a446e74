"""The scan's numpy period estimate (trackdiag.dataset.period) against the torch one it ports
(trackdiag.functional.spectral.dominant_period): the same periods and scores on a cohort of walls (bricks,
tiles, gratings at several periods and angles, plaster and noise without a period), with and without a wall
mask, on square, non-square and odd sizes, with NaN pixels, and lit unevenly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trackdiag.dataset.period import dominant_period as numpy_period
from trackdiag.functional.spectral import dominant_period as torch_period
from trackdiag.testing import synth


def _cohort(h: int, w: int, seed: int) -> np.ndarray:
    """``N×H×W`` float32: periodic walls of many periods/angles/kinds, then aperiodic surfaces."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    walls = []
    for i, period in enumerate((5.0, 7.5, 11.0, 16.0, 23.0, 37.0)):
        ang = float(rng.uniform(-20, 20))
        if i % 3 == 0:
            walls.append(synth.brick(h, w, period_px=period, angle_deg=ang, generator=g))
        elif i % 3 == 1:
            walls.append(synth.tiles(h, w, period_px=period, angle_deg=ang, generator=g))
        else:
            walls.append(synth.grating(h, w, period_px=period, angle_deg=ang))
    walls.append(synth.plaster(h, w, generator=g))
    walls.append(torch.rand(h, w, generator=g))
    x = torch.stack([t.reshape(h, w) for t in walls])
    x = synth.illumination_gradient(x[:, None], 0.4)[:, 0]
    return (x + 0.03 * torch.randn(x.shape, generator=g)).numpy().astype(np.float32)


def _band_masks(n: int, h: int, w: int, seed: int) -> np.ndarray:
    """A wall band between a ceiling and a floor (rows differ per image), and a hole in it."""
    rng = np.random.default_rng(seed)
    m = np.zeros((n, h, w), bool)
    for i in range(n):
        top, bot = int(rng.uniform(0.05, 0.3) * h), int(rng.uniform(0.7, 0.95) * h)
        m[i, top:bot] = True
        cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.2, 0.8) * w
        yy, xx = np.mgrid[0:h, 0:w]
        m[i] &= (yy - cy) ** 2 + (xx - cx) ** 2 > (0.08 * min(h, w)) ** 2
    return m


def _agree(x: np.ndarray, valid: np.ndarray | None) -> tuple[int, list[str]]:
    """How many images agree (period within 0.1 % or both NaN, score within 1e-3), and the disagreements."""
    ours = numpy_period(x, valid=valid)
    ref = torch_period(torch.from_numpy(x), valid=None if valid is None else torch.from_numpy(valid))
    rp, rs = ref.period_px.double().numpy(), ref.score.double().numpy()
    bad = []
    for i in range(x.shape[0]):
        p, q = float(ours.period_px[i]), float(rp[i])
        same_p = (math.isnan(p) and math.isnan(q)) or abs(p - q) <= 1e-3 * abs(q)
        if not (same_p and abs(float(ours.score[i]) - float(rs[i])) <= 1e-3):
            bad.append(f"image {i}: period {p:.3f} vs {q:.3f}, score {ours.score[i]:.4f} vs {rs[i]:.4f}")
    return x.shape[0] - len(bad), bad


@pytest.mark.parametrize("h,w", [(128, 128), (256, 256), (96, 160), (131, 117)])
@pytest.mark.parametrize("masked", [False, True])
def test_the_numpy_port_gives_the_torch_estimate(h, w, masked):
    torch.set_num_threads(1)
    x = _cohort(h, w, seed=h + w)
    valid = _band_masks(x.shape[0], h, w, seed=h * w) if masked else None
    n_ok, bad = _agree(x, valid)
    assert n_ok == x.shape[0], bad
    # The cohort is not trivial: the periodic walls score high, the aperiodic ones low.
    score = numpy_period(x, valid=valid).score
    assert (score[:6] >= 0.5).sum() >= 4 and (score[6:] < 0.5).all(), score


def test_nan_pixels_and_an_empty_wall_are_handled_like_the_torch_version():
    x = _cohort(128, 128, seed=3)
    x[0, 40:50, 40:90] = np.nan  # a hole of non-finite pixels in a wall
    valid = np.ones(x.shape, bool)
    valid[1] = False  # no wall at all: no period
    n_ok, bad = _agree(x, valid)
    assert n_ok == x.shape[0], bad
    assert math.isnan(float(numpy_period(x, valid=valid).period_px[1]))
    n_ok, bad = _agree(x, None)
    assert n_ok == x.shape[0], bad


def test_a_scan_worker_never_imports_torch(tmp_path):
    """The pool's forkserver preloads only what the worker needs; the spectral tier of a walled image then
    runs without torch (its import was a fifth of a 500-image scan's CPU)."""
    import subprocess
    import sys

    from PIL import Image

    x = _cohort(128, 128, seed=5)[0]
    Image.fromarray((np.clip(x, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "wall.png")
    mask = _band_masks(1, 128, 128, seed=5)[0]
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "wall_mask.png")
    code = (
        "import sys, importlib\n"
        "from trackdiag.dataset.executors import _PRELOAD\n"
        "for m in _PRELOAD: importlib.import_module(m)\n"
        "from trackdiag.dataset.records import ScanParams\n"
        "from trackdiag.dataset.worker import Task, analyze_images\n"
        f"t = Task({str(tmp_path / 'wall.png')!r}, {str(tmp_path / 'wall_mask.png')!r}, True, ScanParams())\n"
        "rec = analyze_images([t])[0]\n"
        "assert rec.error is None and rec.period_px == rec.period_px, rec\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=120)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_the_port_helpers_match_the_numpy_operations_they_replace():
    """The cost cuts inside the port compute the same numbers as the plain numpy operations: the row-wise
    cumulative sum, the top-k with ties broken by index (a stable sort), the 2× linear upsampling."""
    from trackdiag.dataset.period import _cumsum_rows, _top, _upsample2

    rng = np.random.default_rng(3)
    a = rng.random((3, 17, 11), dtype=np.float32)
    assert np.array_equal(_cumsum_rows(a), np.cumsum(a, axis=1, dtype=np.float32))
    values = rng.integers(0, 6, (4, 300)).astype(np.float32)  # many ties
    got, idx = _top(values, 16)
    ref = np.argsort(-values, axis=1, kind="stable")[:, :16]
    assert np.array_equal(idx, ref) and np.array_equal(got, np.take_along_axis(values, ref, axis=1))
    x = rng.random((2, 5, 7), dtype=np.float32)
    for axis in (1, 2):
        up = _upsample2(x, axis)
        lo = np.take(x, np.maximum(np.arange(x.shape[axis]) - 1, 0), axis=axis)
        hi = np.take(x, np.minimum(np.arange(x.shape[axis]) + 1, x.shape[axis] - 1), axis=axis)
        sl = [slice(None)] * 3
        sl[axis] = slice(0, None, 2)
        assert np.allclose(up[tuple(sl)], 0.75 * x + 0.25 * lo, atol=1e-7)
        sl[axis] = slice(1, None, 2)
        assert np.allclose(up[tuple(sl)], 0.75 * x + 0.25 * hi, atol=1e-7)
