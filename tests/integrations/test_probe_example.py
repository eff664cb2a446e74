"""The example really trains a tiny LoRA toward grid targets; what it logged is read back from MLflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_lora_grid_probe_example(tmp_path):
    pytest.importorskip("diffusers")
    pytest.importorskip("peft")
    from mlflow import MlflowClient

    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "lora_grid_probe.py"),
            "--steps",
            "20",
            "--every",
            "10",
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads((out / "verdicts.json").read_text())
    assert [v["code"] for v in res["verdicts"] if v["code"].endswith("_grid")] == ["probe_lora_grid"]
    c = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlruns.db'}")
    fp = {m.step: m.value for m in c.get_metric_history(res["run_id"], "trackdiag/fingerprint/grid_s8")}
    assert sorted(fp) == [0, 10, 20]
    assert fp[0] < 0.5 < fp[20]  # no grid before training, a grid after it
    since = c.get_metric_history(res["run_id"], "trackdiag/fingerprint/since_grid_s8")
    assert since and all(m.value in (10.0, 20.0) for m in since)  # "since when": the step it appeared
    logged = c.get_metric_history(res["run_id"], "trackdiag/watch/images")
    assert {m.step: m.value for m in logged} == {0: 4.0, 10: 4.0, 20: 4.0}
