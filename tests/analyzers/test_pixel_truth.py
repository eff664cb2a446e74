"""Pixel analyzer (target = unedited input) on generated brick-wall pairs with known truth.

Generators: :mod:`trackdiag.testing.pairs`. Thresholds were set on seeds 3, 5 and 21; these use others.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trackdiag.analyzers.base import StepInputs
from trackdiag.analyzers.pixel import PixelAnalyzer, PixelParams
from trackdiag.testing.pairs import UNEDITED_KINDS, make_pair
from trackdiag.verdicts import evaluate

SEED = 7700


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()


def _run(pair):
    an = PixelAnalyzer(PixelParams(target_is_input=True, map_max_side=1024, component_samples=1,
                                   max_components=50))
    maps = an.compute(StepInputs(step=0, pred=_t(pair.out), target=_t(pair.inp),
                                 mask=torch.from_numpy(pair.mask)[None, None]))
    host = {k: v.numpy() for k, v in maps.items()}
    res = an.summarize(0, host)
    return res, {v.code for v in evaluate("pixel", res.metrics)}


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.slow
def test_unedited_pairs_raise_no_leak_and_every_spill_is_found():
    rng = np.random.default_rng(SEED)
    false_leaks = boxes = 0
    for i in range(8):
        res, codes = _run(make_pair(rng, kind=UNEDITED_KINDS[i % 4]))
        false_leaks += "pixel_leak" in codes
        boxes += res.metrics["anomaly_count"] > 0
    assert false_leaks == 0 and boxes <= 1, (false_leaks, boxes)
    for i, spill in enumerate((4, 9, 16, 24)):
        res, codes = _run(make_pair(rng, edited=bool(i % 2), kind=UNEDITED_KINDS[i], spill_px=spill))
        leak = res.metrics["leak_px"]
        assert "pixel_leak" in codes and abs(leak - spill) <= 3, (spill, leak)


def test_leak_is_not_computed_in_the_training_loop():
    rng = np.random.default_rng(SEED + 1)
    pair = make_pair(rng, edited=True, spill_px=12)
    an = PixelAnalyzer()
    maps = an.compute(StepInputs(step=0, pred=_t(pair.out), target=_t(pair.inp),
                                 mask=torch.from_numpy(pair.mask)[None, None]))
    host = {k: v.numpy() for k, v in maps.items()}
    assert "leak_px" not in an.summarize(0, host).metrics


@pytest.mark.slow
def test_defect_boxes_in_unedited_pairs():
    """24 held-out pairs (every box kind with every unedited kind): the box is found with IoU >= 0.5 in
    >= 90 % (measured 23 of 24 here, 24 of 24 on seed 9000; 3 of 6 before the change was judged against
    the texture's own change); 12 clean pairs raise a box in <= 10 % (measured 0 of 12)."""
    rng = np.random.default_rng(SEED + 2)
    found = n = 0
    for i in range(24):
        kind = ("offset", "smear", "misplaced")[i % 3]
        pair = make_pair(rng, kind=UNEDITED_KINDS[(i // 3) % 4], box=kind)
        res, _ = _run(pair)
        n += 1
        found += any(_iou((a["x0"], a["y0"], a["x1"], a["y1"]), pair.boxes[0]) >= 0.5
                     for a in res.tables["anomalies"])
    clean = sum(_run(make_pair(rng, kind=UNEDITED_KINDS[i % 4]))[0].metrics["anomaly_count"] > 0
                for i in range(12))
    assert found / n >= 0.9 and clean <= 1, (found, n, clean)


@pytest.mark.slow
def test_row_and_column_stripes_in_unedited_pairs_with_their_axis():
    rng = np.random.default_rng(SEED + 3)
    hits = 0
    for i in range(6):
        axis = ("rows", "cols")[i % 2]
        pair = make_pair(rng, kind=UNEDITED_KINDS[i % 4], stripe=(axis, 0.08 + 0.04 * (i % 3)))
        res, codes = _run(pair)
        hits += any(a["axis"] == axis for a in res.tables["anomalies"]) and f"pixel_{axis}" in codes
    assert hits >= 5, hits


@pytest.mark.slow
@pytest.mark.xfail(reason="issue 18 item 5 not reached: inside an intended edit (a re-textured wall) the "
                          "lattice residual of the new texture does not separate a planted box from the "
                          "texture (the skimage brick is not periodic enough for the +-1/2-step median "
                          "prediction); measured on seed 515 x 12: boxes IoU>=0.5 0/12, stripes with the "
                          "right axis 2/12 (3 with the wrong one), clean edited pairs with boxes 3/12 (the "
                          "same before and after the texture-relative score of unedited pairs)",
                   strict=False)
def test_defects_and_stripes_inside_an_edit():
    """Recall of planted boxes and stripes inside a re-textured wall and false boxes on clean edits."""
    rng = np.random.default_rng(SEED + 4)
    boxes = stripes = clean = 0
    for i in range(12):
        pair = make_pair(rng, edited=True, box=("offset", "smear", "misplaced")[i % 3])
        res, _ = _run(pair)
        boxes += any(_iou((a["x0"], a["y0"], a["x1"], a["y1"]), pair.boxes[0]) >= 0.5
                     for a in res.tables["anomalies"])
        axis = ("rows", "cols")[i % 2]
        res, codes = _run(make_pair(rng, edited=True, stripe=(axis, 0.08 + 0.04 * (i % 3))))
        stripes += any(a["axis"] == axis for a in res.tables["anomalies"]) and f"pixel_{axis}" in codes
        clean += _run(make_pair(rng, edited=True))[0].metrics["anomaly_count"] > 0
    assert boxes >= 11 and stripes >= 11 and clean <= 1, (boxes, stripes, clean)
