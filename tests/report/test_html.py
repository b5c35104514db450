"""The HTML report as text: self-contained, escaped, every section present (no browser needed;
tests/report/test_html_browser.py renders it in Chromium)."""

from __future__ import annotations

import re

import pytest

from hwkit.report.html import bench_html

from tests.report.html_results import PAYLOAD, hostile, swept

pytest.importorskip("matplotlib", reason="the HTML report's plots need matplotlib (hwkit[plot])")


def test_the_page_links_nothing_and_forbids_every_fetch(real):
    page = bench_html(swept(real))
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # Only SVG's namespace names may look like addresses; nothing is loaded from anywhere.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert not re.search(r"<link\b|@import|url\((?!#)", page, re.I)
    assert page.count("<svg") == 3  # latency, throughput against batch, speed against accuracy


def test_markup_from_the_result_is_text(real):
    page = bench_html(hostile(real))
    assert PAYLOAD not in page and "<img" not in page
    assert "compile failed: &lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # the page's own sorting script


def test_plots_follow_the_rows(real):
    """One plot for one batch and precision; the throughput and accuracy plots come with a batch
    sweep and a second precision."""
    page = bench_html(real)
    assert page.count("<svg") == 1 and 'id="plot-latency"' in page
    failed = {**real, "results": [{**r, "status": "failed", "latency_s": None} for r in real["results"]]}
    assert "No row was measured: nothing to plot." in bench_html(failed)


def test_the_method_and_machine_are_in_the_page(real):
    page = bench_html(real, source="saved run 3 in /tmp/r.sqlite3")
    for text in ("<h2>Machine</h2>", "<h2>Method</h2>", real["system"]["cpu"], "warm-up", "timing",
                 f"seed {real['settings']['seed']}", "saved run 3 in /tmp/r.sqlite3", real["model"]["sha256"]):
        assert text in page, text
