"""The design notes' own code blocks run as written (only the import line and the script name changed).

Seed 000 §3.2 (``run_diagnostics_from_tensors`` with the user's SummaryWriter) and §3.1 (the script),
seed 001 §5.2 (``LossDiagnostics(config).log_step``) and §5.1 (the script with the §6 flags). The writer is
read back with TensorBoard's own reader, the MLflow run with MLflow's client.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"

#: Seed 000 §4: the keys of the returned dict.
SECTION4_KEYS = ("fundamental_radius_bin", "acf_first_peak_radius_bin", "E2f_over_Ef", "Ehalf_over_Ef",
                 "axis_ratio_at_f", "shift_mse_dx1", "shift_mse_dy1", "resize_mse_downUp", "resize_delta_r",
                 "ref_radius_bin", "band_axis_hint", "band_base_period_px", "band_row_frac_max",
                 "band_col_frac_max", "band_row_max_run", "band_col_max_run", "band_score", "band_max_run")

# Seed 000 §3.2 verbatim, with `import diag_tiling as dt` → `import trackdiag.seed.diag_tiling as dt`.
TILING_BLOCK = '''
from torch.utils.tensorboard import SummaryWriter
import trackdiag.seed.diag_tiling as dt

writer = SummaryWriter("runs/tiling_diag")
global_step = 0
diag_every = 500

for epoch in range(num_epochs):
    for batch in train_loader:
        pred = model(batch["image"], **batch["cond"])   # B×C×H×W, [0,1]
        mask = batch["mask"]                             # B×1×H×W

        loss = F.mse_loss(pred, batch["target"]); loss.backward(); optimizer.step(); optimizer.zero_grad(set_to_none=True)

        if global_step % diag_every == 0:
            out_dir = f"diag_reports/e{epoch:03d}_s{global_step:07d}"
            stats = dt.run_diagnostics_from_tensors(
                pred_bchw=pred.detach(),
                mask_bchw=mask.detach(),
                out_dir=out_dir,
                ref_chw=None,                # или тайловый патч
                global_step=global_step,
                writer=writer,
                tag_prefix="train",
            )
            print("[diag]", stats)
        global_step += 1

writer.close()
'''

# Seed 001 §5.2, with `from diagnose_loss import ...` → `from trackdiag.seed.diagnose_loss import ...`,
# inside the training loop the note places it in.
LOSS_BLOCK = '''
from trackdiag.seed.diagnose_loss import LossDiagnostics

diag = LossDiagnostics(config)
for step, batch in enumerate(train_loader):
    loss = train_step(batch)
    ema_loss = 0.9 * ema_loss + 0.1 * float(loss)
    if step % config.diag_interval == 0:
        diag.log_step(step, loss, ema_loss, model, batch)
'''


def _walls(n: int, size: int = 128, seed: int = 0) -> torch.Tensor:
    """``n×3×size×size`` brick-like walls in [0, 1] (tiles with grout, per-tile colour, grain)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = []
    for i in range(n):
        period = 16 + 2 * i
        grout = ((yy % period) < 2) | (((xx + (yy // period % 2) * period // 2) % (2 * period)) < 2)
        base = 0.55 + 0.1 * torch.rand(3, 1, 1, generator=g)
        img = base.expand(3, size, size).clone()
        img[:, grout] = 0.25
        img += 0.02 * torch.randn(3, size, size, generator=g)
        out.append(img.clamp(0, 1))
    return torch.stack(out)


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, image: torch.Tensor, **cond: object) -> torch.Tensor:
        return torch.sigmoid(self.conv(image) + torch.logit(image.clamp(0.01, 0.99)))


def test_tiling_block_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = _Model()
    walls = _walls(4)
    train_loader = [{"image": walls[i:i + 2], "target": walls[i:i + 2], "cond": {},
                     "mask": torch.ones(2, 1, 128, 128)} for i in (0, 2)]
    scope = {"num_epochs": 1, "train_loader": train_loader, "model": model, "F": torch.nn.functional,
             "optimizer": torch.optim.SGD(model.parameters(), lr=1e-3)}
    exec(compile(TILING_BLOCK, "seed000_3_2", "exec"), scope)
    printed = capsys.readouterr().out
    assert printed.startswith("[diag] {")
    keys = set(re.findall(r"'([A-Za-z_0-9]+)': ", printed))
    missing = [k for k in SECTION4_KEYS if k not in keys and k != "ref_radius_bin"]  # ref_chw=None
    assert not missing, missing
    stats = scope["stats"]
    assert isinstance(stats["verdicts"], list)
    assert all(set(v) == {"code", "severity", "title", "evidence", "fix"} for v in stats["verdicts"])

    # the user's writer holds the scalars, figures and verdict text under tag_prefix, written before close()
    acc = EventAccumulator(str(tmp_path / "runs" / "tiling_diag"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    for key in ("fundamental_radius_bin", "E2f_over_Ef", "band_score"):
        (ev,) = acc.Scalars(f"train/tiling/{key}")
        assert ev.step == 0 and math.isclose(ev.value, stats[key], rel_tol=1e-5, abs_tol=1e-7)
    assert all(t.startswith("train/") for t in scalars)
    assert "train/tiling/radial_profile" in acc.Tags()["images"]
    assert "train/tiling/verdicts/text_summary" in acc.Tags()["tensors"]
    # and the report folder of §3.2's out_dir
    report = tmp_path / "diag_reports" / "e000_s0000000"
    assert (report / "index.html").is_file() and (report / "radial_profile.png").is_file()


def test_returned_dict_is_the_batch_mean_of_log(tmp_path: Path) -> None:
    """The same aggregation as trackdiag.log(): the dict equals what a session logs for the same batch."""
    import mlflow

    import trackdiag
    import trackdiag.seed.diag_tiling as dt

    walls = _walls(3, seed=1)
    stats = dt.run_diagnostics_from_tensors(pred_bchw=walls, mask_bchw=None, global_step=3,
                                            writer=_NullWriter(tmp_path / "tb"), tag_prefix="val")
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    session = trackdiag.init(backend="mlflow", tracking_uri=uri, run_name="ref", out_dir=str(tmp_path),
                             overrides=["analyzer=[tiling]", "analyzer.tiling.schedule.every=1"])
    trackdiag.log(3, walls)
    session.finish()
    client = mlflow.MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    for key in ("fundamental_radius_bin", "E2f_over_Ef", "band_score", "checkerboard_score"):
        (point,) = client.get_metric_history(run.info.run_id, f"trackdiag/tiling/{key}")
        assert math.isclose(point.value, stats[key], rel_tol=1e-5, abs_tol=1e-7), key


class _NullWriter:
    """A real SummaryWriter in a temporary folder (the seed API writes to whatever writer it gets)."""

    def __new__(cls, log_dir: Path):  # type: ignore[misc]
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(log_dir))


def test_without_writer_results_go_to_the_embedded_mlflow_store(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    import trackdiag.seed.diag_tiling as dt

    monkeypatch.chdir(tmp_path)
    walls = _walls(2, seed=2)
    for step in (0, 500):
        dt.run_diagnostics_from_tensors(pred_bchw=walls, global_step=step, tag_prefix="train")
    dt.reset()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (run,) = [r for r in runs if r.info.run_name == "train"]
    hist = client.get_metric_history(run.info.run_id, "trackdiag/tiling/band_score")
    assert sorted(m.step for m in hist) == [0, 500]


@pytest.mark.parametrize("config_kind", ["dict", "dictconfig", "object"])
def test_loss_block_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config_kind: str) -> None:
    """§5.2 with a config as a dict-like DictConfig or an attribute object; a planted spike is returned."""
    import mlflow
    from omegaconf import OmegaConf

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(3)
    spike_at = 160
    values = {"diag_interval": 2, "spike_sigma": 3.0, "run_name": f"loss-{config_kind}"}

    class Cfg:
        diag_interval = 2
        spike_sigma = 3.0
        run_name = f"loss-{config_kind}"

    config = {"dict": OmegaConf.create(values), "dictconfig": OmegaConf.create(values), "object": Cfg()}[
        config_kind]
    model = _Model()
    returned: list = []

    def train_step(batch: dict) -> torch.Tensor:
        level = 0.2 * math.exp(-batch["i"] / 400) * math.exp(rng.normal(0, 0.04))
        return torch.tensor(level * (8.0 if batch["i"] == spike_at else 1.0))

    train_loader = [{"i": i, "sample_ids": [f"s{i}"]} for i in range(240)]
    scope = {"config": config, "train_loader": train_loader, "train_step": train_step, "model": model,
             "ema_loss": 0.2}
    scope["returned"] = returned
    exec(compile(LOSS_BLOCK.replace("diag.log_step(step, loss, ema_loss, model, batch)",
                                    "returned.extend(diag.log_step(step, loss, ema_loss, model, batch))"),
                 "seed001_5_2", "exec"), scope)
    scope["diag"].finish()
    spikes = [e for e in returned if e.kind == "spike"]
    assert [e.step for e in spikes] == [spike_at]
    assert spikes[0].samples.startswith(f"s{spike_at}")
    mlflow_uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (run,) = [r for r in runs if r.info.run_name == f"loss-{config_kind}"]
    hist = client.get_metric_history(run.info.run_id, "trackdiag/loss/train_loss")
    assert sorted(m.step for m in hist)[:3] == [0, 2, 4]
    user_ema = client.get_metric_history(run.info.run_id, "trackdiag/loss/user_ema_loss")
    assert len(user_ema) > 0


def test_scripts_take_the_notes_flags(tmp_path: Path) -> None:
    """§3.1 and §5.1 command lines, as modules and as console commands."""
    from PIL import Image

    wall = (_walls(1)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    Image.fromarray(wall).save(tmp_path / "replaced_wall.png")
    Image.fromarray(np.full((128, 128), 255, np.uint8)).save(tmp_path / "wall_mask.png")
    Image.fromarray(wall[:64, :64]).save(tmp_path / "tile.png")
    out = subprocess.run([sys.executable, "-m", "trackdiag.seed.diag_tiling", "--pred",
                          str(tmp_path / "replaced_wall.png"), "--ref", str(tmp_path / "tile.png"),
                          "--mask", str(tmp_path / "wall_mask.png"), "--out",
                          str(tmp_path / "diag_report_ref")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "diag_report_ref" / "summary.json").is_file()

    noisy = np.clip(wall.astype(np.int16) + np.random.default_rng(0).integers(-6, 7, wall.shape), 0, 255)
    Image.fromarray(noisy.astype(np.uint8)).save(tmp_path / "out.png")
    script = Path(sys.executable).parent / "diagnose-loss"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "trackdiag.seed.diagnose_loss"]
    out = subprocess.run(cmd + ["--images", str(tmp_path / "replaced_wall.png"), str(tmp_path / "out.png"),
                                "--heatmap-scale", "4", "--max-images", "2", "--report",
                                str(tmp_path / "out_report")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out_report" / "index.html").is_file()
    usage = subprocess.run(cmd + ["--help"], capture_output=True, text=True, timeout=120).stdout
    for flag in ("--logdir", "--images", "--latents", "--report", "--fft-threshold", "--spike-sigma",
                 "--heatmap-scale", "--max-images"):
        assert flag in usage


@pytest.mark.skipif(not SEEDS.is_dir(),
                    reason="the design notes (../shared/seeds) are not beside this checkout")
def test_blocks_match_the_notes() -> None:
    """The blocks above are the notes' own, but for the import line (and the filled-in `...`)."""
    note0 = next(SEEDS.glob("000_*.txt")).read_text(encoding="utf-8")
    note1 = next(SEEDS.glob("001_*.txt")).read_text(encoding="utf-8")
    ours = TILING_BLOCK.replace("import trackdiag.seed.diag_tiling as dt", "import diag_tiling as dt")
    ours = ours.replace('F.mse_loss(pred, batch["target"])', "...")
    assert ours.strip() in note0.replace("\r\n", "\n")
    assert "diag = LossDiagnostics(config)" in note1
    assert "diag.log_step(step, loss, ema_loss, model, batch)" in note1
    assert "from diagnose_loss import LossDiagnostics" in note1
