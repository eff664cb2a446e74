"""The mask seam's CPU shortcuts (tenth sitting's cost pass) give exactly the device path's values: the band
one period deeper by running-minimum erosions instead of the integral image, and the deeper reading computed
only on the images that use it."""

from __future__ import annotations

import pytest
import torch

from trackdiag.functional import order, seams


def _masks(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """0/1 masks with a wall region, holes and a border gap (contours of every orientation)."""
    g = torch.Generator().manual_seed(seed)
    m = torch.zeros(n, h, w)
    for i in range(n):
        y0 = int(torch.randint(0, h // 4, (1,), generator=g))
        x0 = int(torch.randint(0, w // 4, (1,), generator=g))
        m[i, y0:h - y0 // 2, x0:] = 1.0
        for _ in range(3):  # holes (furniture)
            cy, cx = int(torch.randint(0, h, (1,), generator=g)), int(torch.randint(0, w, (1,), generator=g))
            m[i, max(0, cy - 9):cy + 9, max(0, cx - 13):cx + 13] = 0.0
    return m


@pytest.mark.parametrize("d", [[0, 5, 48, 12], [3, 0, 1, 40]])
def test_deeper_band_by_running_minima_is_the_integral_images(d):
    m = _masks(4, 150, 190, seed=len(d) + d[0])
    dd = torch.tensor(d)
    want = seams._erode_by(m, 1 + dd) * (1.0 - seams._erode_by(m, 3 + dd))
    got = seams._band_by(m, dd, skip=1, ring=3)
    assert torch.equal(got, want)
    assert 0 < float(got.sum()) < float(m.sum())  # a band, not empty, not the wall


def test_mask_seam_cpu_path_equals_the_device_path(monkeypatch):
    g = torch.Generator().manual_seed(7)
    m = _masks(4, 160, 200, seed=3)
    yy = torch.arange(160, dtype=torch.float32)[:, None]
    x = 0.5 + 0.2 * torch.sin(2 * torch.pi * yy / 11.0).expand(160, 200) + 0.02 * torch.randn(4, 160, 200,
                                                                                             generator=g)
    x = x * m + 0.2 * (1 - m)
    x[1] += 0.08 * (seams._erode(m[1:2], 1)[0] - seams._erode(m[1:2], 3)[0])  # a halo on image 1
    period = torch.tensor([11.0, 11.0, float("nan"), 40.0])  # image 2: no deeper band (not computed)
    cpu = seams.mask_seam_parts(x, m, period_px=period)
    monkeypatch.setattr(order, "host_ok", lambda _t: False)  # the device path: integral images, every image
    dev = seams.mask_seam_parts(x, m, period_px=period)
    for k in cpu:
        assert torch.equal(torch.nan_to_num(cpu[k], nan=-1.0), torch.nan_to_num(dev[k], nan=-1.0)), k
    assert torch.isfinite(cpu["mask_seam_score"]).all()
