"""``python -m trackdiag.diagnose --images IN OUT ... --mask M``: the pixel report section."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from trackdiag import diagnose
from trackdiag.errors import InputValueError
from trackdiag.report.folder import write_report
from trackdiag.report.sections import pixel as pixel_section

S = 128


def _parser():
    """The diagnose parser with the pixel section, plus the section that defines --mask when it exists."""
    modules = [pixel_section]
    try:
        modules.insert(0, importlib.import_module("trackdiag.report.sections.tiling"))
    except ImportError:
        pass
    parser = diagnose.build_parser(modules)
    if not any("--mask" in a.option_strings for a in parser._actions):
        parser.add_argument("--mask", default=None)  # normally defined by the tiling section
    return parser


def _texture(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.standard_normal((S, S)), 2)
    return np.clip(0.5 + 0.1 * x / x.std(), 0, 1)


def _save(a: np.ndarray, path: Path) -> str:
    Image.fromarray((np.clip(a, 0, 1) * 255).round().astype(np.uint8)).save(path)
    return str(path)


def _run(tmp_path: Path, argv: list[str]):
    out = tmp_path / "report"
    args = _parser().parse_args(["--report", str(out), "--no-progress", *argv])
    sections = pixel_section.run(args, out, progress=False)
    write_report(out, sections)
    return out, sections


def test_pairs_with_a_mask_find_the_defect_the_leak_and_write_the_report(tmp_path):
    inp = _texture(0)
    mask = np.zeros((S, S), bool)
    mask[16:96] = True
    clean_out = np.where(mask, _texture(1), inp)
    leaky_out = clean_out.copy()
    leaky_out[96:112, 20:60] = _texture(1)[96:112, 20:60]  # the edit spilled 16 px below the wall
    args = ["--images", _save(inp, tmp_path / "in.png"), _save(clean_out, tmp_path / "clean.png"),
            str(tmp_path / "in.png"), _save(leaky_out, tmp_path / "leaky.png"),
            "--mask", _save(mask.astype(float),
                            tmp_path / "m.png"), "--heatmap-scale", "2", "--max-images", "1"]
    out, sections = _run(tmp_path, args)
    (sec,) = sections
    pairs = {r["pair"]: r for r in sec.tables["pairs"]}
    assert set(pairs) == {"clean", "leaky"}
    assert pairs["clean"]["energy_out_frac"] < 1e-4 < 0.05 < pairs["leaky"]["energy_out_frac"]
    # the leak is absolute: in px beyond the mask at >= 3x the image's own noise level
    assert pairs["clean"]["leak_px"] == 0 and abs(pairs["leaky"]["leak_px"] - 16) <= 3
    assert pairs["clean"]["edited"] == 1 and pairs["leaky"]["edited"] == 1
    assert [v.code for v in sec.verdicts if v.code == "pixel_leak"] == ["pixel_leak"]
    assert len(sec.figures) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs"] == 2 and summary["pairs_with_leak"] == 1
    assert summary["energy_out_frac_max"] == pytest.approx(pairs["leaky"]["energy_out_frac"])
    with (out / "pixel_pairs.csv").open() as fh:
        assert len(fh.read().strip().splitlines()) == 3
    assert (out / "pixel_anomalies.csv").is_file()


def test_folders_pair_by_stem_and_bad_pairs_are_reported_not_fatal(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for i in range(2):
        _save(_texture(i), tmp_path / "a" / f"{i}.png")
        _save(_texture(i), tmp_path / "b" / f"{i}.png")
    _save(_texture(5), tmp_path / "a" / "odd.png")
    _save(_texture(5)[:64], tmp_path / "b" / "odd.png")  # size mismatch
    _save(_texture(6), tmp_path / "a" / "lonely.png")  # no partner: not a pair
    _, (sec,) = _run(tmp_path, ["--images", str(tmp_path / "a"), str(tmp_path / "b")])
    assert sorted(r["pair"] for r in sec.tables["pairs"]) == ["0", "1"]
    problems = sec.tables["problems"]
    assert [p["pair"] for p in problems] == ["odd"] and "must match" in problems[0]["error"]
    assert all(r["diff_mae"] == 0 for r in sec.tables["pairs"])


def test_odd_number_of_images_is_a_usage_error(tmp_path):
    with pytest.raises(InputValueError, match="IN OUT pairs"):
        _run(tmp_path, ["--images", "a.png"])


def test_stripes_give_the_rows_verdict(tmp_path):
    inp = _texture(3)
    out = inp.copy()
    out[8::16, :] += 0.3
    _, (sec,) = _run(tmp_path, ["--images", _save(inp, tmp_path / "i.png"), _save(out, tmp_path / "o.png")])
    assert sec.summary["anomaly_axis_hint"] == "rows" and sec.summary["anomaly_row_energy_frac"] > 0.9
    assert any("rows" in v.cause for v in sec.verdicts)
