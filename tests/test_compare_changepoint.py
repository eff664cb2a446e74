"""trackdiag.changepoint against planted jumps on converging training curves: recall, location, interval
coverage and false alarms, measured over many random series."""

from __future__ import annotations

import numpy as np

from trackdiag.changepoint import SegmentCost, events, noise_sigma, pelt


def _curve(rng, n):
    """A saturating training curve (either direction) plus white noise; returns (values, sigma)."""
    base = 0.5 + 0.3 * np.exp(-np.arange(n) / rng.uniform(3, 15)) * rng.choice([-1, 1])
    sigma = rng.uniform(0.005, 0.03)
    return base + rng.normal(0, sigma, n), sigma


def test_jumps_on_converging_curves_are_found_and_clean_curves_raise_little():
    rng = np.random.default_rng(0)
    hits = covered = false_clean = false_jump = 0
    trials = 150
    for _ in range(trials):
        n = int(rng.integers(15, 60))
        x = np.arange(n) * 25.0
        y, sigma = _curve(rng, n)
        false_clean += len(events(y, x=x))
        k = int(rng.integers(4, n - 4))
        y2 = y.copy()
        y2[k:] += rng.uniform(8, 20) * sigma * rng.choice([-1, 1])
        found = events(y2, x=x)
        good = [e for e in found if abs(e.index - k) <= 1]
        hits += bool(good)
        covered += bool(good) and good[0].lo <= k <= good[0].hi
        false_jump += len(found) - len(good)
    print(f"\nrecall {hits / trials:.3f}, interval coverage {covered / max(hits, 1):.3f}, "
          f"false events: {false_clean} on {trials} clean curves, {false_jump} on {trials} with a jump")
    assert hits / trials >= 0.9
    assert covered / hits >= 0.9
    assert false_clean + false_jump <= 0.05 * 2 * trials


def test_pelt_is_exact_on_a_noise_free_staircase_and_lines_are_one_segment():
    y = np.r_[np.zeros(10), np.ones(10) * 3, np.ones(10)]
    cost = SegmentCost(np.arange(30.0), y)
    assert pelt(cost, 30, penalty=1.0) == [10, 20]
    line = 2.0 * np.arange(40.0) + 1.0
    assert pelt(SegmentCost(np.arange(40.0), line), 40, penalty=1e-6) == []
    assert noise_sigma(line) == 0.0
    rng = np.random.default_rng(1)
    assert abs(noise_sigma(rng.normal(0, 1.0, 2000) + 0.01 * np.arange(2000)) - 1.0) < 0.1
