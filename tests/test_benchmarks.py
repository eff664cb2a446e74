"""``python benchmarks/run.py --quick`` (the smoke form of ``make bench``) runs every benchmark end to end.

No timing is asserted here (speed is what the benchmarks report, not what tests check): only that each one
still runs and reports the rows the docs quote, with finite, positive values.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # every benchmark end to end in a subprocess: minutes (434 s on a loaded 2-core box)
def test_every_benchmark_runs_in_quick_mode(tmp_path):
    out = tmp_path / "latest.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {(r["benchmark"], r["metric"]): r["value"] for r in json.loads(out.read_text())["rows"]}
    assert {b for b, _ in rows} >= {"tiling_4x3x512", "log", "compare", "dataset_scan", "step"}
    for key in (("tiling_4x3x512", "ratio_vs_rfft2_1thread"), ("tiling_4x3x512", "speedup_vs_numpy_1thread"),
                ("log", "log_block_ms"), ("log", "local_healthy_log_p50_ms"),
                ("step", "step_ms_with"), ("step", "log_4096_over_1024"),
                ("step", "log_p99_over_compute_p99"),
                ("dataset_scan", "images_per_second_workers0")):
        assert math.isfinite(rows[key]) and rows[key] > 0, key
    # The benchmark's own correctness rows: torch and the numpy reference agree on the periods.
    assert rows[("tiling_4x3x512", "agreement_fundamental_period_px")] < 0.01
