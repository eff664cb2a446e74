"""Safe loading of saved latents: every format, and damaged, empty and malicious files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from trackdiag.errors import InputFileError, ShapeError
from trackdiag.io.latents import list_latent_files, load_latents


def _z(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_every_format_roundtrips(tmp_path):
    from safetensors.torch import save_file

    zin, zout = _z(2, 4, 8, 8), _z(2, 4, 8, 8, seed=1)
    save_file({"in": zin, "out": zout}, str(tmp_path / "a.safetensors"))
    got = load_latents(tmp_path / "a.safetensors")
    assert set(got) == {"in", "out"} and torch.equal(got["in"], zin) and torch.equal(got["out"], zout)

    np.save(tmp_path / "b.npy", zin[0].numpy().astype(np.float16))        # C×h×w, half precision
    got = load_latents(tmp_path / "b.npy")
    assert list(got) == ["latents"] and got["latents"].shape == (1, 4, 8, 8)
    assert got["latents"].dtype == torch.float32
    torch.testing.assert_close(got["latents"][0], zin[0].half().float())

    np.savez(tmp_path / "c.npz", **{"in": zin.numpy(), "out": zout.numpy()})
    assert set(load_latents(tmp_path / "c.npz")) == {"in", "out"}

    torch.save({"in": zin, "out": zout, "step": 1200, "meta": {"prompt": "brick"}}, tmp_path / "d.pt")
    got = load_latents(tmp_path / "d.pt")
    assert set(got) == {"in", "out"} and torch.equal(got["out"], zout)        # non-tensors are ignored
    torch.save({"unet": {"in": zin, "out": zout}}, tmp_path / "e.pt")
    assert set(load_latents(tmp_path / "e.pt")) == {"unet/in", "unet/out"}
    torch.save([zin, zout.to(torch.bfloat16)], tmp_path / "f.pth")
    got = load_latents(tmp_path / "f.pth")
    assert set(got) == {"0", "1"} and got["1"].dtype == torch.float32
    torch.save(zin[0, 0], tmp_path / "g.pt")                                  # h×w
    assert load_latents(tmp_path / "g.pt")["latents"].shape == (1, 1, 8, 8)


def test_a_pickle_that_needs_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned.txt"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"in": _z(1, 4, 8, 8), "extra": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(InputFileError, match=r"refused: .*needs code to run.*system.*weights_only=True"):
        load_latents(tmp_path / "evil.pt")
    assert not marker.exists()

    class Builtin:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save(Builtin(), tmp_path / "evil2.pt")
    with pytest.raises(InputFileError, match="refused"):
        load_latents(tmp_path / "evil2.pt")
    assert not marker.exists()


def test_damaged_and_empty_files_give_clear_errors(tmp_path):
    from safetensors.torch import save_file

    z = _z(2, 4, 16, 16)
    torch.save({"in": z}, tmp_path / "ok.pt")
    np.save(tmp_path / "ok.npy", z.numpy())
    np.savez(tmp_path / "ok.npz", a=z.numpy())
    save_file({"in": z}, str(tmp_path / "ok.safetensors"))
    for name in ("ok.pt", "ok.npy", "ok.npz", "ok.safetensors"):
        data = (tmp_path / name).read_bytes()
        cut = tmp_path / f"cut_{name}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(InputFileError, match="truncated or corrupt"):
            load_latents(cut)
        empty = tmp_path / f"empty_{name}"
        empty.write_bytes(b"")
        with pytest.raises(InputFileError, match="empty"):
            load_latents(empty)
    (tmp_path / "junk.safetensors").write_bytes(b"\x01" * 64)
    with pytest.raises(InputFileError, match="truncated or corrupt"):
        load_latents(tmp_path / "junk.safetensors")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputFileError, match="refused: the array holds Python objects"):
        load_latents(tmp_path / "obj.npy")
    torch.save({"step": 3, "note": "x"}, tmp_path / "none.pt")
    with pytest.raises(InputFileError, match="holds no tensors"):
        load_latents(tmp_path / "none.pt")
    torch.save(_z(1, 1, 2, 4, 4), tmp_path / "5d.pt")
    with pytest.raises(ShapeError, match=r"B×C×h×w.*\(1, 1, 2, 4, 4\)"):
        load_latents(tmp_path / "5d.pt")
    (tmp_path / "x.png").write_bytes(b"png")
    with pytest.raises(InputFileError, match="unsupported latent file type"):
        load_latents(tmp_path / "x.png")
    with pytest.raises(InputFileError, match="no such file"):
        load_latents(tmp_path / "missing.pt")


def test_files_are_listed_in_natural_order(tmp_path):
    for name in ("step_10.pt", "step_2.npy", "step_1.safetensors", "notes.txt", "sub/step_3.npz"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_latent_files(tmp_path)] == [
        "step_1.safetensors", "step_2.npy", "step_10.pt", "sub/step_3.npz"]
    assert list_latent_files(tmp_path / "step_2.npy") == [tmp_path / "step_2.npy"]
    with pytest.raises(InputFileError):
        list_latent_files(tmp_path / "nope")
