"""The growth fit (models/growth_fit.py): known trajectories are fitted back, bad rows are reported by row."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lepton_alloc.models.growth_fit import (
    Columns,
    MarketDataError,
    fit_log_linear,
    fit_market_csv,
    fit_market_data,
    growth_scenarios,
    merge_fragment,
    read_market_csv,
    scenario_fragment,
)
from lepton_alloc.models.loader import builtin_example_path, parse_text
from lepton_alloc.models.scenario import parse_scenario

TRUTH = {"DE": (0.010, 0.12), "FR": (0.005, 0.20), "JP": (0.020, 0.04), "US": (0.006, 0.15), "BR": (0.015, -0.02),
         "IN": (0.003, 0.30)}
START = 2027


def example_dict() -> dict:
    return parse_text(builtin_example_path().read_text(encoding="utf-8"))


def synthetic_csv(path: Path, truth: dict[str, tuple[float, float]], years: range = range(2017, 2027), noise: float = 0.05,
                  seed: int = 7) -> Path:
    """Share S0 (1+r)^(year - START) with log-normal noise; the total market grows 8 % a year."""
    rng = np.random.default_rng(seed)
    lines = ["market_id,year,revenue,total_revenue,currency"]
    for mid, (s0, r) in truth.items():
        for y in years:
            total = 1000 * 1.08 ** (y - 2017) * math.exp(rng.normal(0, 0.02))
            share = s0 * (1 + r) ** (y - START) * math.exp(rng.normal(0, noise))
            lines.append(f"{mid},{y},{share * total:.6f},{total:.6f},USD")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_known_growth_is_fitted_back_and_the_interval_covers_it(tmp_path: Path) -> None:
    report = fit_market_csv(synthetic_csv(tmp_path / "s.csv", TRUTH))
    assert not report.issues and not report.unfitted
    for mid, (s0, r) in TRUTH.items():
        fit = report.fits[(mid, None)]
        assert fit.r == pytest.approx(r, abs=0.03), mid
        assert fit.share_at(START) == pytest.approx(s0, rel=0.15), mid
        low, high = fit.r_interval or (math.nan, math.nan)
        assert low < r < high, (mid, low, r, high)
        assert low < fit.r < high
        assert fit.g == pytest.approx(0.08, abs=0.02)


def test_interval_coverage_is_near_its_nominal_level() -> None:
    rng = np.random.default_rng(11)
    years = np.arange(2019, 2027)
    covered = 0
    trials = 600
    for _ in range(trials):
        r = rng.uniform(-0.05, 0.3)
        shares = 0.01 * (1 + r) ** (years - 2026) * np.exp(rng.normal(0, 0.08, len(years)))
        low, high = fit_log_linear(years, shares, 0.9).interval or (0.0, 0.0)
        covered += low < r < high
    assert 0.86 <= covered / trials <= 0.94


def test_exact_data_gives_exact_fit_and_two_years_no_interval() -> None:
    fit = fit_log_linear([2020, 2021, 2022, 2023], [0.01 * 1.1 ** k for k in range(4)])
    assert fit.rate == pytest.approx(0.1) and fit.value_at(2024) == pytest.approx(0.01 * 1.1 ** 4)
    two = fit_log_linear([2020, 2022], [0.01, 0.0121])
    assert two.rate == pytest.approx(0.1) and two.interval is None


BAD_ROWS = """market_id,year,revenue,total_revenue,source
DE,2020,5,1000,a
DE,2021,,1100,missing revenue
DE,2022,7,0,zero total
DE,2023,-3,1300,negative revenue
DE,2024,lots,1400,text
DE,2025,9,1500,ok
XX,2024,1,100,unknown market
XX,2025,1,100,unknown again
FR,2025,2,300,single year
FR,2026,,300,dropped
JP,twenty,1,100,bad year
JP,2020,1,100,ok
JP,2021,1.1,100,ok
JP,2021,1.2,100,duplicate
JP,2022,120,100,share above one
"""


def test_malformed_rows_get_row_numbered_messages(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(BAD_ROWS)
    data = read_market_csv(p, known_markets=["DE", "FR", "JP"])
    got = {(i.row, i.column): i.message for i in data.issues}
    assert got[(3, "revenue")].startswith("missing value")
    assert got[(4, "total_revenue")].startswith("zero")
    assert got[(5, "revenue")].startswith("negative value -3")
    assert got[(6, "revenue")].startswith("'lots' is not a number")
    assert "unknown market 'XX'" in got[(8, "market_id")] and "8, 9" in got[(8, "market_id")]
    assert got[(11, "revenue")].startswith("missing value")
    assert got[(12, "year")].startswith("'twenty' is not a calendar year")
    assert "duplicate of row 14" in got[(15, "year")]
    assert "exceeds total_revenue" in got[(16, "revenue")]
    assert str(data.issues[0]) == "row 3, revenue: missing value; row dropped"
    report = fit_market_data(data)
    assert set(report.fits) == {("DE", None), ("JP", None)}
    assert report.fits[("DE", None)].rows == (2, 7)
    single = report.unfitted[("FR", None)]
    assert single.row == 10 and "single usable year (2025)" in single.message
    # FR is a market of the scenario: it has data but no fit, so a merge refuses, listing every problem
    with pytest.raises(MarketDataError) as exc:
        scenario_fragment(example_dict(), report)
    text = str(exc.value)
    assert "row 10: FR: a single usable year" in text and "row 3, revenue: missing value" in text


def test_a_market_with_no_usable_row_is_fatal_only_for_the_scenario(tmp_path: Path) -> None:
    p = tmp_path / "gone.csv"
    p.write_text("market_id,year,revenue,total_revenue\nDE,2020,1,100\nDE,2021,1.1,100\nSE,2020,0,100\nSE,2021,x,100\n")
    report = fit_market_data(read_market_csv(p))
    assert "SE: no usable row left (2 row(s) dropped)" in report.unfitted[("SE", None)].message
    with pytest.raises(MarketDataError, match="row 4: SE: no usable row left"):
        scenario_fragment(example_dict(), report)
    scenario_fragment({"start_year": 2027, "markets": [{"id": "DE", "options": []}]}, report)  # SE not in it: fine


def test_unusable_files_raise_with_a_message(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("market,yr,rev\nDE,2020,1\n")
    with pytest.raises(MarketDataError, match="missing column\\(s\\) 'market_id', 'year', 'revenue', 'total_revenue'"):
        read_market_csv(p)
    p.write_text("market_id,year,revenue,total_revenue\nDE,2020,0,1\n")
    with pytest.raises(MarketDataError, match="no usable row"):
        read_market_csv(p)
    p.write_text("")
    with pytest.raises(MarketDataError, match="empty"):
        read_market_csv(p)
    with pytest.raises(MarketDataError, match="cannot read"):
        read_market_csv(tmp_path / "absent.csv")
    p.write_bytes(b"market_id,year\n\xff\xfe\x00")
    with pytest.raises(MarketDataError, match="not UTF-8"):
        read_market_csv(p)


def test_spreadsheet_exports_configurable_columns_and_modes(tmp_path: Path) -> None:
    p = tmp_path / "excel.csv"
    rows = ["\ufeffMarket;Jahr;Umsatz;Markt;Mode;Kommentar"]
    for y in range(2020, 2026):
        rows.append(f"DE;{y};\"{1000 * 1.2 ** (y - 2020):,.1f}\";\"{100000 * 1.05 ** (y - 2020):,.0f}\";Build;x")
        rows.append(f"DE;{y};{2000 * 1.05 ** (y - 2020):.1f};{100000 * 1.05 ** (y - 2020):.0f};acquire;y")
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    cols = Columns.of(market="Market", year="jahr", revenue="Umsatz", total="Markt", mode="mode")
    data = read_market_csv(p, cols)
    assert data.has_mode and not data.issues
    report = fit_market_data(data)
    assert report.fits[("DE", "build")].r == pytest.approx(1.2 / 1.05 - 1, abs=1e-3)
    assert report.fits[("DE", "acquire")].r == pytest.approx(0.0, abs=1e-3)
    fragment, notes = scenario_fragment(example_dict(), report)
    (de,) = fragment["markets"]
    assert {o["mode"]: o["share_growth"] for o in de["options"]} == pytest.approx({"build": 1.2 / 1.05 - 1, "acquire": 0.0}, abs=1e-3)
    merged = parse_scenario(merge_fragment(example_dict(), fragment))
    partner = next(o for m in merged.markets if m.id == "DE" for o in m.options if o.mode == "partner")
    assert partner.share_growth == 0.12  # no data for DE partner: unchanged


def test_growth_scenarios_from_the_intervals_and_their_edge_cases(tmp_path: Path) -> None:
    report = fit_market_csv(synthetic_csv(tmp_path / "s.csv", TRUTH))
    bear, base, bull = growth_scenarios(report)
    assert [s["probability"] for s in (bear, base, bull)] == [0.25, 0.5, 0.25]
    assert 0 < bear["share_growth_multiplier"] < 1 < bull["share_growth_multiplier"]
    assert bear["market_growth_delta"] < 0 < bull["market_growth_delta"] and base["market_growth_delta"] == 0
    # no growing share: the share multipliers stay 1, with a note
    flat = fit_market_csv(synthetic_csv(tmp_path / "f.csv", {"DE": (0.01, -0.05), "FR": (0.01, 0.001)}))
    notes: list = []
    bear, _, bull = growth_scenarios(flat, warn=notes)
    assert bear["share_growth_multiplier"] == bull["share_growth_multiplier"] == 1.0 and "multipliers 1" in str(notes[0])
    # a steeply shrinking share elsewhere in the scenario caps the bull multiplier: 1 + r m > 0
    _, _, bull = growth_scenarios(report, share_growths=[0.1, -0.9])
    assert 1 + (-0.9) * bull["share_growth_multiplier"] > 0
    # a noisy, tiny positive r gives a bear multiplier clipped above 0 (the schema requires > 0)
    noisy = fit_market_csv(synthetic_csv(tmp_path / "n.csv", {"DE": (0.01, 0.006)}, noise=0.4, years=range(2022, 2027)))
    bear, _, _ = growth_scenarios(noisy)
    assert bear["share_growth_multiplier"] > 0


def test_fragment_merges_into_the_example_and_stays_valid(tmp_path: Path) -> None:
    scenario = example_dict()
    report = fit_market_csv(synthetic_csv(tmp_path / "s.csv", TRUTH))
    fragment, _ = scenario_fragment(scenario, report)
    assert {m["id"] for m in fragment["markets"]} == set(TRUTH)
    merged = merge_fragment(scenario, fragment)
    assert scenario == example_dict()  # the input is not modified
    sc = parse_scenario(merged)
    de = next(m for m in sc.markets if m.id == "DE")
    assert [o.share_growth for o in de.options] == pytest.approx([report.fits[("DE", None)].r] * 3, rel=1e-5)
    assert [g.name for g in sc.growth_scenarios] == ["bear", "base", "bull"]
    mx = next(m for m in sc.markets if m.id == "MX")
    assert mx.options[1].share_growth == 0.28  # not in the data: unchanged


def test_importing_the_fit_loads_no_matplotlib() -> None:
    code = ("import sys, json\nimport lepton_alloc.models.growth_fit\nimport lepton_alloc.clients.fit_cli\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('matplotlib', 'scipy')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
    code = "import sys, json\nimport lepton_alloc.clients.fit_cli\nprint(json.dumps('numpy' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) is False
