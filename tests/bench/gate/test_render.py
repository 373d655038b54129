"""The Markdown summary (bench/gate/render.py), on reports with known numbers."""
from bench.gate.render import to_markdown
from bench.gate.verdict import FAIL, PASS, UNSTABLE

from gate_helpers import comparison as cell, gate_report as report


def test_markdown_summary():
    r = report(cell("mobileone_s0", PASS, 1.001), cell("mobileone_s1", FAIL, 1.25, note="a|b"),
               cell("mobilenetv2_100", UNSTABLE, 1.03), cell("mobileone_s2", FAIL, 1.4, advisory=True))
    md = to_markdown(r)
    lines = md.splitlines()
    assert lines[0].startswith("### Latency gate (ab): ❌ **FAIL**: 1 of 3 cells slower than allowed")
    rows = [ln for ln in lines if ln.startswith("| ") and "`" in ln]
    assert [row.split("`")[1] for row in rows] == ["mobileone_s2", "mobileone_s1", "mobilenetv2_100", "mobileone_s0"]
    assert "FAIL (advisory)" in rows[0]
    assert "**1.250**" in rows[1] and "1.240 – 1.260" in rows[1] and "a\\|b" in rows[1]
    header = next(ln for ln in lines if ln.startswith("| verdict"))
    assert header.count("|") == rows[1].count("|") - 1  # the escaped pipe is not a column
    assert "98.75%" in header and "- base: rev aaaa" in md and "Test CPU" in md


def test_markdown_headlines():
    assert "✅ **PASS**: no regression in 1 cells" in to_markdown(report(cell("a", PASS)))
    assert "⚠️ **UNSTABLE**: 1 of 2 cells" in to_markdown(report(cell("a", PASS), cell("b", UNSTABLE)))
