"""``lepton-alloc batch``: many scenario files solved for a planning meeting.

Each file's result is written as JSON (and as a workbook when the spreadsheet writer is
available) next to a ``summary.csv`` with one row per scenario: status, objective, E[NPV],
markets entered, total spend, with the currency, or the reason it failed. On a server the
solves run with bounded concurrency; locally one after the other. A progress bar shows how many
are done.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import sys
from pathlib import Path
from typing import Any

SCENARIO_SUFFIXES = (".yaml", ".yml", ".json", ".xlsx")
SUMMARY_COLUMNS = ("file", "scenario", "status", "objective_value", "expected_npv", "markets_entered", "total_spend",
                   "currency", "money_unit", "error")


def scenario_files(patterns: list[str]) -> list[Path]:
    """Files named directly, every scenario file in a named directory, or what a glob matches."""
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in SCENARIO_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            found += sorted(Path(p) for p in glob.glob(pattern) if Path(p).suffix.lower() in SCENARIO_SUFFIXES)
    return list(dict.fromkeys(found))


def summary_row(path: Path, result: Any, error: str = "") -> dict[str, Any]:
    if result is None:
        return {"file": str(path), "scenario": "", "status": "invalid" if error else "", "error": error}
    kpis = result.kpis
    return {
        "file": str(path), "scenario": result.scenario_name, "status": result.status.value,
        "objective_value": result.objective_value, "expected_npv": kpis.expected_npv if kpis else None,
        "markets_entered": kpis.markets_entered if kpis else None,
        "total_spend": sum(y.spend for y in result.years) if result.years else None,
        "currency": result.currency, "money_unit": result.money_unit, "error": error,
    }


def write_outputs(out_dir: Path, path: Path, result: Any, scenario: Any = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{path.stem}.json").write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False), encoding="utf-8")
    try:
        from .xlsx import write_result_xlsx
    except ImportError:  # the spreadsheet writer is optional here
        return
    write_result_xlsx(result, out_dir / f"{path.stem}.xlsx", scenario)


def write_summary(out_dir: Path, rows: list[dict[str, Any]]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "summary.csv"
    with open(target, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return target


def run_batch(patterns: list[str], out_dir: str, *, server: str | None = None, concurrency: int = 4,
              time_limit: float | None = None, gap: float | None = None, show_progress: bool | None = None,
              max_wait: float = 600.0) -> list[dict[str, Any]]:
    """Solve every scenario file; write results and the summary; the summary rows. On a server,
    a file refused for lack of room is sent again after the server's delay, for at most
    ``max_wait`` seconds (:meth:`AllocationClient.solve_many`)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lepton_alloc.models import ScenarioError

    from .xlsx_cli import load_scenario_any as load_scenario_file  # YAML, JSON or a workbook

    files = scenario_files(patterns)
    target = Path(out_dir)
    rows: dict[Path, dict[str, Any]] = {}
    valid: list[tuple[Path, Any]] = []
    for path in files:
        try:
            valid.append((path, load_scenario_file(path)))
        except ScenarioError as exc:  # validated here, at the edge: the file's own field paths
            rows[path] = summary_row(path, None, "; ".join(str(v) for v in exc.violations))
    enabled = sys.stderr.isatty() if show_progress is None else show_progress
    bar = Progress(TextColumn("solving scenarios"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), disable=not enabled)
    with bar:
        task = bar.add_task("batch", total=len(valid))
        by_name = {str(path): (path, sc) for path, sc in valid}

        def done(name: str, answer: Any) -> None:
            path, sc = by_name[name]
            if hasattr(answer, "status"):
                write_outputs(target, path, answer, sc)
                rows[path] = summary_row(path, answer)
            else:
                rows[path] = summary_row(path, None, str(answer))
                rows[path]["status"] = "failed"
            bar.advance(task)

        if server:
            from .client import AllocationClient

            with AllocationClient(server, timeout=3600) as client:
                client.solve_many([(str(p), sc) for p, sc in valid], concurrency=concurrency,
                                  time_limit_seconds=time_limit, mip_rel_gap=gap, on_done=done,
                                  max_wait_seconds=max_wait)
        else:
            from lepton_alloc.models import solve_scenario

            for path, sc in valid:
                done(str(path), solve_scenario(sc, time_limit=time_limit, mip_rel_gap=gap))
    ordered = [rows[p] for p in files if p in rows]
    write_summary(target, ordered)
    return ordered


def register(sub: Any) -> None:
    s = sub.add_parser("batch", help="solve many scenario files; one result per file and a summary CSV")
    s.add_argument("paths", nargs="+", help="scenario files, directories or globs")
    s.add_argument("--out", default="batch-results", help="directory for the results and summary.csv")
    s.add_argument("--concurrency", type=int, default=4, help="jobs in flight at once on a server")
    s.add_argument("--time-limit", dest="time_limit", type=float, default=None, help="override solver.time_limit_seconds")
    s.add_argument("--gap", type=float, default=None, help="override solver.mip_rel_gap")
    s.add_argument("--server", default=os.environ.get("LEPTON_SERVER"), help="HOST:PORT of a Lepton server (env LEPTON_SERVER)")
    s.add_argument("--max-wait", dest="max_wait", type=float, default=600.0,
                   help="on a server: seconds a file refused for lack of room keeps waiting its turn")
    s.set_defaults(func=cmd_batch)


def cmd_batch(args: Any) -> int:
    if not args.max_wait >= 0:
        print("lepton-alloc batch: --max-wait must be 0 or more seconds", file=sys.stderr)
        return 2
    rows = run_batch(args.paths, args.out, server=args.server, concurrency=args.concurrency,
                     time_limit=args.time_limit, gap=args.gap, max_wait=args.max_wait)
    if not rows:
        print("no scenario files found", file=sys.stderr)
        return 2
    from .report import _num, table  # the text report's number format

    print(table(["file", "status", "objective", "E[NPV]", "markets", "error"],
                [[r["file"], r["status"], _num(r.get("objective_value")), _num(r.get("expected_npv")),
                  r.get("markets_entered") or "", (r.get("error") or "")[:60]] for r in rows]))
    print(f"results and summary.csv in {args.out}", file=sys.stderr)
    failed = any(r["status"] in ("invalid", "failed") for r in rows)
    return 1 if failed else 0

