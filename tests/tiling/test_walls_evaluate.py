"""The evaluation harness: scoring rules, the scene cache, and the run loop (fast; no diagnosis)."""

from __future__ import annotations

import numpy as np
import pytest

from trackdiag.testing.walls.evaluate import (
    SceneSpec,
    format_table,
    get_scene,
    load_scene,
    metrics,
    run,
    sample_specs,
)


def _rec(id_, causes, found, *, info=(), period=None, est=None, angled=False, label=None, context=()):
    verdicts = [{"code": c, "severity": "warn"} for c in found] + [{"code": c,
                                                                    "severity": "info"} for c in info]
    return {"id": id_, "truth": {"causes": list(causes), "period_px": period, "period_approx": False,
                                 "ref_period_px": None, "angled": angled, "perspective_label": label,
                                 "context": list(context), "texture": "tiles"},
            "verdicts": verdicts, "summary": {"fundamental_period_px": est}, "seconds": 0.1}


def test_metrics_follow_the_scoring_rules():
    recs = [
        _rec("a", ["checkerboard"], ["checkerboard"], period=20, est=20.5, label=False),   # exact, period ok
        _rec("b", ["checkerboard"], [], period=20, est=40.0, angled=True, label=True, info=["perspective"]),
        _rec("c", [], ["checkerboard"], period=10, est=10.2, label=False,
             info=["perspective"]),  # false alarm
        _rec("d", [], [], info=["aperiodic"], label=False,
             context=["aperiodic"]),          # info is not an alarm
        _rec("e", ["grid_s8"], ["grid_s8", "harmonic_confusion"], label=True, angled=True),  # not exact
    ]
    m = metrics(recs)
    cb = m["per_cause"]["checkerboard"]
    assert (cb["tp"], cb["fp"], cb["fn"]) == (1, 1, 1)
    assert cb["precision"] == pytest.approx(0.5) and cb["recall"] == pytest.approx(0.5)
    assert cb["f1"] == pytest.approx(0.5)
    assert m["per_cause"]["grid_s8"]["f1"] == pytest.approx(1.0)
    assert m["clean"]["n"] == 2 and m["clean"]["false_alarm_rate"] == pytest.approx(0.5)
    assert m["clean"]["codes"] == {"checkerboard": 1}
    assert m["exact_set_rate"] == pytest.approx(2 / 5)
    assert m["period"]["n"] == 3 and m["period"]["within"] == pytest.approx(2 / 3)
    assert m["period"]["fronto"] == pytest.approx(1.0) and m["period"]["angled"] == pytest.approx(0.0)
    assert m["perspective"]["rate_angled"] == pytest.approx(0.5)
    assert m["perspective"]["rate_fronto"] == pytest.approx(1 / 3)
    assert m["aperiodic"]["rate_aperiodic"] == pytest.approx(1.0)
    assert {x["id"] for x in m["misses"]} == {"b", "c", "e"}
    assert m["confusion"]["checkerboard"] == {"checkerboard": 1, "none": 1}
    assert m["targets"]["f1_checkerboard"] is False and m["targets"]["all_met"] is False
    table = format_table(m)
    assert "checkerboard" in table and "MISS" in table


def test_sample_specs_balance_causes_views_and_twins():
    specs = sample_specs(causes=("checkerboard", "bands_rows"), n_per_cause=4, seed=1)
    by = {}
    for s in specs:
        by.setdefault((s.cause, s.twin), []).append(s)
    assert len(by[("clean", False)]) == 4 and len(by[("bands_rows", False)]) == 4
    assert len(by[("checkerboard", True)]) == 2  # twins of every second checkerboard scene
    assert sum(s.angled for s in by[("bands_rows", False)]) == 2
    assert len({s.id for s in specs}) == len(specs)
    assert sample_specs(n_per_cause=2, seed=1) == sample_specs(n_per_cause=2, seed=1)


def test_cache_round_trip_is_exact(tmp_path):
    spec = SceneSpec(cause="grid_s8", seed=2, angled=True, kind="brick", size=(128, 160), with_ref=True)
    a = get_scene(spec, tmp_path)
    assert (tmp_path / f"{spec.id}.json").exists() and (tmp_path / f"{spec.id}_ref.png").exists()
    b = load_scene(tmp_path, spec.id)
    assert b is not None
    assert np.array_equal(a.pred, b.pred) and np.array_equal(a.mask, b.mask) and np.array_equal(a.ref, b.ref)
    assert a.truth == b.truth
    assert load_scene(tmp_path, "not_there") is None
    # the run loop reads the cache back (no diagnosis here: that is the slow harness test)
    recs = run([spec], cache=tmp_path, diagnose=False)
    assert recs[0]["id"] == spec.id and recs[0]["truth"]["causes"] == ["grid_s8"]
