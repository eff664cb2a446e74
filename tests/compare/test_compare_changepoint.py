"""trackdiag.functional.changepoint against planted jumps on converging training curves: recall, location,
interval
coverage and false alarms, measured over many random series."""

from __future__ import annotations

import numpy as np

from trackdiag.functional.changepoint import SegmentCost, events, noise_sigma, pelt


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


def _improving(rng, n, sign):
    """A run that gets better all along: a saturating curve in the good direction (``sign`` +1: higher is
    better), sometimes with a sudden improvement (a learning-rate drop), plus white noise."""
    t = np.arange(n, dtype=np.float64)
    sigma = rng.uniform(0.005, 0.03)
    y = 0.3 * (1.0 - np.exp(-t / rng.uniform(2, n / 2)))
    if rng.random() < 0.5:
        y[int(rng.integers(4, n - 4)):] += rng.uniform(5, 20) * sigma
    return sign * y + rng.normal(0, sigma, n), sigma


def test_a_run_that_steadily_improves_has_no_onset_and_a_planted_worsening_is_found():
    """"Since when" on many random runs that only get better (a monotone trend in the good direction,
    steep or slow, with or without a sudden improvement): no onset. The same runs with a worsening planted
    at a random checkpoint: the onset within one checkpoint of it."""
    from trackdiag.compare.data import RunData, Series
    from trackdiag.compare.since import onsets

    rng = np.random.default_rng(3)
    trials, every = 120, 50
    false_onsets = hits = 0
    for i in range(trials):
        n = int(rng.integers(15, 40))
        steps = np.arange(n, dtype=np.int64) * every
        sign = float(rng.choice([-1.0, 1.0]))
        y, sigma = _improving(rng, n, sign)
        k = int(rng.integers(4, n - 3))
        bad = y.copy()
        bad[k:] -= sign * rng.uniform(8, 20) * sigma
        runs = [RunData(name=f"good{i}", run_id=f"g{i}", source="test", metrics={"m": Series(steps, y)}),
                RunData(name=f"bad{i}", run_id=f"b{i}", source="test", metrics={"m": Series(steps, bad)})]
        found = onsets(runs, columns=[("m", sign, None)], checkpoints={"g": steps, "b": steps})
        false_onsets += sum(o["run"] == f"good{i}" for o in found)
        hits += any(o["run"] == f"bad{i}" and abs(o["since"] - k * every) <= every for o in found)
    print(f"\nimproving runs: {false_onsets} false onsets in {trials}; planted worsening found within one "
          f"checkpoint in {hits}/{trials}")
    assert false_onsets <= 0.02 * trials
    assert hits >= 0.85 * trials
