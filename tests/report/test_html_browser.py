"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``), driven over the
DevTools protocol, loads the file at a phone's size and a wide screen's; the tests read the
rendered DOM (rows, plots, sorting by a click, nothing scrolling sideways but the table, no
injected script run) and take a screenshot at each size. One browser for the module (~1 s)."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from tests.report.browser import BROWSER, Chromium
from tests.report.html_results import hostile, swept

pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium)")
PHONE, WIDE = (390, 844), (1440, 900)

# What the page looks like once loaded, then after one and two clicks on the "median" header.
PROBE = """(function () {
  var table = document.getElementById('results'), wrap = table.parentNode, heads = table.tHead.rows[0].cells;
  var median = Array.prototype.findIndex.call(heads, function (h) { return h.textContent === 'median'; });
  function values() {
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[median].getAttribute('data-sort'); });
  }
  var found = {
    rows: table.tBodies[0].rows.length,
    plots: Array.prototype.map.call(document.querySelectorAll('figure.plot'), function (f) {
      return [f.id, f.querySelectorAll('svg').length, Math.round(f.getBoundingClientRect().width)]; }),
    page_overflow: document.documentElement.scrollWidth - window.innerWidth,
    table_scrolls: wrap.scrollWidth > wrap.clientWidth,
    width: window.innerWidth,
    title: document.title,
    scripts: document.scripts.length,
    before: values()
  };
  var button = heads[median].querySelector('button');
  button.click(); found.ascending = values(); found.sort1 = heads[median].getAttribute('aria-sort');
  button.click(); found.descending = values(); found.sort2 = heads[median].getAttribute('aria-sort');
  return found;
})()"""


@pytest.fixture(scope="module")
def rendered(real: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("matplotlib", reason="the HTML report's plots need matplotlib (hwkit[plot])")
    from hwkit.report.html import bench_html

    data = hostile(swept(real))
    page = tmp_path_factory.mktemp("html") / "report.html"
    page.write_text(bench_html(data, source="test"), encoding="utf-8")
    seen: dict[str, Any] = {"data": data}
    with Chromium() as browser:
        for name, (width, height) in (("phone", PHONE), ("wide", WIDE)):
            browser.open(page.as_uri(), width, height, mobile=name == "phone")
            seen[f"{name}_shot"] = browser.screenshot()  # before the probe's clicks: the page as it opens
            seen[f"{name}_dom"] = browser.evaluate("document.documentElement.outerHTML")
            seen[name] = browser.evaluate(PROBE)
    return seen


def test_the_table_rows_and_the_plots_are_in_the_rendered_dom(rendered):
    phone, dom = rendered["phone"], rendered["phone_dom"]
    assert phone["rows"] == len(rendered["data"]["results"]) == 7
    assert [(name, svgs) for name, svgs, _ in phone["plots"]] == [
        ("plot-latency", 1), ("plot-throughput", 1), ("plot-accuracy", 1)]
    assert dom.count("<tr>") == 8 and "speed against accuracy" in dom and "throughput against batch size" in dom


def test_clicking_a_header_sorts_the_rows(rendered):
    phone = rendered["phone"]
    measured = [float(v) for v in phone["before"] if v]
    assert sorted(measured) != measured  # the page's own order is not already sorted
    assert [float(v) for v in phone["ascending"] if v] == sorted(measured) and phone["sort1"] == "ascending"
    assert phone["ascending"][-1] == ""  # the failed row (no median) last
    assert [float(v) for v in phone["descending"] if v] == sorted(measured, reverse=True)
    assert phone["sort2"] == "descending"


def test_markup_in_the_result_runs_nothing(rendered):
    phone, dom = rendered["phone"], rendered["phone_dom"]
    assert phone["title"] != "pwned" and phone["title"].startswith("hwkit bench: mlp<script>")
    assert phone["scripts"] == 1  # the page's own
    assert "compile failed: &lt;script&gt;" in dom and "<img" not in dom


def test_it_fits_a_phone_and_uses_a_wide_screen(rendered):
    phone, wide = rendered["phone"], rendered["wide"]
    assert phone["width"] == PHONE[0] and wide["width"] == WIDE[0]
    assert phone["page_overflow"] <= 0 and wide["page_overflow"] <= 0  # the page never scrolls sideways ...
    assert phone["table_scrolls"]  # ... the table does, inside its frame
    assert all(width <= PHONE[0] for _, _, width in phone["plots"])  # plots shrink to the screen
    assert all(width < WIDE[0] / 2 for _, _, width in wide["plots"])  # two side by side on a wide screen


def test_screenshots_at_both_sizes(rendered):
    for name, (width, height) in (("phone", PHONE), ("wide", WIDE)):
        png = rendered[f"{name}_shot"]
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", png[16:24]) == (width, height)
        assert len(png) > 20_000  # text, a table and plots; a blank page is a few kB
