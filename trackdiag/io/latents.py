"""Loading of saved latents (``.safetensors``, ``.npy``, ``.npz``, ``.pt``) with clear, safe errors.

* ``.pt`` / ``.pth`` files load **only** with ``torch.load(weights_only=True)``: a pickle that needs code to
  run (any class or function reference outside tensors and plain containers) is refused, never executed.
* ``.npy`` / ``.npz`` load with ``allow_pickle=False``: object arrays are refused.
* A missing, empty, truncated or corrupt file raises :class:`~trackdiag.errors.InputFileError` naming the
  file and the problem.

Every file gives ``{name: B×C×h×w float32 tensor}``: a dict in the file keeps its keys (``{"in": z_t,
"out": unet_out}``), a single tensor is named ``latents``; ``C×h×w`` gets a batch dimension.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputFileError, ShapeError

__all__ = ["LATENT_SUFFIXES", "load_latents", "list_latent_files", "as_latent_batch"]

LATENT_SUFFIXES = frozenset({".safetensors", ".npy", ".npz", ".pt", ".pth"})


def as_latent_batch(x: Any, *, name: str) -> torch.Tensor:
    """A latent array/tensor as float32 ``B×C×h×w`` (``C×h×w`` → ``1×C×h×w``, ``h×w`` → ``1×1×h×w``)."""
    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if not isinstance(t, torch.Tensor):
        raise InputFileError(f"{name}: expected a tensor, got {type(x).__name__}.")
    if t.is_complex() or t.dtype == torch.bool:
        raise InputFileError(f"{name}: latents must be real numbers; got dtype {t.dtype}.")
    t = t.detach().to(torch.float32)
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or min(t.shape) == 0:
        raise ShapeError(f"{name}: latents must be B×C×h×w (or C×h×w, h×w) with every size > 0; got "
                         f"{tuple(t.shape)}.")
    return t


def _collect(obj: Any, *, source: str, prefix: str = "") -> dict[str, torch.Tensor]:
    """Tensors of a loaded object: a tensor or a (nested) dict / list of tensors; other leaves are ignored."""
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        return {prefix or "latents": as_latent_batch(obj, name=f"{source}[{prefix or 'latents'}]")}
    out: dict[str, torch.Tensor] = {}
    if isinstance(obj, Mapping):
        items = [(str(k), v) for k, v in obj.items()]
    elif isinstance(obj, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(obj)]
    else:
        return out
    for key, value in items:
        out.update(_collect(value, source=source, prefix=f"{prefix}/{key}" if prefix else key))
    return out


def _load_pt(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        m = re.search(r"GLOBAL\s+([\w.]+)", str(exc))
        what = f" (it references {m.group(1)!r})" if m else ""
        raise InputFileError(
            f"{path}: refused: this .pt file needs code to run when loaded{what}, and trackdiag loads .pt "
            "files only with torch.load(weights_only=True), never executing pickled code. Save plain tensors "
            "instead, e.g. safetensors.torch.save_file({'in': z_t, 'out': unet_out}, 'latents.safetensors') "
            "or torch.save({'in': z_t.cpu(), 'out': unet_out.cpu()}, path).") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, AttributeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise InputFileError(f"{path}: not a readable torch file; truncated or corrupt "
                             f"({type(exc).__name__}: {first}).") from None


def _load_npy(path: Path) -> Any:
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputFileError(f"{path}: refused: the array holds Python objects (pickled); save a numeric "
                                 "array instead.") from None
        raise InputFileError(f"{path}: not a readable numpy file; truncated or corrupt ({exc}).") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputFileError(f"{path}: not a readable numpy file; truncated or corrupt "
                             f"({type(exc).__name__}: {exc}).") from None


def _load_safetensors(path: Path) -> Any:
    try:
        from safetensors.torch import load_file
    except ImportError:  # pragma: no cover - core dependency
        from ..errors import MissingDependencyError

        raise MissingDependencyError("safetensors", purpose="reading .safetensors latents") from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:
        raise InputFileError(f"{path}: not a readable safetensors file; truncated or corrupt "
                             f"({type(exc).__name__}: {exc}).") from None


def load_latents(path: str | Path) -> dict[str, torch.Tensor]:
    """Load one latent file as ``{name: B×C×h×w float32}`` (see the module docstring for the rules).

    Raises:
        InputFileError: missing, empty, unsupported, unsafe, truncated or corrupt file, or no tensors in it.
        ShapeError: a tensor that is not 2-, 3- or 4-D.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file.")
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, expected a latent file.")
    suffix = path.suffix.lower()
    if suffix not in LATENT_SUFFIXES:
        raise InputFileError(f"{path}: unsupported latent file type {suffix!r}; use one of "
                             f"{', '.join(sorted(LATENT_SUFFIXES))}.")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: the file is empty.")
    if suffix == ".safetensors":
        obj = _load_safetensors(path)
    elif suffix in (".npy", ".npz"):
        obj = _load_npy(path)
    else:
        obj = _load_pt(path)
    tensors = _collect(obj, source=str(path))
    if not tensors:
        raise InputFileError(f"{path}: holds no tensors (found {type(obj).__name__}).")
    return tensors


def _natural_key(p: Path) -> list[Any]:
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", p.as_posix())]


def list_latent_files(root: str | Path) -> list[Path]:
    """Latent files below ``root`` (recursively, in natural order: ``step_2`` before ``step_10``), or
    ``[root]`` for a file."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InputFileError(f"{root}: no such file or folder.")
    found = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in LATENT_SUFFIXES]
    return sorted(found, key=lambda p: _natural_key(p.relative_to(root)))
