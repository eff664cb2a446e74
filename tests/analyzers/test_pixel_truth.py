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


def _tally_box(counts: list[int], pair) -> None:
    """Add one boxed pair to ``[found, n, false]``: found = a box with IoU >= 0.5 with the planted one;
    false = the pair has a box that matches nothing."""
    res, _ = _run(pair)
    hits = [_iou((a["x0"], a["y0"], a["x1"], a["y1"]), pair.boxes[0]) >= 0.5 for a in res.tables["anomalies"]]
    counts[0] += any(hits)
    counts[1] += 1
    counts[2] += not all(hits)


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


def _on_band(anomaly, pair, slack: int = 2) -> bool:
    """The anomaly's lines overlap the planted band (± ``slack`` px)."""
    lo, hi = (anomaly["y0"], anomaly["y1"]) if pair.stripe_axis == "rows" else (anomaly["x0"], anomaly["x1"])
    a, b = pair.stripe_band
    return lo < b + slack and hi > a - slack


@pytest.fixture(scope="module")
def inside_an_edit() -> dict[str, list[int]]:
    """One held-out cohort of edited pairs (a re-textured wall), per kind ``[found, n, false]``:
    planted boxes (IoU >= 0.5; false = the pair has a box that matches nothing), row/column stripes of
    amplitude 0.08-0.16 (found = a band with the right axis on the planted lines and its verdict; false = a
    band on the other axis), clean edits (found = no anomaly at all; false = any box or band). The
    thresholds inside an edit were set on seeds 101 and 201-202 (``docs/pixel.md``); this is seed 7704."""
    rng = np.random.default_rng(SEED + 4)
    tally = {k: [0, 0, 0] for k in ("offset", "smear", "misplaced", "stripe", "clean")}
    for i in range(12):
        kind = ("offset", "smear", "misplaced")[i % 3]
        _tally_box(tally[kind], make_pair(rng, edited=True, box=kind))
        axis = ("rows", "cols")[i % 2]
        pair = make_pair(rng, edited=True, stripe=(axis, 0.08 + 0.04 * (i % 3)))
        res, codes = _run(pair)
        right = any(a["axis"] == axis and _on_band(a, pair) for a in res.tables["anomalies"])
        tally["stripe"][0] += right and f"pixel_{axis}" in codes
        tally["stripe"][1] += 1
        tally["stripe"][2] += any(a["axis"] not in (axis, "none") for a in res.tables["anomalies"])
        res, _ = _run(make_pair(rng, edited=True))
        tally["clean"][0] += res.metrics["anomaly_count"] == 0
        tally["clean"][1] += 1
        tally["clean"][2] += res.metrics["anomaly_count"] > 0
    return tally


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the cohort (36 pairs, ~5 s each on a loaded CPU) is built in this test's setup
def test_smears_and_stripe_axes_inside_an_edit(inside_an_edit):
    """Inside a re-textured wall: smeared boxes found (the texture's fine-scale energy,
    :func:`~trackdiag.functional.pixel_edit.sharpness_deficit`) and few stripe pairs with a band on the other
    axis. Measured on seed 7704: smears 3/4, stripe pairs with a band on the other axis 0/12 (1/12 before
    the band was measured beyond the lattice's expected line profile); on seed 9104 smears 4/4."""
    t = inside_an_edit
    assert t["stripe"][2] <= 2, t
    assert t["smear"][0] >= 3, t


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_stripes_inside_an_edit_on_their_lines(inside_an_edit):
    """Stripes of amplitude 0.08-0.16 with the right axis on the planted lines and the verdict >= 90 %.
    Seed 7704: 10/12 with the luminance's band level alone (a strict expected failure until the eighth
    sitting: column stripes on a mortar line running along them read 0.03-0.05 against their lattice
    translates); with the band's level in the colour plane orthogonal to the wall's mean colour
    (:func:`~trackdiag.functional.pixel_judge.edited_band_level`, set on seed 201) it passes (>= 11/12).
    Band step alone (``benchmarks/eval_pixel_edit.py``): calibration seeds 201-204 42/48 -> 47/48, fresh
    seeds 9504-9505 23/24 -> 24/24; clean edits with a band 0/48 and 0/24 before and after."""
    t = inside_an_edit
    assert t["stripe"][0] >= 11, t


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_clean_edits_raise_no_anomaly(inside_an_edit):
    """Clean edits (a re-textured wall, no defect) with any box or band <= 10 %. A band is measured beyond
    the lattice's expected line profile (:func:`~trackdiag.functional.pixel_edit.band_level`, ``kappa``
    0.15 set on seeds 201-202: 3/24 -> 0/24). Measured on seed 7704: 0/12 (before: 3/12, each a false band
    along a clean wall's sharpest mortar line)."""
    t = inside_an_edit
    assert t["clean"][2] <= 1, t


@pytest.fixture(scope="module")
def edit_boxes() -> dict[str, list[int]]:
    """Held-out edited pairs (a re-textured wall) with an offset or a misplaced box, 10 of each (seed
    7705), per kind ``[found, n, false]``: found = a box with IoU >= 0.5; false = the pair has a box that
    matches nothing. The phase thresholds (:mod:`trackdiag.functional.pixel_phase`) were set on seeds
    101-103 of a separate generator loop (``docs/pixel.md``)."""
    rng = np.random.default_rng(SEED + 5)
    tally = {k: [0, 0, 0] for k in ("offset", "misplaced")}
    for i in range(20):
        kind = ("offset", "misplaced")[i % 2]
        _tally_box(tally[kind], make_pair(rng, edited=True, box=kind))
    return tally


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_offset_and_misplaced_boxes_inside_an_edit_by_lattice_phase(edit_boxes):
    """Inside a re-textured wall, offset and misplaced boxes are found where the local phase of the
    lattice's fundamental departs from the wall's smooth phase field
    (:mod:`trackdiag.functional.pixel_phase`). Before: 0/4 and 0/4 on seed 7704. The floors were set
    below the calibration figures before this cohort was first run (seeds 101-102: offset 14/16, misplaced
    9/16). Measured here (seed 7705): offset 7/10, misplaced 8/10 with the half-departure contour and the
    subharmonic check (calibrated on seeds 201-204; 7/10 and 7/10 before); 5 of the 20 pairs also carry
    a box that matches nothing. With the departure of the mean departure phasor over 6 px (boxes at 52°,
    calibrated on seeds 201-204 by ``benchmarks/eval_pixel_edit.py``): offset 9/10, misplaced 8/10, 3 of
    20 pairs with a stray box; seed 7704's cohort unchanged (offset 3/4, misplaced 4/4, clean 0/12). With
    the weak boxes (40-52°) kept by their lattice-translate support
    (:mod:`trackdiag.functional.pixel_translate`, seventh sitting): unchanged here (9/10, 8/10, 3 stray);
    seed 7704 unchanged too (3/4, 4/4, smear 3/4, clean 0/12)."""
    t = edit_boxes
    assert t["offset"][0] >= 0.7 * t["offset"][1], t
    assert t["misplaced"][0] >= 0.4 * t["misplaced"][1], t


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_offset_and_misplaced_boxes_inside_an_edit(edit_boxes):
    """Issue 18 item 5 on this cohort (seed 7705): offset and misplaced boxes >= 90 %. A strict expected
    failure until the ninth sitting (offset 9/10, misplaced 8/10: copies in phase with their new place were
    not seen); with the copied grain (:mod:`trackdiag.functional.pixel_copy`) it passes (>= 9/10 each).
    The cohort is small: on more pairs (``benchmarks/eval_pixel_edit.py --step boxes``) misplaced boxes are
    36/48 on the calibration seeds 201-204 (27/48 before), 10/12 on seed 9311 (5/12), 9/12 on seed 9506
    (8/12), offsets unchanged (40/48, 9/12, 11/12), so the general rate is below 90 % (docs/pixel.md)."""
    t = edit_boxes
    assert t["offset"][0] >= 0.9 * t["offset"][1], t
    assert t["misplaced"][0] >= 0.9 * t["misplaced"][1], t
