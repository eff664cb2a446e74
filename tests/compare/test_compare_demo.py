"""compare_ckpts with its defaults on the demo's store (examples/toy_upsampler.py, CI-sized): a trained
resize-conv checkpoint ranks first, no option needed; the comparison run goes to its own experiment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_defaults_rank_a_trained_resize_checkpoint_first(tmp_path):
    from mlflow import MlflowClient

    from trackdiag.compare_ckpts import compare

    cmd = [sys.executable, str(ROOT / "examples" / "toy_upsampler.py"), "--steps", "40", "--size", "96",
           "--eval-every", "20", "--out", "out", "--no-compare"]
    proc = subprocess.run(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    res = compare(overrides=[f"mlflow.tracking_uri={uri}", "mlflow.experiment=toy_upsampler",
                             f"output.dir={tmp_path / 'cmp'}", "output.formats=[md]", "output.plots=false"])
    c = res.comparison
    best = int(np.argmin(c.rank))
    assert c.run[best] == "toy-resize" and c.step[best] >= 20, c.verdict
    # every deconv checkpoint ranks below every trained resize checkpoint
    resize = [int(c.rank[i]) for i in range(len(c)) if c.run[i] == "toy-resize" and c.step[i] >= 20]
    deconv = [int(c.rank[i]) for i in range(len(c)) if c.run[i] == "toy-deconv"]
    assert max(resize) < min(deconv), c.reasons
    client = MlflowClient(uri)
    assert client.get_experiment_by_name("toy_upsampler-comparisons") is not None
    assert {r.info.run_name for r in client.search_runs(
        [client.get_experiment_by_name("toy_upsampler").experiment_id])} == {"toy-deconv", "toy-resize"}
