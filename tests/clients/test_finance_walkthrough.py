"""The README's finance walkthrough, run as written: every command of its block, in order, in a
fresh directory; each must succeed and leave the files the README promises."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def walkthrough_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- finance-walkthrough -->\s*```sh\n(.*?)```", text, re.S)
    assert block, "README.md lost its finance walkthrough block"
    return [shlex.split(line) for line in block.group(1).splitlines() if line.startswith("lepton-alloc ")]


def test_readme_finance_walkthrough_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    commands = walkthrough_commands()
    assert [c[1] for c in commands] == ["fit-growth", "solve", "report", "explain", "template", "batch"]
    timings = []
    for command in commands:
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "lepton_alloc.clients.cli", *command[1:]], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"})
        timings.append((" ".join(command), time.perf_counter() - started))
        assert run.returncode == 0, f"{' '.join(command)}\n{run.stderr}"
    print("\n".join(f"{seconds:6.1f} s  {command}" for command, seconds in timings))  # for the closing note
    assert "initial_share" in (tmp_path / "fitted.yaml").read_text()
    assert (tmp_path / "shares.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["status"] in ("optimal", "feasible") and plan["objective_terms"]
    assert (tmp_path / "plan.xlsx").stat().st_size > 5000
    html = (tmp_path / "report.html").read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org", "")
    assert sorted(p.name for p in (tmp_path / "charts").glob("*.png"))
    explained = json.loads((tmp_path / "explained.json").read_text())
    assert explained["market_values"] and any(lim["steps"] for lim in explained["limits"])
    assert (tmp_path / "my_scenario.xlsx").exists()
    rows = list(csv.DictReader(open(tmp_path / "meeting" / "summary.csv", encoding="utf-8")))
    assert [Path(r["file"]).name for r in rows] == ["global_expansion.yaml"] and rows[0]["status"] == "optimal"
