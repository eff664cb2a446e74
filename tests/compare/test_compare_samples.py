"""compare_ckpts in samples mode: the tiling analyzer on one folder of generated walls per checkpoint."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from trackdiag.compare.data import MissingRunError
from trackdiag.compare.samples import aggregate, parse_sets
from trackdiag.compare_ckpts import compare
from trackdiag.config import config_dir
from trackdiag.errors import ConfigError
from trackdiag.plots import save_rgb_png
from trackdiag.testing import synth

SIZE, PERIOD = 192, 12.0  # the regime the tiling analyzer's own separation tests use

if not (config_dir() / "analyzer" / "tiling.yaml").is_file():  # pragma: no cover - while the analyzer lands
    pytest.skip("samples mode needs conf/analyzer/tiling.yaml (the tiling analyzer)", allow_module_level=True)


def _png(path, chw):
    save_rgb_png((chw.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), path)


def clean_wall(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = synth.tiles(SIZE, SIZE, period_px=PERIOD, angle_deg=float(seed % 3), generator=g)
    return synth.to_rgb(synth.add_noise(x, 0.01, generator=g))


def broken_wall(seed: int) -> torch.Tensor:
    """A band of doubled period, then a ×2 transposed-convolution upsampling (checkerboard)."""
    g = torch.Generator().manual_seed(seed)
    half = SIZE // 2
    x = synth.band_doubled(half, half, period_px=PERIOD / 2, band=(0.3, 0.7), generator=g)
    x = synth.upsample_x2(x, mode="deconv")
    return synth.to_rgb(synth.add_noise(x, 0.01, generator=g))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("samples")
    for name, make in (("ckpt_1000", clean_wall), ("ckpt_2000", broken_wall)):
        (root / name).mkdir()
        for k in range(3):
            _png(root / name / f"wall_{k}.png", make(k))
    (root / "ckpt_2000" / "broken.png").write_bytes(b"not a png")  # reported, not fatal
    (root / "masks").mkdir()
    mask = synth.ellipse_mask(SIZE, SIZE, radii=(0.47, 0.47))  # a wall that is not the whole frame
    for k in range(3):
        save_rgb_png(mask.numpy().astype(np.uint8) * 255, root / "masks" / f"wall_{k}.png")
    tile = synth.to_rgb(synth.tiles(64, 64, period_px=PERIOD))
    _png(root / "ref.png", tile)
    return root


@pytest.mark.slow  # samples mode end to end on 3 checkpoints x 3 walls: 67 s on a loaded 2-core box
def test_clean_walls_rank_above_checkerboard_and_doubled_bands(folders, tmp_path):
    out = tmp_path / "out"
    res = compare(
        overrides=[
            f"samples.sets=[{folders / 'ckpt_1000'},{folders / 'ckpt_2000'}]",
            f"samples.masks={folders / 'masks'}",
            f"samples.ref={folders / 'ref.png'}",
            f"output.dir={out}",
            "publish.to=none",
            "output.formats=[csv,json,html]",
            "samples.worst_k=2",
        ]
    )
    c = res.comparison
    assert (
        c.mode == "samples" and c.checkpoint == ["ckpt_1000", "ckpt_2000"] and c.step.tolist() == [1000, 2000]
    )
    assert c.rank.tolist() == [1, 2], c.reasons
    assert res.best == "samples @ ckpt_1000"
    col = {s.label: j for j, s in enumerate(c.specs)}
    for agg in ("mean", "median", "worst"):
        # the ×2 deconvolution's checkerboard and the doubled band are both measured as worse
        assert (
            c.values[1, col[f"tiling/checkerboard_score/{agg}"]]
            > 3 * c.values[0, col[f"tiling/checkerboard_score/{agg}"]]
        )
        assert c.values[1, col[f"tiling/band_score/{agg}"]] > c.values[0, col[f"tiling/band_score/{agg}"]]
    # only the rank_by aggregate (mean) ranks; median and worst are shown and judged
    assert {s.label.rsplit("/", 1)[1] for s in c.specs if s.weight > 0} == {"mean"}
    # the regression since ckpt_2000 against the baseline (the clean checkpoint) is named
    assert c.regressed[1, col["tiling/checkerboard_score/mean"]]
    assert any(
        o["metric"] == "tiling/checkerboard_score/mean" and o["checkpoint"] == "ckpt_2000" for o in c.onsets
    ), c.onsets
    assert any(
        line.startswith(
            "Got worse: samples: tiling/checkerboard_score (mean, median, worst) has been "
            "flagged since ckpt_2000"
        )
        for line in c.verdict
    )
    # aggregates are exactly the per-image values' mean / median / mean of the worst 2
    with open(out / "per_image.csv", newline="") as fh:
        per_image = list(csv.DictReader(fh))
    assert sorted(r["image"] for r in per_image if r["checkpoint"] == "ckpt_2000") == [
        f"wall_{k}.png" for k in range(3)
    ]
    key = "trackdiag/tiling/checkerboard_score"
    vals = np.array([float(r[key]) for r in per_image if r["checkpoint"] == "ckpt_2000"])
    assert len(set(vals.tolist())) == 3  # three different images
    assert c.values[1, col["tiling/checkerboard_score/mean"]] == pytest.approx(vals.mean())
    assert c.values[1, col["tiling/checkerboard_score/median"]] == pytest.approx(np.median(vals))
    assert c.values[1, col["tiling/checkerboard_score/worst"]] == pytest.approx(np.sort(vals)[-2:].mean())
    assert any("skipped broken.png" in n for n in c.notes)
    data = json.loads((out / "comparison.json").read_text())
    assert data["mode"] == "samples" and data["ranking"][0]["checkpoint"] == "ckpt_1000"
    assert "ckpt_2000" in (out / "index.html").read_text()


def test_aggregates_follow_the_goal():
    v = np.array([0.1, np.nan, 0.5, 0.3, 0.9])
    assert aggregate(v, goal="min", worst_k=2) == pytest.approx({"mean": 0.45, "median": 0.4, "worst": 0.7})
    assert aggregate(v, goal="max", worst_k=2)["worst"] == pytest.approx(0.2)
    assert np.isnan(aggregate(np.array([np.nan]), goal="min", worst_k=3)["mean"])


def test_sets_names_steps_and_errors(tmp_path):
    sets = parse_sets(
        [str(tmp_path / "ckpt_500"), {"dir": str(tmp_path / "x"), "name": "final", "step": 900}],
        run_name="s",
        masks=None,
    )
    assert [(s.name, s.step) for s in sets] == [("ckpt_500", 500), ("final", 900)]
    sets = parse_sets(["a/early", "a/late"], run_name="s", masks=None)
    assert [s.step for s in sets] == [0, 1]  # no numbers in the names: the list order
    with pytest.raises(ConfigError, match="repeat"):
        parse_sets(["a/ckpt_1", "b/ckpt_1"], run_name="s", masks=None)
    with pytest.raises(MissingRunError, match="does not exist"):
        compare(
            overrides=[f"samples.sets=[{tmp_path / 'nope'}]", "publish.to=none", f"output.dir={tmp_path}"]
        )


def test_bootstrap_intervals_cover_the_mean_and_separate_clear_differences():
    import numpy as np

    from trackdiag.compare.bootstrap import bootstrap_mean

    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(200):                                   # coverage of the true mean, about 95 %
        x = rng.normal(1.0, 0.5, 30)
        _, lo, hi = bootstrap_mean(x, seed=int(rng.integers(1 << 30)))
        covered += lo <= 1.0 <= hi
    assert 0.88 <= covered / 200 <= 0.99
    se, lo, hi = bootstrap_mean(rng.normal(0.0, 1.0, 50))
    assert se == pytest.approx(1 / np.sqrt(50), rel=0.3) and lo < hi
    _, _, hi_a = bootstrap_mean(rng.normal(0.0, 0.1, 20))
    _, lo_b, _ = bootstrap_mean(rng.normal(1.0, 0.1, 20))
    assert hi_a < lo_b                                      # apart: told apart
    assert np.isnan(bootstrap_mean(np.array([1.0]))[0])
