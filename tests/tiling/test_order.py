"""functional.order: each faster order statistic gives exactly the values of the torch expression it replaces
(random inputs with ties, NaN, all-NaN rows and edge sizes), and the estimators that use them keep theirs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trackdiag.functional.localmap import _dilate_rel, _window_grid, log_radial_profile
from trackdiag.functional.order import (
    kth_smallest,
    masked_median,
    nanmedian,
    range_max,
    rank_range_sum,
    running_max,
    running_min,
    sorted_values,
)
from trackdiag.functional.seams import _erode


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal values with NaN at the same places."""
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(123.0), b.nan_to_num(123.0))


def _draw(g: torch.Generator, *shape: int, nan: float = 0.0, ties: bool = False) -> torch.Tensor:
    x = torch.randn(*shape, generator=g)
    if ties:  # few distinct values: many ties
        x = (x * 2).round()
    if nan:
        x[torch.rand(*shape, generator=g) < nan] = float("nan")
    return x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sorted_values_and_nanmedian_match_torch(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    for trial in range(40):
        shape = torch.randint(1, 9, (3,), generator=g).tolist()
        x = _draw(g, *shape, nan=0.3 if trial % 2 else 0.0, ties=trial % 3 == 0).to(dtype)
        if trial % 5 == 0:
            x[0] = float("nan")  # all-NaN slices
        if trial % 4 == 1:  # ±inf among the values (the short-axis network reads NaN as +inf)
            x[torch.rand(*shape, generator=g) < 0.15] = float("inf") if trial % 8 == 1 else -float("inf")
        for dim in range(3):
            assert _same(sorted_values(x, dim=dim), x.sort(dim=dim).values)
            assert _same(nanmedian(x, dim=dim), x.nanmedian(dim=dim).values)
            xt = x.transpose(0, 2)  # a strided view
            assert _same(nanmedian(xt, dim=dim), xt.nanmedian(dim=dim).values)


def test_rank_range_sum_is_the_sum_of_the_sorted_slice() -> None:
    """Both paths (numpy partition on the CPU, sort + prefix sum elsewhere: forced with requires_grad) give
    the float64 sum of the sorted values at ranks [lo, hi), with ties, +inf fillers and empty ranges."""
    g = torch.Generator().manual_seed(3)
    for trial in range(30):
        n, m = int(torch.randint(1, 6, (1,), generator=g)), int(torch.randint(1, 300, (1,), generator=g))
        x = _draw(g, n, m, ties=trial % 3 == 0)
        x[torch.rand(n, m, generator=g) < 0.2] = float("inf")  # invalid entries sort last
        cnt = torch.isfinite(x).sum(1)
        lo = (torch.rand(n, generator=g) * (cnt + 1).to(torch.float32)).long().clamp_max(cnt)
        hi = lo + (torch.rand(n, generator=g) * (cnt - lo + 1).to(torch.float32)).long()
        srt = x.double().sort(1).values
        want = torch.stack([srt[i, int(lo[i]):int(hi[i])].sum() for i in range(n)])
        for t in (x, x.clone().requires_grad_()):
            got = rank_range_sum(t, lo, hi).detach().double()
            assert torch.allclose(got, want, rtol=1e-5, atol=1e-4), (trial, got, want)


def test_masked_median_matches_where_nanmedian() -> None:
    g = torch.Generator().manual_seed(1)
    for trial in range(40):
        n, p = torch.randint(1, 6, (2,), generator=g).tolist()
        t = _draw(g, n, p, 4, 3, nan=0.2 if trial % 3 == 0 else 0.0, ties=trial % 4 == 0)
        ok = torch.rand(n, p, generator=g) > 0.3
        if trial % 6 == 0:
            ok[0] = False  # a sample with no selected row: NaN
        if trial % 5 == 1:
            ok[-1] = True  # every row of a sample selected (read in place)
        want = torch.where(ok[..., None, None], t, torch.full_like(t, float("nan"))).nanmedian(dim=1).values
        assert _same(masked_median(t, ok), want)
    for p in (100, 300):  # sorted rows (<= 256) and partitioned ones, every row selected or not
        t = _draw(g, 2, p, 8, 5, ties=p == 100)
        ok = torch.ones(2, p, dtype=torch.bool)
        ok[1, ::3] = False
        want = torch.where(ok[..., None, None], t, torch.full_like(t, float("nan"))).nanmedian(dim=1).values
        assert _same(masked_median(t, ok), want)


def test_kth_smallest_is_the_sorted_entry() -> None:
    g = torch.Generator().manual_seed(2)
    for n in (1, 2, 3, 5, 8, 9, 16, 17):
        vals = [_draw(g, 4, 7, ties=n % 2 == 0) for _ in range(n)]
        srt = torch.stack(vals, -1).sort(-1).values
        for r in range(n):
            assert torch.equal(kth_smallest(vals, r), srt[..., r])
        assert torch.equal(kth_smallest(vals, (n - 1) // 2), torch.stack(vals, -1).median(-1).values)
    with pytest.raises(ValueError):
        kth_smallest(vals, n)


def test_running_and_range_extremes_match_windows() -> None:
    g = torch.Generator().manual_seed(3)
    for length in (1, 2, 5, 16, 37):
        x = _draw(g, 3, length, ties=True)
        for k in range(1, length + 1):
            win = x.unfold(-1, k, 1)
            assert torch.equal(running_min(x, k, -1), win.amin(-1))
            assert torch.equal(running_max(x, k, -1), win.amax(-1))
        b = x > 0
        assert torch.equal(running_min(b, min(3, length), -1), b.unfold(-1, min(3, length), 1).all(-1))
        lo = torch.randint(0, length, (25,), generator=g)
        hi = torch.minimum(lo + torch.randint(0, length, (25,), generator=g), torch.tensor(length - 1))
        spans = zip(lo.tolist(), hi.tolist(), strict=True)
        want = torch.stack([x[:, a: c + 1].amax(-1) for a, c in spans], -1)
        assert torch.equal(range_max(x, lo, hi), want)


def test_erosion_and_dilation_keep_their_values() -> None:
    """The seam erosion equals the (2r+1)² max-pool it replaced; strip_novelty's relative dilation equals the
    masked window maximum it replaced."""
    g = torch.Generator().manual_seed(4)
    m = (torch.rand(2, 40, 33, generator=g) > 0.2).float()
    for r in range(0, 8):
        want = m if r == 0 else 1.0 - F.max_pool2d(F.pad(1.0 - m[:, None], (r,) * 4, value=0.0),
                                                     2 * r + 1, stride=1)[:, 0]
        assert torch.equal(_erode(m, r), want)
    for length in (1, 3, 40, 129):
        p = _draw(g, 5, length)
        for rel, extra in ((0.0, 0), (0.06, 1), (0.2, 1), (1.0, 2)):
            reach = extra + int(math.ceil(rel * (length - 1)))
            win = F.pad(p, (reach, reach), value=0.0).unfold(1, 2 * reach + 1, 1)
            off = torch.arange(-reach, reach + 1, dtype=p.dtype)
            keep = off.abs()[None, :] <= (extra + rel * torch.arange(length, dtype=p.dtype))[:, None]
            want = torch.where(keep[None], win, torch.zeros_like(win)).amax(dim=-1)
            assert torch.equal(_dilate_rel(p, rel, extra), want)


def test_log_radial_profile_of_window_views_equals_that_of_copied_windows() -> None:
    """window_scale_trend hands log_radial_profile its overlapping windows as strided views: the profiles are
    exactly those of the copied windows (an element-wise product of such views is laid out in their stride
    order by default, and its sums and transforms would then round differently)."""
    g = torch.Generator().manual_seed(5)
    for n, h, w in ((2, 96, 128), (1, 75, 61)):
        x = torch.rand(n, h, w, generator=g)
        wt = (torch.rand(n, h, w, generator=g) > 0.1).float() * torch.rand(n, h, w, generator=g)
        xw, vw, _, _ = _window_grid(x, wt, window_frac=0.5, grid=3)
        wh, ww = xw.shape[-2:]
        for hi in (0.2, 0.45):
            xc, vc = xw.reshape(-1, wh, ww).contiguous(), vw.reshape(-1, wh, ww).contiguous()
            want = log_radial_profile(xc, vc, hi_cycles=hi)
            assert torch.equal(log_radial_profile(xw, vw, hi_cycles=hi), want)
