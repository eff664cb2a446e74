"""Named-shape checks and input normalisation for tensors handed to trackdiag.

Every check raises a typed error (:mod:`trackdiag.errors`) that shows the expected and the actual shape.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from ..errors import InputValueError, MaskError, ShapeError

__all__ = ["check_image_batch", "normalize_mask", "normalize_ref", "check_same_hw", "as_float_tensor",
           "check_sample_ids", "check_timesteps", "check_scalar_key", "MIN_SIDE"]

#: The smallest image side trackdiag analyses (a spectrum needs a few samples per axis).
MIN_SIDE = 4


def _fmt(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def as_float_tensor(x: object, *, name: str) -> torch.Tensor:
    """Return ``x`` as a floating tensor (float32 unless it is already float64/float16/bfloat16 → float32)."""
    if not isinstance(x, torch.Tensor):
        try:
            import numpy as np

            if isinstance(x, np.ndarray):
                x = torch.from_numpy(np.ascontiguousarray(x))
            else:
                raise TypeError
        except TypeError:
            raise InputValueError(
                f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}. "
                "Convert it with torch.as_tensor(...)."
            ) from None
    if x.is_complex():
        raise InputValueError(f"{name} must be real-valued, got dtype {x.dtype}.")
    if not x.is_floating_point() or x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return x


def check_image_batch(pred: object, *, name: str = "pred", min_side: int = 1) -> torch.Tensor:
    """Validate an image batch. Returns it as a float tensor of shape ``B×C×H×W``.

    Raises:
        ShapeError: when ``pred`` is not 4-D, has an empty dimension or H or W below ``min_side``.
    """
    t = as_float_tensor(pred, name=name)
    if t.ndim != 4 or min(t.shape) == 0:
        raise ShapeError(
            f"{name} must have shape B×C×H×W with every size > 0; got {_fmt(t.shape)}. "
            "Add a batch dimension with x.unsqueeze(0) for a single C×H×W image."
        )
    if min(t.shape[-2:]) < min_side:
        raise ShapeError(f"{name} is too small to analyse: H and W must be >= {min_side}; got "
                         f"{_fmt(t.shape)}.")
    return t


def check_sample_ids(ids: object, *, n: int | None, name: str = "sample_ids") -> list[str]:
    """``ids`` as ``n`` strings (one per sample). Raises :class:`InputValueError` / :class:`ShapeError`."""
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise InputValueError(f"{name} must be a sequence with one id per sample (e.g. a list of str); got "
                              f"{type(ids).__name__} {ids!r:.80}.")
    try:
        out = [str(i) for i in ids]  # type: ignore[union-attr]
    except Exception as exc:  # a broken iterable
        raise InputValueError(f"{name} could not be read as a sequence: "
                              f"{type(exc).__name__}: {exc}") from None
    if n is not None and len(out) != n:
        raise ShapeError(f"{name} must have {n} entries (one per sample); got {len(out)}.")
    return out


def check_timesteps(timesteps: object, *, n: int | None, name: str = "timesteps") -> torch.Tensor:
    """``timesteps`` as a numeric ``(n,)`` tensor. Raises :class:`InputValueError` / :class:`ShapeError`."""
    try:
        t = timesteps.detach() if isinstance(timesteps, torch.Tensor) else torch.as_tensor(timesteps)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputValueError(f"{name} must be numbers, one per sample; got {timesteps!r:.80} "
                              f"({type(exc).__name__}: {exc}).") from None
    if t.is_complex() or t.dtype == torch.bool:
        raise InputValueError(f"{name} must be real numbers; got dtype {t.dtype}.")
    if t.ndim != 1 or (n is not None and t.numel() != n):
        raise ShapeError(f"{name} must have shape ({n if n is not None else 'B'},); got {_fmt(t.shape)}.")
    return t


def normalize_mask(mask: object, *, batch: int, height: int, width: int, name: str = "mask") -> torch.Tensor:
    """Return a boolean mask of shape ``B×1×H×W`` (``True`` = wall) from ``B×1×H×W``, ``1×H×W`` or ``H×W``.

    Values > 0.5 are the wall. A ``1×H×W``/``H×W`` mask is broadcast over the batch.

    Raises:
        ShapeError: any other shape, or a size that does not match the image (expected shape in the message).
        MaskError: a mask with non-finite values.
    """
    m = as_float_tensor(mask, name=name)
    expected = f"({batch}, 1, {height}, {width}), (1, {height}, {width}) or ({height}, {width})"
    if m.ndim == 2:
        m = m[None, None]
    elif m.ndim == 3:
        if m.shape[0] != 1:
            raise ShapeError(f"{name} must have shape {expected}; got {_fmt(m.shape)}.")
        m = m[None]
    elif m.ndim != 4 or m.shape[1] != 1:
        raise ShapeError(f"{name} must have shape {expected}; got {_fmt(m.shape)}.")
    if m.shape[-2:] != (height, width) or m.shape[0] not in (1, batch):
        raise ShapeError(f"{name} must have shape {expected}; got {_fmt(m.shape)}.")
    if not torch.isfinite(m).all():
        raise MaskError(f"{name} contains NaN or Inf; a mask must be finite (values > 0.5 mark the wall).")
    return (m > 0.5).expand(batch, 1, height, width)


def normalize_ref(ref: object, *, channels: int, name: str = "ref") -> torch.Tensor:
    """Return a reference texture as ``1×C×h×w`` (any size) from ``C×h×w``, ``1×C×h×w`` or ``h×w``."""
    r = as_float_tensor(ref, name=name)
    if r.ndim == 2:
        r = r[None, None]
    elif r.ndim == 3:
        r = r[None]
    if r.ndim != 4 or r.shape[0] != 1 or min(r.shape) == 0:
        raise ShapeError(f"{name} must have shape C×h×w, 1×C×h×w or h×w; got {_fmt(r.shape)}.")
    if r.shape[1] not in (1, channels):
        raise ShapeError(f"{name} must have 1 or {channels} channels like pred; got {_fmt(r.shape)}.")
    return r


def check_same_hw(a: torch.Tensor, b: torch.Tensor, *, names: tuple[str, str]) -> None:
    """Raise :class:`ShapeError` unless ``a`` and ``b`` (both ``B×C×H×W``) have the same B, H and W."""
    if a.shape[0] != b.shape[0] or a.shape[-2:] != b.shape[-2:]:
        raise ShapeError(
            f"{names[1]} must match {names[0]} in batch and size: expected (B, *, H, W) = "
            f"({a.shape[0]}, *, {a.shape[-2]}, {a.shape[-1]}); got {_fmt(b.shape)}."
        )


_KEY_BAD = re.compile(r"[^A-Za-z0-9_./ \-]")


def check_scalar_key(key: object, *, max_len: int = 250) -> str:
    """A scalar's key as every tracker accepts it: characters outside ``[A-Za-z0-9_./ -]`` become ``_``.

    Raises :class:`InputValueError` for a key that is not a string, is empty, or is longer than ``max_len``.
    """
    if not isinstance(key, str):
        raise InputValueError(f"a scalar's key must be a str; got {type(key).__name__} {key!r:.60}.")
    clean = _KEY_BAD.sub("_", key).strip("/")
    if not clean or clean.strip("._ ") == "":
        raise InputValueError(f"a scalar's key must name something; got {key!r:.60}.")
    if len(clean) > max_len:
        raise InputValueError(f"a scalar's key must be at most {max_len} characters; got {len(clean)}.")
    return clean
