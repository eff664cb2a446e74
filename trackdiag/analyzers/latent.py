"""Latent diagnostics before and after the UNet (seed sections 3.2, 7.1).

For each named latent batch (``{"in": z_t, "out": unet_out}``, each ``B×C×h×w``):

* per-channel mean, std, skew and excess kurtosis, pooled over the batch from per-sample central moments
  (:func:`channel_moments` on the device, :func:`pool_moments` on the CPU, exact under a DDP gather);
* the share of non-finite values (:func:`nonfinite_share`; every other statistic uses the finite values);
* periodic structure (2-D lattices, grids, tiled motifs, from a period of 2 latent px) per channel and on
  the first principal component of the channels: prominent peaks of the whitened spectrum
  (:mod:`trackdiag.functional.latent_periodic`), with the period and the channel named;
* stripes judged against what the channel's own isotropic spectrum explains
  (:func:`~trackdiag.functional.latent_periodic.stripe_excess`), after a degree-2 detrend so that a smooth
  gradient is not a stripe; the raw stripe energy (:func:`stripe_energy`) is still reported;
* drift between batches: a change-point scan of the per-image channel means and log-stds against the
  earlier batches (:mod:`trackdiag.functional.latent_drift`, Student-t, false-alarm rate set per batch);
  :func:`channel_drift` (distance from the previous batches' mean moments) is reported for charts.

The verdict rules (:func:`latent_rules`, registered as ``"latent"``) read only the flat metrics, so the
training loop, ``python -m trackdiag.diagnose --latents`` and ``compare_ckpts`` give the same verdicts.

:class:`LatentAnalyzer` wraps them; ``python -m trackdiag.diagnose --latents DIR`` runs the same analyzer
over saved latent files (see :mod:`trackdiag.report.sections.latent`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..core.checks import check_image_batch
from ..core.schedule import Schedule
from ..errors import ConfigError, InputValueError
from ..functional.latent_drift import drift_scan, image_statistics
from ..functional.latent_periodic import (
    first_component,
    gamma_threshold,
    periodic_peaks_from,
    prominence,
    stripe_excess,
    whitened_spectrum,
)
from ..metricspec import MetricSpec, register_metrics
from ..verdicts import Verdict, register_rules
from .base import MAP_PREFIX, Analyzer, AnalyzerParams, Result, StepInputs

__all__ = [
    "LatentParams", "LatentAnalyzer", "ChannelStats", "channel_moments", "pool_moments", "nonfinite_share",
    "stripe_energy", "channel_drift", "latent_rules", "LATENT_FLAGS", "LATENT_CODES",
]

#: Flags a latent batch can raise (the verdict code without ``latent_``).
LATENT_FLAGS = ("nonfinite", "stripes", "periodic", "drift")
LATENT_CODES = tuple(f"latent_{f}" for f in LATENT_FLAGS)


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
# Metric specs and verdict rules (they read only the flat metrics)
# ------------------------------------------------------------------------------------------------------
#: Stripes: share of a channel's variance on an axis line beyond its isotropic expectation ...
STRIPE_EXCESS_WARN = 0.025
STRIPE_EXCESS_BAD = 0.10
#: ... and the whitened significance of that excess (about N(0, 1) per image without stripes).
STRIPE_Z_WARN = 12.0
#: A periodic pattern carrying at least this share of a channel's variance is ``bad``.
PERIODIC_SHARE_BAD = 0.10

register_metrics("latent", [
    MetricSpec("stripe_excess", goal="min", unit="share",
               doc="stripe share of the most striped channel beyond what its isotropic spectrum explains",
               warn=STRIPE_EXCESS_WARN, bad=STRIPE_EXCESS_BAD),
    MetricSpec("stripe_z", goal="min", unit="z", doc="whitened significance of that stripe excess",
               warn=STRIPE_Z_WARN),
    MetricSpec("periodic_excess", goal="min", unit="ratio",
               doc="strongest whitened spectral peak over the threshold for this batch size (>= 1: periodic)",
               warn=1.0),
    MetricSpec("periodic_share", goal="min", unit="share", doc="variance share of the periodic peaks",
               bad=PERIODIC_SHARE_BAD),
    MetricSpec("period_px", goal="none", unit="px", doc="period of the periodic pattern (latent px)"),
    MetricSpec("drift_excess", goal="min", unit="ratio",
               doc="-log10 p of the drift scan over -log10 of its per-batch limit (>= 1: drift)", warn=1.0),
    MetricSpec("drift_delta", goal="none", unit="σ or ×",
               doc="size of the change: mean shift in pixel σ, or std factor"),
    MetricSpec("drift", goal="min", unit="σ",
               doc="distance of the batch's (mean, std) from the earlier ones"),
    MetricSpec("nonfinite_share", goal="min", unit="share", doc="share of NaN/Inf values", warn=1e-12,
               bad=1e-3),
    MetricSpec("std_mean", goal="none", unit="", doc="mean of the per-channel std"),
])


def _names(summary: Mapping[str, Any]) -> list[str]:
    return sorted({k.split("/", 1)[0] for k in summary
                   if k.endswith("/periodic_excess") and k.count("/") == 1})


def latent_rules(summary: Mapping[str, Any]) -> list[Verdict]:
    """Verdicts of the latent analyzer from its flat metrics (``<name>/<key>`` → value), per latent name."""
    out: list[Verdict] = []

    def g(key: str) -> float:
        v = summary.get(key, math.nan)
        try:
            return float(v)
        except (TypeError, ValueError):
            return math.nan

    for n in _names(summary):
        nf = g(f"{n}/nonfinite_share")
        if math.isfinite(nf) and nf > 0:
            out.append(Verdict(code="latent_nonfinite", severity="bad", title=f"NaN/Inf in latents[{n!r}]",
                               evidence={"latent": n, "nonfinite_share": nf},
                               fix="fp16 overflow in the VAE encoder or the UNet: run the VAE in fp32/bf16, "
                                   "clip gradients, lower the learning rate."))
        pe = g(f"{n}/periodic_excess")
        if math.isfinite(pe) and pe >= 1.0:
            ch = int(g(f"{n}/periodic_channel"))
            where = "the first principal component of the channels" if ch < 0 else f"channel {ch}"
            share, period = g(f"{n}/periodic_share"), g(f"{n}/period_px")
            kind = summary.get(f"{n}/periodic_kind", "")
            out.append(Verdict(
                code="latent_periodic", severity="bad" if share >= PERIODIC_SHARE_BAD else "warn",
                title=f"Periodic structure in latents[{n!r}]: period {period:.2f} latent px in {where}",
                evidence={"latent": n, "channel": "pc1" if ch < 0 else ch, "period_px": round(period, 3),
                          "kind": kind, "share": round(share, 4), "periodic_excess": round(pe, 3),
                          "periodic_channels": g(f"{n}/periodic_channels")},
                fix="A period in the UNet output that the target does not have is the tiling artifact in "
                    "latent space (a lattice of period p latent px is 8p image px with an SD VAE); check the "
                    "dataset for tiled sources and the tiling section for doubling/halving."))
        se, sz = g(f"{n}/stripe_excess"), g(f"{n}/stripe_z")
        if math.isfinite(se) and math.isfinite(sz) and se >= STRIPE_EXCESS_WARN and sz >= STRIPE_Z_WARN:
            ch = int(g(f"{n}/stripe_channel"))
            axis = "rows (horizontal stripes)" if g(f"{n}/stripe_axis") == 0 else "columns (vertical stripes)"
            out.append(Verdict(
                code="latent_stripes", severity="bad" if se >= STRIPE_EXCESS_BAD else "warn",
                title=f"Stripes in latents[{n!r}]: channel {ch}, {axis}",
                evidence={"latent": n, "channel": ch, "axis": axis.split()[0], "stripe_excess": round(se, 4),
                          "stripe_z": round(sz, 2), "limits": [STRIPE_EXCESS_WARN, STRIPE_Z_WARN]},
                fix="Batch-norm imbalance, periodicity in the latents, or augmentations that create a "
                    "regular pattern. Compare 'in' and 'out': stripes only after the UNet point at the "
                    "model."))
        de = g(f"{n}/drift_excess")
        if math.isfinite(de) and de >= 1.0:
            ch = int(g(f"{n}/drift_channel"))
            stat = "mean" if g(f"{n}/drift_stat") == 0 else "std"
            delta = g(f"{n}/drift_delta")
            what = f"mean shifted by {delta:+.2f} σ" if stat == "mean" else f"spread × {delta:.2f}"
            out.append(Verdict(
                code="latent_drift", severity="warn",
                title=f"Latent distribution drifts in latents[{n!r}]: channel {ch} {what}",
                evidence={"latent": n, "channel": ch, "statistic": stat, "delta": round(delta, 3),
                          "batches_since_change": int(g(f"{n}/drift_lag")), "drift_excess": round(de, 3),
                          "p": g(f"{n}/drift_p")},
                fix="A change of per-channel mean/std between batches: a wrong VAE scaling factor on some "
                    "data, mixed precision, or a data subset with different statistics."))
    return out


register_rules("latent", latent_rules)


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
    #: Periodic peaks: false-alarm probability of one spectral bin (the threshold adapts to the batch size).
    periodic_p_bin: float = 1e-8
    #: Periodic peaks: the pattern repeats at least this many times across the image (shortest period: 2 px).
    periodic_min_cycles: float = 6.0
    #: Also search the first principal component of the channels (a pattern shared by all channels).
    periodic_pc1: bool = True
    #: Drift: nominal false-alarm probability per batch (measured: see docs/latent.md; at B = 4 the 1 %
    #: budget is what finds a 0.5 σ mean shift within 5 batches in >= 90 %).
    drift_false_alarm: float = 0.01
    #: Drift: a change is looked for in the last 1 … drift_max_lag batches.
    drift_max_lag: int = 5
    #: Drift: no decision before this many earlier batches.
    drift_min_history: int = 8
    #: Drift: batches kept as the reference (oldest dropped).
    drift_history: int = 64
    #: Sample-0 channel maps for the figure are downsampled to at most this side.
    figure_side: int = 64

    def __post_init__(self) -> None:
        for name in ("max_channels", "figure_side", "figures_every", "drift_max_lag"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"latent {name} must be >= 1; got {getattr(self, name)}.")
        if self.drift_min_history < 3 or self.drift_history < self.drift_min_history + self.drift_max_lag:
            raise ConfigError("latent drift_min_history must be >= 3 and drift_history >= "
                              f"drift_min_history + drift_max_lag; got {self.drift_min_history}, "
                              f"{self.drift_history}.")
        if not (0 < self.drift_false_alarm < 1 and 0 < self.periodic_p_bin < 1):
            raise ConfigError("latent drift_false_alarm and periodic_p_bin must be in (0, 1).")
        if self.periodic_min_cycles < 1:
            raise ConfigError(f"latent periodic_min_cycles must be >= 1; got {self.periodic_min_cycles}.")


class _DriftState:
    """The per-image statistics of the last batches of one latent name (the drift scan's reference)."""

    def __init__(self, p: LatentParams) -> None:
        self.p = p
        self.history: list[np.ndarray] = []
        self.prev_mean: Optional[np.ndarray] = None
        self.prev_std: Optional[np.ndarray] = None

    def update(self, per_image: np.ndarray, mean: np.ndarray, std: np.ndarray) -> tuple[float, Any]:
        """(distance from the previous batches' moments, :class:`DriftScan`) after adding this batch."""
        self.history.append(per_image)
        self.history = self.history[-self.p.drift_history:]
        scan = drift_scan(self.history, max_lag=self.p.drift_max_lag, min_reference=self.p.drift_min_history,
                          false_alarm=self.p.drift_false_alarm)
        dist = math.nan
        if self.prev_mean is not None and self.prev_mean.shape == mean.shape:
            dist = channel_drift(mean, std, self.prev_mean, self.prev_std)  # type: ignore[arg-type]
        self._reference()
        return dist, scan

    def _reference(self) -> None:
        """Mean moments of the last 16 batches (what :func:`channel_drift` compares the next batch with)."""
        ref = [r for r in self.history[-16:] if r.shape[-1] == self.history[-1].shape[-1]]
        if not ref:
            self.prev_mean, self.prev_std = None, None
            return
        with np.errstate(invalid="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                stack = np.concatenate(ref)
                self.prev_mean = np.nanmean(stack[:, 0], axis=0)
                self.prev_std = np.exp(np.nanmean(stack[:, 1], axis=0))

    def state_dict(self) -> dict[str, Any]:
        return {"history": [h.tolist() for h in self.history]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.history = [np.asarray(h, dtype=np.float64) for h in state.get("history", [])]
        if self.history:
            self._reference()


_PER_SAMPLE = ("n", "mean", "m2", "m3", "m4", "stripe_rows", "stripe_cols", "stripe_rows_excess",
               "stripe_cols_excess", "stripe_rows_z", "stripe_cols_z")


def latent_spectral(x: torch.Tensor, *, pc1: bool = True) -> dict[str, torch.Tensor]:
    """Per-sample spectral measures of a latent batch ``B×C×h×w`` (non-finite values filled).

    Returns ``stripe_{rows,cols}_excess`` and ``..._z`` (``B×C``, :func:`stripe_excess`), and ``prom`` /
    ``share`` (``B×C'×h×w`` with ``C' = C + 1`` when ``pc1``: the prominence and peak-share maps of each
    channel and of the first principal component), which :func:`periodic_peaks_from` averages over the batch.
    """
    x = _finite_filled(x)
    b, c, h, w = x.shape
    imgs = x.reshape(b * c, h, w)
    if pc1 and c > 1:
        imgs = torch.cat([x, first_component(x)[:, None]], dim=1).reshape(b * (c + 1), h, w)
    spec = whitened_spectrum(imgs)
    cc = imgs.shape[0] // b
    from ..functional.latent_periodic import peak_share_map

    st = stripe_excess(spec)
    out = {f"stripe_{k.replace('rows', 'rows_excess').replace('cols', 'cols_excess')}"
           if k in ("rows", "cols") else f"stripe_{k}": v.reshape(b, cc)[:, :c]
           for k, v in st.items() if not k.endswith("_share")}
    out["prom"] = prominence(spec).reshape(b, cc, h, w)
    out["share"] = peak_share_map(spec).reshape(b, cc, h, w)
    return out


class LatentAnalyzer(Analyzer[LatentParams]):
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
        p = self.params
        out: dict[str, torch.Tensor] = {}
        for name, x in inputs.latents.items():
            x = check_image_batch(x, name=f"latents[{name!r}]")
            if min(x.shape[-2:]) < 8:
                raise InputValueError(f"latents[{name!r}] is {tuple(x.shape)}; the latent analyzer needs at "
                                      "least 8×8 latent px.")
            key = _safe(name)
            for k, v in channel_moments(x).items():
                out[f"{key}/{k}"] = v
            out[f"{key}/nonfinite"] = nonfinite_share(x)
            out[f"{key}/stripe_rows"], out[f"{key}/stripe_cols"] = stripe_energy(x)
            for k, v in latent_spectral(x, pc1=p.periodic_pc1).items():
                out[f"{key}/{k}"] = v
            side = p.figure_side
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
        m = res.metrics
        for name in names:
            arr = {k: np.asarray(host[f"{name}/{k}"], dtype=np.float64) for k in _PER_SAMPLE}
            stats = pool_moments(arr["n"], arr["mean"], arr["m2"], arr["m3"], arr["m4"])
            b, c = arr["mean"].shape
            nonfinite = float(np.mean(host[f"{name}/nonfinite"]))
            rows, cols = _nanmean0(arr["stripe_rows"]), _nanmean0(arr["stripe_cols"])
            ex_r, ex_c = _nanmean0(arr["stripe_rows_excess"]), _nanmean0(arr["stripe_cols_excess"])
            z_r, z_c = _nanmean0(arr["stripe_rows_z"]), _nanmean0(arr["stripe_cols_z"])
            prom = torch.from_numpy(np.asarray(host[f"{name}/prom"], dtype=np.float32)).mean(dim=0)
            share = torch.from_numpy(np.asarray(host[f"{name}/share"], dtype=np.float32)).mean(dim=0)
            found = periodic_peaks_from(prom, share, samples=b, min_cycles=p.periodic_min_cycles,
                                        p_bin=p.periodic_p_bin)
            thr = gamma_threshold(b, p.periodic_p_bin)
            with np.errstate(divide="ignore", invalid="ignore"):
                img_std = np.sqrt(arr["m2"] / arr["n"])
            state = self.drift.setdefault(name, _DriftState(p))
            dist, scan = state.update(image_statistics(arr["mean"], img_std), stats.mean, stats.std)
            for ch in range(min(c, p.max_channels)):
                f = found[ch]
                for key, value in (("mean", stats.mean[ch]), ("std", stats.std[ch]), ("skew", stats.skew[ch]),
                                   ("kurtosis", stats.kurtosis[ch]), ("stripe_rows", rows[ch]),
                                   ("stripe_cols", cols[ch]), ("stripe_rows_excess", ex_r[ch]),
                                   ("stripe_cols_excess", ex_c[ch]), ("stripe_rows_z", z_r[ch]),
                                   ("stripe_cols_z", z_c[ch]), ("periodic_excess", f.ratio / thr),
                                   ("period_px", f.period_px if f.found else math.nan),
                                   ("periodic_share", f.share)):
                    m[f"{name}/c{ch}/{key}"] = float(value)
            if len(found) > c:
                m[f"{name}/pc1/periodic_excess"] = found[c].ratio / thr
                m[f"{name}/pc1/period_px"] = found[c].period_px if found[c].found else math.nan
            periodic = [i for i, f in enumerate(found) if f.found]
            best = max(range(len(found)), key=lambda i: (found[i].found, found[i].ratio))
            fb = found[best]
            m[f"{name}/nonfinite_share"] = nonfinite
            m[f"{name}/std_mean"] = float(np.nanmean(stats.std)) if np.isfinite(stats.std).any() else math.nan
            m[f"{name}/abs_mean_max"] = _nanmax(np.abs(stats.mean))
            m[f"{name}/kurtosis_max"] = _nanmax(np.abs(stats.kurtosis))
            m[f"{name}/stripe_rows_max"] = _nanmax(rows)
            m[f"{name}/stripe_cols_max"] = _nanmax(cols)
            m[f"{name}/periodic_excess"] = fb.ratio / thr
            m[f"{name}/periodic_channel"] = float(-1 if best >= c else best)
            m[f"{name}/periodic_share"] = fb.share
            m[f"{name}/period_px"] = fb.period_px if fb.found else math.nan
            m[f"{name}/periodic_channels"] = float(len([i for i in periodic if i < c]))
            res.texts[f"{name}/periodic_kind"] = fb.kind
            # stripes: the most striped channel that is not periodic (a grid's lines are its own finding)
            score = np.fmin(np.fmax(ex_r, ex_c) / STRIPE_EXCESS_WARN, np.fmax(z_r, z_c) / STRIPE_Z_WARN)
            score = np.where([found[i].found for i in range(c)], -np.inf, np.nan_to_num(score, nan=-np.inf))
            sc = int(np.argmax(score))
            axis = 0 if min(ex_r[sc] / STRIPE_EXCESS_WARN, z_r[sc] / STRIPE_Z_WARN) >= \
                min(ex_c[sc] / STRIPE_EXCESS_WARN, z_c[sc] / STRIPE_Z_WARN) else 1
            m[f"{name}/stripe_channel"] = float(sc)
            m[f"{name}/stripe_axis"] = float(axis)
            m[f"{name}/stripe_excess"] = float((ex_r if axis == 0 else ex_c)[sc]) if np.isfinite(score[sc]) \
                else 0.0
            m[f"{name}/stripe_z"] = float((z_r if axis == 0 else z_c)[sc]) if np.isfinite(score[sc]) else 0.0
            m[f"{name}/drift"] = dist
            m[f"{name}/drift_p"] = scan.p
            m[f"{name}/drift_excess"] = (-math.log10(max(scan.p, 1e-300)) / -math.log10(scan.limit)
                                         if math.isfinite(scan.p) and math.isfinite(scan.limit) else math.nan)
            m[f"{name}/drift_z"] = scan.z
            m[f"{name}/drift_channel"] = float(scan.channel)
            m[f"{name}/drift_stat"] = 0.0 if scan.stat == "mean" else 1.0
            m[f"{name}/drift_delta"] = scan.delta
            m[f"{name}/drift_lag"] = float(scan.lag)
            mp = host.get(f"{MAP_PREFIX}{name}")
            if mp is not None:
                res.maps[name] = np.asarray(mp)
                res.maps[f"{name}/channel_stats"] = np.stack(
                    [stats.mean, stats.std, stats.skew, stats.kurtosis, rows, cols,
                     np.asarray([found[i].ratio / thr for i in range(c)])])
        verdicts = latent_rules({**m, **res.texts})
        events: list[dict[str, Any]] = []
        for name in names:
            mine = [v for v in verdicts if v.evidence.get("latent") == name]
            flags = [v.code.removeprefix("latent_") for v in mine]
            res.texts[f"{name}/flags"] = ",".join(flags) if flags else "none"
            for v in mine:
                events.append({"step": step, "latent": name, "kind": v.code.removeprefix("latent_"),
                               "code": v.code, "severity": v.severity,
                               "channel": v.evidence.get("channel", ""), "detail": v.title})
        for code in LATENT_CODES:
            m[f"verdict/{code}"] = max((2.0 if v.severity == "bad" else 1.0 for v in verdicts
                                        if v.code == code), default=0.0)
        m["flag_count"] = float(len(verdicts))
        if events:
            res.tables["events"] = events
        return res

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
