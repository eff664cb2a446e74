"""Ground truth for the edge-strip and mask-seam estimators on realistic generated rooms
(trackdiag.testing.walls): a stripe 3–12 px wide on one side of the frame (offset, smear or fine stripes) and
a halo 2–5 px wide with a 6–15 % offset along the inside of the wall mask, against the same rooms without.

The limits (EDGE_WARN; SEAM_WARN and SEAM_T_WARN) were calibrated on the evaluation harness's rooms of seed 0
(docs/tiling.md); here a disjoint seed range checks recall and clean false alarms."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch

from trackdiag.analyzers.tiling import likely_causes, tiling_metrics
from trackdiag.analyzers.tiling_limits import EDGE_WARN
from trackdiag.functional.seams import SIDES
from trackdiag.testing.walls import make_scene

pytestmark = pytest.mark.slow

SEEDS = range(300, 308)


@cache
def _run(cause: str | None, seed: int) -> tuple[dict[str, float], frozenset[str]]:
    sc = make_scene(cause=cause, seed=seed, size=(512, 640), angled=bool(seed % 2))
    x = torch.from_numpy(np.ascontiguousarray(sc.pred)).float().div(255.0).permute(2, 0, 1)[None]
    m = torch.from_numpy(np.ascontiguousarray(sc.mask)).float()[None, None]
    out = tiling_metrics(x, mask=m, maps=False)
    summ = {k: float(v[0]) for k, v in out.items() if not k.startswith("map/")}
    codes = frozenset(v.code for v in likely_causes(summ) if v.severity in ("warn", "bad"))
    return summ, codes


def test_mask_seam_recall_and_false_alarms_on_rooms():
    seam = [_run("mask_seam", s) for s in SEEDS]
    clean = [_run(None, s) for s in SEEDS]
    # the halo raises the contour offset's consistency above the same room's clean version on most rooms
    higher = sum(a[0]["mask_seam_t"] > b[0]["mask_seam_t"] for a, b in zip(seam, clean, strict=True))
    assert higher >= 6, [(a[0]["mask_seam_t"], b[0]["mask_seam_t"]) for a, b in zip(seam, clean, strict=True)]
    assert sum("mask_seam" in c for _, c in seam) >= 2
    assert sum("mask_seam" in c for _, c in clean) <= 1


def test_edge_artifact_recall_side_and_false_alarms_on_rooms():
    edge = [_run("edge_artifact", s) for s in SEEDS]
    clean = [_run(None, s) for s in SEEDS]
    found = [s for s, c in edge if "edge_artifact" in c]
    assert len(found) >= 3, [s["edge_score"] for s, _ in edge]  # held-out seeds: 3 of 8 at the limit 9
    # the side named is the side the stripe is on: the largest side score is well above the others
    for s in found:
        vals = sorted(s[f"edge_{sd}"] for sd in SIDES)
        assert vals[-1] >= 2 * vals[-2]
    assert sum("edge_artifact" in c for _, c in clean) <= 1, [s["edge_score"] for s, _ in clean]


def _tiles(period: int, phase: int, seed: int, size: int = 512) -> torch.Tensor:
    """``1×size×size`` square tiles (per-tile level, 2-px dark grout lines, grain) whose first horizontal and
    vertical grout lines sit ``phase`` px from the top and left sides."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    ty, tx = (yy - phase) // period, (xx - phase) // period
    levels = g.uniform(0.45, 0.65, size=(size // period + 3, size // period + 3))
    img = levels[ty + 1, tx + 1]
    grout = (((yy - phase) % period) < 2) | (((xx - phase) % period) < 2)
    img = np.where(grout, 0.25, img) + g.normal(0.0, 0.02, size=img.shape)
    return torch.from_numpy(img.astype(np.float32))[None]


def test_edge_score_ignores_grout_recurring_further_in_and_finds_an_edge_stripe():
    """A grout line 3-12 px from a side recurs one period further in: no edge artifact; a stripe of the
    same kind (a dark 4-px band 5 px in) that does not recur is one (before the recurrence test, the grout
    lines read as edge stripes)."""
    from trackdiag.functional.seams import edge_scores

    cases = [(p, ph, s) for s, (p, ph) in enumerate([(24, 5), (32, 8), (40, 4), (56, 10), (72, 6), (90, 7)])]
    clean, striped = [], []
    for period, phase, seed in cases:
        x = _tiles(period, phase, seed)
        clean.append(float(edge_scores(x, torch.ones_like(x))["edge_score"]))
        y = x.clone()
        y[:, 5:9, :] -= 0.3  # a dark stripe along the whole top side that the wall does not repeat
        sc = edge_scores(y, torch.ones_like(y))
        striped.append((float(sc["edge_score"]), SIDES[int(sc["edge_side"])]))
    assert sum(v >= EDGE_WARN for v in clean) == 0, clean
    assert all(v >= EDGE_WARN and side == "top" for v, side in striped), striped


def test_tiles_laid_from_the_contour_are_no_seam_but_a_halo_on_them_raises_the_offset():
    """A tiled wall is laid from its edges: with tiles larger than the bands, the contour band sits on the
    grout and the band 6-10 px in on the tiles, the same offset all along the contour. The reference band
    one row spacing deeper (``period_px``) has the contour band's phase: no seam on any of these walls (the
    fixed 6-10 px band called 3 of 7 a seam, t 1.6-10); a 10 % halo along the contour raises the offset on
    most of them (6 of 7 when written)."""
    from trackdiag.analyzers.tiling_limits import SEAM_T_WARN, SEAM_WARN
    from trackdiag.functional.seams import _erode, mask_seam_parts

    def fires(d: dict) -> bool:
        return bool(d["mask_seam_score"][0] >= SEAM_WARN and d["mask_seam_t"][0] >= SEAM_T_WARN)

    old_alarms, new_alarms, raised = 0, 0, 0
    periods = (12, 14, 16, 18, 20, 24, 26)
    for period in periods:
        x = _tiles(period, 3, period)
        v = torch.zeros_like(x)
        y0, y1 = 3 + period, 3 + period * ((512 - 3) // period - 1)  # the wall starts on a grout line
        v[:, y0:y1, y0:y1] = 1.0
        x = torch.where(v > 0, x, torch.full_like(x, 0.8))
        halo = x * (1 + 0.1 * v * (1 - _erode(v, 3)))
        p = torch.tensor([float(period)])
        old_alarms += fires(mask_seam_parts(x, v))
        clean = mask_seam_parts(x, v, period_px=p)
        new_alarms += fires(clean)
        raised += float(mask_seam_parts(halo, v, period_px=p)["mask_seam_score"][0]) > float(
            clean["mask_seam_score"][0])
    assert new_alarms == 0 and old_alarms >= 3, (old_alarms, new_alarms)
    assert raised >= 5, raised


def test_fine_tiles_laid_from_the_contour_use_a_multiple_of_the_period():
    """Rows finer than the 6–10 px reference band (brick courses of 7–9 px laid from the floor line) put the
    contour band and that band on different parts of the row: the reference is read a multiple of the period
    deeper (``seams.phase_shift``: 2·P or 3·P in 10–28 px). No seam on these walls; a 10 % halo raises the
    offset on most of them."""
    from trackdiag.analyzers.tiling_limits import SEAM_T_WARN, SEAM_WARN
    from trackdiag.functional.seams import _erode, mask_seam_parts, phase_shift

    d, use = phase_shift(torch.tensor([8.2, 12.5, 30.0, float("nan")]), lo=10.0)
    assert d.tolist()[:2] == [16, 25] and use.tolist() == [True, True, False, False]

    def fires(out: dict) -> bool:
        return bool(out["mask_seam_score"][0] >= SEAM_WARN and out["mask_seam_t"][0] >= SEAM_T_WARN)

    alarms, raised, lower = 0, 0, 0
    periods = (7, 8, 9)
    for period in periods:
        x = _tiles(period, 3, 40 + period)
        v = torch.zeros_like(x)
        y0, y1 = 3 + 2 * period, 3 + period * ((512 - 3) // period - 2)  # the wall starts on a grout line
        v[:, y0:y1, y0:y1] = 1.0
        x = torch.where(v > 0, x, torch.full_like(x, 0.8))
        halo = x * (1 + 0.1 * v * (1 - _erode(v, 3)))
        p = torch.tensor([float(period)])
        clean = mask_seam_parts(x, v, period_px=p)
        alarms += fires(clean)
        # the same phase of the rows: a smaller offset than against the 6-10 px band (8 px: 0.10 -> 0.02)
        lower += float(clean["mask_seam_score"][0]) < float(mask_seam_parts(x, v)["mask_seam_score"][0])
        raised += float(mask_seam_parts(halo, v, period_px=p)["mask_seam_score"][0]) > float(
            clean["mask_seam_score"][0])
    assert alarms == 0 and lower == len(periods), (alarms, lower)
    assert raised >= 2, raised
