"""Latent diagnostics before and after the UNet (seed sections 3.2, 7.1).

For each named latent batch (``{"in": z_t, "out": unet_out}``, each ``B×C×h×w``):

* per-channel mean, std, skew and excess kurtosis, pooled over the batch from per-sample central moments
  (:func:`channel_moments` on the device, :func:`pool_moments` on the CPU, exact under a DDP gather);
* the share of non-finite values (:func:`nonfinite_share`; every other statistic uses the finite values);
* periodic structure per channel with the tiling analyzer's spectral core
  (:func:`trackdiag.spectral.dominant_period`): the dominant period in latent pixels and its score;
* stripe energy (:func:`stripe_energy`): the variance of the row means and of the column means against the
  total variance. White noise gives ``1/w`` and ``1/h``; pure horizontal stripes give 1 for rows;
* drift between batches: the distance of this batch's per-channel (mean, std) from a running reference
  (:func:`channel_drift`), with its own spike detection (the loss analyzer's
  :class:`~trackdiag.analyzers.loss.RollingSpikeDetector` on the log-distance).

:class:`LatentAnalyzer` wraps them; ``python -m trackdiag.diagnose --latents DIR`` runs the same analyzer
over saved latent files (see :mod:`trackdiag.sections.latent`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import check_image_batch
from ..errors import ConfigError, InputValueError
from ..schedule import Schedule
from .base import MAP_PREFIX, Analyzer, AnalyzerParams, Result, StepInputs
from .loss import RollingSpikeDetector

__all__ = [
    "LatentParams", "LatentAnalyzer", "ChannelStats", "channel_moments", "pool_moments", "nonfinite_share",
    "stripe_energy", "remove_stripes", "channel_periods", "channel_drift", "LATENT_FLAGS",
]

#: Flags a latent batch can raise (the ``kind`` of a latent event).
LATENT_FLAGS = ("nonfinite", "stripes", "periodic", "drift")


# ------------------------------------------------------------------------------------------------------
# Pure tensor math
# ------------------------------------------------------------------------------------------------------
def channel_moments(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample, per-channel count and central moment sums over the finite values of ``x`` (B×C×h×w).

    Returns ``n``, ``mean``, ``m2``, ``m3``, ``m4``, each ``B×C`` float32, where ``m_k = Σ (x - mean)^k``.
    A channel without finite values has ``n = 0`` and NaN moments.
    """
    x = check_image_batch(x, name="latents")
    finite = torch.isfinite(x)
    n = finite.sum(dim=(-2, -1)).to(torch.float32)
    x0 = torch.where(finite, x, torch.zeros((), dtype=x.dtype, device=x.device)).float()
    mean = x0.sum(dim=(-2, -1)) / n
    d = torch.where(finite, x0 - mean[..., None, None], torch.zeros((), device=x.device))
    d2 = d * d
    return {"n": n, "mean": mean, "m2": d2.sum(dim=(-2, -1)), "m3": (d2 * d).sum(dim=(-2, -1)),
            "m4": (d2 * d2).sum(dim=(-2, -1))}


@dataclass
class ChannelStats:
    """Pooled per-channel statistics, each ``(C,)`` float64 (NaN where a channel had no finite value)."""

    count: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    skew: np.ndarray
    kurtosis: np.ndarray  # excess kurtosis: 0 for a normal distribution


def pool_moments(n: np.ndarray, mean: np.ndarray, m2: np.ndarray, m3: np.ndarray, m4: np.ndarray
                 ) -> ChannelStats:
    """Combine per-sample central moment sums (each ``B×C``) into per-channel statistics over the batch.

    Exact shift formulas: with ``δ_i = mean_i - μ``, ``M2 = Σ m2_i + n_i δ_i²``,
    ``M3 = Σ m3_i + 3 δ_i m2_i + n_i δ_i³``, ``M4 = Σ m4_i + 4 δ_i m3_i + 6 δ_i² m2_i + n_i δ_i⁴``.
    """
    n, mean, m2, m3, m4 = (np.asarray(a, dtype=np.float64) for a in (n, mean, m2, m3, m4))
    ok = n > 0
    w = np.where(ok, n, 0.0)
    total = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.where(ok, mean * w, 0.0).sum(axis=0) / total
        delta = np.where(ok, mean - mu, 0.0)
        z2, z3, z4 = (np.where(ok, a, 0.0) for a in (m2, m3, m4))
        M2 = (z2 + w * delta ** 2).sum(axis=0)
        M3 = (z3 + 3 * delta * z2 + w * delta ** 3).sum(axis=0)
        M4 = (z4 + 4 * delta * z3 + 6 * delta ** 2 * z2 + w * delta ** 4).sum(axis=0)
        var = M2 / total
        std = np.sqrt(var)
        skew = np.where(var > 0, (M3 / total) / np.power(var, 1.5), np.nan)
        kurt = np.where(var > 0, (M4 / total) / var ** 2 - 3.0, np.nan)
    nan = total <= 0
    return ChannelStats(total, np.where(nan, np.nan, mu), np.where(nan, np.nan, std),
                        np.where(nan, np.nan, skew), np.where(nan, np.nan, kurt))


def nonfinite_share(x: torch.Tensor) -> torch.Tensor:
    """Share of NaN/Inf values per sample, ``B×C×h×w`` → ``(B,)`` float32."""
    return (~torch.isfinite(x)).flatten(1).float().mean(dim=1)


def _finite_filled(x: torch.Tensor) -> torch.Tensor:
    """``x`` with non-finite values replaced by their sample-channel's finite mean (zero when none)."""
    finite = torch.isfinite(x)
    if bool(finite.all()):
        return x.float()
    mom = channel_moments(x)
    fill = torch.nan_to_num(mom["mean"], nan=0.0)[..., None, None].expand_as(x)
    return torch.where(finite, x.float(), fill)


def stripe_energy(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Variance of the row means and of the column means over the total variance, per sample and channel.

    ``x``: B×C×h×w → ``(rows, cols)``, each ``B×C`` in [0, 1]. ``rows`` is the share of the variance that
    lies in horizontal stripes (whole rows brighter or darker), ``cols`` in vertical stripes. White noise
    gives about ``1/w`` and ``1/h``. Non-finite values are replaced by the channel mean first.
    """
    x = _finite_filled(x)
    total = x.var(dim=(-2, -1), unbiased=False)
    rows = x.mean(dim=-1).var(dim=-1, unbiased=False)
    cols = x.mean(dim=-2).var(dim=-1, unbiased=False)
    tiny = torch.finfo(torch.float32).tiny
    return rows / total.clamp_min(tiny), cols / total.clamp_min(tiny)


def remove_stripes(x: torch.Tensor) -> torch.Tensor:
    """``x`` minus its row means and column means (plus the grand mean), per sample and channel.

    What :func:`stripe_energy` measures is taken out, so that the period search sees the structure that is
    not stripes (a 2-D lattice keeps all of its energy; pure row/column offsets lose all of theirs).
    """
    return (x - x.mean(dim=-1, keepdim=True) - x.mean(dim=-2, keepdim=True)
            + x.mean(dim=(-2, -1), keepdim=True))


def channel_periods(x: torch.Tensor, *, min_period_px: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Dominant period (latent px) and its score in [0, 1] per sample and channel, ``B×C×h×w`` → two ``B×C``.

    Uses :func:`trackdiag.spectral.dominant_period` (the tiling analyzer's spectral core) on the ``B·C``
    channel images after :func:`remove_stripes` (stripes are reported by :func:`stripe_energy`); periods
    shorter than ``min_period_px`` are not searched.
    """
    from ..spectral import dominant_period

    b, c, h, w = x.shape
    est = dominant_period(remove_stripes(_finite_filled(x)).reshape(b * c, h, w), min_period_px=min_period_px)
    return est.period_px.reshape(b, c).float(), est.score.reshape(b, c).float()


def channel_drift(mean: np.ndarray, std: np.ndarray, ref_mean: np.ndarray, ref_std: np.ndarray) -> float:
    """Distance of a batch's per-channel (mean, std) from a reference, in reference σ (all ``(C,)``).

    ``mean_c sqrt((μ_c - μ_ref,c)² + (σ_c - σ_ref,c)²) / σ_ref,c`` (the 2-Wasserstein distance between normal
    approximations, per channel, averaged). 0 for an identical batch; 1 for a shift of one σ.
    """
    mean, std, ref_mean, ref_std = (np.asarray(a, dtype=np.float64) for a in (mean, std, ref_mean, ref_std))
    ok = np.isfinite(mean) & np.isfinite(std) & np.isfinite(ref_mean) & (ref_std > 0)
    if not ok.any():
        return math.nan
    d = np.sqrt((mean - ref_mean) ** 2 + (std - ref_std) ** 2) / np.where(ok, ref_std, 1.0)
    return float(d[ok].mean())


# ------------------------------------------------------------------------------------------------------
# The analyzer
# ------------------------------------------------------------------------------------------------------
@dataclass
class LatentParams(AnalyzerParams):
    """Parameters of :class:`LatentAnalyzer` (see ``docs/latent.md``)."""

    schedule: Schedule = field(default_factory=lambda: Schedule(kind="every", every=100))
    #: Render the channel figure every n-th run.
    figures_every: int = 5
    #: Per-channel metrics for at most this many channels (aggregates always use all of them).
    max_channels: int = 16
    #: ``stripes`` flag: stripe energy (rows or columns) of a channel above this share of its variance.
    stripe_threshold: float = 0.2
    #: ... and at least this many times the share of the other axis (isotropic content raises both).
    stripe_anisotropy: float = 3.0
    #: ``periodic`` flag: a channel's period score (``dominant_period``) above this ...
    period_score_threshold: float = 0.3
    #: Shortest period searched, in latent pixels (shorter: checkerboard, see the tiling analyzer).
    min_period_px: float = 3.0
    #: Decay of the running reference (per run of the analyzer) for the drift distance.
    drift_decay: float = 0.9
    #: Drift spike: the log-distance more than ``drift_sigma`` σ above its rolling level ...
    drift_sigma: float = 3.0
    drift_window: int = 50
    drift_min_history: int = 8
    #: ... or the distance above this many reference σ (flags a drift before the detector is warm).
    drift_threshold: float = 1.0
    #: Sample-0 channel maps for the figure are downsampled to at most this side.
    figure_side: int = 64

    def __post_init__(self) -> None:
        if not 0.0 < self.drift_decay < 1.0:
            raise ConfigError(f"latent drift_decay must be in (0, 1); got {self.drift_decay}.")
        for name in ("max_channels", "drift_window", "figure_side", "figures_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"latent {name} must be >= 1; got {getattr(self, name)}.")
        if self.drift_min_history < 3:
            raise ConfigError(f"latent drift_min_history must be >= 3; got {self.drift_min_history}.")


class _DriftState:
    """Running per-channel reference of one latent name and the spike detector of its distance."""

    def __init__(self, p: LatentParams) -> None:
        self.p = p
        self.ref_mean: Optional[np.ndarray] = None
        self.ref_std: Optional[np.ndarray] = None
        self.runs = 0
        self.spikes = RollingSpikeDetector(window=p.drift_window, sigma=p.drift_sigma, detrend=False,
                                           min_history=p.drift_min_history, max_run=3)

    def update(self, mean: np.ndarray, std: np.ndarray) -> tuple[float, float, bool]:
        """(distance, z, spike) of this batch; then the reference moves towards it."""
        self.runs += 1
        if self.ref_mean is None or self.ref_mean.shape != mean.shape:
            self.ref_mean, self.ref_std = mean.copy(), std.copy()
            return math.nan, math.nan, False
        dist = channel_drift(mean, std, self.ref_mean, self.ref_std)
        z, spike = math.nan, False
        if math.isfinite(dist):
            check = self.spikes.observe(math.log(dist + 1e-6), float(self.runs))
            z, spike = check.z, check.spike
        d = self.p.drift_decay
        ok = np.isfinite(mean) & np.isfinite(std)
        self.ref_mean = np.where(ok, d * self.ref_mean + (1 - d) * mean, self.ref_mean)
        self.ref_std = np.where(ok, d * self.ref_std + (1 - d) * std, self.ref_std)
        return dist, z, spike

    def state_dict(self) -> dict[str, Any]:
        return {"ref_mean": None if self.ref_mean is None else self.ref_mean.tolist(),
                "ref_std": None if self.ref_std is None else self.ref_std.tolist(), "runs": self.runs,
                "spikes": self.spikes.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        rm, rs = state.get("ref_mean"), state.get("ref_std")
        self.ref_mean = None if rm is None else np.asarray(rm, dtype=np.float64)
        self.ref_std = None if rs is None else np.asarray(rs, dtype=np.float64)
        self.runs = int(state.get("runs", 0))
        self.spikes.load_state_dict(state.get("spikes", {}))


_PER_SAMPLE = ("n", "mean", "m2", "m3", "m4", "stripe_rows", "stripe_cols", "period_px", "period_score")


class LatentAnalyzer(Analyzer):
    """Latent statistics before/after the UNet, periodicity, stripes and batch-to-batch drift."""

    name = "latent"
    Params = LatentParams
    requires = ("latents",)

    def __init__(self, params: Optional[LatentParams] = None) -> None:
        super().__init__(params if params is not None else LatentParams())
        self.drift: dict[str, _DriftState] = {}

    # -- device side ------------------------------------------------------------------------------
    def compute(self, inputs: StepInputs) -> dict[str, torch.Tensor]:
        if not inputs.latents:
            raise InputValueError("the latent analyzer needs latents={'in': z_t, 'out': unet_out}.")
        out: dict[str, torch.Tensor] = {}
        for name, x in inputs.latents.items():
            x = check_image_batch(x, name=f"latents[{name!r}]")
            key = _safe(name)
            for k, v in channel_moments(x).items():
                out[f"{key}/{k}"] = v
            out[f"{key}/nonfinite"] = nonfinite_share(x)
            out[f"{key}/stripe_rows"], out[f"{key}/stripe_cols"] = stripe_energy(x)
            out[f"{key}/period_px"], out[f"{key}/period_score"] = channel_periods(
                x, min_period_px=self.params.min_period_px)
            side = self.params.figure_side
            s0 = _finite_filled(x[:1])
            if max(s0.shape[-2:]) > side:
                s0 = F.adaptive_avg_pool2d(s0, (min(side, s0.shape[-2]), min(side, s0.shape[-1])))
            out[f"{MAP_PREFIX}{key}"] = s0[0]
        return out

    # -- CPU side -----------------------------------------------------------------------------------
    def summarize(self, step: int, host: Mapping[str, np.ndarray], *,
                  sample_ids: Optional[Sequence[str]] = None) -> Result:
        p = self.params
        res = Result()
        names = sorted({k.split("/", 1)[0] for k in host if not k.startswith(MAP_PREFIX)})
        events: list[dict[str, Any]] = []
        flags_all: list[str] = []
        for name in names:
            arr = {k: np.asarray(host[f"{name}/{k}"], dtype=np.float64) for k in _PER_SAMPLE}
            stats = pool_moments(arr["n"], arr["mean"], arr["m2"], arr["m3"], arr["m4"])
            nonfinite = float(np.mean(host[f"{name}/nonfinite"]))
            rows = _nanmean0(arr["stripe_rows"])
            cols = _nanmean0(arr["stripe_cols"])
            score = _nanmean0(arr["period_score"])
            period = _nanmedian0(arr["period_px"])
            state = self.drift.setdefault(name, _DriftState(p))
            dist, dz, dspike = state.update(stats.mean, stats.std)
            m = res.metrics
            for c in range(min(stats.mean.size, p.max_channels)):
                for key, values in (("mean", stats.mean), ("std", stats.std), ("skew", stats.skew),
                                    ("kurtosis", stats.kurtosis), ("stripe_rows", rows),
                                    ("stripe_cols", cols), ("period_px", period), ("period_score", score)):
                    m[f"{name}/c{c}/{key}"] = float(values[c])
            periodic = score > p.period_score_threshold
            m[f"{name}/nonfinite_share"] = nonfinite
            m[f"{name}/std_mean"] = float(np.nanmean(stats.std)) if np.isfinite(stats.std).any() else math.nan
            m[f"{name}/abs_mean_max"] = _nanmax(np.abs(stats.mean))
            m[f"{name}/kurtosis_max"] = _nanmax(np.abs(stats.kurtosis))
            m[f"{name}/stripe_rows_max"] = _nanmax(rows)
            m[f"{name}/stripe_cols_max"] = _nanmax(cols)
            m[f"{name}/period_score_max"] = _nanmax(score)
            m[f"{name}/periodic_channels"] = float(periodic.sum())
            m[f"{name}/drift"] = dist
            m[f"{name}/drift_z"] = dz
            m[f"{name}/drift_spike"] = 1.0 if dspike else 0.0
            flags = self._flags(name, step, stats, nonfinite, rows, cols, score, period, periodic, dist, dz,
                                dspike, events)
            res.texts[f"{name}/flags"] = ",".join(flags) if flags else "none"
            flags_all += [f"{name}:{f}" for f in flags]
            mp = host.get(f"{MAP_PREFIX}{name}")
            if mp is not None:
                res.maps[name] = np.asarray(mp)
                res.maps[f"{name}/channel_stats"] = np.stack(
                    [stats.mean, stats.std, stats.skew, stats.kurtosis, rows, cols, score])
        res.metrics["flag_count"] = float(len(flags_all))
        if events:
            res.tables["events"] = events
        return res

    def _flags(self, name: str, step: int, stats: ChannelStats, nonfinite: float, rows: np.ndarray,
               cols: np.ndarray, score: np.ndarray, period: np.ndarray, periodic: np.ndarray, dist: float,
               dz: float, dspike: bool, events: list[dict[str, Any]]) -> list[str]:
        p = self.params
        flags: list[str] = []

        def event(kind: str, channel: Any, value: float, threshold: float, detail: str) -> None:
            events.append({"step": step, "latent": name, "kind": kind, "channel": channel, "value": value,
                           "threshold": threshold, "detail": detail})

        if nonfinite > 0:
            flags.append("nonfinite")
            event("nonfinite", "", nonfinite, 0.0, f"{nonfinite:.2%} of the values are NaN/Inf")
        stripe = np.fmax(rows, cols)
        # stripes are anisotropic: isotropic smooth content raises rows and columns alike
        striped = (stripe > p.stripe_threshold) & (stripe > p.stripe_anisotropy * np.fmin(rows, cols))
        if striped.any():
            flags.append("stripes")
            c = int(np.nanargmax(np.where(striped, stripe, -1.0)))
            axis = "rows (horizontal stripes)" if rows[c] >= cols[c] else "columns (vertical stripes)"
            event("stripes", c, float(stripe[c]), p.stripe_threshold,
                  f"{float(stripe[c]):.0%} of channel {c}'s variance is in its {axis} "
                  f"(the other axis: {float(np.fmin(rows, cols)[c]):.0%})")
        if periodic.any():
            flags.append("periodic")
            c = int(np.nanargmax(np.where(periodic, score, -1.0)))
            event("periodic", c, float(score[c]), p.period_score_threshold,
                  f"{int(periodic.sum())} channel(s) periodic; channel {c}: period {float(period[c]):.2f} px")
        if dspike or (math.isfinite(dist) and dist > p.drift_threshold):
            flags.append("drift")
            why = f"z = {dz:.1f} over the rolling level" if dspike else f"above {p.drift_threshold:g} sigma"
            event("drift", "", dist, p.drift_threshold,
                  f"distance {dist:.3f} reference sigma from the running reference ({why})")
        return flags

    def render(self, result: Result) -> dict[str, np.ndarray]:
        from ..plots.latent import channel_montage, channel_stats_figure

        figs: dict[str, np.ndarray] = {}
        for key, value in result.maps.items():
            if "/" in key:
                continue
            figs[f"{key}/channels"] = channel_montage(value, title=f"latents[{key!r}], sample 0")
            stats = result.maps.get(f"{key}/channel_stats")
            if stats is not None:
                figs[f"{key}/channel_stats"] = channel_stats_figure({key: stats})
        return figs

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "drift": {k: v.state_dict() for k, v in self.drift.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.drift = {}
        for name, sub in state.get("drift", {}).items():
            st = _DriftState(self.params)
            st.load_state_dict(sub)
            self.drift[str(name)] = st


def _safe(name: str) -> str:
    out = "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in str(name))
    return out or "latents"


def _nanmean0(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    ok = np.isfinite(a)
    cnt = ok.sum(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(cnt > 0, np.where(ok, a, 0.0).sum(axis=0) / np.maximum(cnt, 1), np.nan)


def _nanmedian0(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).any():
        return np.full(a.shape[1:], np.nan)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=0)


def _nanmax(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else math.nan
