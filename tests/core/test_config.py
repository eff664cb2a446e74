"""Hydra configuration: groups, overrides, schemas, _target_ restriction, user apps, and the built wheel."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import trackdiag
from trackdiag.config import build_component, config_dir, resolve
from trackdiag.core.schedule import Schedule
from trackdiag.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = Path(__file__).resolve().parents[2]


def test_default_config_selects_mlflow_and_every_analyzer():
    cfg = resolve()
    assert list(cfg.backend) == ["mlflow"]
    assert cfg.backend.mlflow.tracking_uri == "sqlite:///mlruns.db"
    assert set(cfg.analyzer) == {"tiling", "loss", "latent", "pixel"}
    for name, node in cfg.analyzer.items():
        assert node._target_.startswith("trackdiag.analyzers."), name
        assert "schedule" in node


def test_groups_are_multi_select_and_overrides_apply():
    cfg = resolve(overrides=["backend=[mlflow,local]", "analyzer=[tiling,loss]",
                             "analyzer.tiling.schedule.every=7", "worker.queue_size=3"])
    assert list(cfg.backend) == ["mlflow", "local"]
    assert list(cfg.analyzer) == ["tiling", "loss"]
    assert cfg.analyzer.tiling.schedule.every == 7 and cfg.worker.queue_size == 3


def test_keyword_shortcuts():
    cfg = resolve(shortcuts=dict(backend=["local", "mlflow"], tracking_uri="sqlite:///x.db", experiment="e",
                                 run_name="r", out_dir="o", on_error="raise"))
    assert list(cfg.backend) == ["local", "mlflow"]
    assert cfg.backend.mlflow.tracking_uri == "sqlite:///x.db"
    assert (cfg.run.experiment, cfg.run.run_name, cfg.out_dir, cfg.on_error) == ("e", "r", "o", "raise")


@pytest.mark.parametrize("overrides,match", [
    (["worker.queue_size=abc"], "queue_size"),
    (["+nonsense=1"], "nonsense"),
    (["on_error=explode"], "on_error"),
    (["backend=[nope]"], "nope"),
])
def test_bad_top_level_config_is_rejected(overrides, match):
    with pytest.raises(ConfigError, match=match):
        resolve(overrides=overrides)


def test_tracking_uri_needs_mlflow():
    with pytest.raises(ConfigError, match="mlflow backend"):
        resolve(shortcuts=dict(backend="local", tracking_uri="sqlite:///x.db"))


def test_analyzer_params_are_typed_and_closed(in_tmp):
    for override, match in [("analyzer.tiling.schedule.every=often", "every"),
                            ("+analyzer.tiling.no_such_param=1", "no_such_param"),
                            ("analyzer.tiling.schedule.kind=sometimes", "schedule.kind")]:
        with pytest.raises(ConfigError, match=match):
            trackdiag.init(overrides=["analyzer=[tiling]", override], backend="local")


def test_targets_outside_trackdiag_need_opt_in(in_tmp):
    node = {"analyzer": {"evil": {"_target_": "os.system"}}}
    with pytest.raises(ConfigError, match="outside trackdiag"):
        trackdiag.init(config=node, overrides=["analyzer=[]"], backend="local")
    from omegaconf import OmegaConf

    with pytest.raises(ConfigError, match="no Params dataclass"):  # even opted in, no arbitrary callables
        build_component(OmegaConf.create({"_target_": "os.system"}), allow_external=True, what="x")


def test_config_node_selects_and_fills_defaults():
    cfg = resolve({"backend": {"local": {"root": "here"}},
                   "analyzer": {"tiling": {"schedule": {"every": 3}}}})
    assert list(cfg.backend) == ["local"] and cfg.backend.local.root == "here"
    assert list(cfg.analyzer) == ["tiling"]
    assert cfg.analyzer.tiling._target_ == "trackdiag.analyzers.tiling.TilingAnalyzer"
    assert cfg.analyzer.tiling.schedule.every == 3


def test_schedules():
    every = Schedule(kind="every", every=10, start=5)
    assert [s for s in range(40) if every.due(s)] == [5, 15, 25, 35]
    logsp = Schedule(kind="log", per_decade=4)
    due = [s for s in range(1, 2000) if logsp.due(s)]
    assert due[:6] == [1, 2, 3, 6, 10, 18] and 1000 in due and len(due) == 14
    explicit = Schedule(kind="steps", steps=[3, 7])
    assert [s for s in range(10) if explicit.due(s)] == [3, 7]
    with pytest.raises(ConfigError):
        Schedule(kind="never")


@pytest.mark.slow  # a user's Hydra app in a subprocess: 25 s on a loaded 2-core box
def test_inside_a_users_hydra_app(tmp_path):
    app = tmp_path / "app"
    (app / "conf").mkdir(parents=True)
    (app / "conf" / "config.yaml").write_text(textwrap.dedent("""
        lr: 0.1
        trackdiag:
          run: {run_name: from_user_app}
          backend: {local: {}}
          analyzer: {tiling: {schedule: {every: 1}}}
    """))
    (app / "train.py").write_text(textwrap.dedent("""
        import hydra, torch, trackdiag
        from hydra.core.hydra_config import HydraConfig
        from trackdiag.backends.local import read_metrics

        @hydra.main(config_path="conf", config_name="config", version_base=None)
        def main(cfg):
            s = trackdiag.init(config=cfg.trackdiag, overrides=["worker.queue_size=8"])
            assert s.cfg.worker.queue_size == 8 and list(s.cfg.analyzer) == ["tiling"]
            assert HydraConfig.get().job.name == "train"   # the user's Hydra state is intact
            x = torch.arange(128.0)
            pred = (0.5 + 0.5 * torch.sin(2 * torch.pi * x / 16)).expand(1, 3, 128, 128).contiguous()
            trackdiag.log(0, pred)
            summary = trackdiag.finish()
            metrics = read_metrics(s.backends[0].location())
            print("PERIOD", metrics["trackdiag/tiling/fundamental_period_px"][0], summary.clean)

        main()
    """))
    out = subprocess.run([sys.executable, "train.py", "hydra.run.dir=."], cwd=app, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("PERIOD")][0]
    assert abs(float(line.split()[1]) - 16) < 0.5 and line.split()[2] == "True"


@pytest.mark.slow
def test_built_wheel_works_outside_the_repo(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("trackdiag-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "trackdiag/conf/config.yaml" in names and "trackdiag/conf/backend/mlflow.yaml" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    vpy = venv / "bin" / "python"
    # Dependencies come from the dev environment's site-packages (a plain path entry: its .pth files, such as
    # the editable install of this checkout, are NOT processed), trackdiag itself only from the wheel.
    site = subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    dev_site = next(p for p in sys.path if p.endswith("site-packages") and Path(p, "torch").is_dir())
    Path(site, "dev_deps.pth").write_text(dev_site + "\n")
    subprocess.run([str(vpy), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = textwrap.dedent("""
        import os
        import torch, trackdiag
        from trackdiag.config import config_dir
        assert "site-packages" in trackdiag.__file__, trackdiag.__file__
        assert str(config_dir()).endswith("site-packages/trackdiag/conf"), config_dir()
        trackdiag.init(overrides=["analyzer.tiling.schedule.every=1"])
        trackdiag.log(0, torch.rand(1, 3, 64, 64))
        print(trackdiag.finish())
        from mlflow import MlflowClient
        c = MlflowClient("sqlite:///" + os.path.abspath("mlruns.db"))
        (run,) = c.search_runs([c.get_experiment_by_name("trackdiag").experiment_id])
        assert "trackdiag/tiling/fundamental_period_px" in run.data.metrics, run.data.metrics
        print("OK")
    """)
    out = subprocess.run([str(vpy), "-c", script], cwd=work, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


def test_conf_dir_in_checkout():
    assert config_dir() == ROOT / "conf"
