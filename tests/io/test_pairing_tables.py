"""The one homes of pairing (image ↔ mask by stem), CSV writing and the NaN-aware mean, as documented."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trackdiag.core.values import column_means, finite_mean
from trackdiag.errors import InputFileError
from trackdiag.io.pairing import companion_lookup, stem_index
from trackdiag.io.tables import write_csv


def _img(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(path)
    return path


def test_folder_pairs_by_stem_png_wins_and_trees_pair_by_relative_path(tmp_path):
    masks = tmp_path / "masks"
    _img(masks / "wall_01.jpg"), _img(masks / "wall_01.png"), _img(masks / "a" / "wall_02.png")
    _img(masks / "b" / "wall_02.png")
    assert stem_index(masks)["wall_01"].name == "wall_01.png"
    assert set(stem_index(masks, recursive=True)) == {"wall_01", "a/wall_02", "b/wall_02"}
    flat = companion_lookup(masks)
    assert flat(tmp_path / "out" / "wall_01.jpg") == masks / "wall_01.png"
    assert flat(tmp_path / "out" / "nothing.jpg") is None
    images = tmp_path / "images"
    tree = companion_lookup(masks, root=images)
    assert tree(images / "b" / "wall_02.jpg") == masks / "b" / "wall_02.png"
    assert tree(images / "a" / "wall_02.jpg") == masks / "a" / "wall_02.png"


def test_a_file_serves_every_image_none_serves_none_and_errors_are_typed(tmp_path):
    one = _img(tmp_path / "mask.png")
    assert companion_lookup(one)(Path("x/any.jpg")) == one
    assert companion_lookup(None)(Path("x/any.jpg")) is None
    with pytest.raises(InputFileError, match="neither a file nor a folder"):
        companion_lookup(tmp_path / "missing")
    with pytest.raises(InputFileError, match="no mask with stem 'other'"):
        companion_lookup(tmp_path, required=True)(Path("other.jpg"))


def test_csv_writes_the_union_of_columns_and_missing_values_as_empty_cells(tmp_path):
    rows = [{"a": 1.0, "b": float("nan")}, {"c": None, "a": float("inf")}, {"b": 0.25, "c": "x"}]
    path = write_csv(tmp_path / "sub" / "t.csv", rows)
    with path.open(newline="") as fh:
        back = list(csv.DictReader(fh))
    assert list(back[0]) == ["a", "b", "c"]
    assert back == [{"a": "1.0", "b": "", "c": ""}, {"a": "", "b": "", "c": ""},
                    {"a": "", "b": "0.25", "c": "x"}]
    fixed = write_csv(tmp_path / "f.csv", [{"k": 1 / 3, "extra": 1}], columns=["k"], float_format=".3g",
                      extra="ignore")
    assert fixed.read_text().splitlines() == ["k", "0.333"]


def test_finite_mean_ignores_non_finite_and_is_nan_when_nothing_is_finite():
    rng = np.random.default_rng(0)
    x = rng.normal(size=1000)
    y = x.copy()
    y[rng.choice(1000, 100, replace=False)] = np.nan
    assert finite_mean(y) == pytest.approx(float(np.nanmean(y)))
    assert finite_mean(np.r_[x, np.inf, -np.inf]) == pytest.approx(float(x.mean()))
    assert math.isnan(finite_mean([np.nan, np.inf])) and math.isnan(finite_mean([]))
    rows = [{"s": 1.0, "t": "x"}, {"s": float("nan")}, {"s": 3.0}]
    assert column_means(rows) == {"s": 2.0}
