"""The reference's scale read without its own period estimate (eighth sitting, issue 11).

* :func:`~trackdiag.functional.spectral.lattice_acf`: the reference's 2-D autocorrelation at ½, 1 and 2 ×
  the output's lattice vectors (``ref_lattice_acf_*``). A reference read at another shell of its lattice (a
  hex mosaic of 79 px read at 22.7 px on its 256-px patch, score 0) still repeats at its own lattice
  vectors, so the output's lattice names the scale.
* :func:`~trackdiag.functional.spectral.peak_ring_ratios`: the energy ratios at the reference's f* on the
  prominent bins only (``peak_*``): random tile colours put broad energy in the ring below a halved
  mosaic's fundamental, the lattice peaks do not move with it.
* The rules built on them (``tiling_rules``): the ACF names the halving where the reference's own reading is
  not confident (not a doubling: square tiles of random colours read high at half their vectors); the peak
  scale test lifts the raw test's veto; the scale test alone names nothing on a wall without a lattice.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.support.tiling_cases import doubled_wall_summary, tiling_codes
from trackdiag.analyzers.tiling import ref_scale_test
from trackdiag.analyzers.tiling_limits import REF_LACF_HIGH, REF_LACF_LOW, REF_PEAK_Z
from trackdiag.analyzers.tiling_rules import ref_peak_scale_test
from trackdiag.functional.lattice import real_basis
from trackdiag.functional.spectral import (
    analyze_periodicity,
    lattice_acf,
    peak_ring_ratios,
    prepare,
    spectrum,
)


def _render(material, side: int, *, scale: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Luminance of ``material`` on a ``side²`` patch (2× supersampled), its texture scaled by ``scale``
    (0.5: the output halved): ``1×side×side``."""
    from trackdiag.testing.walls.artifacts import area_down

    rng = np.random.default_rng(seed)
    t = (np.arange(side * 2, dtype=np.float32) + 0.5) / 2 / scale
    u, v = np.meshgrid(t + float(rng.uniform(0, 300)), t + float(rng.uniform(0, 300)))
    img = area_down(material.render(u, v), 2)
    return torch.from_numpy(img.mean(axis=-1).astype(np.float32))[None]


def _periodicity(x: torch.Tensor, *, max_frac: float):
    return analyze_periodicity(x, taper=True, min_period_px=3.0, max_period_frac=max_frac, lattice=True)


@pytest.mark.slow
def test_lattice_acf_names_the_scale_of_generated_mosaics():
    """Generated references and outputs (256 px) at their scale and halved: at the output's own
    lattice vectors the reference repeats at its scale (≥ REF_LACF_HIGH) and not on a halved output
    (< REF_LACF_LOW), where it repeats at twice them instead (measured when written: same 0.59–1.0, halved
    −0.2–0.03 at 1× and 0.59–1.0 at 2×). Square tiles of random colours are the weak case: a uniform tile
    face correlates with itself half a tile away (0.44) and the whole tile only through its grout (0.35),
    so there the test only must not call the same scale halved."""
    from trackdiag.testing.walls.materials import make_material

    for kind, period in (("brick", 20.0), ("hex", 30.0), ("planks", 22.0), ("tiles", 24.0)):
        mat = make_material(kind, np.random.default_rng(3), period)
        rper = _periodicity(_render(mat, 256, seed=1), max_frac=0.34)
        for scale in (1.0, 0.5):
            per = _periodicity(_render(mat, 256, scale=scale, seed=2), max_frac=0.25)
            t1, t2 = real_basis(per.lattice.f, per.lattice.g, per.spec.side)
            half, same, double = lattice_acf(rper.signal, rper.weights, t1, t2)[0].tolist()
            case = (kind, scale, half, same, double)
            if kind == "tiles":
                assert scale == 0.5 or same >= REF_LACF_LOW, case
            elif scale == 1.0:
                assert same >= REF_LACF_HIGH and half < REF_LACF_LOW, case
            else:
                assert same < REF_LACF_LOW and double >= REF_LACF_HIGH, case


def test_lattice_acf_is_nan_beyond_reach_and_for_no_lattice():
    x = torch.rand(1, 64, 64)
    w = torch.ones_like(x)
    t = torch.tensor([[0.0, 20.0]])
    nan2 = torch.full_like(t, float("nan"))
    a = lattice_acf(x, w, t, nan2)[0]  # 1-D lattice: t1 alone; 2 × 20 px is beyond 0.45 × 64
    assert math.isfinite(a[0]) and math.isfinite(a[1]) and math.isnan(a[2])
    assert lattice_acf(x, w, nan2, nan2)[0].isnan().all()


def test_peak_ratios_ignore_the_broad_energy_of_tile_colours():
    """A grating of period 10 px read against a reference of 20 px (a halved output) under broad
    low-frequency "colour" noise: the noise fills the raw ring at the reference's f* (measured when written:
    raw E(2f)/E(f) 6.7 against 1.7e7 without it), the peak ratio keeps the grating at 2f (35, 5× the raw)."""
    from trackdiag.analyzers.tiling_summary import energy_ratios

    g = torch.Generator().manual_seed(0)
    n = 256
    xx = torch.arange(n, dtype=torch.float32)[None, None, :].expand(1, n, n)
    grating = torch.cos(2 * math.pi * xx / 10.0)
    colour = torch.nn.functional.avg_pool2d(torch.randn(1, 1, n, n, generator=g), 9, 1, 4)[0] * 6.0
    sig, _ = prepare(grating + colour, None, order=2)
    spec = spectrum(sig, side=n)
    fstar = torch.tensor([n / 20.0])
    pe2, _ = peak_ring_ratios(spec, fstar)
    raw = energy_ratios(spec, fstar)["E2f_over_Ef"]
    assert pe2.item() >= 10.0 and pe2.item() >= 3.0 * raw.item()
    # at the grating's own f*: its 2f and f/2 rings hold no peak
    pe2_own, peh_own = peak_ring_ratios(spec, torch.tensor([n / 10.0]))
    assert pe2_own.item() < 0.1 and peh_own.item() < 0.1
    assert torch.isnan(peak_ring_ratios(spec, torch.tensor([float("nan")]))[0]).all()


def _misread(**kw: float) -> dict[str, float]:
    """A halved hex wall (39.6 px) against a 79-px reference read at 22.7 px (score 0): ratio 1.74, the
    map and energy ratios at the wrong f* (seed-8 calibration scene)."""
    return doubled_wall_summary(**{"fundamental_period_px": 39.6, "ref_period_px": 22.7,
                                   "period_ratio_to_ref": 1.74, "periodicity_score": 0.94,
                                   "ref_periodicity_score": 0.0, "E2f_over_Ef": 1.13, "Ehalf_over_Ef": 0.21,
                                   "ref_E2f_over_Ef": 0.19, "ref_Ehalf_over_Ef": 1.56,
                                   "ref_same_frac": 0.0, "ref_doubled_frac": 0.0, "ref_halved_frac": 0.0,
                                   "ref_lattice_acf_half": -0.06, "ref_lattice_acf_same": -0.04,
                                   "ref_lattice_acf_double": 0.94, **kw})


def test_a_reference_read_at_another_shell_is_checked_by_its_autocorrelation():
    assert "period_halved" in tiling_codes(_misread())
    # its clean twin (79.2 px, ratio 3.48): the reference repeats at the output's vectors
    twin = _misread(fundamental_period_px=79.2, period_ratio_to_ref=3.48, ref_lattice_acf_half=-0.05,
                    ref_lattice_acf_same=0.89, ref_lattice_acf_double=float("nan"))
    assert not tiling_codes(twin) & {"period_halved", "period_doubled"}
    # a confident reference reading is kept (the ACF only stands in for an unconfident one)
    assert "period_halved" not in tiling_codes(_misread(ref_periodicity_score=0.8))
    # stored summaries without the keys: unchanged
    old = _misread()
    for k in ("half", "same", "double"):
        del old[f"ref_lattice_acf_{k}"]
    assert "period_halved" not in tiling_codes(old)
    # a ratio nearer ½ than 1 with a confident reference whose map reads half the wall at its period (area
    # condition): the ACF stands for it (an angled planks wall of seed 12)
    planks = _misread(fundamental_period_px=34.9, ref_period_px=74.1, period_ratio_to_ref=0.472,
                      periodicity_score=0.256, ref_periodicity_score=0.93, ref_same_frac=0.446,
                      ref_halved_frac=0.434, ref_lattice_acf_half=-0.05, ref_lattice_acf_same=-0.12,
                      ref_lattice_acf_double=0.89, E2f_over_Ef=0.56, Ehalf_over_Ef=1.32)
    assert "period_halved" in tiling_codes(planks)
    assert "period_halved" not in tiling_codes({**planks, "ref_lattice_acf_same": 0.6})
    assert "period_halved" not in tiling_codes({**planks, "periodicity_score": 0.05})
    # the ACF names no doubling (square tiles of random colours read high at half their vectors)
    dbl = _misread(fundamental_period_px=79.2, period_ratio_to_ref=3.48, ref_lattice_acf_half=0.85,
                   ref_lattice_acf_same=0.9, ref_lattice_acf_double=float("nan"))
    assert "period_doubled" not in tiling_codes(dbl)


def _halved_hex(**kw: float) -> dict[str, float]:
    """A halved angled hex wall (seed 9): ratio 0.52, raw E(2f)/E(f) 0.53 and a raw scale test at 0.09 (the
    tile colours' energy in the reference's f* ring), its lattice peaks 7.25× at 2f."""
    return doubled_wall_summary(**{"fundamental_period_px": 34.4, "ref_period_px": 65.7,
                                   "period_ratio_to_ref": 0.523, "periodicity_score": 0.105,
                                   "ref_periodicity_score": 0.0, "E2f_over_Ef": 0.532, "Ehalf_over_Ef": 2.1,
                                   "ref_E2f_over_Ef": 0.482, "ref_Ehalf_over_Ef": 0.706,
                                   "ref_same_frac": 0.361, "ref_halved_frac": 0.602, "ref_doubled_frac": 0.0,
                                   "ref_measured_frac": 0.83, "ref_local_max_period_px": 60.0,
                                   "peak_E2f_over_Ef": 7.25, "peak_Ehalf_over_Ef": 26.4,
                                   "ref_peak_E2f_over_Ef": 0.339, "ref_peak_Ehalf_over_Ef": 0.74, **kw})


def test_the_peak_scale_test_lifts_the_raw_veto():
    s = _halved_hex()
    assert ref_scale_test(s)[1] < 0.5 <= REF_PEAK_Z <= ref_peak_scale_test(s)[1]
    assert "period_halved" in tiling_codes(s)
    # the peaks at the same scale as the reference's: vetoed as before
    assert "period_halved" not in tiling_codes(_halved_hex(peak_E2f_over_Ef=0.339, peak_Ehalf_over_Ef=0.74))
    # without the peak keys (stored summaries): vetoed as before
    old = _halved_hex()
    for k in ("peak_E2f_over_Ef", "peak_Ehalf_over_Ef", "ref_peak_E2f_over_Ef", "ref_peak_Ehalf_over_Ef"):
        del old[k]
    assert "period_halved" not in tiling_codes(old)


def test_the_scale_test_alone_names_nothing_without_a_lattice():
    """An antialiased fine hex mosaic (aliasing twin, seed 7) at periodicity 0.00 against a reference read
    at 13 px (score 0.1): ratio 0.59 and a raw z_halved of 1.39, but no lattice to halve."""
    s = doubled_wall_summary(**{"fundamental_period_px": 7.71, "ref_period_px": 13.1,
                                "period_ratio_to_ref": 0.589, "periodicity_score": 0.001,
                                "ref_periodicity_score": 0.099, "E2f_over_Ef": 0.519, "Ehalf_over_Ef": 3.21,
                                "ref_E2f_over_Ef": 0.23, "ref_Ehalf_over_Ef": 2.42, "ref_same_frac": 0.0625,
                                "ref_halved_frac": 0.0, "ref_doubled_frac": 0.578, "ref_measured_frac": 0.64,
                                "ref_local_max_period_px": 30.0})
    assert ref_scale_test(s)[1] >= 0.65
    assert "period_halved" not in tiling_codes(s)
    assert "period_halved" in tiling_codes({**s, "periodicity_score": 0.5})
