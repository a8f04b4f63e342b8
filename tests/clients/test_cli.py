"""The CLI as a user runs it: real processes, a real server, JSON on stdout, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from collections.abc import Iterator

import pytest

from lepton_alloc.server.app import RunningServer

from ..server.conftest import TINY_OPTIMUM, start, tiny_scenario

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "global_expansion.yaml"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lepton_alloc.clients.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start(tmp_path_factory.mktemp("cli"), workers=1)
    yield running
    running.stop(grace=1.0)


def tiny_file(tmp_path: Path) -> Path:
    from lepton_alloc.models.loader import dump_scenario

    p = tmp_path / "tiny.yaml"
    p.write_text(dump_scenario(tiny_scenario()))
    return p


def test_local_solve_json_keys_and_values(tmp_path: Path) -> None:
    out = cli("solve", str(tiny_file(tmp_path)), "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert {"status", "objective_value", "best_bound", "gap", "timings", "markets"} <= set(d)
    assert d["status"] == "optimal" and d["objective_value"] == pytest.approx(TINY_OPTIMUM)
    assert [(m["id"], m["mode"], m["entry_year"]) for m in d["markets"]] == [("A", "build", 2027), ("B", "partner", 2027)]
    assert {"build_seconds", "transfer_seconds", "solver_seconds", "extraction_seconds", "total_seconds"} <= set(d["timings"])


def test_example_readable_table() -> None:
    out = cli("solve", str(EXAMPLE))
    assert out.returncode == 0, out.stderr
    assert "Status: optimal" in out.stdout and "United States" in out.stdout and "not entered" in out.stdout


def test_invalid_file_exit_2_with_field_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"horizon_years": 2, "markets": [{"id": "A", "options": [{"mode": "build", "initial_share": 0.1, "margin": 2}]}]}))
    out = cli("solve", str(bad))
    assert out.returncode == 2
    assert "markets[0].options[0].margin: must be between 0 and 1" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


@pytest.mark.parametrize("command", [("submit",), ("scenarios", "create", "bad-one")])
def test_submitting_or_storing_an_invalid_file_names_the_field_without_a_traceback(
        server: RunningServer, tmp_path: Path, command: tuple[str, ...]) -> None:
    """submit and scenarios create read the file locally: a bad one is exit 2 with its field paths."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"horizon_years": 2, "markets": [{"id": "A", "options": [{"mode": "build", "initial_share": 0.1, "margin": 2}]}]}))
    out = cli(*command, str(bad), "--server", f"127.0.0.1:{server.port}")
    assert out.returncode == 2, out.stderr
    assert "markets[0].options[0].margin: must be between 0 and 1" in out.stderr
    assert "Traceback" not in out.stderr
    listed = cli("scenarios", "list", "--json", "--server", f"127.0.0.1:{server.port}")
    assert "bad-one" not in listed.stdout  # nothing was stored


def test_remote_solve_prints_the_same_json_as_local(server: RunningServer, tmp_path: Path) -> None:
    f = tiny_file(tmp_path)
    local = json.loads(cli("solve", str(f), "--json").stdout)
    out = cli("solve", str(f), "--json", "--server", f"127.0.0.1:{server.port}")
    assert out.returncode == 0, out.stderr
    remote = json.loads(out.stdout)
    for key in ("status", "objective_value", "best_bound", "gap", "scenario_sha256", "kpis", "years"):
        assert remote[key] == local[key], key
    assert [(m["id"], m["mode"], m["entry_year"], m["years"]) for m in remote["markets"]] == \
        [(m["id"], m["mode"], m["entry_year"], m["years"]) for m in local["markets"]]


def test_submit_watch_jobs_cancel_scenarios(server: RunningServer, tmp_path: Path) -> None:
    addr = ["--server", f"127.0.0.1:{server.port}"]
    f = tiny_file(tmp_path)
    out = cli("submit", str(f), "--watch", "--json", "--request-id", "cli-1", *addr)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["objective_value"] == pytest.approx(TINY_OPTIMUM)
    assert "succeeded" in out.stderr
    again = cli("submit", str(f), "--request-id", "cli-1", *addr)
    jobs = json.loads(cli("jobs", "--json", *addr).stdout)
    assert again.stdout.strip() in {j["job_id"] for j in jobs}
    assert sum(1 for j in jobs if j["request_id"] == "cli-1") == 1
    assert cli("cancel", again.stdout.strip(), *addr).stdout.strip() == "succeeded"  # already done
    assert cli("scenarios", "create", "tiny", str(f), *addr).stdout.strip() == "tiny revision 1"
    assert cli("scenarios", "update", "tiny", str(f), *addr).stdout.strip() == "tiny revision 2"
    listed = json.loads(cli("scenarios", "list", "--json", *addr).stdout)
    assert [(s["name"], s["revision"]) for s in listed] == [("tiny", 2)]
    got = cli("scenarios", "get", "tiny", "--revision", "1", *addr)
    assert "horizon_years: 3" in got.stdout
    stored = cli("submit", "tiny", "--stored", "--watch", "--json", *addr)
    assert json.loads(stored.stdout)["objective_value"] == pytest.approx(TINY_OPTIMUM)
    missing = cli("job", "nope", *addr)
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr


def test_unreachable_server_exit_3(tmp_path: Path) -> None:
    out = cli("jobs", "--server", "127.0.0.1:1", "--timeout", "2")
    assert out.returncode == 3 and "UNAVAILABLE" in out.stderr


def test_compare_and_explain_from_the_command_line(server: RunningServer, tmp_path: Path) -> None:
    from lepton_alloc.models.loader import dump_scenario

    tight = tmp_path / "tight.yaml"
    tight.write_text(dump_scenario(tiny_scenario(budget=3.5)))  # only A (entry 3) fits in a year
    loose = tiny_file(tmp_path)
    local = cli("compare", str(tight), str(loose), "--json")
    assert local.returncode == 0, local.stderr
    c = json.loads(local.stdout)
    assert {m["market_id"] for m in c["markets"]} == {"B"}  # B enters later under the tight budget
    objective = next(k for k in c["kpis"] if k["name"] == "objective_value")
    assert objective["b"] == pytest.approx(TINY_OPTIMUM, abs=1e-6) and objective["delta"] > 0
    addr = f"127.0.0.1:{server.port}"
    assert cli("scenarios", "create", "cli-tight", str(tight), "--server", addr).returncode == 0
    remote = cli("compare", "cli-tight@1", str(loose), "--json", "--server", addr)
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout)["markets"] == c["markets"]
    shown = cli("compare", str(tight), str(loose))
    assert "budget[2027]" in shown.stdout and "B - A" in shown.stdout
    explained = cli("explain", str(tight), "--time-budget", "20", "--json")
    assert explained.returncode == 0, explained.stderr
    d = json.loads(explained.stdout)
    assert {v["market_id"] for v in d["market_values"]} == {"A", "B"}
    assert all(len(lim["steps"]) == 2 for lim in d["limits"] if lim["constraint"].startswith("budget["))
    text = cli("explain", str(tight), "--time-budget", "20").stdout
    assert "What each market is worth" in text and "Objective" in text


def test_batch_on_a_server_writes_results_and_a_summary(server: RunningServer, tmp_path: Path) -> None:
    import csv

    from lepton_alloc.models.loader import dump_scenario

    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "loose.yaml").write_text(dump_scenario(tiny_scenario()))
    (scenarios / "tight.yaml").write_text(dump_scenario(tiny_scenario(budget=3.5)))
    (scenarios / "broken.yaml").write_text("horizon_years: 0\nmarkets: []\n")
    out = tmp_path / "out"
    run = cli("batch", str(scenarios), "--out", str(out), "--concurrency", "2", "--server", f"127.0.0.1:{server.port}")
    assert run.returncode == 1, run.stderr  # one file is invalid
    rows = {Path(r["file"]).name: r for r in csv.DictReader(open(out / "summary.csv", encoding="utf-8"))}
    assert set(rows) == {"loose.yaml", "tight.yaml", "broken.yaml"}
    assert float(rows["loose.yaml"]["objective_value"]) == pytest.approx(TINY_OPTIMUM, abs=1e-6)
    assert rows["loose.yaml"]["status"] == "optimal" and rows["loose.yaml"]["markets_entered"] == "2"
    assert float(rows["tight.yaml"]["objective_value"]) < TINY_OPTIMUM
    assert rows["broken.yaml"]["status"] == "invalid" and "horizon_years" in rows["broken.yaml"]["error"]
    loose = json.loads((out / "loose.json").read_text())
    assert loose["objective_value"] == pytest.approx(TINY_OPTIMUM, abs=1e-6) and loose["currency"] == "USD"
    assert not (out / "broken.json").exists()
