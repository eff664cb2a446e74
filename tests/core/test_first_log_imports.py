"""The first ``log()`` imports nothing outside trackdiag on the training thread (issue 15: a first call
stalled for seconds on ``scipy.stats``, and ``torch.broadcast_shapes`` pulls in sympy through torch.fx):
what the analyzers need is imported in ``init()``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import json, os, sys, threading
    import torch
    import trackdiag

    os.chdir(sys.argv[1])
    trackdiag.init(run_name="first_log")
    seen = []

    class Recorder:
        def find_spec(self, name, path=None, target=None):
            if threading.current_thread() is threading.main_thread():
                seen.append(name)
            return None

    sys.meta_path.insert(0, Recorder())
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(4, 3, 64, 64, generator=g), torch.rand(4, 3, 64, 64, generator=g)
    latents = {"in": torch.randn(4, 4, 16, 16, generator=g), "out": torch.randn(4, 4, 16, 16, generator=g)}
    # every analyzer at its defaults is due at step 0
    trackdiag.log(0, pred, target=target, loss=torch.rand(4, generator=g), timesteps=torch.arange(4),
                  latents=latents)
    sys.meta_path.pop(0)
    trackdiag.finish()
    print(json.dumps({"imported": seen}))
""")


def test_first_log_imports_only_trackdiag_on_the_training_thread(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    foreign = sorted({m for m in out["imported"] if m.split(".")[0] != "trackdiag"})
    assert foreign == [], f"the first log() imported on the training thread: {foreign[:40]}"
