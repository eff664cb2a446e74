"""The reference-comparison causes (issue 11): the reference patch's period, where the output departs from it,
and the rules of ``period_doubled`` / ``period_halved`` / ``aliasing``.

* The reference's lattice period on clean, sharp 256-px patches of the generator's materials (the patches the
  walls generator gives as ``ref``): thin grout/joint lines put 10⁴-prominent high harmonics over a 10²-
  prominent fundamental, which read planks at 1/3 and tiles at 1/2 of their period before the divisor search
  stopped requiring the relative prominence.
* :func:`~trackdiag.analyzers.tiling.ref_departure` on known local-period maps.
* The rules: a doubled zone that took over the global lattice is not a doubled wall (the map sees the
  reference's period over most of the wall); a map that sees the doubling stands for a weak lattice score;
  a period the map cannot measure leaves the global ratio in charge; clear aliasing is not also a doubling.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.support.tiling_cases import doubled_wall_summary, tiling_codes
from trackdiag.analyzers.bands import LocalPeriodMap
from trackdiag.analyzers.tiling import luminance
from trackdiag.analyzers.tiling_summary import ref_departure
from trackdiag.functional.spectral import analyze_periodicity
from trackdiag.testing.walls import artifacts
from trackdiag.testing.walls.materials import make_material


def _ref_patch(name: str, period: float, seed: int) -> tuple[torch.Tensor, float]:
    """A 256×256 reference patch as the walls generator makes it (2× supersampled, light grain, no JPEG),
    and the material's period."""
    rng = np.random.default_rng(seed)
    mat = make_material(name, rng, period)
    t = (np.arange(512, dtype=np.float32) + 0.5) / 2
    u, v = np.meshgrid(t + float(rng.uniform(0, 300)), t + float(rng.uniform(0, 300)))
    img = artifacts.add_grain(artifacts.area_down(mat.render(u, v), 2), rng, 0.004)
    img = np.round(np.clip(img, 0, 1) * 255) / 255
    truth = mat.period if mat.period is not None else period
    return torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None], truth


@pytest.mark.slow
def test_reference_period_on_sharp_patches():
    """Planks, tiles and penny references at 12–40 px: the lattice period within 5 % on ≥ 30 of 36 (measured
    when written: 31; main before this round 30, without the harmonic-comb check 29: a bump of per-plank
    colour at a third of the plank line was taken for the fundamental). On the references of the evaluation
    sample (eval_tiling --causes period_doubled,period_halved,aliasing --n-per-cause 20, 65 periodic
    references) the share within 5 % went from 77 % to 92 %. The misses left: planks at 2× (two planks'
    colour repeat), tiles at ½ or at a colour hump."""
    ok, rows = 0, []
    periods = (12.5, 17.0, 22.6, 27.3, 31.0, 34.3, 36.0, 40.0, 14.2, 19.7, 25.0, 29.0)
    cases = [(name, p, seed) for name in ("planks", "tiles", "penny") for seed, p in enumerate(periods)]
    for name, period, seed in cases:
        img, truth = _ref_patch(name, period, seed)
        per = analyze_periodicity(luminance(img), taper=True, max_period_frac=0.34, lattice=True)
        got = float(per.period_px[0])
        rows.append((name, truth, round(got, 2)))
        ok += abs(got / truth - 1) <= 0.05
    assert ok >= 30, [r for r in rows if abs(r[2] / r[1] - 1) > 0.05]


def _map(periods: list[list[float]]) -> LocalPeriodMap:
    p = torch.tensor(periods, dtype=torch.float32)[None]
    h, w = p.shape[-2:]
    return LocalPeriodMap(p, torch.ones_like(p), torch.arange(h, dtype=torch.float32),
                          torch.arange(w, dtype=torch.float32), 128, 43)


def test_ref_departure_classes_windows_by_their_ratio():
    nan = float("nan")
    lp = _map([[20.0, 20.0, 40.0, 41.0], [10.0, 19.0, nan, 80.0]])
    out = ref_departure(lp, torch.tensor([20.0]))
    # measured 7 of 8; doubled 40, 41; halved 10; same 20, 20, 19; 80 (4x) departs but is neither
    assert float(out["ref_measured_frac"][0]) == pytest.approx(7 / 8)
    assert float(out["ref_doubled_frac"][0]) == pytest.approx(2 / 7)
    assert float(out["ref_halved_frac"][0]) == pytest.approx(1 / 7)
    assert float(out["ref_same_frac"][0]) == pytest.approx(3 / 7)
    empty = ref_departure(_map([[nan, nan]]), torch.tensor([20.0]))
    assert math.isnan(float(empty["ref_same_frac"][0])) and float(empty["ref_measured_frac"][0]) == 0.0


_summary = doubled_wall_summary
_codes = tiling_codes


def test_period_rules_need_the_departure_over_most_of_the_wall():
    assert "period_doubled" in _codes(_summary())
    # a doubled zone that took over the global lattice: the map sees the reference's period on 70 %
    assert "period_doubled" not in _codes(_summary(ref_doubled_frac=0.3, ref_same_frac=0.7))
    # ... unless the output's period does not fit 2.5 times in a window (the map cannot see it)
    assert "period_doubled" in _codes(_summary(ref_doubled_frac=0.0, ref_same_frac=0.7,
                                               ref_local_max_period_px=30.0))
    # halving, symmetric
    halved = _summary(fundamental_period_px=10.0, period_ratio_to_ref=0.5, E2f_over_Ef=5.0, Ehalf_over_Ef=0.2,
                      ref_doubled_frac=0.0, ref_halved_frac=0.9)
    assert "period_halved" in _codes(halved) and "period_doubled" not in _codes(halved)
    assert "period_halved" not in _codes({**halved, "ref_halved_frac": 0.2, "ref_same_frac": 0.75})


def test_a_map_that_sees_the_doubling_stands_for_a_weak_lattice_score():
    weak = _summary(periodicity_score=0.02)
    assert "period_doubled" in _codes(weak)
    assert "period_doubled" not in _codes({**weak, "ref_doubled_frac": 0.4, "ref_same_frac": 0.3})


def test_clear_aliasing_is_not_also_a_doubling():
    assert _codes(_summary(alias_fine_peak_frac=0.3)) == {"aliasing"}
    # a marginal fold leaves the period verdict
    assert {"aliasing", "period_doubled"} <= _codes(_summary(alias_fine_peak_frac=0.11))
