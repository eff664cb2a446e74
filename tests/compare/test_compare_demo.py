"""compare_ckpts with its defaults on the demo's store (examples/toy_upsampler.py, CI-sized; the session's
``toy_run``): a trained resize-conv checkpoint ranks first and every deconv checkpoint below every trained
resize one, no option needed. (The demo's own comparison run and its experiment: tests/test_examples.py.)"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_defaults_rank_a_trained_resize_checkpoint_first(toy_run, tmp_path):
    from mlflow import MlflowClient

    from trackdiag.compare_ckpts import compare

    work, _ = toy_run
    uri = f"sqlite:///{work / 'mlruns.db'}"
    # publish.to=none: the shared store is read, not written (the demo's own comparison run is checked there)
    res = compare(overrides=[f"mlflow.tracking_uri={uri}", "mlflow.experiment=toy_upsampler",
                             f"output.dir={tmp_path / 'cmp'}", "output.formats=[md]", "output.plots=false",
                             "publish.to=none"])
    c = res.comparison
    best = int(np.argmin(c.rank))
    assert c.run[best] == "toy-resize" and c.step[best] >= 20, c.verdict
    # every deconv checkpoint ranks below every trained resize checkpoint
    resize = [int(c.rank[i]) for i in range(len(c)) if c.run[i] == "toy-resize" and c.step[i] >= 20]
    deconv = [int(c.rank[i]) for i in range(len(c)) if c.run[i] == "toy-deconv"]
    assert max(resize) < min(deconv), c.reasons
    client = MlflowClient(uri)
    assert {r.info.run_name for r in client.search_runs(
        [client.get_experiment_by_name("toy_upsampler").experiment_id])} == {"toy-deconv", "toy-resize"}
