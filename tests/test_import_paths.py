"""Every import path that configs, spool files, users and the shell name keeps working.

Configs (``conf/**/*.yaml``) and spool journals name classes by ``_target_`` dotted paths; users import the
public modules; the shell runs ``python -m <module>`` and the ``trackdiag`` subcommands. When a module moves,
its old path must stay importable (a re-export), and this test says which paths that covers.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: ``_target_`` paths of the shipped configs and of spool journals (``module.Class``).
TARGETS = [
    "trackdiag.analyzers.tiling.TilingAnalyzer",
    "trackdiag.analyzers.latent.LatentAnalyzer",
    "trackdiag.analyzers.pixel.PixelAnalyzer",
    "trackdiag.analyzers.loss.LossAnalyzer",
    "trackdiag.backends.mlflow.MlflowBackend",
    "trackdiag.backends.wandb.WandbBackend",
    "trackdiag.backends.tensorboard.TensorboardBackend",
    "trackdiag.backends.local.LocalBackend",
]

#: Public names users import, ``module:name``.
PUBLIC = [
    "trackdiag:init", "trackdiag:log", "trackdiag:finish", "trackdiag:get_session", "trackdiag:Session",
    "trackdiag.analyzers.base:Analyzer", "trackdiag.analyzers.base:AnalyzerParams",
    "trackdiag.analyzers.base:StepInputs", "trackdiag.analyzers.base:Result",
    "trackdiag.analyzers.bands:__name__",
    "trackdiag.backends.base:Backend",
    "trackdiag.spool:__name__", "trackdiag.sync:main",
    "trackdiag.verdicts:Verdict", "trackdiag.verdicts:register_rules", "trackdiag.verdicts:evaluate",
    "trackdiag.metricspec:MetricSpec", "trackdiag.metricspec:register_metrics",
    "trackdiag.errors:TrackdiagError", "trackdiag.errors:InputFileError", "trackdiag.errors:ConfigError",
    "trackdiag.logreaders:ScalarSeries", "trackdiag.logreaders:read_loss_log",
    "trackdiag.logreaders:WANDB_STEP_KEYS", "trackdiag.compare.sources:WANDB_STEP_KEYS",
    "trackdiag.compare.data:Series", "trackdiag.io.series:Series",
    "trackdiag.io.pairing:companion_lookup", "trackdiag.io.tables:write_csv",
    "trackdiag.core.values:finite_mean",
    "trackdiag.seed.diagnose_loss:LossDiagnostics",
    "trackdiag.integrations.lightning:TrackdiagCallback",
]

#: Modules run with ``python -m`` (each has a ``main`` and a ``__main__`` guard or is a package main).
PYTHON_M = [
    "trackdiag.cli", "trackdiag.diagnose", "trackdiag.compare_ckpts", "trackdiag.dataset", "trackdiag.sync",
    "trackdiag.watch", "trackdiag.ui", "trackdiag.core.render", "trackdiag.seed.diag_tiling",
    "trackdiag.seed.diagnose_loss",
]


@pytest.mark.parametrize("target", TARGETS)
def test_config_targets_import_to_analyzer_or_backend_classes(target):
    from trackdiag.analyzers.base import Analyzer
    from trackdiag.backends.base import Backend

    module, _, name = target.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type) and issubclass(cls, (Analyzer, Backend))
    if issubclass(cls, Analyzer):  # every shipped analyzer has typed parameters configs are checked against
        assert cls.Params is not None and cls.name


@pytest.mark.parametrize("path", PUBLIC)
def test_public_names_import(path):
    module, _, name = path.partition(":")
    assert getattr(importlib.import_module(module), name) is not None


def test_the_shipped_configs_name_only_listed_targets():
    from trackdiag.confstore import COMPONENTS

    found = {target for names in COMPONENTS.values() for target in names.values()}
    for yaml in (ROOT / "conf").rglob("*.yaml"):
        for line in yaml.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("_target_:"):
                found.add(line.split(":", 1)[1].strip())
    assert found and found <= set(TARGETS), found - set(TARGETS)


def test_diagnose_is_a_callable_module():
    import trackdiag

    assert callable(trackdiag.diagnose)
    assert importlib.import_module("trackdiag.diagnose") is trackdiag.diagnose


def test_cli_subcommands_point_at_modules_with_main():
    from trackdiag.cli import SUBCOMMANDS

    assert {"diagnose", "dataset", "compare", "sync"} <= set(SUBCOMMANDS)
    for name, (module, _help) in SUBCOMMANDS.items():
        assert callable(importlib.import_module(module).main), name


@pytest.mark.parametrize("module", PYTHON_M)
def test_python_m_names_resolve(module):
    spec = importlib.util.find_spec(module)
    assert spec is not None, module
    if spec.submodule_search_locations:  # a package: ``python -m`` runs its __main__
        assert importlib.util.find_spec(module + ".__main__") is not None


@pytest.mark.slow
def test_python_m_help_runs():
    for module in ("trackdiag.cli", "trackdiag.sync"):
        done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                              timeout=120, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-2000:]
