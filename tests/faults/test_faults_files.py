"""Hostile files: a PNG whose header claims 50000×50000 pixels, a file named ``...png``, a FIFO named
``x.png``. Each gets a one-line typed error, the rest of the batch is done, nothing is written outside the
output folder and nothing hangs."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import trackdiag
from trackdiag.io.images import list_images, load_image


def bomb_png(path: Path, width: int = 50000, height: int = 50000) -> None:
    """A real 1×1 PNG whose IHDR is rewritten to claim ``width``×``height`` (CRC fixed, so it parses)."""
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


def wall(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    tile = rng.random((16, 16, 3))
    img = np.tile(tile, (6, 6, 1))[:96, :96]
    Image.fromarray((img * 255).astype(np.uint8)).save(path, format="PNG")


def test_a_decompression_bomb_is_a_typed_one_line_error(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb_png(bomb)
    with pytest.raises(trackdiag.InputFileError) as info:
        load_image(bomb)
    msg = str(info.value)
    assert "\n" not in msg and ("50000×50000" in msg or "2500000000 pixels" in msg)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_not_read(tmp_path):
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    wall(tmp_path / "a.png", 0)
    assert list_images(tmp_path) == [tmp_path / "a.png"]
    with pytest.raises(trackdiag.InputFileError, match="not a regular file"):
        load_image(fifo)  # would block forever in open()


@pytest.mark.slow
def test_diagnose_folder_with_a_bomb_and_a_dotted_name_does_the_rest_inside_out(tmp_path):
    preds = tmp_path / "batch" / "preds"
    preds.mkdir(parents=True)
    for i in range(5):
        wall(preds / f"good{i}.png", i)
    bomb_png(preds / "bomb.png")
    wall(preds / "...png", 9)
    out = tmp_path / "batch" / "out"
    before = sorted(p.name for p in (tmp_path / "batch").iterdir())
    files = [str(p) for p in sorted(preds.iterdir())]  # named one by one: "...png" has no suffix to list it
    done = subprocess.run([sys.executable, "-m", "trackdiag.diagnose", "--pred", *files, "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(Path(trackdiag.__file__).parents[2])})
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "batch").iterdir()) == before + ["out"] or \
        sorted(p.name for p in (tmp_path / "batch").iterdir()) == sorted(before + ["out"])
    assert not (tmp_path / "index.html").exists() and not (tmp_path / "batch" / "index.html").exists()
    reports = [p for p in out.iterdir() if p.is_dir() and (p / "index.html").exists()]
    assert len(reports) == 6  # five good walls and "...png": every good image got its report
    assert all(p.resolve().parent == out.resolve() for p in reports)
    text = " ".join(p.read_text(errors="ignore") for p in out.rglob("*") if p.suffix in (".csv", ".json"))
    assert "bomb.png" in text and ("50000×50000" in text or "2500000000 pixels" in text)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_dataset_scan_with_a_fifo_finishes(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        wall(images / f"w{i}.png", i)
    os.mkfifo(images / "x.png")
    bomb_png(images / "bomb.png")
    done = subprocess.run([sys.executable, "-m", "trackdiag.dataset", str(images), "--out",
                           str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(trackdiag.__file__).parents[2])})
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    flagged = " ".join(p.read_text(errors="ignore") for p in (tmp_path / "o").rglob("*.csv"))
    # both get a one-line row (the FIFO is never opened: "not a regular file") and the walls are scanned
    assert "bomb.png" in flagged and "x.png" in flagged and "not a regular file" in flagged
