"""The examples run with small settings, and what they logged is read back and checked, not only their exit
code."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))

import toy_upsampler  # noqa: E402 - importable only once examples/ is on sys.path (above)

CB = "trackdiag/tiling/checkerboard_score"


def polyphase_spread(y: torch.Tensor) -> float:
    """Spread of the 2×2 polyphase means of the interior of ``y`` (B×C×H×W): 0 for a grid-free image.

    16 px are cut at each border: the zero padding of the three 3×3 layers reaches 4 + 2 + 1 output pixels in.
    """
    inner = y[..., 16:-16, 16:-16]
    phases = torch.stack([inner[..., i::2, j::2].mean() for i in (0, 1) for j in (0, 1)])
    return float(phases.max() - phases.min())


def test_uneven_overlap_is_in_the_architecture_not_in_the_data():
    """On a constant input, transposed conv k3 s2 gives a period-2 grid at init; resize→conv gives none."""
    x = torch.full((1, 3, 16, 16), 0.5)
    torch.manual_seed(0)
    deconv = toy_upsampler.Decoder("deconv")
    torch.manual_seed(0)
    resize = toy_upsampler.Decoder("resize")
    with torch.no_grad():
        d, r = deconv(x), resize(x)
    assert d.shape == r.shape == (1, 3, 64, 64)
    assert polyphase_spread(d) > 1e-3
    assert polyphase_spread(r) < 1e-6


from tests.conftest import TOY_CHECKPOINTS as CHECKPOINTS  # noqa: E402 - the session's demo run (toy_run)
from tests.conftest import TOY_STEPS as STEPS  # noqa: E402


def _runs(client: MlflowClient) -> dict:
    exp = client.get_experiment_by_name(toy_upsampler.EXPERIMENT)
    return {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}


def _checkerboard(client: MlflowClient, run) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run.info.run_id, CB)}


@pytest.mark.slow
def test_toy_demo_logs_both_runs_with_figures_and_reports(toy_run):
    work, _ = toy_run
    client = MlflowClient(f"sqlite:///{work / 'mlruns.db'}")
    runs = _runs(client)
    assert {"toy-deconv", "toy-resize"} <= set(runs)
    for name in ("toy-deconv", "toy-resize"):
        run = runs[name]
        assert run.info.status == "FINISHED"
        assert run.data.tags["demo.variant"] == name.split("-")[1]
        assert sorted(_checkerboard(client, run)) == CHECKPOINTS
        history = client.get_metric_history(run.info.run_id, "trackdiag/loss/train_loss")
        assert sorted(m.step for m in history) == list(range(STEPS))
        images = {a.path.split("+")[0] for a in client.list_artifacts(run.info.run_id, "images")}
        for fig in ("tiling~radial_profile", "tiling~local_period_px", "pixel~pixel_overlay"):
            assert any(fig in path for path in images), (name, fig, sorted(images))
        report = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
        assert {"report/index.html", "report/summary.json", "report/samples.png"} <= report


@pytest.mark.slow
def test_toy_demo_deconv_shows_the_checkerboard_and_resize_does_not(toy_run):
    from trackdiag.analyzers.tiling_limits import CHECKERBOARD_WARN

    work, stdout = toy_run
    client = MlflowClient(f"sqlite:///{work / 'mlruns.db'}")
    runs = _runs(client)
    deconv, resize = _checkerboard(client, runs["toy-deconv"]), _checkerboard(client, runs["toy-resize"])
    final = CHECKPOINTS[-1]
    # the CI-sized demo's resize-conv keeps a small parity imbalance (0.004-0.008, nearest resize then conv);
    # the deconv's is several times larger at every trained checkpoint
    assert deconv[final] >= CHECKERBOARD_WARN
    assert deconv[final] > 3 * resize[final]
    # at every trained checkpoint the deconv's parity imbalance is several times the resize-conv's
    assert all(deconv[s] > 3 * resize[s] for s in CHECKPOINTS[1:]), (deconv, resize)
    reports = {v: work / "out" / "reports" / v for v in ("deconv", "resize")}
    d = json.loads((reports["deconv"] / "summary.json").read_text())
    r = json.loads((reports["resize"] / "summary.json").read_text())
    assert d["checkerboard_score"] >= CHECKERBOARD_WARN
    assert d["checkerboard_score"] > 3 * r["checkerboard_score"]
    assert "Checkerboard" in (reports["deconv"] / "index.html").read_text()
    verdict = stdout[stdout.index("Verdict"):]
    deconv_line = next(line for line in verdict.splitlines() if line.strip().startswith("deconv"))
    assert "Checkerboard" in deconv_line
    # a command that works pasted into a fresh shell: absolute paths to the program and the store
    line = next(x for x in stdout.splitlines() if " ui --store " in x).split()
    assert Path(line[0]).is_absolute() and Path(line[0]).is_file(), line
    assert line[-1].startswith("sqlite:////") and line[-1].endswith("/mlruns.db"), line


@pytest.mark.slow
def test_toy_demo_ranks_the_checkpoints(toy_run):
    work, stdout = toy_run
    table = json.loads((work / "out" / "comparison" / "comparison.json").read_text())
    rows = table["rows"] if isinstance(table, dict) and "rows" in table else table
    assert len(rows) == 2 * len(CHECKPOINTS)
    client = MlflowClient(f"sqlite:///{work / 'mlruns.db'}")
    assert "comparison" not in _runs(client)  # the comparison run has its own experiment
    comparisons = client.get_experiment_by_name(toy_upsampler.EXPERIMENT + "-comparisons")
    assert [r.info.run_name for r in client.search_runs([comparisons.experiment_id])] == ["comparison"]
    # A trained resize-conv checkpoint wins (its trained checkpoints are within noise of each other).
    best = re.search(r"best checkpoint: (\S+) @ step (\d+)", stdout)
    assert best is not None, stdout
    assert best.group(1) == "toy-resize" and int(best.group(2)) in CHECKPOINTS[1:], stdout
    for variant in ("deconv", "resize"):
        for step in CHECKPOINTS:
            state = torch.load(work / "out" / "checkpoints" / variant / f"step_{step:05d}.pt",
                               weights_only=True)
            model = toy_upsampler.Decoder(variant)
            model.load_state_dict(state)  # a real, loadable checkpoint of that architecture


@pytest.fixture
def _fresh_accelerate_state():
    """The example builds an Accelerator; its process-wide state must not leak into other tests."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.slow
def test_diffusers_lora_example_feeds_every_input(tmp_path, monkeypatch, _fresh_accelerate_state):
    """A real UNet2DModel + peft LoRA + accelerate: the store holds what the loop computed, step by step."""
    import diffusers_lora

    monkeypatch.chdir(tmp_path)
    # finish() draws figures for a time bounded by the session's age (issue 15), leaving the rest in the spool
    # for sync: on a loaded CI machine a 4-step run's figures could land there. This test judges what the loop
    # fed, so it lets finish() draw them all (still within worker.flush_timeout_s).
    overrides = diffusers_lora.analyzer_overrides
    monkeypatch.setattr(diffusers_lora, "analyzer_overrides", lambda *a, **k: [
        *overrides(*a, **k), "worker.figure_wait_min_s=600", "worker.upload_wait_min_s=600"])
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    steps = 4
    args = diffusers_lora.build_parser().parse_args(["--steps", str(steps), "--size", "32", "--batch", "2",
                                                     "--out", "lora", "--tracking-uri", uri])
    result = diffusers_lora.train(args)
    assert result.summary.clean, str(result.summary)
    # Only the adapter trained.
    assert result.trainable and all("lora_" in n for n in result.trainable)
    adapted = {n.split(".lora_")[0].rsplit(".", 2)[-1] for n in result.trainable}  # e.g. ...resnets.0.conv1
    assert adapted >= {"to_q", "to_k", "to_v", "conv1", "conv2"}
    assert any(".to_out.0.lora_" in n for n in result.trainable)
    assert result.lora_changed and result.base_unchanged

    client = MlflowClient(uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "lora-r4"
    assert run.data.params["config.rank"] == "4"  # init_trackers(config=...) through the accelerate tracker

    def hist(key):
        return {m.step: m.value for m in client.get_metric_history(result.run_id, key)}

    # The per-sample losses reached the loss analyzer; accelerate's scalar is the same batch mean.
    train_loss, scalar = hist("trackdiag/loss/train_loss"), hist("train/loss")
    assert [train_loss[s] for s in range(steps)] == pytest.approx(result.losses, rel=1e-5)
    assert [scalar[s] for s in range(steps)] == pytest.approx(result.losses, rel=1e-5)
    # The latents before and after the UNet: x_t and the epsilon prediction, channel by channel.
    for name in ("in", "out"):
        means = hist(f"trackdiag/latent/{name}/c0/mean")
        assert [means[s] for s in range(steps)] == pytest.approx(result.latent_c0_means[name], rel=1e-4,
                                                                 abs=1e-6)
    # The x0 estimate reached the tiling analyzer at every step.
    assert sorted(hist("trackdiag/tiling/fundamental_period_px")) == list(range(steps))
    # Figures of the tiling and latent analyzers (rendered on the first analysis, --figures-every 10).
    images = {a.path for a in client.list_artifacts(result.run_id, "images")}
    assert any("tiling~radial_profile" in p for p in images) and any("latent~in~" in p for p in images)
