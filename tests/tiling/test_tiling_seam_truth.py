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

from trackdiag.analyzers.tiling import SIDES, likely_causes, tiling_metrics
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
