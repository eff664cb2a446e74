"""Tiling diagnostics (seed 000, sections 2, 4 and 5): is the tile period right, and if not, why?

The thin :class:`TilingAnalyzer` around four modules, each with one job:

* :mod:`~trackdiag.analyzers.tiling_summary`: the pure batched math, :func:`tiling_metrics` (``B×C×H×W`` →
  per-sample ``(B,)`` values and small maps of sample 0) and :class:`TilingParams`;
* :mod:`~trackdiag.analyzers.tiling_rules`: :func:`likely_causes`, the verdict rules on a summary dict;
* :mod:`~trackdiag.analyzers.tiling_limits`: the verdicts' stable codes and calibrated thresholds;
* :mod:`~trackdiag.analyzers.tiling_specs`: every metric's goal, unit, doc and warn/bad limits.

Every definition, window and threshold is written out in ``docs/tiling.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..core.checks import check_image_batch
from ..errors import InputValueError
from ..verdicts import verdict_metrics
from . import tiling_specs  # noqa: F401  (registers the tiling metrics' specs)
from .base import MAP_PREFIX, Analyzer, Result, StepInputs, reduce_per_sample
from .tiling_limits import VERDICT_CODES
from .tiling_rules import likely_causes, ref_scale_test
from .tiling_summary import (
    SEED_KEYS,
    TilingParams,
    border_cross,
    checkerboard_scores,
    energy_ratios,
    luminance,
    resize_metrics,
    ring_half_width,
    shift_mse,
    tiling_metrics,
)

__all__ = [
    "SEED_KEYS",
    "VERDICT_CODES",
    "TilingAnalyzer",
    "TilingParams",
    "border_cross",
    "checkerboard_scores",
    "energy_ratios",
    "likely_causes",
    "luminance",
    "ref_scale_test",
    "resize_metrics",
    "ring_half_width",
    "shift_mse",
    "tiling_metrics",
]


# ------------------------------------------------------------------------------------------------------
# The analyzer
# ------------------------------------------------------------------------------------------------------
class TilingAnalyzer(Analyzer[TilingParams]):
    """Tiling diagnostics of ``pred`` (optionally within ``mask``, against ``ref``).

    Metrics (``trackdiag/tiling/<key>``): the seed's keys (:data:`SEED_KEYS`) plus ``fundamental_period_px``,
    ``acf_first_peak_period_px``, ``ref_period_px``, ``periodicity_score``, ``checkerboard_score``,
    ``border_cross_index``, ``nonfinite_frac``, ``valid_px_frac`` and the others in ``docs/tiling.md``.
    Text: ``band_axis_hint``, ``fstar_source``. Figures: ``radial_profile``, ``fft_log_hann``,
    ``fft_log_nohann``, ``acf``, ``local_period_px``, ``local_period_bands``.
    """

    name = "tiling"
    Params = TilingParams
    requires = ("pred",)

    def __init__(self, params: TilingParams | None = None) -> None:
        super().__init__(params)
        p = self.params
        if not (p.min_period_px >= 2 and 0 < p.max_period_frac <= 0.5 and 0 < p.rel_power <= 1
                and p.ring_min_bins > 0 and p.ring_rel_width >= 0 and 0 < p.resize_factor < 1
                and 0 < p.local_window_frac <= 1 and p.local_overlap >= 1 and p.map_max_side >= 8
                and all(int(s) >= 2 for s in p.checkerboard_strides)
                and 1 < p.band_doubled_low < p.band_doubled_high):
            raise InputValueError(
                "tiling params: min_period_px >= 2, 0 < max_period_frac <= 0.5, 0 < rel_power <= 1, "
                "ring_min_bins > 0, 0 < resize_factor < 1, 0 < local_window_frac <= 1, local_overlap >= 1, "
                "map_max_side >= 8, checkerboard_strides >= 2 and 1 < band_doubled_low < band_doubled_high "
                f"are required; got {p}.")

    def compute(self, inputs: StepInputs) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            # due() runs compute only with pred present; check_image_batch raises on a missing one.
            pred = check_image_batch(inputs.pred, name="pred")
            return tiling_metrics(pred, mask=inputs.mask, ref=inputs.ref, params=self.params)

    def summarize(self, step: int, host: Mapping[str, np.ndarray], *,
                  sample_ids: Sequence[str] | None = None) -> Result:
        metrics = reduce_per_sample(host)
        cols = np.asarray(host.get("band_axis_is_cols", np.asarray([np.nan])), dtype=np.float64)
        cols = cols[np.isfinite(cols)]
        texts = {"band_axis_hint": ("cols" if cols.mean() >= 0.5 else "rows") if cols.size else "none"}
        refp = np.asarray(host.get("ref_period_px", np.asarray([np.nan])), dtype=np.float64)
        texts["fstar_source"] = "ref" if np.isfinite(refp).any() else "pred"
        maps = {k.removeprefix(MAP_PREFIX): np.asarray(v) for k, v in host.items()
                if k.startswith(MAP_PREFIX)}
        # Each verdict's severity is a metric too (0 none or info, 1 warn, 2 bad): "since when" is one chart.
        strides = sorted({int(k) for k in self.params.checkerboard_strides if int(k) >= 4})
        codes = VERDICT_CODES + tuple(f"grid_s{k}" for k in strides)
        levels = verdict_metrics(likely_causes({**metrics, **texts}), "tiling", codes=codes)
        metrics.update({k.removeprefix("trackdiag/tiling/"): v for k, v in levels.items()})
        return Result(metrics=metrics, texts=texts, maps=maps)

    def render(self, result: Result) -> dict[str, np.ndarray]:
        from ..plots.tiling import render_all

        return render_all(result.maps, result.metrics, result.texts)
