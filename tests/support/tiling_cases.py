"""Generated tiling test cases with known truth, shared by the tiling test modules."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from trackdiag.testing import synth as S


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread for the duration (the test machine's cores are shared; intra-op threads then
    spin-wait on each other and make elementwise ops many times slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@dataclass
class Case:
    image: torch.Tensor  # H×W in [0, 1]
    mask: torch.Tensor | None  # H×W bool or None
    period: float
    desc: str


KINDS = ("sine", "lines", "tiles", "brick")


def make_case(rng: random.Random, h: int, w: int, gen: torch.Generator) -> Case:
    """One wall: a random kind, period log-uniform in [8, min(H, W)/6], rotation ≤ 3°, and random
    degradations (mask with another texture outside, illumination gradient, vignetting, noise, JPEG)."""
    p = math.exp(rng.uniform(math.log(8), math.log(min(h, w) / 6)))
    kind = rng.choice(KINDS)
    ang = rng.uniform(-3, 3)
    if kind in ("sine", "lines"):
        x = S.grating(h, w, period_px=p, angle_deg=ang, profile=kind, phase=rng.random(),
                      contrast=rng.uniform(0.3, 0.8))
    elif kind == "tiles":
        x = S.tiles(h, w, period_px=p, angle_deg=ang, generator=gen)
    else:
        x = S.brick(h, w, period_px=p, angle_deg=ang, generator=gen)
    desc = [kind, f"p={p:.1f}", f"a={ang:.1f}"]
    mask = None
    if rng.random() < 0.35:
        mask = S.ellipse_mask(h, w, center=(rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)),
                              radii=(rng.uniform(0.3, 0.45), rng.uniform(0.3, 0.45)))
        other = (S.plaster(h, w, generator=gen) if rng.random() < 0.5 else
                 S.grating(h, w, period_px=p * rng.choice([0.6, 1.7]), angle_deg=rng.uniform(20, 70)))
        x = S.composite(x, other, mask)
        desc.append("mask+other outside")
    if rng.random() < 0.5:
        s = rng.uniform(0.2, 0.8)
        x = S.illumination_gradient(x, s, angle_deg=rng.uniform(0, 360))
        desc.append(f"gradient {s:.1f}")
    if rng.random() < 0.4:
        s = rng.uniform(0.2, 0.6)
        x = S.vignette(x, s)
        desc.append(f"vignette {s:.1f}")
    if rng.random() < 0.6:
        s = rng.choice([0.03, 0.08, 0.15])
        x = S.add_noise(x, s, generator=gen)
        desc.append(f"noise {s}")
    if rng.random() < 0.4:
        q = rng.choice([30, 50, 80])
        x = S.jpeg(x, q)
        desc.append(f"jpeg {q}")
    return Case(x, mask, p, f"{h}x{w} " + " ".join(desc))


def batch(cases: list[Case]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack same-size cases: ``N×H×W`` images and ``N×H×W`` masks (all-true where a case has none)."""
    x = torch.stack([c.image for c in cases])
    m = torch.stack([c.mask if c.mask is not None else torch.ones_like(c.image, dtype=torch.bool)
                     for c in cases])
    return x, m


def doubled_wall_summary(**kw: float) -> dict[str, float]:
    """The flat summary the tiling rules read for a wall doubled against a right reference (20 → 40 px),
    every key overridable."""
    return {"periodicity_score": 0.8, "ref_periodicity_score": 0.9, "ref_period_px": 20.0,
            "fundamental_period_px": 40.0, "period_ratio_to_ref": 2.0, "E2f_over_Ef": 0.3,
            "Ehalf_over_Ef": 3.0, "ref_measured_frac": 0.8, "ref_local_max_period_px": 60.0,
            "ref_doubled_frac": 0.9, "ref_halved_frac": 0.0, "ref_same_frac": 0.05,
            "alias_fine_peak_frac": 0.0, **kw}


def tiling_codes(summary: dict[str, float]) -> set[str]:
    """The codes of the tiling verdicts above ``info`` for a flat summary."""
    from trackdiag.analyzers.tiling import likely_causes

    return {v.code for v in likely_causes(summary) if v.severity != "info"}


def fine_mosaic(n: int, period: float, angle: float, seed: int) -> np.ndarray:
    """A sharp mosaic (thresholded sum of three cosines 60° apart: cells with thin joints, rich harmonics)
    of ``period`` px, at 3× the output's sampling: ``3n × 3n`` (stride it by 3 for an aliased render)."""
    rng = np.random.default_rng(seed)
    t = np.arange(3 * n, dtype=np.float64) / 3.0
    x, y = np.meshgrid(t, t)
    acc = np.zeros_like(x)
    for k in range(3):
        a = angle + k * np.pi / 3
        acc += np.cos(2 * np.pi * (x * np.cos(a) + y * np.sin(a)) / period + rng.uniform(0, 6.3))
    return (acc > -0.5).astype(np.float64) * 0.5 + 0.25
