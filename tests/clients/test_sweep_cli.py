"""``lepton-alloc sweep`` as a user runs it: real processes, a real server, files written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from lepton_alloc.server.app import RunningServer

from .test_cli import cli, server, tiny_file  # noqa: F401 - the module's server fixture

VARY = ["--vary", "budget.limit=scale:0.2,0.35,1", "--robust-share", "0.75"]


def test_local_sweep_prints_the_summary_and_writes_every_variant(tmp_path: Path) -> None:
    out_csv = tmp_path / "sweep.csv"
    run = cli("sweep", str(tiny_file(tmp_path)), *VARY, "-o", str(out_csv))
    assert run.returncode == 0, run.stderr
    text = run.stdout
    assert "Sweep: 4 variants (the base included), 4 with a plan" in text
    assert "enter: A (build, 2027)" in text and "decided per variant: B" in text
    assert "it is a plan of 3 of 4 variants" in text
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["index"] for r in rows] == ["0", "1", "2", "3"]
    assert [round(float(r["objective_value"]), 6) for r in rows] == [23.0, 0.0, 12.0, 23.0]
    assert rows[2]["entries"] == "A:build:2027" and rows[1]["robust_objective"] == ""


def test_sweep_json_and_workbook(tmp_path: Path) -> None:
    book = tmp_path / "sweep.xlsx"
    run = cli("sweep", str(tiny_file(tmp_path)), *VARY, "--json", "-o", str(book))
    assert run.returncode == 0, run.stderr
    d = json.loads(run.stdout)
    assert [v["objective_value"] for v in d["variants"]] == pytest.approx([23.0, 0.0, 12.0, 23.0], abs=1e-6)
    assert d["summary"]["robust_plan"] == [{"market_id": "A", "mode": "build", "year": 2027}]
    wb = load_workbook(book)
    assert wb.sheetnames == ["Summary", "Variants", "Markets", "Robust plan"]
    assert wb["Variants"].max_row == 5 and wb["Variants"]["D3"].value == pytest.approx(0.0, abs=1e-6)


def test_remote_sweep_and_bad_input(tmp_path: Path, server: RunningServer) -> None:  # noqa: F811
    run = cli("sweep", str(tiny_file(tmp_path)), *VARY, "--server", f"127.0.0.1:{server.port}", "--json")
    assert run.returncode == 0, run.stderr
    d = json.loads(run.stdout)
    assert [v["objective_value"] for v in d["variants"]] == pytest.approx([23.0, 0.0, 12.0, 23.0], abs=1e-6)
    assert "sweep job" in run.stderr
    bad = cli("sweep", str(tiny_file(tmp_path)), "--vary", "budget.limt=scale:1", "--server", f"127.0.0.1:{server.port}")
    assert bad.returncode == 2 and "grid[0].path" in bad.stderr and "budget.limt" in bad.stderr
    bad = cli("sweep", str(tiny_file(tmp_path)), "--draws", "5")
    assert bad.returncode == 2 and "--draw" in bad.stderr
    bad = cli("sweep", str(tiny_file(tmp_path)), "--draws", "5", "--draw", "discount_rate=add:normal:0")
    assert bad.returncode == 2 and "normal takes 2 numbers" in bad.stderr


def test_summary_money_never_shows_a_negative_zero() -> None:
    # a robust plan's regret can be a hair below zero (a variant's own optimum is proven only
    # within its gap); the summary shows it as 0.0, and real negatives keep their sign
    from lepton_alloc.clients.sweep_cli import _money

    assert [_money(x) for x in (-0.0, -0.01, -0.049, 0.04, -0.06, 1234.56, None)] == \
        ["0.0", "0.0", "0.0", "0.0", "-0.1", "1,234.6", "-"]
