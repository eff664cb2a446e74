"""The value range of images given to trackdiag: one rule for ``log()``, ``diagnose()`` and the CLIs.

Every analyzer works on images in [0, 1]. ``value_range`` says what the caller's numbers mean:

* ``"0-1"``: already in [0, 1] (nothing changes);
* ``"-1-1"``: [-1, 1], what a VAE decode returns: ``(x + 1) / 2``;
* ``"0-255"``: 8-bit levels: ``x / 255``.

``None`` (the default) guesses: an **integer** array or tensor is read as 0..255; a **float** one with any
value below 0 as [-1, 1]; any other float as [0, 1]. A guess that converts warns once per process and
name (:class:`ValueRangeWarning`), so the conversion is never silent; pass ``value_range`` to silence it.
Decoded image files (paths, PIL images) are always [0, 1] and are not touched.

>>> import torch
>>> to_unit_range(torch.tensor([-1.0, 0.0, 1.0]), "-1-1").tolist()
[0.0, 0.5, 1.0]
>>> to_unit_range(torch.tensor([0, 255], dtype=torch.uint8)).tolist()
[0.0, 1.0]
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy as np
import torch

from ..errors import InputValueError

__all__ = ["VALUE_RANGES", "ValueRangeWarning", "guess_value_range", "to_unit_range"]

VALUE_RANGES = ("0-1", "-1-1", "0-255")
_WARNED: set[tuple[str, str]] = set()


class ValueRangeWarning(UserWarning):
    """The value range was guessed and the data converted (pass ``value_range=`` to say it)."""


def _check(value_range: Optional[str]) -> None:
    if value_range is not None and value_range not in VALUE_RANGES:
        raise InputValueError(f"value_range must be one of {', '.join(VALUE_RANGES)} or None; got "
                              f"{value_range!r}.")


def guess_value_range(x: Any) -> str:
    """The documented automatic rule: integer → ``"0-255"``; float with a value below 0 → ``"-1-1"``;
    else ``"0-1"``. ``x`` is a numpy array or a tensor (a float tensor's minimum is read on the host)."""
    if isinstance(x, torch.Tensor):
        if not (x.is_floating_point() or x.is_complex()) and x.dtype != torch.bool:
            return "0-255"
        finite = torch.nan_to_num(x.detach(), nan=0.0, posinf=0.0, neginf=0.0)
        return "-1-1" if finite.numel() and bool((finite < 0).any()) else "0-1"
    a = np.asarray(x)
    if np.issubdtype(a.dtype, np.integer):
        return "0-255"
    return "-1-1" if a.size and bool(np.nanmin(np.where(np.isfinite(a), a, 0.0)) < 0) else "0-1"


def to_unit_range(x: Any, value_range: Optional[str] = None, *, name: str = "pred") -> Any:
    """``x`` (numpy array or tensor) converted to float in [0, 1] per ``value_range`` (see the module
    docstring); other objects (paths, PIL images, None) are returned unchanged."""
    _check(value_range)
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        return x
    vr = value_range
    if vr is None:
        vr = guess_value_range(x)
        if vr != "0-1" and (name, vr) not in _WARNED:
            _WARNED.add((name, vr))
            what = "integer" if vr == "0-255" else "float with values below 0"
            warnings.warn(f"{name}: {what}, read as {vr} and converted to [0, 1]; pass value_range= "
                          f"({', '.join(VALUE_RANGES)}) to say so.", ValueRangeWarning, stacklevel=3)
    if isinstance(x, torch.Tensor):
        t = x if x.is_floating_point() else x.float()
        if vr == "-1-1":
            return (t + 1.0) * 0.5
        if vr == "0-255":
            return t / 255.0
        return t
    a = np.asarray(x)
    a = a.astype(np.float32) if not np.issubdtype(a.dtype, np.floating) else a
    if vr == "-1-1":
        return (a + 1.0) * 0.5
    if vr == "0-255":
        return a / np.float32(255.0)
    return a
