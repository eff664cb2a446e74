"""compare_ckpts in tracker mode: runs logged by trackdiag itself with known trajectories, read back from the
real embedded MLflow store and from local run folders; exact table values, deltas, flags and ranking."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

import trackdiag
from trackdiag.compare.data import MissingMetricError, MissingRunError, Series, series_from_points, values_at
from trackdiag.compare.ranking import average_ranks
from trackdiag.compare.sources import read_mlflow
from trackdiag.compare_ckpts import compare
from trackdiag.errors import ConfigError

BS, E2F, ONLY_A = "trackdiag/tiling/band_score", "trackdiag/tiling/E2f_over_Ef", "trackdiag/probe/only_a"
EVIL = "<script>alert('x')</script> $lr$"
EVIL_TAG = "<img src=x onerror=alert(1)>"

# Known trajectories: (steps, band_score, E2f_over_Ef). run-c logs 10 steps after the others.
TRAJ = {
    "run-a": ([100, 200, 300, 400, 500], [0.50, 0.40, 0.30, 0.25, 0.20], [1.5, 1.4, 1.3, 1.2, 1.1]),
    "run-b": ([100, 200, 300, 400, 500], [0.50, 0.20, 0.30, 0.45, 0.60], [1.5, 1.0, 1.2, 1.3, 1.6]),
    EVIL: ([110, 210, 310, 410, 510], [0.45, 0.35, 0.33, 0.32, 0.31], [1.4, 1.35, 1.3, 1.25, 1.2]),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three runs logged through trackdiag sessions into one sqlite store and local run folders."""
    root = tmp_path_factory.mktemp("cmp")
    uri = f"sqlite:///{root / 'mlruns.db'}"
    ids = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # the experiment's artifact location (./mlruns) is fixed at its creation: keep it here
        for name, (steps, bs, e2f) in TRAJ.items():
            ids[name] = _log_run(name, steps, bs, e2f, uri=uri, root=root)
    return {"root": root, "uri": uri, "ids": ids}


def _log_run(name, steps, bs, e2f, *, uri, root):
    s = trackdiag.init(
        config={"run": {"tags": {"note": EVIL_TAG}}},
        overrides=["analyzer=[]"],
        backend=["mlflow", "local"],
        tracking_uri=uri,
        experiment="cmp",
        run_name=name,
        out_dir=str(root / "local"),
        on_error="raise",
    )
    for k, (step, b, e) in enumerate(zip(steps, bs, e2f, strict=True)):
        values = {BS: b, E2F: e}
        if name == "run-a":
            values[ONLY_A] = float(k)
        s.log_scalars(values, step=step)
    assert s.finish().clean
    return s.backends[0].run_id


def run_compare(store, tmp_path, *extra, publish="none", outputs=False):
    """A comparison of the store's runs; without ``outputs`` only the CSV is written (fast). These tests pin
    the mean-rank method against the baseline and the last step unless they say otherwise (the tiered
    default is tested in test_compare_server.py and test_compare_truth.py)."""
    pinned = [o for o in ("steps=last", "ranking.method=mean_rank")
              if not any(e.startswith(o.split("=")[0] + "=") for e in extra)]
    overrides = [*pinned,
        f"mlflow.tracking_uri={store['uri']}",
        "mlflow.experiment=cmp",
        f"output.dir={tmp_path / 'out'}",
        f"publish.to={publish}",
        "metrics=[band_score,E2f_over_Ef]",
        *extra,
    ]
    if not outputs:
        overrides += ["output.formats=[csv]", "output.plots=false"]
    return compare(overrides=overrides)


def rows_by_label(c):
    return {(c.run[i], int(c.step[i])): i for i in range(len(c))}


# -- building blocks ----------------------------------------------------------------------------------
def test_values_at_nearest_step_within_tolerance():
    s = Series(np.array([100, 200, 300]), np.array([1.0, 2.0, 3.0]))
    vals, logged = values_at(s, np.array([100, 149, 150, 151, 260, 420, 0]), tolerance=50)
    np.testing.assert_array_equal(logged, [100, 100, 100, 200, 300, -1, -1])  # 150: tie → the earlier step
    np.testing.assert_array_equal(vals[:5], [1.0, 1.0, 1.0, 2.0, 3.0])
    assert np.isnan(vals[5:]).all()
    vals, logged = values_at(s, np.array([100, 101]), tolerance=0)
    assert logged.tolist() == [100, -1]


def test_series_from_points_keeps_the_last_point_at_a_step():
    s = series_from_points([300, 100, 100, 200], [3.0, 1.0, 9.0, 2.0], order=[5, 1, 2, 3])
    assert s.steps.tolist() == [100, 200, 300] and s.values.tolist() == [9.0, 2.0, 3.0]


def test_average_ranks_match_scipy():
    from scipy.stats import rankdata

    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (40, 5)).astype(float)
    x[rng.random(x.shape) < 0.2] = np.inf
    np.testing.assert_allclose(average_ranks(x), rankdata(x, axis=0))


# -- the table --------------------------------------------------------------------------------------------
def test_table_values_deltas_flags_and_ranking_are_exact(store, tmp_path):
    res = run_compare(store, tmp_path, "steps=[100,300,500]", "baseline=run-a@100")
    c = res.comparison
    assert [s.label for s in c.specs] == ["tiling/band_score", "tiling/E2f_over_Ef"]
    idx = rows_by_label(c)
    assert len(c) == 9
    for name, (steps, bs, e2f) in TRAJ.items():
        for k, checkpoint in zip((0, 2, 4), (100, 300, 500), strict=True):
            i = idx[(name, checkpoint)]
            assert c.values[i].tolist() == [bs[k], e2f[k]]  # exact: the logged floats
            assert c.logged[i].tolist() == [steps[k], steps[k]]  # run-c: nearest step, 10 away
            np.testing.assert_allclose(c.delta[i], [bs[k] - 0.5, e2f[k] - 1.5], atol=1e-12)
    # best: band_score 0.20 and E2f 1.1, both run-a @ 500
    assert np.flatnonzero(c.best[:, 0]).tolist() == [idx[("run-a", 500)]]
    assert np.flatnonzero(c.best[:, 1]).tolist() == [idx[("run-a", 500)]]
    # regressions (rel 0.1): band_score tolerance 0.05, E2f 0.15; only run-b @ 500's band_score (+0.10)
    assert c.tolerance.tolist() == pytest.approx([0.05, 0.15])
    assert list(zip(*np.nonzero(c.regressed), strict=True)) == [(idx[("run-b", 500)], 0)]
    assert not c.over_limit.any()
    # mean ranks computed by hand (ties share the average rank)
    expected_score = {
        ("run-a", 100): 7.5,
        ("run-a", 300): 3.5,
        ("run-a", 500): 1.0,
        ("run-b", 100): 7.5,
        ("run-b", 300): 2.5,
        ("run-b", 500): 9.0,
        (EVIL, 100): 6.0,
        (EVIL, 300): 4.75,
        (EVIL, 500): 3.25,
    }
    for key, score in expected_score.items():
        assert c.score[idx[key]] == pytest.approx(score), key
    order = [
        ("run-a", 500),
        ("run-b", 300),
        (EVIL, 500),
        ("run-a", 300),
        (EVIL, 300),
        (EVIL, 100),
        ("run-a", 100),
        ("run-b", 100),
        ("run-b", 500),
    ]
    assert [int(c.rank[idx[k]]) for k in order] == list(range(1, 10))
    assert res.best == "run-a @ step 500"
    # the reasons in words
    top = c.reasons[idx[("run-a", 500)]]
    assert top.startswith("#1 run-a @ step 500: mean rank 1.00 over 2 ranked metrics among 9 checkpoints")
    assert "best of all in tiling/band_score (0.2), tiling/E2f_over_Ef (1.1)" in top
    assert "ahead of run-b @ step 300 (score 2.50)" in top
    worst = c.reasons[idx[("run-b", 500)]]
    assert "tiling/band_score regressed to 0.6 vs baseline 0.5 (+0.1, tolerance 0.05)" in worst
    assert c.verdict[0].startswith("Best checkpoint: run-a @ step 500")
    assert c.onsets == [
        {
            "run": "run-b",
            "metric": "tiling/band_score",
            "base": "tiling/band_score",
            "since": 500,
            "checkpoint": "500",
            "value": 0.6,
            "baseline": 0.5,
        }
    ]
    assert any(
        line.startswith("Got worse: run-b: tiling/band_score has been flagged since step 500")
        for line in c.verdict
    )


#: The expected order of the nine rows under the band_score limit (and, identically, lexicographically).
RANKED_WITH_LIMIT = [("run-a", 500), ("run-b", 300), ("run-a", 300), (EVIL, 500), (EVIL, 300), (EVIL, 100),
                     ("run-a", 100), ("run-b", 100), ("run-b", 500)]


def test_limits_flag_rows_and_flagged_rows_rank_last(store, tmp_path):
    c = run_compare(store, tmp_path, "steps=[100,300,500]", "limits.band_score=0.305").comparison
    idx = rows_by_label(c)
    flagged = {k for k, i in idx.items() if c.over_limit[i, 0]}
    assert flagged == {("run-a", 100), ("run-b", 100), ("run-b", 500), (EVIL, 100), (EVIL, 300), (EVIL, 500)}
    assert [int(c.rank[idx[k]]) for k in RANKED_WITH_LIMIT] == list(range(1, 10))
    assert "tiling/band_score 0.31 is above its limit 0.305" in c.reasons[idx[(EVIL, 500)]]
    # without flagged_last the mean rank alone decides: run-c @ 500 (3.25) is ahead of run-a @ 300 (3.5)
    c2 = run_compare(
        store, tmp_path, "steps=[100,300,500]", "limits.band_score=0.305", "ranking.flagged_last=false"
    ).comparison
    assert c2.rank[idx[(EVIL, 500)]] == 3 and c2.rank[idx[("run-a", 300)]] == 4


def test_lexicographic_ranking_and_goal_max(store, tmp_path):
    c = run_compare(store, tmp_path, "steps=[100,300,500]", "ranking.method=lexicographic").comparison
    idx = rows_by_label(c)
    assert [int(c.rank[idx[k]]) for k in RANKED_WITH_LIMIT] == list(range(1, 10))
    # Higher-is-better flips the best mark and the direction of a regression.
    c = run_compare(store, tmp_path, "steps=[100,300,500]", "goals.band_score=max").comparison
    assert np.flatnonzero(c.best[:, 0]).tolist() == [idx[("run-b", 500)]]
    regressed = {k for k, i in idx.items() if c.regressed[i, 0]}
    assert regressed == {("run-a", 300), ("run-a", 500), ("run-b", 300), (EVIL, 300), (EVIL, 500)}


def test_steps_last_all_baseline_forms_and_weights(store, tmp_path):
    c = run_compare(store, tmp_path, "steps=last").comparison
    assert [(r, int(s)) for r, s in zip(c.run, c.step, strict=True)] == [("run-a", 500), ("run-b", 500),
                                                                         (EVIL, 510)]
    c = run_compare(store, tmp_path, "steps=all", "baseline=run-b").comparison
    assert len(c) == 15 and (c.run[c.baseline], int(c.step[c.baseline])) == ("run-b", 500)
    c = run_compare(store, tmp_path, "steps=all", "baseline=run-b@200").comparison
    assert c.values[c.baseline].tolist() == [0.2, 1.0]
    # an id works as well as a name; weight 0 leaves a column out of the ranking
    c = run_compare(
        store, tmp_path, "steps=[500]", f"baseline={store['ids']['run-b']}@last", "weights.E2f_over_Ef=0"
    ).comparison
    assert c.run[c.baseline] == "run-b"
    assert c.rank.tolist() == [1, 3, 2]  # by band_score alone: 0.20, 0.60 (the baseline), 0.31
    with pytest.raises(ConfigError, match="no run named 'nope'"):
        run_compare(store, tmp_path, "baseline=nope@100")
    with pytest.raises(ConfigError, match="has no checkpoint '123'"):
        run_compare(store, tmp_path, "baseline=run-a@123")


def test_runs_by_name_and_id_and_default_metrics(store, tmp_path):
    c = run_compare(store, tmp_path, f"runs=[run-b,{store['ids']['run-a']}]", "metrics=[]").comparison
    assert c.run == ["run-b", "run-a"]
    # metrics=[]: the key metrics that every run logged, in key_metrics order; the others are noted
    assert [s.label for s in c.specs] == ["tiling/band_score", "tiling/E2f_over_Ef"]
    assert any("logged by only some runs, left out: ['probe/only_a']" in n for n in c.notes)
    assert any(
        n.startswith("key metrics not logged by every run, left out: ['ref_detail_deficit_db', "
                     "'pixel/diff_rmse'")
        and "'band_max_run'" in n for n in c.notes
    )
    c = run_compare(store, tmp_path, "metrics=[]", "key_metrics=[nothing_like_this]").comparison
    assert [s.label for s in c.specs] == ["tiling/E2f_over_Ef", "tiling/band_score"]  # every common one


# -- missing things -------------------------------------------------------------------------------------
def test_missing_runs_give_clear_messages(store, tmp_path):
    with pytest.raises(
        MissingRunError, match=r"\['0123456789abcdef0123456789abcdef'\] not found.*Runs there: .*run-a"
    ):
        run_compare(store, tmp_path, "runs=[0123456789abcdef0123456789abcdef]")
    with pytest.raises(
        MissingRunError, match=r"\['run-z'\] not found by id, nor by name in experiment 'cmp'"
    ):
        run_compare(store, tmp_path, "runs=[run-a,run-z]")
    with pytest.raises(MissingRunError, match="experiment 'nope' does not exist.*experiments: .*cmp"):
        run_compare(store, tmp_path, "mlflow.experiment=nope")
    missing_db = tmp_path / "nothing.db"
    with pytest.raises(MissingRunError, match="no MLflow store at"):
        run_compare(store, tmp_path, f"mlflow.tracking_uri=sqlite:///{missing_db}")
    assert not missing_db.exists()  # and none was created
    with pytest.raises(MissingRunError, match="local run folder"):
        compare(overrides=["backend=local", f"runs=[{tmp_path / 'none'}]", "publish.to=none"])


def test_missing_metrics_and_steps_give_clear_messages(store, tmp_path):
    with pytest.raises(
        MissingMetricError, match=r"metric 'band_scor' was not logged.*Did you mean \['tiling/band_score'\]"
    ):
        run_compare(store, tmp_path, "metrics=[band_scor]")
    with pytest.raises(
        MissingMetricError, match=r"run 'run-b' \(mlflow \w+\) never logged \['probe/only_a'\]"
    ):
        run_compare(store, tmp_path, "metrics=[band_score,only_a]")
    c = run_compare(
        store, tmp_path, "metrics=[band_score,only_a]", "on_missing=skip", "steps=[100]"
    ).comparison
    assert np.isnan(c.values[1, 1]) and c.values[0, 1] == 0.0
    assert any("never logged ['probe/only_a']" in n for n in c.notes)
    with pytest.raises(
        MissingMetricError, match=r"within ±5 steps of step\(s\) \[100\] \(its last logged step is 510\)"
    ):
        run_compare(store, tmp_path, "steps=[100]", "tolerance=5")
    c = run_compare(store, tmp_path, "steps=[100]", "tolerance=5", "on_missing=skip").comparison
    assert c.run == ["run-a", "run-b"] and any("within ±5 steps" in n for n in c.notes)
    with pytest.raises(MissingMetricError, match=r"'nope' was not logged.*\(named in weights\)"):
        run_compare(store, tmp_path, "weights.nope=2")


# -- one bulk read per metric key -----------------------------------------------------------------------
def test_one_query_for_every_run_and_key_and_same_result_as_per_key_reads(store, monkeypatch):
    from trackdiag.compare import mlflow_bulk

    readers = []
    orig = mlflow_bulk.bulk_reader

    def spy(uri):
        readers.append(orig(uri))
        return readers[-1]

    monkeypatch.setattr("trackdiag.io.logreaders.mlflow.bulk_reader", spy)
    fast = read_mlflow(tracking_uri=store["uri"], experiment="cmp", select=lambda keys: [BS, E2F])
    assert len(readers) == 1 and readers[0].calls == 1  # three runs, two keys: one SELECT
    slow = read_mlflow(
        tracking_uri=store["uri"], experiment="cmp", select=lambda keys: [BS, E2F], batched=False
    )
    for a, b in zip(fast, slow, strict=True):
        assert a.name == b.name and a.metrics.keys() == b.metrics.keys()
        for key in a.metrics:
            np.testing.assert_array_equal(a.metrics[key].steps, b.metrics[key].steps)
            np.testing.assert_array_equal(a.metrics[key].values, b.metrics[key].values)


# -- outputs, escaping, the tracker ---------------------------------------------------------------------
def test_report_folder_and_escaping(store, tmp_path):
    res = run_compare(store, tmp_path, "steps=[100,300,500]", "baseline=run-a@100", outputs=True)
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} >= {
        "comparison.csv",
        "comparison.json",
        "comparison.md",
        "index.html",
        "comparison.pdf",
        "plots",
    }
    assert (out / "comparison.pdf").read_bytes()[:5] == b"%PDF-"
    assert len(list((out / "plots").glob("trend_*.png"))) == 2
    with open(out / "comparison.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    b500 = next(r for r in rows if r["run"] == "run-b" and r["step"] == "500")
    assert float(b500["tiling/band_score"]) == 0.6 and float(
        b500["tiling/band_score delta"]
    ) == pytest.approx(0.1)
    assert b500["flagged"] == "tiling/band_score" and b500["rank"] == "9"
    data = json.loads((out / "comparison.json").read_text())
    assert data["ranking"][0]["run"] == "run-a" and data["ranking"][0]["step"] == 500
    assert data["rows"][2]["cells"]["tiling/band_score"]["best"] is True
    assert (
        data["runs"][2]["name"] == EVIL and data["runs"][2]["tags"]["note"] == EVIL_TAG
    )  # raw in data formats
    page = (out / "index.html").read_text()
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "src='plots/" not in page and page.count("data:image/png;base64,") == 2  # self-contained
    assert "class='bad'" in page and "class='best'" in page
    md = (out / "comparison.md").read_text()
    assert "<script" not in md and "<img" not in md and "&lt;script&gt;" in md
    assert res.comparison.run.count(EVIL) == 3


def test_comparison_run_in_mlflow_and_later_comparisons_skip_it(store, tmp_path):
    res = run_compare(store, tmp_path, "steps=[100,300,500]", publish="auto", outputs=True)
    assert list(res.published) == ["mlflow"]
    client = MlflowClient(store["uri"])
    # the comparison goes to its own experiment, never among the training runs
    assert not client.search_runs([client.get_experiment_by_name("cmp").experiment_id],
                                  "tags.`trackdiag.kind` = 'comparison'")
    exp = client.get_experiment_by_name("cmp-comparisons")
    (run,) = client.search_runs([exp.experiment_id], "tags.`trackdiag.kind` = 'comparison'")
    assert run.info.run_name == "comparison" and run.info.status == "FINISHED"
    assert run.data.tags["trackdiag.compare.best"] == "run-a @ step 500"
    assert run.data.metrics["trackdiag/compare/best/tiling/band_score"] == 0.2
    assert run.data.params["compare.steps"] == "[100, 300, 500]"
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "comparison")}
    assert {"comparison/index.html", "comparison/comparison.csv", "comparison/comparison.pdf"} <= arts
    key = "tables/trackdiag/compare/comparison.json"
    local = client.download_artifacts(run.info.run_id, key, str(tmp_path))
    table = json.loads(Path(local).read_text())
    cols = table["columns"]
    rows = [dict(zip(cols, r, strict=True)) for r in table["data"]]
    assert [r["rank"] for r in rows if r["run"] == "run-a"] == [7, 4, 1]
    # the comparison run is not compared next time; a rerun replaces it
    c = run_compare(store, tmp_path, "steps=last").comparison
    assert "comparison" not in c.run and len(c) == 3
    run_compare(store, tmp_path, "steps=[100,300,500]", publish="auto")
    (again,) = client.search_runs([exp.experiment_id], "tags.`trackdiag.kind` = 'comparison'")
    assert again.info.run_id != run.info.run_id


def test_local_run_folders_give_the_same_table(store, tmp_path):
    local = store["root"] / "local"
    res = compare(
        overrides=[
            "backend=local",
            f"runs=[{local}/run-*,{local}/_script*/script*]",
            "steps=[100,300,500]",
            f"output.dir={tmp_path / 'out'}",
            "publish.to=none",
            "metrics=[band_score,E2f_over_Ef]",
            "output.formats=[csv]",
            "output.plots=false",
        ]
    )
    mres = run_compare(store, tmp_path, "steps=[100,300,500]")
    np.testing.assert_array_equal(res.comparison.values, mres.comparison.values)
    np.testing.assert_array_equal(res.comparison.rank, mres.comparison.rank)


# -- the command line -------------------------------------------------------------------------------------
@pytest.mark.slow  # the CLI in a subprocess: 24 s on a loaded 2-core box
def test_cli_with_overrides(store, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trackdiag.compare_ckpts",
            f"mlflow.tracking_uri={store['uri']}",
            "mlflow.experiment=cmp",
            "steps=[100,300,500]",
            "output.dir=rep",
            "limits.band_score=0.305",
            "ranking.method=mean_rank",
            "metrics=[band_score,E2f_over_Ef]",
            "output.formats=[csv,md]",
            "output.plots=false",
            "publish.to=none",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Best checkpoint: run-a @ step 500")
    assert (
        r"tiling/band\_score 0.31 is above its limit 0.305"
        in (tmp_path / "rep" / "comparison.md").read_text()
    )


def test_cli_errors_exit_1_with_one_line(store, tmp_path, monkeypatch, capsys):
    from trackdiag.compare_ckpts import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "compare_ckpts",
            f"mlflow.tracking_uri={store['uri']}",
            "mlflow.experiment=cmp",
            "runs=[run-z]",
            "publish.to=none",
        ],
    )
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(
        "error: MLflow run(s) ['run-z'] not found by id, nor by name in experiment 'cmp'"
    )
