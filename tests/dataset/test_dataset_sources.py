"""Dataset scans beyond a plain folder: webdataset tar shards, hostile files (FIFOs), the Ray executor."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.dataset.test_dataset_cli import _build
from trackdiag.dataset import scan, write_flagged_csv
from trackdiag.dataset.worker import Source, read_source


def _key_checks(res, root: Path) -> dict[str, set[str]]:
    """``{image stem: checks}`` of a scan (the stem identifies the sample in a folder and in a shard)."""
    out: dict[str, set[str]] = {}
    for f in res.flags:
        name = Path(f.path).name.split(".")[0] if f.path != str(root) else "<dataset>"
        out.setdefault(name, set()).add(f.check)
    return out


def _pack(folder: Path, tar_path: Path) -> None:
    """A webdataset shard: ``<stem>.<ext>`` for each image and ``<stem>.mask.png`` for its mask."""
    with tarfile.open(tar_path, "w") as tf:
        for img in sorted((folder / "images").iterdir()):
            tf.add(img, arcname=img.name)
            m = folder / "masks" / f"{img.stem}.png"
            if m.is_file():
                tf.add(m, arcname=f"{img.stem}.mask.png")
        info = tarfile.TarInfo("a_link.png")  # a non-regular member is ignored
        info.type = tarfile.SYMTYPE
        info.linkname = "/dev/zero"
        tf.addfile(info)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    expected = _build(root)
    return root, expected


@pytest.mark.slow
def test_a_tar_shard_is_scanned_like_the_folder(planted, tmp_path):
    root, expected = planted
    shards = tmp_path / "shards"
    shards.mkdir()
    _pack(root, shards / "shard-000000.tar")
    folder = scan(root / "images", root / "masks", workers=0, progress=False)
    shard = scan(shards, workers=0, progress=False)
    assert len(shard.records) == len(folder.records) == len(expected)
    want = _key_checks(folder, root / "images")
    got = _key_checks(shard, shards)
    # A mask that is missing from the shard is simply absent (no --masks folder to miss it from), and an
    # unreadable mask member is unreadable like the file: the rest must agree exactly.
    want.get("m_missing", set()).discard("mask_missing")
    want = {k: v for k, v in want.items() if v}
    assert got == want
    assert all(r.path.startswith(str(shards / "shard-000000.tar") + "/") for r in shard.records)
    # The same numbers, read from the members directly.
    by_name = {Path(r.path).name: r for r in folder.records}
    for r in shard.records:
        twin = by_name[Path(r.path).name]
        assert (r.width, r.height, r.content_hash, r.phash) == (twin.width, twin.height, twin.content_hash,
                                                                twin.phash)


def test_a_broken_shard_is_one_corrupt_entry(tmp_path):
    (tmp_path / "bad.tar").write_bytes(b"\x1f\x8b" + os.urandom(2000))  # not an uncompressed tar
    res = scan(tmp_path, workers=0, progress=False)
    assert [(Path(f.path).name, f.check) for f in res.flags] == [("bad.tar", "corrupt")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_like_an_image_does_not_hang_the_scan(planted, tmp_path):
    root, _ = planted
    images = tmp_path / "images"
    images.mkdir()
    for name in ("clean_00.png", "clean_01.png", "clean_02.png"):
        (images / name).write_bytes((root / "images" / name).read_bytes())
    os.mkfifo(images / "pipe.png")
    os.symlink("/dev/zero", images / "zero.png")
    done: dict[str, object] = {}
    t = threading.Thread(target=lambda: done.update(res=scan(images, workers=0, progress=False)), daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "the scan blocked on a FIFO or a device"
    res = done["res"]
    flags = {Path(f.path).name: (f.check, f.reason) for f in res.flags}
    assert flags["pipe.png"][0] == "corrupt" and "not a regular file" in flags["pipe.png"][1]
    assert flags["zero.png"][0] == "corrupt" and "not a regular file" in flags["zero.png"][1]
    assert not any(n.startswith("clean") for n in flags)


def test_read_source_reads_members_by_offset_and_refuses_overruns(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"0123456789" * 100
        info = tarfile.TarInfo("x.png")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    (tmp_path / "s.tar").write_bytes(buf.getvalue())
    with tarfile.open(tmp_path / "s.tar") as tf:
        m = tf.getmember("x.png")
    assert read_source(Source(str(tmp_path / "s.tar"), m.offset_data, m.size)) == data
    from trackdiag.errors import InputFileError

    with pytest.raises(InputFileError, match="past the end"):
        read_source(Source(str(tmp_path / "s.tar"), m.offset_data, 10**6))
    with pytest.raises(InputFileError, match="more than"):
        read_source(Source(str(tmp_path / "s.tar")), max_bytes=10)


@pytest.mark.slow
def test_ray_executor_gives_the_local_pools_flagged_csv(planted, tmp_path):
    ray = pytest.importorskip("ray")
    root, _ = planted
    local = scan(root / "images", root / "masks", workers=2, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                 [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)])}})
    try:
        distributed = scan(root / "images", root / "masks", executor="ray", progress=False)
    finally:
        ray.shutdown()
    a = write_flagged_csv(local, tmp_path / "local.csv").read_text()
    b = write_flagged_csv(distributed, tmp_path / "ray.csv").read_text()
    assert a == b and a.count("\n") > 15
    assert [r.path for r in distributed.records] == [r.path for r in local.records]


@pytest.mark.slow
def test_the_local_pool_gives_the_in_process_records(planted):
    """While the pool starts, the caller runs the cheap tier of the first batches and the pool adds their
    spectral tier: the records are those of a scan in one process, in the same order."""
    root, _ = planted
    pool = scan(root / "images", root / "masks", workers=2, progress=False)
    alone = scan(root / "images", root / "masks", workers=0, progress=False)

    def key(r):
        m = r.mask
        return (r.path, repr(r.brightness), repr(r.contrast), r.content_hash, r.phash, r.flags,
                None if m is None else (m.fragments, m.holes, m.offset_dx, m.offset_dy))

    assert [key(r) for r in pool.records] == [key(r) for r in alone.records]
    assert np.allclose([r.period_px for r in pool.records], [r.period_px for r in alone.records],
                       rtol=1e-5, equal_nan=True)
    assert {(f.path, f.check) for f in pool.flags} == {(f.path, f.check) for f in alone.flags}


@pytest.mark.slow
def test_the_cheap_tier_flags_the_same_images_without_the_spectral_tier(planted):
    from trackdiag.dataset import ScanParams

    root, _ = planted
    full = scan(root / "images", root / "masks", workers=0, progress=False)
    cheap = scan(root / "images", root / "masks", workers=0, progress=False,
                 params=ScanParams(spectral_tier=False))
    periods = {"tiled_texture", "period_too_small", "period_too_large"}
    assert {(f.path, f.check) for f in cheap.flags} == {(f.path, f.check) for f in full.flags
                                                        if f.check not in periods}
    assert any(f.check == "tiled_texture" for f in full.flags)
    assert all(r.period_px != r.period_px for r in cheap.records)  # NaN: not measured


def test_a_cheap_tier_worker_never_imports_torch():
    import subprocess
    import sys

    code = ("import sys, trackdiag.dataset.worker as w\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
