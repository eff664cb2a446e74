"""Ground truth for the edge-strip and mask-seam estimators on realistic generated rooms
(trackdiag.testing.walls): a stripe 3–12 px wide on one side of the frame (offset, smear or fine stripes) and
a halo 2–5 px wide with a 6–15 % offset along the inside of the wall mask, against the same rooms without.

The limits (EDGE_WARN; SEAM_WARN and SEAM_T_WARN) were calibrated on the evaluation harness's rooms of seed 0
(docs/tiling.md); here a disjoint seed range checks recall and clean false alarms."""

from __future__ import annotations

from functools import cache
from typing import Any

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
def _room(cause: str | None, seed: int) -> Any:
    return make_scene(cause=cause, seed=seed, size=(512, 640), angled=bool(seed % 2))


@cache
def _run(cause: str | None, seed: int) -> tuple[dict[str, float], frozenset[str]]:
    sc = _room(cause, seed)
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


def test_a_blur_across_the_contour_is_no_seam_but_a_halo_still_is():
    """A blur wider than the skipped pixel (the generator's antialiased twins: a 2× antialiased downscale
    then a bilinear ×2, σ ≈ 1.3 px) mixes a darker or brighter floor, ceiling or furniture into the contour
    band, a consistent offset that decays ×2–3 per px (generated v8 seed 23: 4 of the 5 clean walls and
    twins with ``mask_seam``). The image's blur share, read on the same bands outside the mask, is taken
    out (``mirror``). Measured when written (rooms 300–315, 512×640, no period): blurred clean rooms 1
    alarm and 3 at t ≥ 1 without it, 0 and 0 with it; the sharp halos 8 of 16 found either way, their
    clean rooms 0 of 16."""
    from trackdiag.analyzers.tiling_limits import SEAM_T_WARN, SEAM_WARN
    from trackdiag.analyzers.tiling_summary import luminance
    from trackdiag.functional.seams import mask_seam_parts
    from trackdiag.testing.walls import artifacts

    def keys(img: np.ndarray, mask: np.ndarray, mirror: bool) -> tuple[float, float]:
        x = luminance(torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None])
        out = mask_seam_parts(x, torch.from_numpy(mask.astype(np.float32))[None], mirror=mirror)
        return float(out["mask_seam_score"][0]), float(out["mask_seam_t"][0])

    def fires(st: tuple[float, float]) -> bool:
        return st[0] >= SEAM_WARN and st[1] >= SEAM_T_WARN

    seeds = range(300, 316)
    blurred = {m: [] for m in (False, True)}
    sharp = {m: [] for m in (False, True)}
    halos = {m: [] for m in (False, True)}
    for seed in seeds:
        clean, seam = _room(None, seed), _room("mask_seam", seed)
        img = clean.pred.astype(np.float32) / 255.0
        soft = artifacts.bilinear_upsample(artifacts.antialiased_down(img, 2))
        for m in (False, True):
            blurred[m].append(keys(soft, clean.mask, m))
            sharp[m].append(keys(img, clean.mask, m))
            halos[m].append(keys(seam.pred.astype(np.float32) / 255.0, seam.mask, m))
    assert sum(map(fires, blurred[True])) == 0, blurred[True]
    high = {m: sum(t >= 1.0 for _, t in blurred[m]) for m in (False, True)}
    assert high[True] < high[False], high
    assert sum(map(fires, sharp[True])) == 0, sharp[True]
    found = {m: sum(map(fires, halos[m])) for m in (False, True)}
    assert found[True] >= max(found[False], 7), found


def test_frame_and_contour_codes_on_generated_walls(wall_records):
    """The clean false alarms of the frame and contour codes (``mask_seam``, ``edge_artifact``,
    ``border_cross``, ``harmonic_confusion``, ``grid_s8``/``grid_s16``) on generated v8 walls and the
    recall of their causes: seed 7, 512×512, 8 clean walls and the 4 antialiased twins of aliasing walls
    (the clean walls and twins the other truth tests of seed 7 draw too), 8 halos, 8 edge stripes and 8
    8-px grids. Measured when written (ninth sitting): clean walls and twins 0 of 12 with any of these
    codes, halos 1 of 8 (the halo recall is low on every sample: 11 of 50 on seed 22), edge stripes 7 of
    8, grids 8 of 8, no extra of these codes on the 24 artifact scenes. The floors are those less one
    (the one halo found is kept: a floor of 0 could not fail)."""
    from trackdiag.testing.walls.evaluate import sample_specs

    codes = {"mask_seam", "edge_artifact", "border_cross", "harmonic_confusion", "grid_s8", "grid_s16"}
    specs = [sp for sp in sample_specs(causes=("mask_seam", "edge_artifact", "grid_s8", "aliasing"),
                                       n_per_cause=8, seed=7, size=(512, 512))
             if sp.cause != "aliasing" or sp.twin]
    recs = wall_records(specs)
    assert not [r for r in recs if r.get("error")]

    def found(r: dict) -> set[str]:
        return {v["code"] for v in r["verdicts"] if v["severity"] in ("warn", "bad")} & codes

    clean = [r for r in recs if not r["truth"]["causes"]]
    assert len(clean) == 12
    alarms = [(r["id"], found(r)) for r in clean if found(r)]
    assert len(alarms) <= 1, alarms
    for cause, floor in (("mask_seam", 1), ("edge_artifact", 6), ("grid_s8", 7)):
        hits = [r for r in recs if r["truth"]["causes"] == [cause]]
        assert len(hits) == 8
        assert sum(cause in found(r) for r in hits) >= floor, (cause, [found(r) for r in hits])
    extra = [(r["id"], found(r) - set(r["truth"]["causes"])) for r in recs
             if r["truth"]["causes"] and found(r) - set(r["truth"]["causes"])]
    assert len(extra) <= 1, extra
