"""Spreadsheets in and out (clients/xlsx.py): scenario workbooks, result workbooks, the template."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from lepton_alloc.clients.xlsx import (
    SCENARIO_SHEETS,
    XlsxScenarioError,
    load_scenario_xlsx,
    write_result_xlsx,
    write_scenario_xlsx,
    write_template,
)
from lepton_alloc.models.loader import load_builtin_example
from lepton_alloc.models.scenario import Scenario, ScenarioError, parse_scenario

from ..fixtures import FULL  # a scenario that uses every field


# Optional fields given as zero or empty, which differs from their absence.
EDGES: dict[str, Any] = {
    "name": "", "horizon_years": 2, "start_year": -3,
    "markets": [
        {"id": "A", "region": "R", "name": "", "requires": [],
         "options": [{"mode": "build", "cash_flows": {}}, {"mode": "partner", "initial_share": 0.0, "margin": 0.0}]},
        {"id": "B", "options": [{"mode": "acquire", "cash_flows": {"contribution": [5.5]}}]},
    ],
    "budget": {"limit": 7.25},
    "regions": [{"name": "R", "talent_cap": [1, 2.5]}],
    "growth_scenarios": [{"name": "only", "probability": 1.0}],
    "previous_plan": {"change_penalty": 0.0, "decisions": []},
}


def _round_trip(scenario: Scenario, tmp_path: Path) -> Scenario:
    path = tmp_path / "scenario.xlsx"
    write_scenario_xlsx(scenario, path)
    return load_scenario_xlsx(path)


@pytest.mark.parametrize("name", ["example", "full", "edges"])
def test_scenario_round_trip_is_lossless(name: str, tmp_path: Path) -> None:
    scenario = {"example": load_builtin_example, "full": lambda: parse_scenario(FULL),
                "edges": lambda: parse_scenario(EDGES)}[name]()
    back = _round_trip(scenario, tmp_path)
    assert back == scenario
    assert back.canonical_json() == scenario.canonical_json()


# ----------------------------------------------------------------------------- errors with cells


def _options_row(ws: Any, market_id: str, mode: str) -> int:
    header = [c.value for c in ws[1]]
    for r in range(2, ws.max_row + 1):
        if ws.cell(r, header.index("market_id") + 1).value == market_id and \
                ws.cell(r, header.index("mode") + 1).value == mode:
            return r
    raise AssertionError(f"no option row {market_id} {mode}")


def test_invalid_cell_names_sheet_row_column_and_field_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.xlsx"
    write_scenario_xlsx(parse_scenario(FULL), path)
    wb = load_workbook(path)
    ws = wb["options"]
    headers = [str(c.value) for c in ws[1]]
    col = next(i for i, h in enumerate(headers, start=1) if h.split(" (")[0] == "margin")
    row = _options_row(ws, "DE", "acquire")
    ws.cell(row, col).value = 2
    wb.save(path)
    with pytest.raises(XlsxScenarioError) as info:
        load_scenario_xlsx(path)
    [v] = info.value.violations
    assert v.field == "markets[1].options[0].margin"
    assert f"sheet options, row {row} (DE acquire), column margin" in v.description
    assert "must be between 0 and 1" in v.description
    [cell] = info.value.cells
    assert cell is not None and (cell.sheet, cell.row, cell.column) == ("options", row, "margin")
    assert isinstance(info.value, ScenarioError)  # the CLI's handling applies as it is


def test_errors_in_lists_years_settings_and_structure(tmp_path: Path) -> None:
    path = tmp_path / "bad.xlsx"
    write_scenario_xlsx(parse_scenario(FULL), path)
    wb = load_workbook(path)
    wb["budget"]["B4"] = -5  # 2029
    settings = wb["scenario"]
    key_row = next(r for r in range(2, settings.max_row + 1) if settings.cell(r, 1).value == "objective.cvar_alpha")
    settings.cell(key_row, 2).value = 1.5
    options = wb["options"]
    cf = [str(c.value).split(" (")[0] for c in options[1]].index("cash_flows.contribution") + 1
    options.cell(_options_row(options, "DE", "partner"), cf).value = "1.0; x; 3"
    wb.save(path)
    with pytest.raises(XlsxScenarioError) as info:
        load_scenario_xlsx(path)
    by_field = {v.field: v.description for v in info.value.violations}
    assert "sheet budget, row 4 (2029), column limit, cell B4" in by_field["budget.limit[2]"]
    assert f"sheet scenario, row {key_row} (objective.cvar_alpha), column value" in by_field["objective.cvar_alpha"]
    assert "column cash_flows.contribution, item 2" in by_field["markets[1].options[1].cash_flows.contribution[1]"]

    wb = load_workbook(path)
    wb["options"].cell(2, 1).value = "XX"  # an option of a market that is not on the markets sheet
    wb["markets"].cell(1, 30).value = "colour"
    wb.save(path)
    with pytest.raises(XlsxScenarioError) as info:
        load_scenario_xlsx(path)
    text = str(info.value)
    assert "names market 'XX', which is not on the markets sheet" in text
    assert "unknown column 'colour'" in text


def test_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    path.write_text("name: nope\n")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario_xlsx(path)


# ----------------------------------------------------------------------------- template


def test_template_filled_with_the_minimal_fields_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "template.xlsx"
    write_template(path)
    wb = load_workbook(path)
    assert set(wb.sheetnames) == {"instructions", *(s.name for s in SCENARIO_SHEETS)}
    # every column carries its description (a comment on the header) and says required / default
    margin = next(c for c in wb["options"][1] if str(c.value).startswith("margin"))
    assert margin.value == "margin (fraction)" and margin.comment is not None
    assert "Contribution per unit of revenue" in margin.comment.text
    mid = next(c for c in wb["markets"][1] if c.value == "id")
    assert mid.comment is not None and "required" in mid.comment.text
    settings = wb["scenario"]
    rows = {settings.cell(r, 1).value: r for r in range(2, settings.max_row + 1)}
    assert settings.cell(rows["horizon_years"], 4).value == "required"
    assert settings.cell(rows["discount_rate"], 4).value == "default: 0.0"
    assert settings.cell(rows["discount_rate"], 5).value.startswith("Annual discount rate")
    assert any("horizon_years" in str(c.value) for row in wb["instructions"].iter_rows() for c in row)

    settings.cell(rows["horizon_years"], 2).value = 3
    settings.cell(rows["start_year"], 2).value = 2030
    wb["markets"]["A2"] = "X"
    headers = [str(c.value).split(" (")[0] for c in wb["options"][1]]
    for name, value in (("market_id", "X"), ("mode", "Partner"), ("initial_share", 0.1), ("margin", 0.5)):
        wb["options"].cell(2, headers.index(name) + 1).value = value
    wb["budget"].append([2030, 10])
    wb["budget"].append([2031, 10])
    wb["budget"].append([2032, "12.5"])
    wb.save(path)
    scenario = load_scenario_xlsx(path)
    assert scenario == parse_scenario({
        "horizon_years": 3, "start_year": 2030, "budget": {"limit": [10, 10, 12.5]},
        "markets": [{"id": "X", "options": [{"mode": "partner", "initial_share": 0.1, "margin": 0.5}]}]})


def test_template_without_a_horizon_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "template.xlsx"
    write_template(path)
    with pytest.raises(XlsxScenarioError) as info:
        load_scenario_xlsx(path)
    fields = [v.field for v in info.value.violations]
    assert "horizon_years" in fields
    desc = info.value.violations[fields.index("horizon_years")].description
    assert desc.startswith("sheet scenario, row ") and "is required" in desc


# ----------------------------------------------------------------------------- result export


@pytest.fixture(scope="module")
def solved() -> tuple[Scenario, Any]:
    from lepton_alloc.models import solve_scenario

    scenario = load_builtin_example()
    return scenario, solve_scenario(scenario, time_limit=60)


def _sheet_rows(ws: Any, header_row: int = 1) -> tuple[list[str], list[list[Any]]]:
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    return [str(h) for h in rows[header_row - 1]], rows[header_row:]


def test_result_workbook_values_units_and_frozen_headers(solved: tuple[Scenario, Any], tmp_path: Path) -> None:
    scenario, result = solved
    path = tmp_path / "result.xlsx"
    write_result_xlsx(result, path, scenario)
    wb = load_workbook(path)
    assert {"summary", "decisions", "spend", "heads", "years", "limits"} <= set(wb.sheetnames)
    assert "infeasibility" not in wb.sheetnames

    money = f"{result.currency} {result.money_unit}"
    headers, rows = _sheet_rows(wb["years"])
    assert headers[:5] == ["year", f"spend ({money}/yr)", f"budget ({money}/yr)", f"cumulative spend ({money})",
                           f"cumulative budget ({money})"]
    by_year = {r[0]: dict(zip(headers, r)) for r in rows}
    y2029 = next(y for y in result.years if y.year == 2029)
    assert by_year[2029][f"spend ({money}/yr)"] == pytest.approx(y2029.spend)
    assert by_year[2029][f"budget ({money}/yr)"] == pytest.approx(y2029.budget_limit)
    assert by_year[2029][f"cumulative budget ({money})"] == pytest.approx(y2029.cumulative_budget)
    assert by_year[2029]["heads (people)"] == pytest.approx(y2029.heads)
    ws = wb["years"]
    assert ws.freeze_panes == "B2"
    assert ws.cell(2, 2).number_format == "#,##0.0" and ws.cell(2, 6).number_format == "0"

    headers, rows = _sheet_rows(wb["spend"], header_row=2)
    assert wb["spend"].freeze_panes == "C3"
    col = headers.index("2029")
    total = next(r for r in rows if r[0] == "total")
    assert total[col] == pytest.approx(y2029.spend)
    de = next(m for m in result.markets if m.entered)
    row = next(r for r in rows if r[0] == de.id)
    assert row[headers.index(str(de.entry_year))] == pytest.approx(
        next(y.spend for y in de.years if y.year == de.entry_year))

    headers, rows = _sheet_rows(wb["decisions"])
    assert wb["decisions"].freeze_panes == "B2"
    assert f"E[NPV] ({money})" in headers
    decided = {r[0]: dict(zip(headers, r)) for r in rows}
    assert decided[de.id]["mode"] == de.mode.value and decided[de.id]["entry year"] == de.entry_year
    assert decided[de.id][f"E[NPV] ({money})"] == pytest.approx(de.expected_npv)

    summary = {r[0]: r[1] for r in wb["summary"].iter_rows(min_row=2, values_only=True) if r[0]}
    assert summary["status"] == "optimal"
    assert summary["objective"] == pytest.approx(result.objective_value)
    assert summary["E[NPV]"] == pytest.approx(result.kpis.expected_npv)
    assert wb["summary"].freeze_panes == "A2"
    gap_row = next(r for r in range(2, wb["summary"].max_row + 1) if wb["summary"].cell(r, 1).value == "gap")
    assert wb["summary"].cell(gap_row, 2).number_format.endswith("%")
    terms = [r[0] for r in wb["summary"].iter_rows(values_only=True)]
    assert all(t.term in terms for t in result.objective_terms)

    headers, rows = _sheet_rows(wb["limits"])
    assert headers[:6] == ["constraint", "unit", "use", "limit", "slack", "binds"]
    assert len(rows) == len(result.limits)
    assert wb["limits"].freeze_panes == "A2"
    assert wb["limits"].column_dimensions["A"].width > 10


def test_infeasible_result_gets_an_infeasibility_sheet(tmp_path: Path) -> None:
    from lepton_alloc.models import solve_scenario

    raw = copy.deepcopy(FULL)
    raw["budget"] = {"limit": 0.0}
    raw["objective"] = {}
    result = solve_scenario(parse_scenario(raw), time_limit=30)
    assert result.status.value == "infeasible" and result.infeasibility is not None
    path = tmp_path / "infeasible.xlsx"
    write_result_xlsx(result, path)
    wb = load_workbook(path)
    col_a = [r[0] for r in wb["infeasibility"].iter_rows(values_only=True)]
    assert all(c in col_a for c in result.infeasibility.constraints)


# ----------------------------------------------------------------------------- commands


def test_template_and_export_commands(solved: tuple[Scenario, Any], tmp_path: Path) -> None:
    import argparse

    from lepton_alloc.clients import xlsx_cli

    parser = argparse.ArgumentParser(prog="lepton-alloc")
    xlsx_cli.register(parser.add_subparsers(dest="command", required=True))
    template = tmp_path / "scenario.xlsx"
    args = parser.parse_args(["template", "-o", str(template)])
    assert args.func(args) == 0 and template.exists()

    scenario, result = solved
    result_json = tmp_path / "result.json"
    result_json.write_text(json.dumps(result.to_dict()))
    scenario_xlsx = tmp_path / "example.xlsx"
    write_scenario_xlsx(scenario, scenario_xlsx)
    out = tmp_path / "out.xlsx"
    args = parser.parse_args(["export", str(result_json), "-o", str(out), "--scenario", str(scenario_xlsx)])
    assert args.func(args) == 0
    summary = {r[0]: r[1] for r in load_workbook(out)["summary"].iter_rows(values_only=True) if r[0]}
    assert summary["objective"] == pytest.approx(result.objective_value)
    assert "note" not in summary  # the scenario given is the one solved
    assert xlsx_cli.load_scenario_any(scenario_xlsx) == scenario

    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    args = parser.parse_args(["export", str(bad), "-o", str(out)])
    assert args.func(args) == 2


def test_xlsx_is_not_loaded_by_the_client_package() -> None:
    code = "import sys, lepton_alloc.clients, lepton_alloc.clients.xlsx_cli; print('openpyxl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_solve_xlsx_option_helpers(solved: tuple[Scenario, Any], tmp_path: Path) -> None:
    import argparse

    from lepton_alloc.clients.xlsx_cli import add_xlsx_option, maybe_export

    parser = argparse.ArgumentParser()
    add_xlsx_option(parser)
    scenario, result = solved
    out = tmp_path / "solved.xlsx"
    maybe_export(parser.parse_args(["--xlsx", str(out)]), result.to_dict(), scenario)
    assert load_workbook(out)["years"].cell(2, 1).value == scenario.start_year
    maybe_export(parser.parse_args([]), result)  # no --xlsx: nothing written
