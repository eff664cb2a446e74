"""Report tables keep every row: paged HTML up to a bound, the complete table always as CSV."""

from __future__ import annotations

import csv
import re

import pytest

from trackdiag.report.folder import Cell, Section, write_report
from trackdiag.report.tables import table_slug, unique_slug


def _rows(n: int) -> list[dict]:
    return [{"i": i, "score": i / 7, "name": f"<s{i}>"} for i in range(n)]


@pytest.mark.parametrize("n", [3, 500, 501, 1234, 12000])
def test_every_row_is_in_the_csv_and_the_page_says_where_the_rest_is(tmp_path, n):
    index = write_report(tmp_path, [Section(title="Pixel: pairs", tables={"anomalies": _rows(n)})])
    page = index.read_text(encoding="utf-8")
    path = tmp_path / "tables" / "pixel_pairs__anomalies.csv"
    with path.open(newline="") as fh:
        got = list(csv.DictReader(fh))
    assert [int(r["i"]) for r in got] == list(range(n))
    assert got[-1]["name"] == f"<s{n - 1}>"  # raw in the CSV, escaped in the HTML
    assert "href='tables/pixel_pairs__anomalies.csv'" in page and f"all {n} rows as CSV" in page
    shown = [int(v) for v in re.findall(r"<tr><td[^>]*>(\d+)</td>", page)]
    assert shown == list(range(min(n, 5000)))  # in order, none dropped before the HTML bound
    assert "&lt;s0&gt;" in page and "<s0>" not in page
    if n > 500:
        assert page.count("<details><summary>rows ") == (min(n, 5000) - 1) // 500
    if n > 5000:
        assert f"({n - 5000} rows only in the CSV)" in page
    else:
        assert "only in the CSV" not in page


def test_two_tables_with_the_same_name_get_two_files_and_cells_keep_their_value(tmp_path):
    secs = [Section(title="A", tables={"t": [{"v": Cell(1.5, css="bad")}]}),
            Section(title="a", tables={"t": [{"v": 2}]})]
    page = write_report(tmp_path, secs).read_text(encoding="utf-8")
    assert (tmp_path / "tables" / "a__t.csv").read_text().splitlines() == ["v", "1.5"]
    assert (tmp_path / "tables" / "a__t_2.csv").read_text().splitlines() == ["v", "2"]
    assert "tables/a__t_2.csv" in page


def test_slugs_stay_inside_the_tables_folder():
    assert table_slug("../../etc", "passwd") == "etc__passwd"
    assert "/" not in table_slug("a/b", "..") and table_slug("", "") == "table"
    used: set[str] = set()
    assert [unique_slug("x", used) for _ in range(3)] == ["x", "x_2", "x_3"]
