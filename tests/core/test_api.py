"""The public surface: fast import, lazy attributes, the callable diagnose module."""

from __future__ import annotations

import subprocess
import sys

import trackdiag


def test_import_is_light():
    code = ("import sys, trackdiag; heavy = [m for m in ('torch', 'mlflow', 'matplotlib', 'hydra', 'wandb') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names():
    for name in ("init", "log", "finish", "get_session", "diagnose", "Session", "ShapeError", "MaskError"):
        assert hasattr(trackdiag, name), name
    assert trackdiag.__version__


def test_diagnose_is_both_module_and_function():
    import trackdiag.diagnose as mod

    assert callable(trackdiag.diagnose) and trackdiag.diagnose is mod
    assert callable(mod.main)
