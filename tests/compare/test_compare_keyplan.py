"""Only the keys the comparison needs are read: an analyzer's own metrics (read to recompute its verdicts)
are not asked of runs that logged those verdicts, on a database store and through the per-key fallback."""

from __future__ import annotations

import pytest

from trackdiag.compare.sources import KeyPlan, keys_per_run, read_mlflow

T = "trackdiag/tiling/"
COLUMNS = [T + "checkerboard_score", "trackdiag/pixel/diff_rmse"]
OWN = [T + "E2f_over_Ef", T + "band_score"]
VERDICT = T + "verdict/checkerboard"
LOSS = "trackdiag/loss/train_loss"


def test_keys_per_run_drops_recompute_keys_only_where_verdicts_were_logged():
    plan = KeyPlan([*COLUMNS, *OWN, VERDICT, LOSS], only_without_verdicts=OWN)
    judged = [*COLUMNS, *OWN, VERDICT, LOSS]
    assert keys_per_run(plan, judged) == {*COLUMNS, VERDICT, LOSS}
    unjudged = [*COLUMNS, *OWN, LOSS]
    assert keys_per_run(plan, unjudged) == {*COLUMNS, *OWN, LOSS}
    # a verdict of another analyzer does not count; a plain list asks for everything logged
    assert keys_per_run(plan, [*COLUMNS, *OWN, "trackdiag/pixel/verdict/pixel_rows"]) == {*COLUMNS, *OWN}
    assert keys_per_run(list(plan), judged) == set(judged)


@pytest.mark.parametrize("batched", [True, False])
def test_a_store_is_read_for_the_needed_keys_only(tmp_path, batched):
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from tests.support.servers import sqlite_store

    uri = sqlite_store(tmp_path / "m.db")
    client = MlflowClient(uri)
    exp = client.create_experiment("plan")
    for name, keys in (("judged", [*COLUMNS, *OWN, VERDICT]), ("older", [*COLUMNS, *OWN])):
        run = client.create_run(exp, run_name=name)
        client.log_batch(run.info.run_id, metrics=[Metric(k, float(i + s), 1000 + s, s)
                                                   for i, k in enumerate(keys) for s in range(0, 60, 10)])
    asked: list = []

    def select(per_run):
        asked.append(per_run)
        return KeyPlan([*COLUMNS, *OWN, VERDICT], only_without_verdicts=OWN)

    runs = {r.name: r for r in read_mlflow(tracking_uri=uri, experiment="plan", select=select,
                                          batched=batched)}
    assert len(asked) == 1
    assert set(runs["judged"].metrics) == {*COLUMNS, VERDICT}
    assert set(runs["older"].metrics) == {*COLUMNS, *OWN}
    assert runs["older"].metrics[OWN[0]].steps.tolist() == list(range(0, 60, 10))
