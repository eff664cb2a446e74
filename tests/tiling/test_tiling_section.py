"""The tiling report: ``trackdiag.diagnose(...)`` and ``python -m trackdiag.diagnose --pred ...``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support.tiling_cases import one_thread
from trackdiag.analyzers.tiling import SEED_KEYS
from trackdiag.diagnose import main
from trackdiag.report.sections.tiling import diagnose
from trackdiag.testing import synth as S

FILES = {"radial_profile.png", "fft_log_hann.png", "fft_log_nohann.png", "acf.png", "local_period_px.png",
         "local_period_bands.png", "summary.json", "local_period_px.npy", "index.html"}


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


def _png(t: torch.Tensor, path) -> str:
    arr = (t.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    Image.fromarray(arr if arr.ndim == 2 else arr.transpose(1, 2, 0)).save(path)
    return str(path)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiling_imgs")
    g = torch.Generator().manual_seed(40)
    return {
        "tiles": _png(S.to_rgb(S.tiles(256, 256, period_px=16.0, generator=g), tint=(1, 0.9, 0.8)),
                      root / "tiles.png"),
        "band": _png(S.band_doubled(256, 256, period_px=8.0, band=(0.4, 0.65), generator=g),
                     root / "band.png"),
        "deconv": _png(S.upsample_x2(S.tiles(128, 128, period_px=12.0, generator=g)), root / "deconv.png"),
        "ref": _png(S.tiles(128, 128, period_px=16.0, generator=g), root / "ref.png"),
        "mask": _png(S.ellipse_mask(256, 256).float(), root / "mask.png"),
        "broken": str(root / "broken.png"),
    }


def test_diagnose_takes_paths_pil_numpy_and_tensors(images, tmp_path):
    (tmp_path / "x").write_bytes(b"")
    by_path = diagnose(images["tiles"])
    assert list(by_path)[: len(SEED_KEYS)] == list(SEED_KEYS)  # the seed's keys first, in its order
    assert by_path["fundamental_period_px"] == pytest.approx(16.0, rel=0.03)
    assert by_path["fstar_source"] == "pred" and np.isnan(by_path["ref_radius_bin"])
    pil = Image.open(images["tiles"])
    arr = np.array(pil)
    ten = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    for other in (diagnose(pil), diagnose(arr), diagnose(ten)):
        assert other["fundamental_period_px"] == pytest.approx(by_path["fundamental_period_px"], rel=1e-4)
    with_ref = diagnose(images["tiles"], ref=images["ref"], mask=images["mask"])
    assert with_ref["fstar_source"] == "ref" and with_ref["ref_period_px"] == pytest.approx(16.0, rel=0.03)
    assert with_ref["ref_radius_bin"] == pytest.approx(256 / 16.0, rel=0.03)
    assert with_ref["valid_px_frac"] < 0.6


def test_diagnose_writes_the_report_folder(images, tmp_path):
    out = tmp_path / "rep"
    summary = diagnose(images["band"], out_dir=out)
    assert FILES <= {p.name for p in out.iterdir()}
    on_disk = json.loads((out / "summary.json").read_text())
    assert set(SEED_KEYS) <= set(on_disk) and on_disk["band_axis_hint"] == summary["band_axis_hint"] == "rows"
    assert on_disk["band_score"] == pytest.approx(summary["band_score"])
    lp = np.load(out / "local_period_px.npy")
    assert lp.ndim == 2 and np.nanmedian(lp) == pytest.approx(8.0, rel=0.1)
    html = (out / "index.html").read_text()
    assert "Findings" in html and "full-width band at twice the period" in html and "band_score" in html
    # The page reads top-down: the verdict, the diagnosed image with the zones marked, the findings, the other
    # figures, and the full table last, collapsed.
    order = [html.index(s) for s in ("class='banner bad'", "src='diagnosed.png'", "<h3>Findings</h3>",
                                      "src='radial_profile.png'", "<details><summary>All ")]
    assert order == sorted(order), order
    assert html.index("<details>") < html.index("band_score</td>")
    assert "seed" not in html.lower().replace("seed's", "")  # no internal references on the page
    assert "resize→conv" in html or "resize-conv" in html or "resize" in html


def test_cli_single_prediction(images, tmp_path):
    out = tmp_path / "one"
    assert main(["--pred", images["deconv"], "--out", str(out), "--no-progress"]) == 0
    assert FILES <= {p.name for p in out.iterdir()}
    s = json.loads((out / "summary.json").read_text())
    assert s["checkerboard_score"] > 0.1
    assert "Checkerboard" in (out / "index.html").read_text()


def test_cli_batch_keeps_going_past_an_unreadable_file(images, tmp_path, capsys):
    Image.new("L", (4, 4)).save(tmp_path / "unused.png")
    with open(images["broken"], "wb") as fh:
        fh.write(b"this is not an image")
    out = tmp_path / "many"
    rc = main(["--pred", images["tiles"], images["broken"], images["band"], "--ref", images["ref"],
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "broken.png" in lines[0] and "cannot decode" in lines[0]
    assert "tiling" in err  # the progress bar
    for sub in ("tiles", "band"):
        assert FILES <= {p.name for p in (out / sub).iterdir()}
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["status"] for r in rows] == ["ok", "ok", "error"]
    assert float(rows[0]["ref_period_px"]) == pytest.approx(16.0, rel=0.03)
    assert rows[2]["pred"].endswith("broken.png") and "cannot decode" in rows[2]["error"]
    assert (out / "index.html").exists()


def test_cli_missing_file_exits_non_zero_with_one_line(tmp_path, capsys):
    rc = main(["--pred", str(tmp_path / "nope.png"), "--out", str(tmp_path / "o"), "--no-progress"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 1 and len(err) == 1 and "nope.png" in err[0]
