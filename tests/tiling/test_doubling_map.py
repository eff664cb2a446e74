"""The 2×-period region map (trackdiag.functional.doubling, bands.doubling_keys) against ground truth.

Synthetic lattices with a region rendered at twice the period (a disc, a full-width and a full-height band)
check the mechanism; generated wall scenes (trackdiag.testing.walls) check that zones and bands made by their
mechanism are told apart and that clean walls of the same materials stay quiet.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trackdiag.analyzers.bands import doubling_keys, pair_doubling_keys, region_key_names
from trackdiag.analyzers.tiling import likely_causes, tiling_metrics
from trackdiag.analyzers.tiling_limits import (
    DOUBLING_AREA,
    DOUBLING_COL,
    DOUBLING_EXCESS,
    DOUBLING_ROW,
    PAIR_AREA,
    PAIR_EXCESS,
    PAIR_LINE,
)
from trackdiag.functional.doubling import doubling_map, lattice_shift_vectors, region_extent


def _lattice(u: torch.Tensor, v: torch.Tensor, period: float) -> torch.Tensor:
    """Square tiles with thin grout lines of ``period`` px (sharp: many harmonics), at texture coords u, v."""
    gu = torch.cos(2 * math.pi * u / period).clamp_min(0.0) ** 8
    gv = torch.cos(2 * math.pi * v / period).clamp_min(0.0) ** 8
    return 0.5 + 0.3 * torch.maximum(gu, gv)


def _region_weight(shape: str, x: torch.Tensor, y: torch.Tensor, *, zone_radius: float) -> torch.Tensor:
    """Soft 0..1 weight of the 2×-period region on a square ``H×W`` coordinate grid: a central disc of
    ``zone_radius`` (``zone``), a central row band or column band a quarter of the side wide, or none."""
    size = x.shape[-1]
    c = size / 2
    if shape == "zone":
        return ((zone_radius - torch.hypot(x - c, y - c)) / 6 + 0.5).clamp(0, 1)
    if shape == "rows":
        return ((size / 8 - (y - c).abs()) / 4 + 0.5).clamp(0, 1)
    if shape == "cols":
        return ((size / 8 - (x - c).abs()) / 4 + 0.5).clamp(0, 1)
    return torch.zeros_like(x)


def _wall(shape: str, *, size: int = 384, period: float = 12.0, seed: int = 0) -> torch.Tensor:
    """``1×H×W`` wall of tiles with a region at twice the period: ``"clean"``, ``"zone"`` (a soft disc of a
    third of the side), ``"rows"`` (a full-width band), ``"cols"`` (a full-height band)."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                          indexing="ij")
    base = _lattice(x, y, period)
    alt = _lattice(x, y, 2 * period)
    img = base + (alt - base) * _region_weight(shape, x, y, zone_radius=size / 6)
    return (img + 0.02 * torch.randn(img.shape, generator=g))[None]


def _keys(img: torch.Tensor) -> dict[str, float]:
    valid = torch.ones_like(img)
    zero = torch.zeros(1)
    return {k: float(v[0]) for k, v in doubling_keys(img, valid, trend_x=zero, trend_y=zero).items()}


def test_the_summary_reports_every_region_map_key_computed_or_not() -> None:
    """``tiling_metrics`` carries every key both region maps return (the rules read the ``*_end`` flags),
    on a wall with room for the maps and on a crop without it (NaN there)."""
    wall = _wall("rows", size=256)
    crop = wall[:, :48, :48]
    for img, computed in ((wall, True), (crop, False)):
        out = tiling_metrics(img[:, None].expand(-1, 3, -1, -1).contiguous(), maps=False)
        for prefix in ("doubling", "pair"):
            names = set(region_key_names(prefix))
            assert names <= set(out), names - set(out)
            assert names == {k for k in out if k.startswith(f"{prefix}_")}
            assert computed == bool(torch.isfinite(out[f"{prefix}_excess_max"]).all()), (prefix, computed)
        if computed:
            assert torch.isfinite(out["doubling_row_end"]).all()


@pytest.mark.slow
def test_region_map_finds_zone_and_bands_on_synthetic_lattices() -> None:
    """Every shape is told apart by its reach; the clean wall has no region."""
    for seed in (0, 1):
        clean, zone, rows, cols = (_keys(_wall(s, seed=seed)) for s in ("clean", "zone", "rows", "cols"))
        assert clean["doubling_plain_corr"] > 0.6
        assert clean["doubling_excess_max"] < DOUBLING_EXCESS
        assert clean["doubling_area_frac"] < DOUBLING_AREA
        for k in (zone, rows, cols):
            assert k["doubling_excess_max"] >= DOUBLING_EXCESS and k["doubling_area_frac"] >= DOUBLING_AREA, k
        assert rows["doubling_row_level"] >= DOUBLING_ROW and rows["doubling_col_level"] < DOUBLING_COL, rows
        assert cols["doubling_col_level"] >= DOUBLING_COL and cols["doubling_row_level"] < DOUBLING_ROW, cols
        assert zone["doubling_row_level"] < DOUBLING_ROW and zone["doubling_col_level"] < DOUBLING_COL, zone


def test_doubling_map_shapes_nan_and_perspective_reference() -> None:
    img = torch.cat([_wall("zone"), _wall("clean", seed=3)])
    valid = torch.ones_like(img)
    valid[1, :, : img.shape[-1] // 2] = 0  # the left half of the second image is masked out
    dm = doubling_map(img, valid, window_px=96, stride_px=32, ds=1,
                      trend_x=torch.tensor([0.0, float("nan")]), trend_y=torch.zeros(2))
    n, gh, gw = dm.margin.shape
    assert n == 2 and dm.plain_corr.shape == (2, gh, gw) and dm.center_x.shape == (gw,)
    assert torch.isnan(dm.margin[1, :, 0]).all() and torch.isfinite(dm.margin[0]).all()
    # the zone's windows (centre of the frame) carry the largest margins
    centre = dm.margin[0, gh // 2 - 1: gh // 2 + 2, gw // 2 - 1: gw // 2 + 2].mean()
    edge = torch.cat([dm.margin[0, 0], dm.margin[0, -1]]).mean()
    assert centre > edge + 0.2
    ext = region_extent(dm.margin, excess=DOUBLING_EXCESS)
    assert set(ext) == {"excess_max", "area_frac", "row_level", "col_level", "row_even", "col_even",
                        "row_end", "col_end", "row_full", "col_full", "row_full_peak", "col_full_peak"}
    # a wall seen at an angle: the reference is brought to the centre's scale, so a clean wall whose period
    # changes by 40 % across the frame is not read as doubled when the trend is known
    size = 384
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                          indexing="ij")
    trend = math.log(1.4)  # log period per frame width
    u = size / trend * (torch.exp(trend * (x / size - 0.5)) - math.exp(-0.5 * trend))
    scale = torch.exp(trend * (x / size - 0.5))  # local magnification along x (and y, isotropic)
    angled = _lattice(u, (y - size / 2) / scale, 12.0)[None]
    k_known = {k: float(v[0]) for k, v in doubling_keys(angled, torch.ones_like(angled),
                                                        trend_x=torch.tensor([trend]),
                                                        trend_y=torch.zeros(1)).items()}
    assert k_known["doubling_area_frac"] < DOUBLING_AREA, k_known


def test_region_extent_reach_evenness_and_span() -> None:
    """The reach of a region on hand-made margin maps (known truth): a full-height band keeps its strength
    down its columns (evenness near 1); a tall zone that fades towards the floor has the same column level
    but a low evenness; a zone filling three windows of a column between mask holes is no full-height line
    (the column spans too little of the map's measured height); a clean map has no line at all; a ramp
    towards one end of the map (an angled wall's perspective residue) peaks on its end column."""
    nan = float("nan")
    h, w = 10, 10
    band = torch.zeros(1, h, w)
    band[0, :, 3:6] = 0.5
    fading = torch.zeros(1, h, w)
    fading[0, :, 3:6] = torch.linspace(0.9, 0.25, h)[:, None]  # strong at the top, weak at the bottom
    holes = torch.zeros(1, h, w)
    holes[0, 0:4, 3:7] = nan  # furniture above and below the zone: only rows 4-6 measured in its columns
    holes[0, 7:10, 3:7] = nan
    holes[0, 4:7, 3:7] = 0.5
    clean = 0.01 * torch.randn(1, h, w, generator=torch.Generator().manual_seed(0))
    # an angled wall's perspective residue: the excess grows towards the right end of the frame
    ramp = torch.linspace(-0.1, 0.3, w).expand(1, h, w).clone()
    ext = {name: region_extent(m, excess=DOUBLING_EXCESS)
           for name, m in (("band", band), ("fading", fading), ("holes", holes), ("clean", clean),
                           ("ramp", ramp))}
    assert ext["band"]["col_end"][0] == 0.0 and ext["ramp"]["col_end"][0] == 1.0  # a bump inside / an end
    assert ext["band"]["col_level"][0] >= 0.4 and ext["band"]["col_even"][0] >= 0.9
    assert ext["band"]["row_level"][0] < DOUBLING_ROW
    assert ext["fading"]["col_level"][0] >= DOUBLING_COL and ext["fading"]["col_even"][0] < 0.4
    assert ext["holes"]["col_level"][0] < DOUBLING_COL and ext["holes"]["area_frac"][0] > 0.1
    assert ext["clean"]["col_level"][0] < DOUBLING_COL and ext["clean"]["row_level"][0] < DOUBLING_ROW
    # the long lines (tenth sitting): a zone filling the columns that the furniture cuts short, whose
    # columns running on past the furniture fall back to the wall's level, reads a column level but no long
    # column at that level (while it reaches one: the long columns' peak); a band above furniture that spans
    # its width reaches no long column at all; a band without holes fills its long columns
    cut = torch.zeros(1, h, w)
    cut[0, 0:6, 2:8] = 0.5  # the zone over the top six rows of columns 2-7
    cut[0, 6:10, 2:6] = nan  # furniture under columns 2-5 (columns 6-7 run on to the floor)
    above = torch.zeros(1, h, w)
    above[0, 0:6, 2:6] = 0.5
    above[0, 6:10, 1:7] = nan  # the furniture spans the band's width and a column either side
    for name, m in (("cut", cut), ("above", above)):
        ext[name] = region_extent(m, excess=DOUBLING_EXCESS)
    assert ext["cut"]["col_level"][0] >= 0.4 and ext["cut"]["col_full"][0] < DOUBLING_COL
    assert ext["cut"]["col_full_peak"][0] >= ext["cut"]["col_level"][0]
    assert ext["above"]["col_level"][0] >= 0.4 and ext["above"]["col_full_peak"][0] < 0.25
    assert ext["band"]["col_full"][0] == ext["band"]["col_level"][0]
    assert torch.isfinite(ext["holes"]["row_full"]).all()  # rows 0-2 run the whole width


@pytest.mark.slow
def test_zone_and_band_verdicts_on_generated_walls() -> None:
    """Fronto-parallel generated walls (tiles, penny, hex, wallpaper; 512×512; one seed each) with a zone, a
    full-width and a full-height band at twice the period, and their clean twins, through tiling_metrics and
    the verdict rules: each planted region gets its own code and no other zone/band code, clean walls none.
    Measured when written (2026-12-06): zones 2 of 4, row bands 3 of 4, column bands 3 of 4, 1 wrong zone/band
    code, 0 of 4 clean alarms; the floors below are that measurement for zones and wrong codes, one miss more
    for the bands (a guard against losing what works; the F1 targets are test_tiling_truth's). Sixth sitting
    (2026-12-07, generator v6, the pair test on the wall's edges read first): zones 4 of 4, row bands 3 of 4,
    column bands 4 of 4, no wrong code, 0 of 4 clean alarms; the floors are now one miss under that."""
    from trackdiag.analyzers.tiling import likely_causes, tiling_metrics
    from trackdiag.testing.walls import make_scene

    codes = {"doubled_zone", "bands_rows", "bands_cols"}
    hits = {c: 0 for c in codes}
    wrong = 0
    alarms = 0
    for kind in ("tiles", "penny", "hex", "wallpaper"):
        for cause in (None, "doubled_zone", "bands_rows", "bands_cols"):
            sc = make_scene(kind=kind, cause=cause, seed=3, size=(512, 512), angled=False, with_ref=False)
            img = torch.from_numpy(np.array(sc.pred)).float().permute(2, 0, 1)[None] / 255.0
            mask = torch.from_numpy(np.array(sc.mask))[None]
            out = tiling_metrics(img, mask=mask, maps=False)
            summ = {k: float(v[0]) for k, v in out.items() if v.ndim == 1}
            found = {v.code for v in likely_causes(summ) if v.severity in ("warn", "bad")} & codes
            if cause is None:
                alarms += bool(found)
            else:
                hits[cause] += cause in found
                wrong += bool(found - {cause})
    print(hits, wrong, alarms)
    assert alarms == 0
    assert wrong <= 1
    assert hits["doubled_zone"] >= 3 and hits["bands_cols"] >= 3 and hits["bands_rows"] >= 2, hits


_PR_FLOORS = {"doubled_zone": {"tp": 4, "fp": 1}, "bands_rows": {"tp": 4, "fp": 1},
              "bands_cols": {"tp": 5, "fp": 1}}


@pytest.mark.slow
def test_zone_and_band_precision_recall_floor(wall_records) -> None:
    """Precision, recall and clean false alarms of doubled_zone / bands_rows / bands_cols through the
    evaluation harness (``diagnose`` → verdicts, scored against the generator's truth) on a sample none of the
    thresholds was calibrated on (seed 5, 512×512, 6 scenes per cause + 6 clean walls, half angled).
    Measured when written (2026-12-06, after the line span/evenness rules): doubled_zone 1 of 6 (P 1.0; the
    old rules on the same maps: 0 of 6; 512² zones cover few 128-px windows, and one is taken by
    period_doubled), bands_rows 4 of 6 (P 1.0), bands_cols 5 of 6 (P 1.0; old rules: one false bands_cols),
    clean 0 of 6. Sixth sitting (2026-12-07, generator v6 — zone/band periods up to a twelfth of the side,
    bands up to 45 % of the wall — and the pair test on the wall's edges, read first): doubled_zone 5 of 6
    (P 1.0), bands_rows 5 of 6 (P 1.0), bands_cols 6 of 6 (P 0.86), clean 0 of 6. Floors: one scene under
    each, at most one false code each (a guard against losing what works; issue 11's F1 ≥ 0.9 on ≥ 50 scenes
    per cause is test_tiling_truth's)."""
    from trackdiag.testing.walls.evaluate import format_table, metrics, sample_specs

    causes = ("doubled_zone", "bands_rows", "bands_cols")
    specs = sample_specs(causes=causes, n_per_cause=6, seed=5, size=(512, 512))
    m = metrics(wall_records(specs))
    print("\n" + format_table(m))
    assert not m["errors"], m["errors"]
    pc = m["per_cause"]
    for cause, floor in _PR_FLOORS.items():
        assert pc[cause]["tp"] >= floor["tp"], (cause, pc[cause])
        assert pc[cause]["fp"] <= floor["fp"], (cause, pc[cause])
    assert m["clean"]["false_alarm_rate"] <= 1 / 6 + 1e-9, m["clean"]


def test_a_weak_even_line_is_a_band_only_on_a_flat_well_matched_wall() -> None:
    """The weak-line path (no strong region): a fronto-parallel wall whose windows match its reference
    well gets the band; the same line on a wall seen at an angle (either axis: the far side's scale, the
    fit's residue), or on windows that barely match the reference (an antialiased fine mosaic), does not.
    Values are the held-out scenes' (seed 11 band, seed 7 clean angled wall and antialiased twin)."""
    from trackdiag.analyzers.tiling import likely_causes

    base = {"periodicity_score": 0.8, "lattice_t1_px": 30.0, "doubling_excess_max": 0.13,
            "doubling_area_frac": 0.05, "doubling_plain_corr": 0.84, "persp_trend_x": 0.0,
            "persp_trend_y": 0.0, "doubling_row_level": 0.074, "doubling_row_even": 0.6,
            "doubling_col_level": -0.05, "doubling_col_even": -0.3}

    def bands(**over: float) -> set[str]:
        return {v.code for v in likely_causes({**base, **over}) if v.severity in ("warn", "bad")
                and v.code.startswith("bands")}

    assert bands() == {"bands_rows"}
    assert bands(persp_trend_y=0.43) == set()                  # scale trends across the rows
    # a trend along the rows: the fit's residue runs along whole lines too (seventh sitting: the two weak
    # rows this path named on angled walls of generated v8 seeds 5-6 were a clean herringbone wall and an
    # 8-px grid wall, |persp_trend_x| 0.52-0.69; every true weak-path band there was fronto-parallel)
    assert bands(persp_trend_x=0.43) == set()
    assert bands(doubling_plain_corr=0.36) == set()
    cols = {"doubling_row_level": -0.08, "doubling_row_even": -0.9, "doubling_col_level": 0.085,
            "doubling_col_even": 0.8}
    assert bands(**cols) == {"bands_cols"}
    assert bands(**cols, persp_trend_x=0.43) == set()


def test_a_novel_strip_is_a_band_only_where_the_windows_repeat_one_spectrum() -> None:
    """The strip path (novel frequencies along x over a strip's whole width) names a row band only on a wall
    whose windows repeat one spectrum (``doubling_plain_corr`` ≥ ``DOUBLING_CORR``): an antialiased fine
    mosaic, whose "lattice" is its own fold, reads novel strips at a plain correlation of 0.15-0.2 (the
    generated aliasing twins of seed 1, 0.18; real-dev's one false band was such a twin, 0.15), and on a
    wall with some lattice (``periodicity_score`` ≥ ``WEAK_SCORE``; seventh sitting: an aliased wall of
    generated v8 seed 5 at 0.01 read a novel strip of 0.47, the true strip bands of seeds 5-6 ≥ 0.29)."""
    from trackdiag.analyzers.tiling import likely_causes
    from trackdiag.analyzers.tiling_limits import DOUBLING_CORR, WEAK_SCORE

    base = {"periodicity_score": 0.2, "lattice_t1_px": 32.0, "strip_novelty_x": 0.47, "strip_extent_x": 0.9,
            "strip_novelty_y": 0.18, "doubling_plain_corr": 0.7}

    def bands(**over: float) -> set[str]:
        return {v.code for v in likely_causes({**base, **over}) if v.severity in ("warn", "bad")
                and v.code.startswith("bands")}

    assert bands() == {"bands_rows"}
    assert bands(doubling_plain_corr=0.15) == set()
    assert bands(doubling_plain_corr=DOUBLING_CORR) == {"bands_rows"}
    assert bands(strip_novelty_x=0.1) == set()
    assert bands(periodicity_score=0.5 * WEAK_SCORE) == set()


def _planks(u: torch.Tensor, period: float) -> torch.Tensor:
    """Vertical planks of ``period`` px at texture coordinate ``u``: a colour per plank (a deterministic hash
    of its index, ±4 %) and a dark joint on 6 % of the width."""
    idx = torch.floor(u / period)
    shade = 0.5 + 0.08 * (torch.sin(idx * 12.9898) * 43758.5453).frac().sub(0.5)
    return shade - 0.25 * ((u / period - idx) < 0.06).float()


def _pair_wall(kind: str, shape: str, *, size: int = 320, period: float = 12.0,
               seed: int = 0) -> torch.Tensor:
    """``1×H×W`` planks (1-D) or tiles with a region at twice the period along x (planks) or both axes
    (tiles): ``"clean"``, ``"zone"`` (a disc of 0.4 of the side), ``"rows"`` / ``"cols"`` (full-width /
    full-height bands of a quarter of the side)."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                          indexing="ij")
    if kind == "planks":
        base, alt = _planks(x + 7.0, period), _planks(x / 2 + 7.0, period)
    else:
        base, alt = _lattice(x, y, period), _lattice(x / 2, y / 2, period)
    img = base + (alt - base) * _region_weight(shape, x, y, zone_radius=size / 5)
    return (img + 0.03 * torch.randn(img.shape, generator=g))[None]


@pytest.mark.slow
def test_pair_test_sees_planks_regions_the_spectral_map_misses() -> None:
    """The real-space pair test (repeats at 2v, lost at v) on planks — one spectral line under the grain,
    where the spectral region map reads no region at all (``doubling_excess_max`` ≈ 0.03, the generated
    plank zones and bands of seeds 1–3 read ≤ 0.11) — and on tiles: each region is told apart by its
    reach and, through ``likely_causes``, gets its own code (planks read through their edge comb,
    :func:`~trackdiag.analyzers.bands.edge_image`: every plank region at least 5× the clean plank wall's
    excess); the clean walls stay under every limit."""
    nan = float("nan")
    cases = [(kind, shape) for kind in ("planks", "tiles") for shape in ("clean", "zone", "rows", "cols")]
    img = torch.cat([_pair_wall(kind, shape, seed=1) for kind, shape in cases])  # one batch
    valid = torch.ones_like(img)
    n = img.shape[0]
    t1 = torch.tensor([[0.0, 12.0]]).expand(n, 2)
    t2 = torch.tensor([[nan, nan] if kind == "planks" else [12.0, 0.0] for kind, _ in cases])
    zero = torch.zeros(n)
    pk = pair_doubling_keys(img, valid, t1=t1, t2=t2, trend_x=zero, trend_y=zero)
    dk = doubling_keys(img, valid, trend_x=zero, trend_y=zero)  # (the spectral map, for the comparison)
    want = {"clean": set(), "zone": {"doubled_zone"}, "rows": {"bands_rows"}, "cols": {"bands_cols"}}
    for i, (kind, shape) in enumerate(cases):
        k = {a: float(b[i]) for a, b in pk.items()}
        d = {a: float(b[i]) for a, b in dk.items()}
        if kind == "planks":
            assert d["doubling_excess_max"] < DOUBLING_EXCESS, (shape, d)  # the spectral map is blind
        if shape == "clean":
            assert k["pair_excess_max"] < PAIR_EXCESS and k["pair_area_frac"] < PAIR_AREA, k
            assert max(k["pair_row_level"], k["pair_col_level"]) < PAIR_LINE, k
        summ = {**k, **d, "lattice_t1_px": 12.0, "lattice_t2_px": nan if kind == "planks" else 12.0,
                "periodicity_score": 0.8}
        found = {v.code for v in likely_causes(summ) if v.severity in ("warn", "bad")}
        # (planks' zone sat at the limit, 2.97, while the test read the raw wall, whose per-plank colour
        # keeps c(v) low; read through the edge comb it is 7.35, its clean wall 0.56, when written)
        if kind == "planks" and shape != "clean":
            clean_k = float(pk["pair_excess_max"][cases.index(("planks", "clean"))])
            assert k["pair_excess_max"] >= 5 * clean_k, (shape, k)
        assert found == want[shape], (kind, shape, k, found)


def test_lattice_shift_vectors_sum_and_difference() -> None:
    t1 = torch.tensor([[10.0, 0.0]])
    t2 = torch.tensor([[5.0, 8.0]])
    v = lattice_shift_vectors(t1, t2)
    assert v.shape == (1, 4, 2)
    assert torch.allclose(v[0, 2], t1[0] + t2[0]) and torch.allclose(v[0, 3], t1[0] - t2[0])
    assert torch.isnan(lattice_shift_vectors(t1, torch.full_like(t2, float("nan")))[0, 1:]).all()


def test_pair_shift_reads_match_the_sampling_grid_and_gated_rows_match_the_full_batch() -> None:
    """The pair map's whole-image shift reads (no perspective trend) give grid_sample's bilinear values, also
    for shifts that leave the frame; their pair weights (shifted 0/1 erosions of the validity, no blend)
    equal the sampled validity above 0.99 at both ends, here where no neighbour weighs between 0 and 1 %
    but along one axis (a neighbour below 1 % is ignored by both); and a gated computation
    (functional.rows.on_rows: selected images only on the CPU) equals the full batch's values there and
    the fill elsewhere."""
    from trackdiag.functional.doubling import _grid_read, _shift_pairs
    from trackdiag.functional.rows import on_rows

    g = torch.Generator().manual_seed(3)
    img = torch.rand(3, 2, 40, 56, generator=g)
    img[:, 1] = (img[:, 1] > 0.15).float()  # the validity, with holes
    img[:, 0] *= img[:, 1]
    dy = torch.tensor([[0.3, 7.25, -61.0], [0.0, -2.5, 19.75], [13.7, 0.5, 1.005]])
    dx = torch.tensor([[-4.6, 0.0, 3.3], [70.0, -9.75, 0.25], [2.2, -13.0, 55.5]])
    fields = (dy[:, :, None, None].expand(3, 3, 40, 56), dx[:, :, None, None].expand(3, 3, 40, 56))
    wgt = torch.empty(3, 3, 40, 56)
    reads = _shift_pairs(img[:, 0], img[:, 1], dy, dx, wgt)
    ref = _grid_read(img, *fields)
    torch.testing.assert_close(reads, ref[:, 0], atol=2e-5, rtol=1e-5)
    ok = ref[:, 1] > 0.99
    assert torch.equal(wgt, (ok[:, :3] & ok[:, 3:]).float())
    assert 0.05 < float(wgt.mean()) < 0.8 and bool((wgt == 0).any(-1).any(-1).all())

    sel = torch.tensor([True, False, True])
    calls = []

    def fn(i: torch.Tensor | None) -> dict[str, torch.Tensor]:
        calls.append(None if i is None else i.tolist())
        x = img[:, 0] if i is None else img[i, 0]
        return {"mean": x.mean((-2, -1)), "sd": x.std((-2, -1)), "extra": x}

    got = on_rows(sel, fn, fills={"mean": float("nan"), "sd": -1.0}, like=img)
    assert calls == [[0, 2]] and set(got) == {"mean", "sd"}
    full = fn(None)
    torch.testing.assert_close(got["sd"][sel], full["sd"][sel])
    assert torch.isnan(got["mean"][1]) and got["sd"][1] == -1.0
    tup = on_rows(torch.zeros(3, dtype=torch.bool), lambda i: (img[:, 0],), fills=(0.0,), like=img,
                  shape=(40, 56))
    assert len(calls) == 2 and tup[0].shape == (3, 40, 56) and not tup[0].any()


def _running_bond(x: torch.Tensor, y: torch.Tensor, *, course: float, length: float) -> torch.Tensor:
    """A running bond of bricks ``length`` × ``course`` px (half-brick stagger) at texture coordinates x, y:
    a colour per brick (a deterministic hash of its index, ±5 %) and 2-px mortar joints."""
    row = torch.floor(y / course)
    u = x + 0.5 * length * (row % 2)
    col = torch.floor(u / length)
    shade = 0.45 + 0.1 * (torch.sin(row * 78.233 + col * 12.9898) * 43758.5453).frac()
    mortar = ((y - row * course) < 2.0) | ((u - col * length) < 2.0)
    return torch.where(mortar, torch.full_like(shade, 0.8), shade)


def _brick_band_wall(doubled: str, *, h: int = 320, w: int = 384, course: float = 12.0,
                     length: float = 36.0, band: tuple[float, float] = (0.3, 0.74), seed: int = 0
                     ) -> torch.Tensor:
    """``1×H×W`` running bond with a full-width band (``band``: its top and bottom as shares of the height,
    soft 4-px edges) rendered at twice the period along ``doubled``: ``"x"`` (bricks twice as long), ``"y"``
    (courses twice as tall) or ``"none"`` (a clean wall)."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                          indexing="ij")
    base = _running_bond(x, y, course=course, length=length)
    sx, sy = {"x": (2.0, 1.0), "y": (1.0, 2.0), "none": (1.0, 1.0)}[doubled]
    alt = _running_bond(x / sx, y / sy, course=course, length=length)
    wt = ((y - band[0] * h) / 4 + 0.5).clamp(0, 1) * ((band[1] * h - y) / 4 + 0.5).clamp(0, 1)
    img = base + (alt - base) * wt
    return (img + 0.02 * torch.randn(img.shape, generator=g))[None]


def test_pair_test_sees_brick_bands_doubled_along_either_axis() -> None:
    """Full-width bands of a running bond — bricks twice as long, or courses twice as tall — over 44 % of the
    wall's height, through the whole diagnosis (the wall's own lattice estimate, ``likely_causes``).

    Eighth sitting (issue 11): the fronto-parallel row bands missed on generated v8 walls were tiles and
    brick. Four mechanisms, each fixed at the measurement: a pair vector read the gradient *magnitude*, so
    the bed joints, which repeat under any horizontal shift, held the correlation at ``v`` and ``2v`` alike
    when only the head joints changed (now each vector reads the edges across it,
    ``bands.directional_edges``); bricks twice as long on a lattice estimated as (H, 0), (0, L/2) show only
    at 4v (now read too); the wall's level and spread were the median and MAD of windows a near-half band
    spans (now read below the 40th percentile); and the windows at the frame's sides, where a long vector's
    pairs leave the frame, kept the weaker hypotheses only and broke the band's line (now each hypothesis'
    reach is read on its own map). Clean running bonds stay quiet. Before these changes both bands read
    nothing (row levels -0.17 and 0.22). About 0.5 s of CPU."""
    img = torch.cat([_brick_band_wall(d, seed=i) for i, d in enumerate(("none", "x", "y"))])
    s = tiling_metrics(img[:, None])
    found = []
    for i in range(img.shape[0]):
        summ = {k: float(v[i]) for k, v in s.items() if isinstance(v, torch.Tensor) and v.dim() == 1}
        found.append({v.code for v in likely_causes(summ) if v.severity in ("warn", "bad")
                      and v.code in ("bands_rows", "bands_cols", "doubled_zone")})
        print(i, {k: round(summ[k], 3) for k in ("pair_row_level", "pair_col_level", "pair_excess_max",
                                                  "lattice_t1_px", "lattice_t2_px")})
    assert found == [set(), {"bands_rows"}, {"bands_rows"}], found
    assert float(s["pair_row_level"][0]) < PAIR_LINE
    assert min(float(s["pair_row_level"][1]), float(s["pair_row_level"][2])) >= 2 * PAIR_LINE
