"""The verdict flow of a run: verdicts recomputed from each Result with the registered rules, one verdict
metric per known code from the first analysis step on, "since when" per code, the findings published to the
backends, printed by finish(), the samples figure at every analysis step and the last step's figures."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import trackdiag
from trackdiag.analyzers.base import Analyzer, AnalyzerParams, Result
from trackdiag.core.findings import RunFindings, console_text, markdown, shell_command
from trackdiag.verdicts import Verdict, register_rules

THRESHOLD = 0.5


@dataclass
class LevelParams(AnalyzerParams):
    pass


class LevelAnalyzer(Analyzer):
    """The mean brightness of pred, and a figure map; its rule: ``bright`` (warn ≥ 0.5, bad ≥ 0.8)."""

    name = "level"
    Params = LevelParams

    def compute(self, inputs):
        return {"mean": inputs.pred.mean(dim=(1, 2, 3)), "map/img": inputs.pred[0, 0]}

    def render(self, result: Result):
        return {"img": np.zeros((8, 8, 3), np.uint8) + 100}


def level_rules(summary):
    m = summary.get("mean", float("nan"))
    if not m >= THRESHOLD:
        return []
    return [Verdict(code="bright", severity="bad" if m >= 0.8 else "warn", title="Too bright",
                    evidence={"mean": m}, fix="Darken it.")]


register_rules("level", level_rules)
VERDICT_CODES = ("bright", "dark")  # the module's known codes (read by trackdiag.core.findings.known_codes)


def brightness(v: float) -> torch.Tensor:
    return torch.full((2, 3, 16, 16), v)


# The planted truth: the mean goes over the threshold at step 30, comes back at 60, and over again at 80.
LEVELS = {0: 0.2, 10: 0.3, 20: 0.4, 30: 0.6, 40: 0.9, 50: 0.7, 60: 0.2, 70: 0.3, 80: 0.9, 90: 0.95}


def truth(step: int) -> float:
    v = LEVELS[step]
    return 2.0 if v >= 0.8 else 1.0 if v >= THRESHOLD else 0.0


def test_run_findings_track_since_when_and_what_went_away():
    f = RunFindings()
    for step, v in LEVELS.items():
        metrics = f.record("level", step, level_rules({"mean": v}), {"mean": v}, module=sys.modules[__name__])
        # every known code at every step, so that "since when" is one chart
        assert metrics == {"trackdiag/level/verdict/bright": truth(step), "trackdiag/level/verdict/dark": 0.0}
        current = f.current()
        if truth(step):
            onset = 80 if step >= 80 else 30
            assert [(x.verdict.code, x.since) for x in current] == [("bright", onset)]
        else:
            assert current == []
    assert f.worst() == "bad" and f.causes() == ["bright"]
    payload = f.payload()
    assert json.loads(json.dumps(payload)) == payload  # JSON: it may wait in the spool
    assert payload["findings"][0]["since_step"] == 80 and payload["step"] == 90
    md = markdown(f)
    assert "Problem found" in md and "| 80 |" in md and "Darken it." in md
    text = console_text(f)
    assert "[BAD] Too bright (bright, since step 80)" in text and "fix: Darken it." in text
    assert "look at: charts trackdiag/level/" in text


def test_resolved_finding_is_reported_as_gone():
    f = RunFindings()
    f.record("level", 0, level_rules({"mean": 0.9}), {})
    f.record("level", 10, level_rules({"mean": 0.1}), {})
    assert f.worst() == "none" and f.causes() == []
    assert "held from step 0, gone at step 10" in console_text(f)
    assert "No problem found" in markdown(f) and "steps 0–10" in markdown(f)


def run(tmp_path: Path, *, figures_every: int = 1):
    cfg = {"analyzer": {"level": {"_target_": "tests.core.test_findings.LevelAnalyzer",
                                  "schedule": {"every": 10}, "figures_every": figures_every}},
           "backend": {"local": {}}}
    s = trackdiag.init(config=cfg, overrides=["analyzer=[]"], allow_external_targets=True, on_error="raise",
                       out_dir=str(tmp_path / "out"), run_name="r")
    for step in range(0, 95):
        s.log(step, brightness(LEVELS[step]) if step in LEVELS else brightness(0.0))
    return s, s.finish()


def test_session_logs_verdict_metrics_publishes_and_prints_the_findings(tmp_path, capsys):
    from trackdiag.backends.local import read_metrics

    s, summary = run(tmp_path)
    assert summary.clean, str(summary)
    metrics = read_metrics(tmp_path / "out" / "r")
    history = metrics["trackdiag/level/verdict/bright"]
    assert history == {step: truth(step) for step in LEVELS}
    assert metrics["trackdiag/level/verdict/dark"] == {step: 0.0 for step in LEVELS}
    published = json.loads((tmp_path / "out" / "r" / "findings.json").read_text())
    assert published["verdict"] == "bad" and published["causes"] == ["bright"]
    assert published["findings"][0]["since_step"] == 80
    assert summary.verdict == "bad" and "since step 80" in summary.findings
    err = capsys.readouterr().err
    assert "[BAD] Too bright (bright, since step 80)" in err  # printed by finish()
    assert "where to look: local: " + str((tmp_path / "out" / "r").resolve()) in err


def test_samples_figure_at_every_analysis_step_and_the_last_step_gets_its_figures(tmp_path):
    s, summary = run(tmp_path, figures_every=4)  # analyses at 0..90 every 10: figures drawn at 0, 40, 80
    images = tmp_path / "out" / "r" / "images" / "trackdiag"
    samples = sorted(int(p.stem.split("_")[1]) for p in (images / "samples").glob("*.png"))
    assert samples == sorted(LEVELS)
    drawn = sorted(int(p.stem.split("_")[1]) for p in (images / "level" / "img").glob("*.png"))
    assert drawn == [0, 40, 80, 90]  # 90: the last step, drawn at finish()
    from PIL import Image

    for p in (images / "samples").glob("*.png"):
        a = np.asarray(Image.open(p))
        assert a.shape[0] > 100 and a.std() > 5  # a real figure, never empty


def test_samples_figure_marks_the_doubled_zones_and_the_mask():
    from trackdiag.plots.samples import samples_figure, thumbnails

    pred = torch.rand(2, 3, 64, 96)
    mask = torch.zeros(2, 1, 64, 96, dtype=torch.bool)
    mask[:, :, 10:50, 20:80] = True
    t = {k: v.numpy() for k, v in thumbnails(pred, mask, max_n=4, max_side=48).items()}
    assert t["map/images"].shape == (2, 32, 48, 3) and t["map/images"].dtype == np.uint8
    assert t["map/masks"].shape == (2, 32, 48) and list(t["map/size"]) == [64, 96]
    doubled = np.zeros((4, 6))
    doubled[1:3, 2:4] = 1.0
    maps = {"local_doubled": doubled, "local_geometry": np.array([32.0, 16.0, 64.0, 96.0])}
    v = Verdict(code="grid_s8", severity="bad", title="8-px grid")
    plain = samples_figure(t["map/images"], size=[64, 96])
    marked = samples_figure(t["map/images"], masks=t["map/masks"], size=[64, 96], tiling_maps=maps,
                            verdicts=[v], step=3)
    assert plain is not None and marked is not None
    red = (marked[..., 0].astype(int) - marked[..., 1]) > 60
    cyan = (marked[..., 1] > 180) & (marked[..., 2] > 180) & (marked[..., 0] < 80)
    yellow = (marked[..., 0] > 180) & (marked[..., 1] > 180) & (marked[..., 2] < 80)
    assert red.sum() > 50 and cyan.sum() > 50 and yellow.sum() > 20
    assert samples_figure(np.zeros((0, 8, 8, 3), np.uint8)) is None  # nothing to show: no figure


def test_key_params_and_config_yaml(tmp_path):
    import yaml

    from trackdiag.backends.local import LocalBackend

    s = trackdiag.init(overrides=["analyzer=[tiling,loss]", "analyzer.tiling.schedule.every=50",
                                  "analyzer.tiling.min_period_px=5", "+run.tags.lr=0.1"],
                       backend="local", out_dir=str(tmp_path / "out"), run_name="k")
    s.finish()
    params = json.loads((tmp_path / "out" / "k" / "params.json").read_text())
    # the few params that matter: the run's name and tags, each analyzer's schedule, what the user changed
    assert params == {"run.run_name": "k", "run.tags.lr": "0.1", "analyzer.tiling.schedule": "every 50 steps",
                      "analyzer.tiling.min_period_px": "5.0", "analyzer.loss.schedule": "every step"}
    config = yaml.safe_load((tmp_path / "out" / "k" / "artifacts" / "config" / "config.yaml").read_text())
    tiling = config["analyzer"]["tiling"]
    assert tiling["min_period_px"] == 5 and "checkerboard_strides" in tiling
    assert config["run"]["tags"] == {"lr": 0.1} or config["run"]["tags"] == {"lr": "0.1"}
    assert isinstance(s.backends[0], LocalBackend)


def test_printed_commands_work_in_a_fresh_shell(tmp_path):
    """``trackdiag ui`` as finish() prints it, run from another folder with an empty PATH (no venv)."""
    from mlflow import MlflowClient

    db = tmp_path / "store" / "mlruns.db"
    db.parent.mkdir()
    MlflowClient(f"sqlite:///{db}").search_experiments()  # create the store
    from trackdiag.ui import store_uri

    command = shell_command("trackdiag", "ui", "--store", store_uri(f"sqlite:///{db}"), "--print")
    argv = shlex.split(command)
    assert Path(argv[0]).is_absolute()
    env = {"HOME": str(tmp_path), "PATH": "/nonexistent"}  # no venv on the PATH, nothing activated
    if os.environ.get("PYTHONPATH"):  # the checkout under test, when it is not the installed one
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    out = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ui = shlex.split(out.stdout.strip())
    assert Path(ui[0]).is_absolute() and ui[1:4] == ["-m", "mlflow", "ui"]
    assert ui[ui.index("--backend-store-uri") + 1] == f"sqlite:///{db}"
    assert ui[ui.index("--host") + 1] == "127.0.0.1"
    missing = subprocess.run([*argv[:-2], f"sqlite:///{tmp_path / 'nothing.db'}", "--print"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no MLflow database" in missing.stderr


def test_trackdiag_ui_is_a_subcommand():
    from trackdiag.cli import SUBCOMMANDS

    assert SUBCOMMANDS["ui"][0] == "trackdiag.ui"


def test_wandb_run_summary_holds_the_verdict(wandb_env):
    from trackdiag.io.logreaders import iter_wandb_records, wait_for_wandb_run

    cfg = {"analyzer": {"level": {"_target_": "tests.core.test_findings.LevelAnalyzer",
                                  "schedule": {"every": 10}}},
           "backend": {"wandb": {"mode": "offline", "dir": str(wandb_env / "wb")}}}
    s = trackdiag.init(config=cfg, overrides=["analyzer=[]"], allow_external_targets=True, on_error="raise",
                       out_dir=str(wandb_env / "out"), run_name="wb")
    for step in LEVELS:
        s.log(step, brightness(LEVELS[step]))
    assert s.finish().clean
    run_dir = next((wandb_env / "wb" / "wandb").glob("offline-run-*"))
    run = wait_for_wandb_run(run_dir)
    assert run.summary["trackdiag/verdict"] == "bad" and run.summary["trackdiag/causes"] == "bright"
    assert "since step 80" in run.summary["trackdiag/findings"]
    notes = [r.run.notes for r in iter_wandb_records(run_dir) if r.WhichOneof("record_type") == "run"]
    assert any("Problem found" in n for n in notes), notes


def test_limits_are_drawn_and_shown_next_to_the_evidence(tmp_path):
    from trackdiag.metricspec import MetricSpec, register_metrics
    from trackdiag.plots.limits import limits_figure
    from trackdiag.report.folder import Section, write_report

    register_metrics("limitsdemo", [MetricSpec("grid_s8", goal="min", warn=0.1, bad=0.3),
                                    MetricSpec("sharpness", goal="max", warn=0.5, bad=0.2),
                                    MetricSpec("period_px", goal="none")])
    assert limits_figure("limitsdemo", {"period_px": 8.0}) is None  # nothing with a limit: no figure
    img = limits_figure("limitsdemo", {"grid_s8": 0.35, "sharpness": 0.9, "period_px": 8.0})
    assert img is not None
    r, g, b = (img[..., i].astype(int) for i in range(3))
    red = (r > 170) & (g < 80) & (b < 80)  # the bad bar and bad lines
    orange = (r > 200) & (g > 130) & (g < 190) & (b < 60)  # the warn lines
    green = (g > 100) & (r < 80) & (b < 80)  # the fine bar
    assert red.sum() > 200 and orange.sum() > 20 and green.sum() > 200
    v = Verdict(code="grid_s8", severity="bad", title="8-px grid", evidence={"grid_s8": 0.35}, fix="f")
    page = write_report(tmp_path,
                        [Section(title="t", verdicts=[v], summary={"grid_s8": 0.35}, analyzer="limitsdemo")])
    html = page.read_text()
    assert "grid_s8 = 0.35 <span class='limit'>(limit: warn ≥ 0.1, bad ≥ 0.3)</span>" in html
    assert "<th>limit</th>" in html  # the full table has a limit column
