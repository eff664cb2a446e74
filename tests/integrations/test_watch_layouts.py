"""Layouts: each trainer's file names and manifests map to the right step, prompt and seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trackdiag.errors import ConfigError, InputFileError
from trackdiag.watch import (
    AiToolkitLayout,
    KohyaLayout,
    PatternLayout,
    SimpleTunerLayout,
    detect_layout,
    epoch_steps_from_log,
    make_layout,
)


def _png(path: Path, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(path)
    return path


def test_kohya_steps_with_and_without_name_and_seed(tmp_path):
    s = tmp_path / "sample"
    _png(s / "wall_000100_00_20240501120000_42.png")
    _png(s / "wall_000100_01_20240501120003_43.png")
    _png(s / "000200_00_20240501121000.png")  # no --output_name, no seed
    _png(s / "my_lora_v2_000300_02_20240501122000.png")  # underscores in the name
    _png(s / "notes_000300.png")  # not a sample
    (s / "prompt.txt").write_text("x")
    got = sorted((x.step, x.key, x.seed) for x in KohyaLayout().scan(tmp_path))
    assert got == [(100, "00_seed42", 42), (100, "01_seed43", 43), (200, "00", None), (300, "02", None)]
    assert detect_layout(tmp_path) == "kohya"


def test_kohya_epochs_map_to_steps(tmp_path):
    s = tmp_path / "sample"
    for e in (1, 2, 3):
        _png(s / f"wall_e{e:06d}_00_2024050112000{e}.png")
    plain = KohyaLayout()
    assert sorted(x.step for x in plain.scan(tmp_path)) == [1, 2, 3]
    assert plain.step_unit == "epoch"  # the run says so
    by_count = KohyaLayout(steps_per_epoch=250)
    assert sorted((x.epoch, x.step) for x in by_count.scan(tmp_path)) == [(1, 250), (2, 500), (3, 750)]
    assert by_count.step_unit == "step"
    log = tmp_path / "train.log"
    log.write_text(
        "steps:  10%| epoch 1/3 loss=0.1 global_step=240\nepoch 2/3 global_step 470\nsomething else\n"
    )
    by_log = KohyaLayout(log=log)
    # epoch 3 is not in the log yet: its sample waits
    assert sorted((x.epoch, x.step) for x in by_log.scan(tmp_path)) == [(1, 240), (2, 470)]
    log.write_text(log.read_text() + '{"epoch": 3, "step": 700}\n')
    assert sorted((x.epoch, x.step) for x in by_log.scan(tmp_path)) == [(1, 240), (2, 470), (3, 700)]


def test_epoch_log_formats_and_errors(tmp_path):
    csv = tmp_path / "log.csv"
    csv.write_text("step,epoch,loss\n10,0,0.5\n20,0,0.4\n30,1,0.3\n")
    assert epoch_steps_from_log(csv) == {0: 20, 1: 30}
    bad = tmp_path / "bad.log"
    bad.write_text("no numbers here\n")
    with pytest.raises(InputFileError):
        epoch_steps_from_log(bad)


def test_ai_toolkit(tmp_path):
    s = tmp_path / "samples"
    _png(s / "1715000000000__000000250_0.png")
    _png(s / "1715000000001__000000250_1.jpg".replace(".jpg", ".png"))
    _png(s / "rank00_sample003_1715000000002__000000500_0.png")
    _png(s / "cover.png")
    got = sorted((x.step, x.key) for x in AiToolkitLayout().scan(tmp_path))
    assert got == [(250, "0"), (250, "1"), (500, "003")]
    assert detect_layout(tmp_path) == "ai-toolkit"


def test_simpletuner_manifest_with_partial_line_and_escape(tmp_path):
    _png(tmp_path / "validation" / "a_100.png")
    _png(tmp_path / "validation" / "b_100.png")
    _png(tmp_path / "validation" / "a_200.png")
    recs = [
        {
            "schema_version": 1,
            "step": 100,
            "type": "image",
            "label": "brick wall",
            "index": 0,
            "path": "validation/a_100.png",
        },
        {"step": 100, "type": "image", "label": "plaster", "index": 1, "path": "validation/b_100.png"},
        {"step": 100, "type": "video", "label": "v", "index": 0, "path": "validation/v.mp4"},
        {"step": 150, "type": "image", "label": "evil", "index": 0, "path": "../outside.png"},
    ]
    text = "".join(json.dumps(r) + "\n" for r in recs)
    partial = json.dumps(
        {"step": 200, "type": "image", "label": "brick wall", "index": 0, "path": "validation/a_200.png"}
    )
    (tmp_path / "validation_media.jsonl").write_text(text + partial[:30])
    lay = SimpleTunerLayout()
    assert sorted((x.step, x.key) for x in lay.scan(tmp_path)) == [(100, "brick_wall_0"), (100, "plaster_1")]
    (tmp_path / "validation_media.jsonl").write_text(text + partial + "\n")
    assert sorted((x.step, x.key) for x in lay.scan(tmp_path))[-1] == (200, "brick_wall_0")
    assert detect_layout(tmp_path) == "simpletuner"


def test_pattern(tmp_path):
    _png(tmp_path / "val" / "step120_3.png")
    _png(tmp_path / "val" / "step80_0.png")
    _png(tmp_path / "val" / "readme.png")
    got = sorted((x.step, x.key) for x in PatternLayout("val/step{step}_{idx}.png").scan(tmp_path))
    assert got == [(80, "0"), (120, "3")]
    with pytest.raises(ConfigError):
        PatternLayout("val/{idx}.png")
    with pytest.raises(ConfigError):
        make_layout("pattern")
    with pytest.raises(ConfigError):
        PatternLayout("../x/{step}.png")
