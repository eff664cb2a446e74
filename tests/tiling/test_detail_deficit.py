"""ref_detail_deficit_db (trackdiag.functional.detail) on real photographs: a blur moves it clearly and
monotonically, while what a blur does not do — another crop of the same texture, a change of contrast —
moves it little."""

from __future__ import annotations

import numpy as np
import pytest
import torch

skdata = pytest.importorskip("skimage.data")

TEXTURES = ("brick", "grass", "gravel")
SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def _gray(name: str) -> torch.Tensor:
    img = np.asarray(getattr(skdata, name)(), dtype=np.float32)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=-1)
    return torch.from_numpy(img / 255.0)


def _spec(x: torch.Tensor):
    """Spectrum of ``N×H×W`` luminance as the tiling analyzer takes it (detrended, Hann-windowed)."""
    from trackdiag.functional.spectral import prepare, spectrum

    sig, w = prepare(x)
    return spectrum(sig * w)


def _deficit(out: torch.Tensor, ref: torch.Tensor) -> np.ndarray:
    from trackdiag.functional.detail import detail_deficit_db

    return detail_deficit_db(_spec(out), _spec(ref[None]), pixels=out.shape[-2] * out.shape[-1]).numpy()


def _crops(name: str, size: int = 128):
    """Four crops of the top half of the photo (the outputs) and one of its bottom rows (the reference)."""
    img = _gray(name)
    h, w = img.shape
    tops = np.linspace(0, h // 2 - size, 2).astype(int)
    lefts = np.linspace(0, w - size, 2).astype(int)
    crops = torch.stack([img[t:t + size, l_:l_ + size] for t in tops for l_ in lefts])
    return crops, img[h - size:, :size]


def test_a_blur_raises_the_deficit_monotonically_and_far_beyond_another_crop_of_the_texture():
    from trackdiag.testing.ckpt_store import blur

    table, sharp_max, blurred_min = {}, 0.0, np.inf
    for name in TEXTURES:
        crops, ref = _crops(name)
        rows = np.stack([_deficit(blur(crops[:, None], s)[:, 0], ref) for s in SIGMAS])  # S×N
        table[name] = rows.mean(axis=1)
        assert np.all(np.diff(rows, axis=0) >= -1e-4), (name, rows)  # never falls as the blur grows
        sharp_max = max(sharp_max, float(rows[0].max()))
        blurred_min = min(blurred_min, float(rows[SIGMAS.index(1.5)].min()))
    print("\nmean deficit (dB) by blur σ " + str(SIGMAS) + ": "
          + "; ".join(f"{k} [{', '.join(f'{x:.2f}' for x in v)}]" for k, v in table.items()))
    # another sharp crop of the same texture is far closer to the reference than any 1.5-px blur of it
    assert blurred_min > 2.0 * sharp_max + 3.0, (sharp_max, blurred_min)


def test_the_reference_itself_contrast_and_brightness_leave_it_at_zero_and_a_flat_output_at_the_cap():
    from trackdiag.functional.detail import FLOOR_DB

    crops, ref = _crops("gravel")
    assert np.allclose(_deficit(ref[None], ref), 0.0, atol=1e-4)
    assert np.allclose(_deficit(0.3 + 0.5 * ref[None], ref), 0.0, atol=1e-3)  # contrast-free
    flat = torch.full((1, 128, 128), 0.5)
    np.testing.assert_allclose(_deficit(flat, ref), FLOOR_DB, rtol=1e-3)


def test_the_tiling_analyzer_logs_it_with_a_reference_only():
    from trackdiag.analyzers.tiling import tiling_metrics
    from trackdiag.metricspec import spec
    from trackdiag.testing.ckpt_store import blur, brick_crops

    sharp, ref = brick_crops(2, 128)
    out = tiling_metrics(torch.cat([sharp, blur(sharp, 2.0)]), ref=ref[0], maps=False)
    d = out["ref_detail_deficit_db"].tolist()
    assert d[2] > d[0] + 5 and d[3] > d[1] + 5, d
    assert torch.isnan(tiling_metrics(sharp, maps=False)["ref_detail_deficit_db"]).all()
    s = spec("tiling", "ref_detail_deficit_db")
    assert s is not None and s.goal == "min" and s.unit == "dB"
