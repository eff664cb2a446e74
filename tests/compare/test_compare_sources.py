"""compare_ckpts on W&B offline run folders and TensorBoard log folders written by trackdiag's own backends,
and publishing a comparison as a wandb.Table."""

from __future__ import annotations

import pytest

import trackdiag
from trackdiag.compare.data import MissingRunError
from trackdiag.compare_ckpts import compare
from trackdiag.io.logreaders import read_wandb_offline

BS = "trackdiag/tiling/band_score"
TRAJ = {"run-a": [0.5, 0.3, 0.2], "run-b": [0.4, 0.1, 0.6]}  # at steps 100, 200, 300


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    pytest.importorskip("wandb")
    pytest.importorskip("tensorboard")
    root = tmp_path_factory.mktemp("wbtb")
    for name, values in TRAJ.items():
        s = trackdiag.init(
            overrides=[
                "analyzer=[]",
                "backend=[wandb,tensorboard]",
                f"backend.wandb.dir={root / 'wb'}",
                "backend.wandb.mode=offline",
            ],
            run_name=name,
            experiment="cmp",
            out_dir=str(root / "td"),
            on_error="raise",
        )
        for k, v in enumerate(values):
            s.log_scalars({BS: v}, step=(k + 1) * 100)
        assert s.finish().clean
    return root


def _check(c, approx):
    assert sorted(set(c.run)) == ["run-a", "run-b"]
    for i in range(len(c)):
        assert c.values[i, 0] == approx(TRAJ[c.run[i]][int(c.step[i]) // 100 - 1])
    best = [(c.run[i], int(c.step[i])) for i in range(len(c)) if c.rank[i] == 1]
    assert best == [("run-b", 200)]


def test_wandb_offline_runs(logs, tmp_path):
    res = compare(
        overrides=[
            "backend=wandb",
            f"runs=[{logs / 'wb' / 'wandb' / 'offline-run-*'}]",
            "steps=all",
            "metrics=[band_score]",
            f"output.dir={tmp_path}",
            "publish.to=none",
            "output.formats=[csv]",
            "output.plots=false",
        ]
    )
    c = res.comparison
    assert len(c) == 6
    _check(c, lambda v: v)  # W&B keeps float64: exact
    assert c.runs[0].tags["project"] == "cmp"


def test_tensorboard_runs_and_publish_as_wandb_table(logs, tmp_path):
    res = compare(
        overrides=[
            "backend=tensorboard",
            f"runs=[{logs / 'td' / 'tensorboard' / '*'}]",
            "steps=all",
            "metrics=[band_score]",
            f"output.dir={tmp_path / 'out'}",
            "publish.to=wandb",
            "publish.experiment=cmp",
            "output.formats=[csv,json]",
            "output.plots=false",
            f"publish.overrides=['backend.wandb.dir={tmp_path / 'pub'}','backend.wandb.mode=offline']",
        ]
    )
    _check(res.comparison, lambda v: pytest.approx(v, rel=1e-6))  # TensorBoard stores float32
    (folder,) = (tmp_path / "pub" / "wandb").glob("offline-run-*")
    run = read_wandb_offline(folder)
    assert run.config["compare.backend"] == "tensorboard"
    tables = [
        row["trackdiag/compare/comparison"] for row in run.history if "trackdiag/compare/comparison" in row
    ]
    assert tables and tables[-1]["_type"].startswith(("table", "incremental-table"))
    assert run.summary["trackdiag/compare/best/tiling/band_score"] == pytest.approx(0.1, rel=1e-6)


def test_missing_folders(tmp_path):
    with pytest.raises(MissingRunError, match=r"TensorBoard log folder\(s\) not found"):
        compare(overrides=["backend=tensorboard", f"runs=[{tmp_path / 'nope'}]", "publish.to=none"])
    with pytest.raises(MissingRunError, match=r"W&B offline run folder\(s\) not found.*offline-run-\*"):
        compare(overrides=["backend=wandb", f"runs=[{tmp_path / 'offline-run-*'}]", "publish.to=none"])
