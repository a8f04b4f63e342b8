"""fit-growth and solve --market-data (clients/fit_cli.py) as a user runs them."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from lepton_alloc.clients.fit_cli import add_market_data_options, load_for_solve, merge_market_data, register
from lepton_alloc.models import parse_scenario, solve_scenario
from lepton_alloc.models.growth_fit import MarketDataError, merge_fragment
from lepton_alloc.models.loader import builtin_example_path, parse_text

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "market_data.csv"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fit_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lepton_alloc.clients.fit_cli", *args], capture_output=True, text=True,
                          timeout=120)


def example_dict() -> dict:
    return parse_text(builtin_example_path().read_text(encoding="utf-8"))


def run_registered(*argv: str) -> int:
    """The subcommand through a parser like the CLI's own."""
    p = argparse.ArgumentParser(prog="lepton-alloc")
    register(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(list(argv))
    return int(args.func(args))


def test_shipped_market_data_covers_the_example() -> None:
    lines = DATA.read_text().splitlines()
    assert lines[0].split(",")[:5] == ["market_id", "country", "year", "revenue", "total_revenue"]
    ids = {ln.split(",")[0] for ln in lines[1:]}
    assert ids == {m["id"] for m in example_dict()["markets"]} and len(ids) == 20
    assert {ln.split(",")[2] for ln in lines[1:]} == {str(y) for y in range(2019, 2027)}


def test_fit_growth_writes_a_fragment_that_merges_and_solves(tmp_path: Path) -> None:
    frag, png = tmp_path / "fragment.yaml", tmp_path / "shares.png"
    out = fit_cli(str(DATA), "-o", str(frag), "--plot", str(png))
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and f"wrote {frag}" in out.stderr
    text = frag.read_text()
    assert "initial_share = the fitted share extrapolated to the scenario's start_year (2027)" in text
    fragment = parse_text(text)
    assert len(fragment["markets"]) == 20 and [s["name"] for s in fragment["growth_scenarios"]] == ["bear", "base", "bull"]
    sc = parse_scenario(merge_fragment(example_dict(), fragment))
    de = next(m for m in sc.markets if m.id == "DE")
    assert de.options[0].initial_share == fragment["markets"][4]["options"][0]["initial_share"]
    result = solve_scenario(sc, time_limit=20)
    assert result.status.value in ("optimal", "feasible") and result.objective_value is not None
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 20_000


def test_fragment_to_stdout_through_the_registered_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_registered("fit-growth", str(DATA), "--confidence", "0.8") == 0
    out = capsys.readouterr().out
    assert out.startswith("# Growth-model fragment") and "80 % confidence" in out
    assert parse_text(out)["markets"][0]["id"] == "US"


def test_bad_rows_are_reported_by_row_without_a_traceback(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("market_id,year,revenue,total_revenue\n"
                 "DE,2020,5,1000\nDE,2021,,1100\nDE,2022,6,0\nDE,2023,-1,1200\nDE,2024,abc,1300\nDE,2025,8,1400\n"
                 "ZZ,2025,1,10\nFR,2026,1,100\n")
    out = fit_cli(str(p), "-o", str(tmp_path / "f.yaml"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    for line in ("row 3, revenue: missing value", "row 4, total_revenue: zero", "row 5, revenue: negative value -1",
                 "row 6, revenue: 'abc' is not a number", "row 8, market_id: unknown market 'ZZ'",
                 "row 9: FR: a single usable year (2026)"):
        assert line in out.stderr, (line, out.stderr)
    assert not (tmp_path / "f.yaml").exists()
    # without the single-year market the rest is usable: the dropped rows become warnings
    p.write_text("\n".join(p.read_text().splitlines()[:-1]) + "\n")
    out = fit_cli(str(p), "-o", str(tmp_path / "f.yaml"))
    assert out.returncode == 0 and "warning:" in out.stderr and "row 3, revenue: missing value; row dropped" in out.stderr


def test_unusable_inputs_exit_2(tmp_path: Path) -> None:
    out = fit_cli(str(tmp_path / "absent.csv"))
    assert out.returncode == 2 and "cannot read" in out.stderr and "Traceback" not in out.stderr
    p = tmp_path / "cols.csv"
    p.write_text("country,year,sales,market\nDE,2020,1,10\nDE,2021,2,10\n")
    out = fit_cli(str(p))
    assert out.returncode == 2 and "missing column(s) 'market_id', 'revenue', 'total_revenue'" in out.stderr
    out = fit_cli(str(p), "--col-market", "country", "--col-revenue", "sales", "--col-total", "market")
    assert out.returncode == 0, out.stderr
    out = fit_cli(str(DATA), "--scenario", str(tmp_path / "none.yaml"))
    assert out.returncode == 2 and "cannot read" in out.stderr
    assert fit_cli(str(DATA), "--confidence", "1.5").returncode == 2


def test_merge_market_data_for_solve(tmp_path: Path) -> None:
    scenario = example_dict()
    warnings: list[str] = []
    merged = merge_market_data(scenario, DATA, warn=warnings.append)
    assert warnings == [] and scenario == example_dict()
    sc = parse_scenario(merged)
    assert [g.name for g in sc.growth_scenarios] == ["bear", "base", "bull"]
    assert sc.growth_scenarios[0].share_growth_multiplier < 1 < sc.growth_scenarios[2].share_growth_multiplier
    us = next(m for m in sc.markets if m.id == "US")
    assert us.options[0].initial_share == us.options[1].initial_share != 0.004
    bad = tmp_path / "bad.csv"
    bad.write_text("market_id,year,revenue,total_revenue\nDE,2020,1,10\n")
    with pytest.raises(MarketDataError, match="DE: a single usable year"):
        merge_market_data(scenario, bad, warn=None)


def test_solve_market_data_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("file")
    add_market_data_options(p)
    args = p.parse_args([str(builtin_example_path()), "--market-data", str(DATA)])
    sc = load_for_solve(args)
    assert sc is not None and sc.growth_scenarios[0].name == "bear"
    bad = tmp_path / "bad.csv"
    bad.write_text("market_id,year,revenue,total_revenue\nDE,2020,1,10\nDE,2021,x,10\n")
    assert load_for_solve(p.parse_args([str(builtin_example_path()), "--market-data", str(bad)])) is None
    err = capsys.readouterr().err
    assert "row 3, revenue: 'x' is not a number" in err and "DE: a single usable year" in err
