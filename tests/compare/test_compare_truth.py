"""compare_ckpts defaults against stores with known truth, filled by trackdiag itself.

Three runs "train" on brick-photo crops (scikit-image, no download), blurry → sharp, with the reference patch
and the sharp crops as targets; one stays clean, one gets a real ConvTranspose2d checkerboard from step 200,
one a zone at twice the period from step 300 (trackdiag.testing.ckpt_store). With the defaults, a late
checkpoint of the clean run is best, every onset of an artifact run is within one checkpoint of its planted
step, and the clean run has none.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("skimage")

STEPS, EVERY = 500, 50
PLANTED = {"clean": (None, None), "grid": ("checkerboard", 200), "zone": ("doubled", 300)}




@pytest.fixture(scope="module")
def truth_store(tmp_path_factory):
    from tests.support.servers import sqlite_store
    from trackdiag.testing.ckpt_store import fill_run

    root = tmp_path_factory.mktemp("truth")
    uri = sqlite_store(root / "mlflow.db")
    for name, (artifact, onset) in PLANTED.items():
        fill_run(tracking_uri=uri, experiment="truth", run_name=name, artifact=artifact, onset=onset or 0,
                 steps=STEPS, every=EVERY, n=1, size=128, out_dir=str(root / "runs"))
    return uri, root


def _rules_flag_the_clean_photo() -> list:
    """The tiling rules' warn/bad verdicts on the sharp photo crop itself (the clean run's goal)."""
    from trackdiag.analyzers.base import StepInputs
    from trackdiag.analyzers.tiling import TilingAnalyzer
    from trackdiag.testing.ckpt_store import brick_crops
    from trackdiag.verdicts import evaluate

    sharp, ref = brick_crops(1, 128)
    out = TilingAnalyzer().compute(StepInputs(step=0, pred=sharp, ref=ref))
    summary = {k: float(v.reshape(-1)[0]) for k, v in out.items() if not k.startswith("map") and v.numel()}
    return [(v.code, v.severity) for v in evaluate("tiling", summary) if v.severity in ("warn", "bad")]


def test_defaults_rank_a_late_clean_checkpoint_and_find_each_onset(truth_store):
    from trackdiag.compare_ckpts import compare

    uri, root = truth_store
    flagged = _rules_flag_the_clean_photo()
    if flagged:
        pytest.xfail(f"the tiling rules flag the clean brick photo itself {flagged}: verdict-first ranking "
                     "and "
                     "the verdict series cannot be right until the rules are calibrated on real photos")
    c = compare(overrides=[f"mlflow.tracking_uri={uri}", "mlflow.experiment=truth", "publish.to=none",
                           f"output.dir={root / 'out'}", "output.formats=[md]",
                           "output.plots=false"]).comparison
    best = int(np.argmin(c.rank))
    assert c.run[best] == "clean" and c.step[best] >= STEPS // 2, c.verdict
    assert not [o for o in c.onsets if o["run"] == "clean"], c.onsets
    for name, (_, planted) in PLANTED.items():
        if planted is None:
            continue
        mine = [o for o in c.onsets if o["run"] == name]
        assert mine, (name, c.onsets)
        assert all(abs(o["since"] - planted) <= EVERY for o in mine), (name, mine)
        assert min(o["last_good"] for o in mine) >= planted - 2 * EVERY


def test_without_verdicts_fidelity_and_change_points_find_the_truth(truth_store):
    """The same store ranked without verdicts (ranking.verdict_analyzers=[]): independent of how the tiling
    rules are calibrated. The best checkpoint is a late clean one, the clean run has no onset, and each
    artifact run's onsets are all within one checkpoint of its planted step."""
    from trackdiag.compare_ckpts import compare

    uri, root = truth_store
    c = compare(overrides=[f"mlflow.tracking_uri={uri}", "mlflow.experiment=truth", "publish.to=none",
                           f"output.dir={root / 'out2'}", "output.formats=[md]", "output.plots=false",
                           "ranking.verdict_analyzers=[]"]).comparison
    best = int(np.argmin(c.rank))
    assert c.run[best] == "clean" and c.step[best] >= STEPS // 2, c.verdict
    assert not [o for o in c.onsets if o["run"] == "clean"], c.onsets
    within = []
    for name, (_, planted) in PLANTED.items():
        if planted is None:
            continue
        mine = [o for o in c.onsets if o["run"] == name]
        assert mine, (name, c.onsets)
        first = min(mine, key=lambda o: o["since"])
        assert abs(first["since"] - planted) <= EVERY, (name, mine)
        assert first["last_good"] is not None and planted - 2 * EVERY <= first["last_good"] < planted
        within += [abs(o["since"] - planted) <= EVERY for o in mine]
    print(f"\nonsets within one checkpoint of the planted step: {sum(within)}/{len(within)}; "
          f"{[(o['run'], o['metric'], o['since']) for o in c.onsets]}")
    assert all(within)


def test_loss_onset_names_the_samples_and_steps_in_its_window(tmp_path):
    """A loss that jumps to a higher level at step 150 (a bad shard enters the data): "since when" gives the
    onset within one step of it, no onset before, and the samples of the loss events logged in the window."""
    import trackdiag
    from tests.support.servers import sqlite_store
    from trackdiag.compare_ckpts import compare

    uri = sqlite_store(tmp_path / "m.db")
    rng = np.random.default_rng(0)
    with trackdiag.init(overrides=["analyzer=[loss]", "analyzer.loss.figures_every=1000"], backend="mlflow",
                        tracking_uri=uri, experiment="lossy", run_name="lossy",
                        out_dir=str(tmp_path / "td")) as s:
        for step in range(240):
            ids = [f"img{int(i)}" for i in rng.integers(0, 500, 4)]
            level = 0.05 + 0.2 * np.exp(-step / 60) + (0.25 if step >= 150 else 0.0)
            if step >= 150:
                ids[0] = "shard7_img3"
            losses = level * np.exp(rng.normal(0, 0.05, 4))
            s.log(step, loss=torch_tensor(losses), sample_ids=ids)
    c = compare(overrides=[f"mlflow.tracking_uri={uri}", "mlflow.experiment=lossy", "publish.to=none",
                           f"output.dir={tmp_path / 'out'}", "output.formats=[md]", "output.plots=false",
                           "metrics=[loss/smoothed_loss]", "goals.smoothed_loss=min"]).comparison
    (onset,) = [o for o in c.onsets if o.get("kind") == "loss"]
    assert abs(onset["since"] - 150) <= 1 and onset["last_good"] is not None and onset["last_good"] < 150
    steps = {int(e["step"]) for e in onset["samples"]}
    assert steps and all(onset["lo"] <= st <= onset["hi"] for st in steps)
    assert any("shard7_img3" in str(e.get("samples")) for e in onset["samples"])
    assert any(line.strip().startswith("loss onset at step") and "shard7_img3" in line for line in c.verdict)


def torch_tensor(x):
    import torch

    return torch.as_tensor(x, dtype=torch.float32)
