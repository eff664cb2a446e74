"""Fingerprint across images: the averaged high-pass residual spectrum of all validation images of a step.

A grid too weak to see in one image stands out once the power spectra of many images are averaged: the
image content differs from image to image and averages towards a smooth background, while a grid that the
model (VAE lattice, patchify) stamps on every image sits on the same frequencies each time.

Math (pure functions, tensor shapes in the docstrings):

* :func:`residual` — ``x − blur(x)`` (3×3 box, reflect padding) of the luminance: the high-pass residual.
* :func:`mean_power_spectrum` — ``|FFT2(residual · window)|²`` averaged over images (``H×W``).
* :func:`lattice_score` — for stride ``k``: the lattice bins ``(m·H/k, n·W/k)`` that are *not* on the
  lattice of stride ``k/2`` (so each stride counts only what a finer one does not explain); at each, the power
  over the mean power of its neighbourhood (Chebyshev distance 2..4, lattice bins excluded). The score is the
  mean of these ratios − 1 (0 for no grid), over the bins on the two frequency axes (where lines put their
  power) or over all lattice bins (a k×k pattern), whichever has the larger z-value under pure noise,
  ``z = score · sqrt(n_images · n_bins)``.

:class:`FingerprintTracker` keeps the "since when" (the first step of the current streak of each verdict)
and produces ``trackdiag/fingerprint/grid_s<k>`` metrics and ``fingerprint_grid_s<k>`` verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from ..core.checks import check_image_batch
from ..metricspec import MetricSpec, register_metrics
from ..verdicts import Verdict, register_rules, verdict_metrics

__all__ = [
    "residual",
    "mean_power_spectrum",
    "lattice_score",
    "fingerprint_scores",
    "fingerprint_rules",
    "FingerprintTracker",
    "STRIDES",
    "WARN",
    "BAD",
    "MIN_Z",
]

ANALYZER = "fingerprint"
STRIDES: tuple[int, ...] = (8, 16, 32)
#: Limits on the lattice excess (mean peak/background power − 1) and the least z-value for any verdict.
WARN, BAD, MIN_Z = 0.5, 2.0, 6.0

register_metrics(
    ANALYZER,
    [
        *(
            MetricSpec(
                f"grid_s{k}",
                goal="min",
                unit="ratio",
                warn=WARN,
                bad=BAD,
                doc=f"{k}-px lattice power over its neighbourhood in the averaged residual spectrum, − 1",
            )
            for k in STRIDES
        ),
        *(
            MetricSpec(
                f"grid_s{k}_z",
                goal="none",
                unit="σ",
                doc=f"grid_s{k} in units of its standard deviation under pure noise",
            )
            for k in STRIDES
        ),
        MetricSpec("n_images", goal="none", unit="", doc="images averaged into the fingerprint"),
    ],
)


def residual(images: torch.Tensor) -> torch.Tensor:
    """High-pass residual of the luminance: ``B×C×H×W`` → ``B×H×W`` (``x − 3×3 box blur``, reflect pad)."""
    g = torch.nan_to_num(images.float().mean(dim=1, keepdim=True))
    blur = torch.nn.functional.avg_pool2d(
        torch.nn.functional.pad(g, (1, 1, 1, 1), mode="reflect"), 3, stride=1
    )
    return (g - blur)[:, 0]


def mean_power_spectrum(res: torch.Tensor) -> torch.Tensor:
    """``B×H×W`` residuals → ``H×W`` mean power spectrum (per-image mean removed, Hann window)."""
    h, w = res.shape[-2:]
    win = (
        torch.hann_window(h, periodic=True, dtype=res.dtype)[:, None]
        * torch.hann_window(w, periodic=True, dtype=res.dtype)[None, :]
    )
    z = (res - res.mean(dim=(-2, -1), keepdim=True)) * win.to(res.device)
    return torch.fft.fft2(z.double()).abs().square().mean(dim=0)


def _box_sum(x: torch.Tensor, r: int) -> torch.Tensor:
    """Circular ``(2r+1)×(2r+1)`` box sum of an ``H×W`` map."""
    p = torch.nn.functional.pad(x[None, None], (r, r, r, r), mode="circular")
    return torch.nn.functional.avg_pool2d(p, 2 * r + 1, stride=1)[0, 0] * (2 * r + 1) ** 2


def lattice_score(power: torch.Tensor, k: int, *, n_images: int = 1) -> tuple[float, float]:
    """``(score, z)`` of stride ``k`` in an ``H×W`` mean power spectrum (see the module doc).

    ``H`` and ``W`` should be multiples of ``k`` (crop first); NaN when the image is smaller than ``2k``.
    """
    h, w = power.shape
    if h < 2 * k or w < 2 * k:
        return float("nan"), float("nan")
    ys = (torch.arange(k) * h) // k
    xs = (torch.arange(k) * w) // k
    lattice = torch.zeros(h, w, dtype=torch.bool)
    lattice[ys[:, None], xs[None, :]] = True
    off = (power * ~lattice).double()
    cnt = (~lattice).double()
    # background: the mean over Chebyshev distance 2..4 around each bin, lattice bins excluded
    bg = (_box_sum(off, 4) - _box_sum(off, 1)) / (_box_sum(cnt, 4) - _box_sum(cnt, 1)).clamp_min(1)
    m, n = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
    own = ~((m % 2 == 0) & (n % 2 == 0)) if k > 2 else ~((m == 0) & (n == 0))  # not on the k/2 lattice
    yy, xx = ys[m[own]], xs[n[own]]
    ratio = power[yy, xx].double() / bg[yy, xx]
    axis = (yy == 0) | (xx == 0)
    best = (float("nan"), float("nan"))
    # lines put their power on the axes only; a k×k pattern on the whole lattice: the larger z counts
    for sel in (axis, torch.ones_like(axis)):
        r = ratio[sel & torch.isfinite(ratio)]
        if r.numel():
            score = float(r.mean()) - 1.0
            cand = (score, score * math.sqrt(max(1, n_images) * r.numel()))
            if not math.isfinite(best[0]) or cand[1] > best[1]:
                best = cand
    return best


def fingerprint_scores(images: torch.Tensor, *, strides: Sequence[int] = STRIDES) -> dict[str, float]:
    """The fingerprint of one step's validation images ``B×C×H×W`` (any range; sizes must agree).

    Images are cropped from the top-left corner (the lattice phase is kept) to a multiple of the largest
    stride that fits. Returns ``{"grid_s<k>", "grid_s<k>_z", "n_images"}``.
    """
    images = check_image_batch(images, name="images")
    b, _, h, w = images.shape
    kmax = max(k for k in strides if k <= min(h, w) // 2) if any(k <= min(h, w) // 2 for k in strides) else 1
    hh, ww = (h // kmax) * kmax, (w // kmax) * kmax
    power = mean_power_spectrum(residual(images[..., :hh, :ww]))
    out: dict[str, float] = {"n_images": float(b)}
    for k in strides:
        s, z = lattice_score(power, int(k), n_images=b)
        out[f"grid_s{k}"], out[f"grid_s{k}_z"] = s, z
    return out


def fingerprint_rules(summary: Mapping[str, Any]) -> list[Verdict]:
    """Verdicts ``fingerprint_grid_s<k>`` from a flat summary (``grid_s<k>``, ``grid_s<k>_z``,
    ``since_…``)."""
    out = []

    def fires(k: int) -> bool:
        s = float(summary.get(f"grid_s{k}", float("nan")))
        z = float(summary.get(f"grid_s{k}_z", float("nan")))
        return math.isfinite(s) and math.isfinite(z) and z >= MIN_Z and s >= WARN

    for k in STRIDES:
        if not fires(k):
            continue
        s = float(summary[f"grid_s{k}"])
        z = float(summary[f"grid_s{k}_z"])
        # a coarser grid that fires more strongly has harmonics on this lattice: it explains this one
        if any(fires(c) and float(summary[f"grid_s{c}"]) > s for c in STRIDES if c > k and c % k == 0):
            continue
        since = summary.get(f"since_grid_s{k}")
        ev: dict[str, Any] = {
            f"grid_s{k}": round(s, 3),
            "z": round(z, 1),
            "warn": WARN,
            "bad": BAD,
            "n_images": summary.get("n_images"),
        }
        if since is not None and math.isfinite(float(since)):
            ev["since_step"] = int(since)
        out.append(
            Verdict(
                code=f"fingerprint_grid_s{k}",
                severity="bad" if s >= BAD else "warn",
                title=f"A {k}-px grid is stamped on every validation image"
                + (f" (since step {ev['since_step']})" if "since_step" in ev else ""),
                evidence=ev,
                fix=(
                    "8 px: the VAE decoder (transposed convolutions, tiling decode) — try another VAE; "
                    "16/32 px: "
                    "the patchify or stacked LoRAs — run trackdiag.probe to see which stage adds it."
                ),
            )
        )
    return out


register_rules(ANALYZER, fingerprint_rules)


@dataclass
class FingerprintTracker:
    """Fingerprint per step with "since when": ``update(step, images)`` → metrics and verdicts.

    Attributes:
        since: code → first step of the current streak in which the verdict fired (warn or bad).
    """

    strides: Sequence[int] = STRIDES
    since: dict[str, int] = field(default_factory=dict)

    def update(self, step: int, images: torch.Tensor) -> tuple[dict[str, float], list[Verdict]]:
        """Score ``images`` (``B×C×H×W``) of ``step``; returns ``trackdiag/fingerprint/...`` metrics and
        verdicts."""
        scores = fingerprint_scores(images, strides=self.strides)
        firing = {v.code for v in fingerprint_rules(scores)}
        for k in self.strides:
            code = f"fingerprint_grid_s{k}"
            if code in firing:
                self.since.setdefault(code, int(step))
            else:
                self.since.pop(code, None)
        summary = dict(scores)
        for k in self.strides:
            if f"fingerprint_grid_s{k}" in self.since:
                summary[f"since_grid_s{k}"] = float(self.since[f"fingerprint_grid_s{k}"])
        verdicts = fingerprint_rules(summary)
        metrics = {f"trackdiag/{ANALYZER}/{key}": float(v) for key, v in summary.items()}
        metrics.update(
            verdict_metrics(verdicts, ANALYZER, codes=[f"fingerprint_grid_s{k}" for k in self.strides])
        )
        return metrics, verdicts

    def state_dict(self) -> dict[str, Any]:
        return {"since": dict(self.since)}

    def load_state_dict(self, state: Optional[Mapping[str, Any]]) -> None:
        self.since = {str(k): int(v) for k, v in dict((state or {}).get("since", {})).items()}
