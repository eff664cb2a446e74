"""f* and the ACF period on generated walls with known truth: within 3 % in at least 95 % of the cases.

Cases (``tiling_cases.make_case``): sizes 256–1024, square and not; periods log-uniform from 8 px to 1/6 of
the shorter side; sine gratings, thin-line gratings, tiles and running-bond brick; rotation up to 3°; random
masks with a different texture outside, illumination gradients, vignetting, noise and JPEG. One batched call
per size.
"""

from __future__ import annotations

import random

import pytest
import torch

from tests.support.tiling_cases import batch, make_case, one_thread
from trackdiag.analyzers.tiling import TilingParams, tiling_metrics
from trackdiag.functional.spectral import analyze_periodicity

#: (H, W, number of cases): 40 cases in all.
GRID = [(256, 256, 10), (256, 384, 8), (512, 512, 8), (384, 640, 8), (1024, 768, 6)]


@pytest.fixture(scope="module")
def results():
    rng = random.Random(20261122)
    gen = torch.Generator().manual_seed(20261122)
    rows = []
    with one_thread():
        for h, w, n in GRID:
            cases = [make_case(rng, h, w, gen) for _ in range(n)]
            x, m = batch(cases)
            est = analyze_periodicity(x, valid=m, max_period_frac=TilingParams().max_period_frac)
            for i, c in enumerate(cases):
                rows.append((c.desc, c.period, float(est.period_px[i]), float(est.acf_period_px[i]),
                             float(est.score[i])))
    return rows


def _report(rows, col):
    bad = [r for r in rows if not abs(r[col] / r[1] - 1) <= 0.03]
    return 1 - len(bad) / len(rows), "\n".join(f"{r[0]}: truth {r[1]:.2f}, got {r[col]:.2f}" for r in bad)


def test_fundamental_within_3_percent_in_95_percent_of_cases(results):
    ok, detail = _report(results, 2)
    assert ok >= 0.95, f"f* within 3 % in {ok:.0%} of {len(results)} cases; misses:\n{detail}"


def test_acf_period_within_3_percent_in_95_percent_of_cases(results):
    ok, detail = _report(results, 3)
    assert ok >= 0.95, f"ACF period within 3 % in {ok:.0%} of {len(results)} cases; misses:\n{detail}"


def test_every_generated_wall_is_recognised_as_periodic(results):
    scores = [r[4] for r in results]
    assert min(scores) >= 0.3, [r for r in results if r[4] < 0.3]


def test_the_analyzer_reports_the_same_period_in_bins_and_pixels():
    g = torch.Generator().manual_seed(5)
    with one_thread():
        from trackdiag.testing import synth as S

        x = S.to_rgb(S.tiles(256, 384, period_px=19.0, generator=g))[None]
        out = tiling_metrics(x, maps=False)
    s = float(out["fft_side_px"][0])
    assert s == 384
    assert float(out["fundamental_period_px"][0]) == pytest.approx(19.0, rel=0.01)
    assert float(out["fundamental_radius_bin"][0]) == pytest.approx(s / 19.0, rel=0.01)
    assert float(out["acf_first_peak_period_px"][0]) == pytest.approx(19.0, rel=0.01)
    assert float(out["acf_first_peak_radius_bin"][0]) == pytest.approx(s / 19.0, rel=0.01)
