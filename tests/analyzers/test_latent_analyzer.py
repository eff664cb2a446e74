"""Latent analyzer on latents with known truth: moments, stripes, periodicity, drift, NaN, resume."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F

from trackdiag.analyzers.base import StepInputs
from trackdiag.analyzers.latent import (
    LatentAnalyzer,
    LatentParams,
    channel_drift,
    channel_moments,
    pool_moments,
    stripe_energy,
)

B, C, H, W = 2, 4, 64, 64


def smooth_field(gen: torch.Generator, b: int = B, c: int = C, size: int = H, corr: float = 3.0
                 ) -> torch.Tensor:
    """Unit-variance Gaussian field with a correlation length of ``corr`` px (like an image latent)."""
    x = torch.randn(b, c, size, size, generator=gen)
    r = int(3 * corr)
    k = torch.exp(-(torch.arange(-r, r + 1.0) ** 2) / (2 * corr ** 2))
    k = (k / k.sum())
    x = F.conv2d(F.pad(x.reshape(b * c, 1, size, size), (r, r, r, r), mode="circular"),
                 (k[:, None] * k[None, :])[None, None]).reshape(b, c, size, size)
    return (x - x.mean(dim=(-2, -1), keepdim=True)) / x.std(dim=(-2, -1), keepdim=True)


def clean_batch(seed: int, names: tuple[str, ...] = ("in", "out"), size: int = H) -> dict[str, torch.Tensor]:
    """z_t = sqrt(a) z0 + sqrt(1-a) eps with a smooth z0, and a UNet output that predicts eps well."""
    gen = torch.Generator().manual_seed(seed)
    z0 = smooth_field(gen, size=size)
    eps = torch.randn(B, C, size, size, generator=gen)
    a = 0.5
    out = {"in": math.sqrt(a) * z0 + math.sqrt(1 - a) * eps,
           "out": eps + 0.1 * torch.randn(B, C, size, size, generator=gen)}
    return {k: v for k, v in out.items() if k in names}


def run(analyzer: LatentAnalyzer, latents: dict[str, torch.Tensor], step: int):
    host = {k: v.numpy() for k, v in analyzer.compute(StepInputs(step=step, latents=latents)).items()}
    return analyzer.summarize(step, host)


def flags(res, name: str = "out") -> set[str]:
    text = res.texts[f"{name}/flags"]
    return set() if text == "none" else set(text.split(","))


def test_moments_match_scipy_with_nan_and_mixed_channels():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 16, 16, generator=gen) * torch.tensor([1.0, 3.0, 0.5])[None, :, None, None]
    x[:, 1] += 2.0
    x[:, 2] = torch.exp(x[:, 2])                    # skewed, heavy-tailed
    x[0, 0, 3, 4] = float("nan")
    x[2, 2, 0, 0] = float("inf")
    m = {k: v.numpy() for k, v in channel_moments(x).items()}
    stats = pool_moments(m["n"], m["mean"], m["m2"], m["m3"], m["m4"])
    flat = x.permute(1, 0, 2, 3).reshape(3, -1).double().numpy()
    for c in range(3):
        v = flat[c][np.isfinite(flat[c])]
        np.testing.assert_allclose([stats.mean[c], stats.std[c], stats.skew[c], stats.kurtosis[c]],
                                   [v.mean(), v.std(), scipy.stats.skew(v), scipy.stats.kurtosis(v)],
                                   rtol=2e-4, atol=2e-5)
    # pooling is exact when the batch is split (as a DDP gather does) and concatenated again
    halves = [{k: v.numpy() for k, v in channel_moments(x[i:i + 2]).items()} for i in (0, 2)]
    joined = pool_moments(*(np.concatenate([h[k] for h in halves]) for k in ("n", "mean", "m2", "m3", "m4")))
    np.testing.assert_allclose(joined.kurtosis, stats.kurtosis, rtol=1e-6)


def test_stripe_energy_separates_stripes_from_clean_latents():
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(2, 1, 64, 64, generator=gen)
    rows, cols = stripe_energy(noise)
    assert torch.allclose(rows, torch.full_like(rows, 1 / 64), rtol=0.5)   # white noise: about 1/w
    bands = torch.tensor([1.0, 1.0, -1.0, -1.0]).repeat(16)                 # 4-row period, amplitude 1
    horiz = noise + bands[None, None, :, None]
    rows, cols = stripe_energy(horiz)
    assert (rows > 0.45).all() and (cols < 0.05).all()
    rows, cols = stripe_energy(noise + bands[None, None, None, :])
    assert (cols > 0.45).all() and (rows < 0.05).all()


@pytest.mark.slow  # 9 s CPU, 43 s wall on a loaded 2-core box
def test_clean_latents_raise_no_flag():
    an = LatentAnalyzer()
    for step in range(15):
        res = run(an, clean_batch(step), step)
        assert flags(res, "in") == set() and flags(res, "out") == set(), (step, res.texts)
        assert res.metrics["flag_count"] == 0
    m = res.metrics
    assert abs(m["out/std_mean"] - 1.0) < 0.05 and abs(m["out/c0/kurtosis"]) < 0.2
    assert m["out/periodic_channels"] == 0 and m["out/stripe_rows_max"] < 0.05
    assert m["out/stripe_excess"] < 0.025


def test_planted_stripes_are_flagged_with_their_axis():
    an = LatentAnalyzer()
    lat = clean_batch(3)
    # aperiodic row offsets (a 4-row square wave is a periodic pattern and is reported as such)
    bands = torch.randn(H, generator=torch.Generator().manual_seed(33))
    lat["out"][:, 2] += 0.8 * bands[None, :, None]                          # horizontal stripes in channel 2
    res = run(an, lat, 0)
    assert flags(res) == {"stripes"} and flags(res, "in") == set()   # stripes are not also "periodic"
    ev = [e for e in res.tables["events"] if e["kind"] == "stripes"]
    assert ev[0]["channel"] == 2 and "rows" in ev[0]["detail"]
    assert res.metrics["out/c2/stripe_rows"] > 0.3 > res.metrics["out/c2/stripe_cols"]
    assert res.metrics["out/c2/stripe_rows_excess"] > 0.1
    lat = clean_batch(4)
    lat["in"][:, 0] += 0.8 * bands[None, None, :]                    # vertical stripes before the UNet
    res = run(LatentAnalyzer(), lat, 0)
    assert "stripes" in flags(res, "in") and "columns" in res.tables["events"][0]["detail"]


def test_planted_periodicity_is_found_at_its_period():
    lat = clean_batch(5)
    yy, xx = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                            indexing="ij")
    # a tile lattice with an 8 px cell: cos·cos = two diagonal waves, so the radial period is 8/sqrt(2);
    # its rows and columns all have mean 0, so it is periodic without being stripes
    grid = 2 * torch.cos(2 * math.pi * xx / 8) * torch.cos(2 * math.pi * yy / 8)
    lat["out"][:, 1] = 0.5 * lat["out"][:, 1] + grid
    res = run(LatentAnalyzer(), lat, 0)
    assert flags(res) == {"periodic"} and flags(res, "in") == set()
    # the cell period of the 8-px tile lattice (its peaks are the diagonal waves at 8/sqrt(2))
    assert res.metrics["out/c1/period_px"] == pytest.approx(8.0, rel=0.05)
    assert res.metrics["out/c1/periodic_excess"] > 1.0
    assert res.metrics["out/c0/periodic_excess"] < 1.0   # clean channel
    assert res.metrics["out/periodic_channels"] == 1


@pytest.mark.slow  # 6 s CPU, 26 s wall on a loaded 2-core box
def test_drift_is_flagged_when_the_distribution_jumps():
    an = LatentAnalyzer()
    drift_steps = []
    for step in range(28):
        lat = clean_batch(100 + step, size=32)                            # drift does not need 64×64
        if step >= 18:
            lat["out"] = lat["out"] * 1.3 + 0.3                             # the UNet output shifts
        res = run(an, lat, step)
        if "drift" in flags(res):
            drift_steps.append(step)
        assert "drift" not in flags(res, "in")
    assert drift_steps and 18 <= drift_steps[0] <= 19 and min(drift_steps) >= 18, drift_steps
    assert channel_drift(np.zeros(4), np.ones(4), np.zeros(4), np.ones(4)) == 0.0
    assert channel_drift(np.ones(4), np.ones(4), np.zeros(4), np.ones(4)) == pytest.approx(1.0)


def test_nonfinite_values_are_counted_and_flagged():
    lat = clean_batch(6)
    flat = lat["out"].view(-1)
    flat[:: 100] = float("nan")                                              # 1 % of the values
    res = run(LatentAnalyzer(), lat, 0)
    assert "nonfinite" in flags(res)
    assert res.metrics["out/nonfinite_share"] == pytest.approx(0.01, abs=1e-3)
    assert math.isfinite(res.metrics["out/c0/std"])                          # the rest is still measured


@pytest.mark.slow  # 4.6 s CPU, 18 s wall on a loaded 2-core box
def test_drift_state_survives_resume():
    whole, first = LatentAnalyzer(), LatentAnalyzer()
    seq = [clean_batch(200 + i, names=("out",), size=32) for i in range(20)]
    for lat in seq[14:]:
        lat["out"] = lat["out"] + 0.5
    ref = [run(whole, lat, i).metrics["out/drift_p"] for i, lat in enumerate(seq)]
    for i, lat in enumerate(seq[:10]):
        run(first, lat, i)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    second = LatentAnalyzer()
    second.load_state_dict(torch.load(buf, weights_only=True))
    got = [run(second, lat, 10 + i).metrics["out/drift_p"] for i, lat in enumerate(seq[10:])]
    np.testing.assert_allclose(got, ref[10:], rtol=1e-12)
    assert min(ref[14:16]) < 1e-6 < min(ref[9:14])  # the shift is in the resumed part


def test_compute_outputs_and_render():
    an = LatentAnalyzer()
    lat = clean_batch(7)
    out = an.compute(StepInputs(step=0, latents=lat))
    assert out["out/mean"].shape == (B, C) and out["out/nonfinite"].shape == (B,)
    assert out["map/out"].shape == (C, H, W) and out["out/stripe_rows_excess"].shape == (B, C)
    assert out["out/prom"].shape == (B, C + 1, H, W)
    res = an.summarize(0, {k: v.numpy() for k, v in out.items()})
    figs = an.render(res)
    assert {"in/channels", "out/channels", "out/channel_stats"} <= set(figs)
    assert all(f.ndim == 3 and f.dtype == np.uint8 for f in figs.values())


def test_conf_yaml_lists_every_param():
    from dataclasses import fields
    from pathlib import Path

    from trackdiag.config import build_component
    from trackdiag.confstore import group_node

    path = Path(__file__).resolve().parents[2] / "conf" / "analyzer" / "latent.yaml"
    assert path.read_text().splitlines()[0] == "# @package analyzer.latent"
    node = group_node("analyzer", "latent")  # the file selects the Params defaults (trackdiag.confstore)
    assert set(node) - {"_target_"} == {f.name for f in fields(LatentParams)}
    analyzer = build_component(node, allow_external=False, what="analyzer.latent")
    assert isinstance(analyzer, LatentAnalyzer) and analyzer.params == LatentParams()
