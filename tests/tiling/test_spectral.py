"""trackdiag.functional.spectral: each primitive against an independent computation or a known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.support.tiling_cases import one_thread
from trackdiag.functional import spectral as sp
from trackdiag.testing import synth as S


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


def test_hann_and_apodized_weights():
    w = sp.hann2d(33, 40)
    assert w.shape == (33, 40) and float(w[0].abs().max()) == 0.0 and float(w[16, 19:21].min()) > 0.99
    full = torch.ones(1, 64, 64, dtype=torch.bool)
    assert torch.allclose(sp.apodized_weights(full, taper_px=6), torch.ones(1, 64, 64))
    mask = torch.zeros(1, 128, 128, dtype=torch.bool)
    mask[:, 32:96, 32:96] = True
    a = sp.apodized_weights(mask, taper_px=8)[0]
    assert float(a[~mask[0]].abs().max()) == 0.0  # nothing outside the mask
    assert float(a[64, 64]) == pytest.approx(1.0)  # deep inside
    row = a[64, 32:50]
    assert float(row[0]) < 0.1 and float(row[-1]) > 0.99  # rises over about taper_px
    assert bool((row[1:] >= row[:-1] - 1e-6).all())  # monotonically


@pytest.mark.parametrize("order", [0, 1, 2])
def test_detrend_removes_exactly_the_weighted_polynomial(order):
    g = torch.Generator().manual_seed(0)
    h, w = 40, 56
    yy = torch.linspace(-1, 1, h)[:, None]
    xx = torch.linspace(-1, 1, w)[None, :]
    terms = [torch.ones(h, w), xx.expand(h, w), yy.expand(h, w), (xx * xx).expand(h, w), xx * yy,
             (yy * yy).expand(h, w)][: {0: 1, 1: 3, 2: 6}[order]]
    coef = torch.randn(len(terms), generator=g)
    poly = sum(c * t for c, t in zip(coef, terms, strict=True))
    weights = torch.rand(2, h, w, generator=g)
    out = sp.detrend(poly.expand(2, h, w).contiguous(), weights, order=order)
    assert float(out.abs().max()) < 1e-4
    # And a texture is left alone apart from its own polynomial part.
    tex = S.grating(h, w, period_px=7.0)
    resid = sp.detrend((tex + poly)[None], torch.ones(1, h, w), order=order)
    ref = sp.detrend(tex[None], torch.ones(1, h, w), order=order)
    assert torch.allclose(resid, ref, atol=1e-4)


def test_spectrum_energy_and_radial_histogram():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 48, 64, generator=g)
    spec = sp.spectrum(x)
    assert spec.power.shape == (3, 64, 33)
    full = (torch.fft.fft2(x, s=(64, 64)).abs() ** 2).sum(dim=(-2, -1))
    assert torch.allclose((spec.power * spec.weight).sum(dim=(-2, -1)), full, rtol=1e-4)
    hist = sp.radial_hist(spec.power, spec)
    assert torch.allclose(hist.sum(dim=1), full, rtol=1e-4)
    # A ring sum at the exact radius of a pure line holds all of its energy.
    line = S.grating(64, 64, period_px=8.0)[None] - 0.5
    sp_line = sp.spectrum(line)
    e = sp.ring_sum(sp.radial_hist(sp_line.power, sp_line), torch.tensor([8.0]), 0.5)
    assert float(e / (sp_line.power * sp_line.weight).sum()) > 0.999


@pytest.mark.parametrize("period", [8.37, 13.0, 21.6, 50.2])
def test_find_peaks_refines_below_a_tenth_of_a_bin(period):
    x = S.grating(256, 256, period_px=period, angle_deg=2.0)[None]
    sig, _ = sp.prepare(x)
    spec = sp.spectrum(sig)
    peaks = sp.find_peaks(spec, r_min=2, r_max=128)
    assert float(peaks.radius[0, 0]) == pytest.approx(256 / period, abs=0.05)
    # The direction of the wave vector is the rotation (2°), measured below a degree.
    ang = math.degrees(math.atan2(abs(float(peaks.ky[0, 0])), abs(float(peaks.kx[0, 0]))))
    assert ang == pytest.approx(2.0, abs=0.5)


def test_find_peaks_finds_lines_on_the_axes_the_wrap_and_the_nyquist_column():
    """Cosines at integer frequencies are single bins (no window): every one is found, wherever it sits in
    the rfft2 layout, and nothing else is."""
    side = 64
    y, x = torch.meshgrid(torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64),
                          indexing="ij")
    lines = {(0, 10): 1.0, (5, 0): 0.9, (-30, 31): 0.8, (20, 32): 0.7, (-3, 7): 0.6}
    img = sum(a * torch.cos(2 * math.pi * (ky * y + kx * x) / side) for (ky, kx), a in lines.items())
    spec = sp.spectrum(img[None].float())
    for r_max in (46.0, torch.tensor([46.0])):  # a cropped search and a per-image band (the whole plane)
        peaks = sp.find_peaks(spec, r_min=1.0, r_max=r_max, k=8, reach=2)
        found = set()
        real = peaks.valid & (peaks.power > 1e-6 * peaks.power[:, :1])  # the rest is rounding noise
        for i in range(int(real.sum())):
            ky, kx = round(float(peaks.ky[0, i])), round(float(peaks.kx[0, i]))
            found.add((ky, kx) if kx > 0 or (kx == 0 and ky > 0) else (-ky, -kx))  # one of each twin pair
        # A line in the Nyquist column (kx = 32) is two bins there, (ky, 32) and (−ky, 32): both are found.
        want = {(ky, kx) if kx > 0 or (kx == 0 and ky > 0) else (-ky, -kx) for ky, kx in lines} | {(-20, 32)}
        assert found == want


def test_gather_power_reads_hermitian_twins_and_wraps_rows():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 32, 32, generator=g)
    power = sp.power_spectrum(x)
    full = torch.fft.fft2(x).abs() ** 2  # N×32×32, every (ky, kx)
    ky = torch.randint(-40, 40, (2, 50), generator=g)
    kx = torch.randint(-20, 33, (2, 50), generator=g)
    got = sp.gather_power(power, ky, kx)
    want = full.flatten(1).gather(1, (ky % 32) * 32 + kx % 32)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape,k", [((2, 64, 48), 2), ((1, 63, 48), 3), ((1, 64, 64), 4), ((2, 30, 45), 4)])
def test_box_downsample_equals_average_pooling(shape, k):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(4))
    want = torch.nn.functional.avg_pool2d(x[:, None], k, ceil_mode=True)[:, 0]
    assert torch.allclose(sp.box_downsample(x, k), want, atol=1e-6)


def test_pick_fundamental_prefers_the_divisor_not_the_stronger_harmonic():
    # Fundamental at 1/16 weaker than its 2nd harmonic: still the fundamental.
    x = torch.arange(256.0)
    line = 0.6 * torch.cos(2 * math.pi * x / 16) + 1.0 * torch.cos(2 * math.pi * x / 8)
    img = line[None, :].expand(256, 256)[None]
    est = sp.dominant_period(img)
    assert float(est.period_px[0]) == pytest.approx(16.0, rel=0.01)
    # A non-integer ratio (two unrelated gratings) keeps the strongest.
    two = (torch.cos(2 * math.pi * x / 10)[None, :] + 0.6 * torch.cos(2 * math.pi * x / 23)[:, None])[None]
    assert float(sp.dominant_period(two).period_px[0]) == pytest.approx(10.0, rel=0.01)


def test_acf_along_matches_a_direct_autocorrelation():
    g = torch.Generator().manual_seed(2)
    x = S.add_noise(S.tiles(128, 160, period_px=14.3, angle_deg=0.0, generator=g), 0.05, generator=g)[None]
    sig, wts = sp.prepare(x)
    spec = sp.spectrum(sig)
    wspec = sp.spectrum(wts)
    rho = sp.acf_along(spec.power, wspec.power, spec, torch.tensor([[0.0, 1.0]]), step=1.0, count=40)[0]
    # Independent: the normalised, window-corrected ACF at integer horizontal lags, in pixel space.
    s, w = sig[0].double(), wts[0].double()
    direct = []
    for lag in range(40):
        num = (s[:, : s.shape[1] - lag] * s[:, lag:]).sum()
        den = (w[:, : w.shape[1] - lag] * w[:, lag:]).sum()
        direct.append(float(num / den))
    direct = np.asarray(direct) / direct[0]
    # The spectral version is circular on the max(H, W) grid: agreement to ~0.03 over these lags.
    assert np.abs(rho.numpy() - direct).max() < 0.03
    lag, r = sp.first_acf_peak(rho[None], step=1.0, min_lag=3.0)
    assert float(lag[0]) == pytest.approx(14.3, abs=0.3) and float(r[0]) > 0.5


def test_autocorrelation_map_is_one_at_zero_and_symmetric():
    x = S.grating(64, 64, period_px=8.0)[None]
    sig, wts = sp.prepare(x)
    acf = sp.autocorrelation_map(sig, wts, max_lag=16)[0]
    assert acf.shape == (33, 33) and float(acf[16, 16]) == pytest.approx(1.0)
    assert torch.allclose(acf, acf.flip(0).flip(1), atol=1e-4)
    assert float(acf[16, 16 + 8]) > 0.9 and float(acf[16, 16 + 4]) < -0.9


def test_periodic_smooth_decomposition_and_axis_lines():
    g = torch.Generator().manual_seed(3)
    u = S.nonperiodic_frame(S.plaster(48, 64, generator=g), generator=g)[None]
    u = u - u.mean()
    _big_u, big_p = sp.periodic_smooth_spectrum(u)
    p = torch.fft.irfft2(big_p, s=(48, 64))[0]
    s = u[0] - p
    # p is periodic: its border jumps are much smaller than u's; s is smooth (small Laplacian).
    jump_u = (u[0, :, 0] - u[0, :, -1]).abs().mean()
    jump_p = (p[:, 0] - p[:, -1]).abs().mean()
    assert float(jump_p) < 0.5 * float(jump_u)
    lap = (s[1:-1, 2:] + s[1:-1, :-2] + s[2:, 1:-1] + s[:-2, 1:-1] - 4 * s[1:-1, 1:-1]).abs().mean()
    assert float(lap) < 0.05 * float(s.abs().mean())
    rows, cols = sp.axis_lines(u, 1)
    full = torch.fft.rfft2(u)
    assert torch.allclose(rows[0, 1], full[0, 0], atol=1e-3)  # ky = 0
    assert torch.allclose(rows[0, 0], full[0, -1], atol=1e-3)  # ky = -1
    assert torch.allclose(cols[0, :, 1], full[0, :, 1], atol=1e-3)  # kx = 1


def test_dominant_period_handles_masks_nan_and_noise():
    g = torch.Generator().manual_seed(4)
    h, w = 192, 256
    inside = S.grating(h, w, period_px=11.0, angle_deg=1.0)
    outside = S.grating(h, w, period_px=29.0, angle_deg=60.0, contrast=0.9)
    mask = S.ellipse_mask(h, w, radii=(0.3, 0.3))
    x = torch.stack([S.composite(inside, outside, mask), inside.clone(), torch.rand(h, w, generator=g)])
    x[1, 10:20, 30:200] = float("nan")
    x[1, 50, 50] = float("inf")
    valid = torch.stack([mask, torch.ones(h, w, dtype=torch.bool), torch.ones(h, w, dtype=torch.bool)])
    est = sp.dominant_period(x, valid=valid)
    assert float(est.period_px[0]) == pytest.approx(11.0, rel=0.02)  # only the masked texture counts
    assert float(est.period_px[1]) == pytest.approx(11.0, rel=0.02)  # NaN/Inf pixels are just dropped
    assert float(est.score[0]) > 0.5 and float(est.score[1]) > 0.5 and float(est.score[2]) < 0.2
    # Without a mask the other texture wins or competes: the mask matters.
    unmasked = sp.dominant_period(x[:1])
    assert abs(float(unmasked.period_px[0]) - 11.0) > 0.5 or float(unmasked.score[0]) < float(est.score[0])


def test_dominant_period_on_blank_and_tiny_inputs_does_not_crash():
    x = torch.stack([torch.full((32, 32), 0.5), torch.full((32, 32), float("nan"))])
    est = sp.dominant_period(x)
    assert est.period_px.shape == (2,) and bool(torch.isnan(est.period_px).all())
    assert torch.equal(est.score, torch.zeros(2))
    small = sp.dominant_period(S.grating(16, 16, period_px=4.0)[None], min_period_px=2.0)
    assert float(small.period_px[0]) == pytest.approx(4.0, rel=0.05)


def test_fast_fft_size_is_the_largest_7_smooth_size_not_above_n():
    """The window vote's side: the largest size ≤ n with prime factors 2, 3, 5, 7 only (brute force)."""
    def smooth(m: int) -> bool:
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        return m == 1

    for n in range(1, 700):
        got = sp.fast_fft_size(n)
        assert got <= n and smooth(got) and not any(smooth(m) for m in range(got + 1, n + 1)), n
    assert (sp.fast_fft_size(170), sp.fast_fft_size(85), sp.fast_fft_size(128)) == (168, 84, 128)


def test_an_all_valid_frame_reads_as_one_with_unit_weights():
    """The all-valid shortcut (no mask, every pixel finite: the plain Hann window as one shared view) gives
    the spectrum and signal that unit weights give image by image (float32 rounding at most)."""
    g = torch.Generator().manual_seed(5)
    x = S.tiles(96, 96, period_px=11.0, generator=g)[None].repeat(3, 1, 1) + 0.05 * torch.rand(3, 96, 96,
                                                                                         generator=g)
    a = sp.lattice_input(x, valid=None, clean=True, taper=False)
    b = sp.lattice_input(x, valid=torch.ones_like(x), clean=True, taper=False)
    assert a.wts.stride(0) == 0  # one window for all images
    torch.testing.assert_close(a.sig, b.sig, rtol=1e-5, atol=1e-6)
    atol = 1e-6 * float(b.spec.power.max())
    torch.testing.assert_close(a.spec.power, b.spec.power, rtol=1e-4, atol=atol)
