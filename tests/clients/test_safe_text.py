"""Names are printed to a terminal as text, never as terminal control (issue 11, "Terminal
control characters in names are printed raw by the CLI")."""

from __future__ import annotations

import re
from typing import Any

import pytest

from lepton_alloc.clients.report import render_comparison, render_result, table
from lepton_alloc.clients.safe_text import printable
from lepton_alloc.clients.sweep_cli import render_summary
from lepton_alloc.models.sweep import Entry, VariantResult, summarize

# what a terminal acts on: C0 controls, DEL, C1 controls
RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
EVIL = "Evil\x1b[2J\x1b]0;pwned\x07\x9b31m\x7f\x00\r\n\tend\u202e"


@pytest.mark.parametrize("raw, shown", [
    ("\x1b[31mred", "\\x1b[31mred"),
    ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
    ("nul\x00del\x7f", "nul\\x00del\\x7f"),
    ("csi\x9b1m", "csi\\x9b1m"),  # C1: one-byte CSI
    ("bell\x07", "bell\\x07"),
    ("left\u202eright", "left\\u202eright"),  # bidi override: reorders what is displayed
    ("line\u2028sep", "line\\u2028sep"),
])
def test_control_characters_become_visible_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert not RAW_CONTROL.search(printable(raw))


@pytest.mark.parametrize("text", ["", "Deutschland", "Société Générale – Zürich", "日本市場", "A/B (EMEA) 50 %", "back\\slash"])
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert printable(text) == text


def test_every_c0_and_c1_control_is_escaped() -> None:
    for code in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]:
        out = printable(f"a{chr(code)}b")
        assert out.startswith("a\\") and out.endswith("b") and not RAW_CONTROL.search(out), hex(code)


def test_tables_escape_every_cell_and_header() -> None:
    text = table(["market", "name\x1b[1m"], [["A", EVIL], ["B", "plain"]])
    assert not RAW_CONTROL.search(text.replace("\n", ""))
    assert "Evil\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m" in text
    assert text.count("\n") == 3  # header, rule, two rows: a newline in a name breaks no row
    assert "plain" in text


def _result() -> dict[str, Any]:
    """A real solve's result, with the names a scenario stored before names were checked could carry."""
    from lepton_alloc.models import solve_scenario

    r = solve_scenario({"name": "names", "start_year": 2027, "horizon_years": 2, "markets": [
        {"id": "A", "region": "EMEA", "market_size": 100,
         "options": [{"mode": "build", "initial_share": 0.1, "margin": 0.5}]}]}).to_dict()
    r["scenario_name"] = EVIL
    r["markets"][0]["name"] = EVIL
    r["markets"][0]["region"] = "EM\x1b[5mEA"
    r["message"] = "optimal; note about \x1b[8mhidden"
    return r


def test_render_result_prints_no_control_character() -> None:
    r = _result()
    text = render_result(r)
    assert not RAW_CONTROL.search(text.replace("\n", ""))
    assert "Scenario Evil\\x1b[2J" in text and "\\x1b[8mhidden" in text and "EM\\x1b[5mEA" in text


def test_render_comparison_notes_and_rows_are_escaped() -> None:
    c = {"status_a": "optimal", "status_b": "optimal", "currency": "USD", "money_unit": "millions", "kpis": [],
         "markets": [{"market_id": "A\x1b[1m", "change": "entered", "mode_a": None, "entry_year_a": None,
                      "mode_b": "build", "entry_year_b": 2027, "expected_npv_a": 0.0, "expected_npv_b": 1.0}],
         "years": [], "limits": [], "notes": ["plan B: \x1b]0;title\x07"]}
    text = render_comparison(c)
    assert not RAW_CONTROL.search(text.replace("\n", ""))
    assert "A\\x1b[1m" in text and "\\x1b]0;title\\x07" in text


def test_sweep_summary_escapes_market_ids_and_labels() -> None:
    bad = "M\x1b[2J"
    results = [VariantResult(0, "base", "optimal", 10.0, entries=[Entry(bad, "build", 2027)]),
               VariantResult(1, "budget.limit ×0.5\x9b", "optimal", 5.0, entries=[Entry(bad, "build", 2027)])]
    summary = summarize(results, 0.5, [bad, "open\x07"])
    text = render_summary(results, summary, "USD", "millions")
    assert not RAW_CONTROL.search(text.replace("\n", ""))
    assert "M\\x1b[2J" in text
