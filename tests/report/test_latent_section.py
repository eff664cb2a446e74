"""``python -m trackdiag.diagnose --latents DIR``: saved latents with planted problems, end to end."""

from __future__ import annotations

import argparse
import csv
import json
import math

import numpy as np
import pytest
import torch

from tests.analyzers.test_latent_analyzer import clean_batch, run
from trackdiag.analyzers.latent import LatentAnalyzer
from trackdiag.errors import InputFileError
from trackdiag.report.sections import latent as latent_section


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    latent_section.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(scope="module")
def latent_dir(tmp_path_factory):
    """12 files: clean ones, one with stripes after the UNet, one periodic, then a drifted output."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("latents")
    batches = [clean_batch(300 + i) for i in range(12)]
    rows = torch.randn(64, generator=torch.Generator().manual_seed(9))     # aperiodic horizontal stripes
    batches[9]["out"][:, 3] += 0.8 * rows[None, :, None]
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    batches[10]["out"][:, 0] = 0.5 * batches[10]["out"][:, 0] + 2 * torch.cos(math.pi * xx / 4) * torch.cos(
        math.pi * yy / 4)
    batches[11]["out"] = batches[11]["out"] * 1.5 + 0.5
    for i, b in enumerate(batches):
        if i % 3 == 0:
            save_file(b, str(root / f"step_{i * 100}.safetensors"))
        elif i % 3 == 1:
            torch.save(b, root / f"step_{i * 100}.pt")
        else:
            np.savez(root / f"step_{i * 100}.npz", **{k: v.numpy() for k, v in b.items()})
    (root / "step_50.pt").write_bytes(b"\x80\x04garbage")                 # unreadable: listed, not fatal
    return root, batches


# the planted garbage file's header
@pytest.mark.slow  # 7.6 s CPU, 35 s wall on a loaded 2-core box
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_section_flags_the_planted_files_and_matches_the_loop(latent_dir, tmp_path):
    root, batches = latent_dir
    (sec,) = latent_section.run(_args("--latents", str(root), "--max-images", "2"), tmp_path, progress=False)
    with (tmp_path / "latents.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * len(batches)
    flags = {(r["file"], r["latent"]): r["flags"] for r in rows}
    # stripes also change channel 3's std, which the (sensitive) drift test may report too
    assert {"stripes"} <= set(flags[("step_900.safetensors", "out")].split(",")) <= {"stripes", "drift"}
    assert {"periodic"} <= set(flags[("step_1000.pt", "out")].split(",")) <= {"periodic", "drift"}
    assert "drift" in flags[("step_1100.npz", "out")]
    for (file, name), f in flags.items():
        if file not in ("step_900.safetensors", "step_1000.pt", "step_1100.npz") or name == "in":
            assert f == "none", (file, name, f)
    # the same analyzer in the loop, fed the same batches in the same order, gives the same numbers
    an = LatentAnalyzer()
    for i, b in enumerate(batches):
        res = run(an, {"out": b["out"]}, i)                                 # drift is tracked per name
        row = next(r for r in rows if r["file"] == f"step_{i * 100}" + (".safetensors", ".pt", ".npz")[i % 3]
                   and r["latent"] == "out")
        assert float(row["stripe_rows_max"]) == pytest.approx(res.metrics["out/stripe_rows_max"], rel=1e-5)
        if i:
            assert float(row["drift"]) == pytest.approx(res.metrics["out/drift"], rel=1e-5)
    s = sec.summary
    assert s["latent_files"] == 13 and s["latent_files_read"] == 12 and s["latent_files_failed"] == 1
    assert (s["files_stripes"], s["files_periodic"], s["files_nonfinite"]) == (1, 1, 0)
    assert s["files_drift"] >= 1
    assert "step_50.pt" in str(sec.tables["unreadable files"])
    causes = " | ".join(v.cause for v in sec.verdicts)
    assert "stripes" in causes and "Periodic" in causes and "drifts" in causes
    assert (tmp_path / "latent_drift.png").stat().st_size > 5000
    pngs = [f.path for f in sec.figures]
    flagged_first = {p.split("__")[0] for p in pngs if p.startswith("latents/")}
    assert flagged_first == {"latents/step_900", "latents/step_1000"}
    assert all((tmp_path / p).is_file() for p in pngs)


def test_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no latent files"):
        latent_section.run(_args("--latents", str(tmp_path / "empty")), tmp_path / "o", progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.npy").write_bytes(b"")
    with pytest.raises(InputFileError, match="none of the 1 latent files could be read.*empty"):
        latent_section.run(_args("--latents", str(tmp_path / "bad")), tmp_path / "o", progress=False)


def test_cli_mixes_logdir_and_latents_in_one_report(tmp_path):
    from trackdiag.diagnose import main

    root = tmp_path / "lat"
    root.mkdir()
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    # a 4-px lattice: 8 cells across the 32-px latent (periods are searched with at least 6 cells)
    lattice = 2 * torch.cos(math.pi * xx / 2) * torch.cos(math.pi * yy / 2)
    for i in range(3):
        b = clean_batch(400 + i, names=("out",), size=32)
        if i == 2:
            b["out"][:, 0] = 0.5 * b["out"][:, 0] + lattice
        torch.save(b, root / f"step_{i}.pt")
    log = tmp_path / "log.csv"
    log.write_text("step,train_loss\n" + "".join(f"{i},{1.0 / (1 + i)}\n" for i in range(300)))
    rc = main(["--latents", str(root), "--logdir", str(log), "--report", str(tmp_path / "rep"),
               "--no-progress", "--max-images", "1"])
    assert rc == 0
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["latent"]["files_periodic"] == 1 and summary["loss"]["loss_tag"] == "train_loss"
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "latent_drift.png" in html and "train_loss.png" in html
