"""``python -m trackdiag.dataset`` end to end on a folder with planted problems (parallel workers)."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from trackdiag.dataset import scan, write_flagged_csv
from trackdiag.dataset.__main__ import main

S = 128
CLEAN = [f"clean_{i:02d}" for i in range(12)]


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    x = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return x / x.std()


def _scene(rng: np.random.Generator, wall: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """RGB room: flat ceiling and floor (random greys), a wall band of random height; the band's mask."""
    top, bot = int(rng.integers(18, 34)), int(rng.integers(S - 34, S - 18))
    ramp = np.linspace(0, 1, S)[:, None] * np.ones((1, S))
    ceil_v, floor_v = rng.uniform(0.15, 0.85, 2)
    img = np.where(np.arange(S)[:, None] < top, ceil_v + 0.05 * ramp, floor_v - 0.05 * ramp)
    if wall is None:  # a non-periodic texture
        wall = 0.5 + 0.12 * _smooth_noise(rng, (S, S), 1.5)
    img[top:bot] = wall[top:bot]
    mask = np.zeros((S, S), bool)
    mask[top:bot] = True
    return np.clip(img[..., None] * rng.uniform(0.9, 1.1, 3), 0, 1), mask


def _u8(a: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(a, np.float64), 0, 1) * 255).round().astype(np.uint8)


def _build(root: Path) -> dict[str, set[str]]:
    """Write images/ and masks/; return the expected checks per image name (without suffix)."""
    imgs, msks = root / "images", root / "masks"
    imgs.mkdir(parents=True)
    msks.mkdir(parents=True)
    rng = np.random.default_rng(1)
    expected: dict[str, set[str]] = {}
    scenes = {}

    def add(name: str, rgb: np.ndarray, mask: np.ndarray | None, checks: set[str],
            suffix: str = ".png") -> None:
        Image.fromarray(_u8(rgb)).save(imgs / f"{name}{suffix}")
        if mask is not None:
            Image.fromarray(mask if mask.dtype == np.uint8 else _u8(mask)).save(msks / f"{name}.png")
        expected[name] = checks

    for i, name in enumerate(CLEAN):
        scenes[i] = _scene(rng)
        add(name, *scenes[i], set())
    for k in range(2):  # a 32 px tile repeated over the wall: an already tiled source
        tile = 0.5 + 0.12 * _smooth_noise(rng, (32, 32), 1.5)
        add(f"tiled_{k}", *_scene(rng, wall=np.tile(tile, (S // 32, S // 32))), {"tiled_texture"})
    rgb, m = _scene(rng)
    add("dark", rgb - rgb.mean() + 0.12, m, {"dark"})
    rgb, m = _scene(rng)
    add("low_contrast", 0.5 + 0.05 * (rgb - rgb.mean()), m, {"low_contrast"})
    add("dup_of_03", *scenes[3], {"duplicate"}, suffix=".bmp")  # same pixels, another format
    rgb, m = scenes[5]
    add("near_05", np.clip(rgb * 1.02 + 0.005 * rng.standard_normal(rgb.shape), 0, 1), m, {"near_duplicate"})
    broken = {
        "m_empty": (lambda m: np.zeros((S, S), np.uint8), "mask_empty"),
        "m_full": (lambda m: np.full((S, S), 255, np.uint8), "mask_full"),
        "m_size": (lambda m: _u8(m[:100, :100]), "mask_size_mismatch"),
        "m_soft": (lambda m: _u8(ndimage.gaussian_filter(m.astype(float), 4)), "mask_not_binary"),
        "m_inverted": (lambda m: _u8(~m), "mask_inverted"),
        "m_specks": (lambda m: _u8(m | _dots(S, rows=(2, 16), n=30, seed=5)), "mask_fragmented"),
        "m_pinholes": (lambda m: _u8(m & ~_dots(S, rows=(40, 86), n=25, seed=6)), "mask_holes"),
        "m_offset": (lambda m: _u8(np.roll(m, 4, axis=0)), "mask_offset"),
    }
    for name, (make, check) in broken.items():
        rgb, m = _scene(rng)
        add(name, rgb, make(m), {check})
    add("m_unreadable", _scene(rng)[0], None, {"mask_unreadable"})
    (msks / "m_unreadable.png").write_bytes(b"not a png")
    add("m_missing", _scene(rng)[0], None, {"mask_missing"})
    good = (imgs / "clean_00.png").read_bytes()
    (imgs / "z_truncated.png").write_bytes(good[: len(good) // 2])
    (imgs / "z_empty.jpg").write_bytes(b"")
    (imgs / "z_text.png").write_bytes(b"hello")
    for name in ("z_truncated", "z_empty", "z_text"):
        expected[name] = {"corrupt"}
    return expected


def _dots(s: int, *, rows: tuple[int, int], n: int, seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    d = np.zeros((s, s), bool)
    d[r.integers(*rows, n), r.integers(4, s - 4, n)] = True
    return d


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    expected = _build(root)
    report = root / "report"
    rc = main([str(root / "images"), "--masks", str(root / "masks"), "--report", str(report), "--workers",
               "2",
               "--no-progress"])
    assert rc == 0
    return root, expected, report


def _found(report: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    with (report / "flagged.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == ["path", "check", "reason"]
    for row in rows:
        assert row["reason"]
        path = Path(row["path"])
        found[path.stem if path.suffix else row["path"]].add(row["check"])
    return found


@pytest.mark.slow  # shares the scan of the planted folder (module fixture): 17 s on a loaded 2-core box
def test_every_planted_problem_is_found_with_its_check_and_clean_files_are_not(scanned):
    _, expected, report = scanned
    found = _found(report)
    for name, checks in expected.items():
        if checks:
            assert checks <= found.get(name, set()), (name, found.get(name))
        else:
            assert name not in found, (name, found[name])
    # Nothing else is flagged: every finding is on a file with a planted problem, with its planted check
    # (the dark image may also read as low-contrast, it is not required to).
    for name, checks in found.items():
        assert name in expected and expected[name], (name, checks)
        assert checks - expected[name] <= ({"low_contrast"} if name == "dark" else set()), (name, checks)


@pytest.mark.slow  # the same scan as the test above
def test_summary_and_report_files(scanned):
    root, expected, report = scanned
    summary = json.loads((report / "summary.json").read_text())
    assert summary["images"] == len(expected)
    assert summary["images_readable"] == len(expected) - 3
    assert summary["checks"]["corrupt"] == 3 and summary["checks"]["tiled_texture"] == 2
    assert summary["checks"]["crop_bias"] == 0 and summary["crop_bias"] is False
    assert summary["duplicate_groups"] == 1 and summary["near_duplicate_groups"] == 1
    assert summary["images_per_second"] > 0 and summary["workers"] == 2
    assert summary["period_measured"] == len(expected) - 3
    html = (report / "index.html").read_text()
    for fig in ("brightness.png", "contrast.png", "pixel_histogram.png", "periods.png", "centroids.png",
                "mask_prior.png", "examples_tiled_texture.png"):
        assert (report / "dataset" / fig).is_file() and f"dataset/{fig}" in html
    assert "m_inverted.png" in html  # the findings table


def test_crop_bias_is_a_dataset_level_row(tmp_path):
    imgs, msks = tmp_path / "images", tmp_path / "masks"
    imgs.mkdir()
    msks.mkdir()
    rng = np.random.default_rng(2)
    for i in range(10):  # walls always in the top part of the crop
        rgb, m = _scene(rng)
        top = int(rng.integers(0, 6))
        m = np.zeros((S, S), bool)
        m[top:top + 40] = True
        Image.fromarray(_u8(rgb)).save(imgs / f"{i}.png")
        Image.fromarray(_u8(m)).save(msks / f"{i}.png")
    import torch

    threads = torch.get_num_threads()
    res = scan(imgs, msks, workers=0, progress=False)  # no figures needed here: scan + the CSV writer
    assert torch.get_num_threads() == threads  # the in-process scan restores the caller's setting
    write_flagged_csv(res, tmp_path / "flagged.csv")
    rows = list(csv.DictReader((tmp_path / "flagged.csv").open(encoding="utf-8")))
    bias = [r for r in rows if r["check"] == "crop_bias"]
    assert len(bias) == 1 and bias[0]["path"] == str(imgs) and "top" in bias[0]["reason"]


def test_missing_folder_is_a_one_line_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), "--report", str(tmp_path / "r"), "--no-progress"]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_mask_is_the_documented_flag_and_masks_stays_an_alias(tmp_path):
    from trackdiag.dataset.__main__ import build_parser

    parser = build_parser()
    for flag in ("--mask", "--masks"):
        args = parser.parse_args([str(tmp_path / "images"), flag, str(tmp_path / "m"), "--report", "r"])
        assert args.masks == tmp_path / "m", flag
    # "--mask" alone would also parse as an abbreviation of "--masks": check the declared spellings
    action = next(a for a in parser._actions if a.dest == "masks")
    assert action.option_strings == ["--mask", "--masks"]
    assert parser.parse_args([str(tmp_path / "images"), "--report", "r"]).masks is None
