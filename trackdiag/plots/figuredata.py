"""Named numbers that analyzers hand to their figures.

A Result's ``maps`` travel as arrays (device → host in one copy, through the spool, from rank 0), so the few
scalars a figure needs next to its maps (where to draw f*, the window of the local-period map ...) travel as
one small array each. These NamedTuples give the positions of that array names, in one place: the analyzer
builds the tuple by field name and sends ``list(t)`` (a tensor stack on the device) or :meth:`to_array`,
and the figure reads it back with ``from_array`` (missing trailing fields, from an older spool, get their
defaults). No torch here: the render process imports only numpy.

>>> g = LocalGeometry(window_px=32.0, stride_px=16.0, height=64.0, width=96.0)
>>> LocalGeometry.from_array(g.to_array()) == g, g.band_frac_threshold == BAND_FRAC_THRESHOLD
(True, True)
>>> LocalGeometry.from_array(np.array([[32.0, 16.0, 64.0, 96.0]])).band_frac_threshold
0.35
"""

from __future__ import annotations

import math
from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np

__all__ = ["BAND_FRAC_THRESHOLD", "RadialMarks", "AcfMarks", "LocalGeometry", "PixelGeometry", "from_array",
           "to_array"]

#: A row/column belongs to a band run when its smoothed share of doubled-period windows is at least this
#: (the seed's value). The one home of that default: ``TilingParams.band_frac_threshold``,
#: ``bands.band_metrics`` and the band figure's threshold line all use it.
BAND_FRAC_THRESHOLD = 0.35

T = TypeVar("T", bound=tuple[Any, ...])
#: A field's type: ``float`` on the host; a 0-d tensor where the analyzer stacks the fields on the device.
V = TypeVar("V")


def to_array(t: tuple[Any, ...]) -> np.ndarray:
    """``1×n`` float64 array of a NamedTuple's fields, in field order."""
    return np.asarray([list(t)], dtype=np.float64)


def from_array(cls: type[T], a: Any) -> Any:
    """The NamedTuple ``cls`` from an array of its fields (any shape; trailing fields missing: defaults,
    else NaN)."""
    values = np.asarray(a, dtype=np.float64).reshape(-1).tolist()
    fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    defaults: dict[str, Any] = cls._field_defaults  # type: ignore[attr-defined]
    out: list[Any] = [values[i] if i < len(values) else defaults.get(name, math.nan)
                      for i, name in enumerate(fields)]
    return cls(*out)


class RadialMarks(NamedTuple, Generic[V]):
    """Where the radial-profile figure marks its lines (radii in frequency bins; sample 0)."""

    #: The fundamental f* used for the ratios (the reference's when one was given).
    fstar_bin: V
    #: The image's own fundamental.
    fundamental_bin: V
    #: The reference texture's fundamental (NaN without one).
    ref_bin: V
    #: The ACF period as a radius (S / ACF period).
    acf_bin: V
    #: The FFT side S in px (radius r ↔ period S / r).
    side_px: V

    def to_array(self) -> np.ndarray:
        return to_array(self)

    @classmethod
    def from_array(cls, a: Any) -> RadialMarks[float]:
        return from_array(cls, a)


class AcfMarks(NamedTuple, Generic[V]):
    """Where the ACF figure marks its lines (px; sample 0)."""

    #: First peak of the ACF along f*.
    acf_period_px: V
    #: The spectral period S / f.
    fundamental_period_px: V
    #: The reference texture's period (NaN without one).
    ref_period_px: V
    #: Largest lag of the 2-D ACF map.
    max_lag: V

    def to_array(self) -> np.ndarray:
        return to_array(self)

    @classmethod
    def from_array(cls, a: Any) -> AcfMarks[float]:
        return from_array(cls, a)


class LocalGeometry(NamedTuple, Generic[V]):
    """Placement of the local-period map's windows over the image (px)."""

    #: Side of one window.
    window_px: V
    #: Step between two windows (one map cell).
    stride_px: V
    #: Image height.
    height: V
    #: Image width.
    width: V
    #: The band-run threshold on the per-row/column share of doubled windows (the figure's dashed line).
    band_frac_threshold: V = BAND_FRAC_THRESHOLD  # type: ignore[assignment]

    def to_array(self) -> np.ndarray:
        return to_array(self)

    @classmethod
    def from_array(cls, a: Any) -> LocalGeometry[float]:
        return from_array(cls, a)


class PixelGeometry(NamedTuple):
    """Size of the analysed images and the stride of the pixel analyzer's anomaly grid (px)."""

    height: int
    width: int
    #: Image pixels per anomaly-grid cell.
    stride: int

    def to_array(self) -> np.ndarray:
        return np.asarray(list(self), dtype=np.int64)

    @classmethod
    def from_array(cls, a: Any) -> PixelGeometry:
        h, w, s = (int(v) for v in np.asarray(a).reshape(-1)[:3])
        return cls(height=h, width=w, stride=s)
