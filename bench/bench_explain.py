"""Explanation time beside solve time (docs/model.md §3), measured in one run.

    .venv/bin/python bench/bench_explain.py [--time-budget 60] [--workers 2] [--out bench/results/explain_times.md]

For the built-in example and a generated 200-market scenario (10 years, seed 0):
1. a local solve: HiGHS time and the explanation every solve carries (limits with local prices
   from the fixed-integer LP, the objective's terms) — ``Result.timings``;
2. why an infeasible variant is infeasible (every market must enter) — ``Result.timings``;
3. ExplainJob through a real local server with ``--workers`` worker processes: step values of
   every limit (±5 %) and what each market is worth, under ``--time-budget`` seconds; how many
   re-solves the budget cut short.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lepton_alloc.clients.client import AllocationClient
from lepton_alloc.models import parse_scenario, solve_scenario
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.models.loader import load_builtin_example
from lepton_alloc.server.app import start_server
from lepton_alloc.server.config import load_config


def cases() -> dict[str, dict[str, Any]]:
    return {"built-in example": load_builtin_example().to_dict(),
            "generated 200 markets": generate_scenario(200, 10, seed=0, time_limit=30)}


def measure(name: str, raw: dict[str, Any], client: AllocationClient, budget: float) -> dict[str, Any]:
    sc = parse_scenario(raw)
    t0 = time.perf_counter()
    result = solve_scenario(sc)
    solve_wall = time.perf_counter() - t0
    infeasible = parse_scenario({**raw, "markets": [{**m, "must_enter": True} for m in raw["markets"]]})
    bad = solve_scenario(infeasible, time_limit=sc.solver.time_limit_seconds)
    job = client.submit(sc)
    job.result(timeout=600)
    t0 = time.perf_counter()
    explained = client.explain(job.job_id, time_budget_seconds=budget)
    explain_wall = time.perf_counter() - t0
    steps = [st for lim in explained.limits for st in lim.steps]
    return {
        "case": name, "markets": len(sc.markets), "status": result.status.value, "gap": result.gap,
        "solve_wall_s": solve_wall, "highs_s": result.timings.solver_seconds,
        "explanation_s": result.timings.explanation_seconds, "limits": len(result.limits),
        "priced_limits": sum(1 for lim in result.limits if lim.local_price is not None),
        "infeasible_status": bad.status.value, "infeasible_method": bad.infeasibility.method if bad.infeasibility else None,
        "infeasible_conflict": len(bad.infeasibility.constraints) if bad.infeasibility else 0,
        "infeasible_explanation_s": bad.timings.explanation_seconds,
        "explain_job_wall_s": explain_wall, "steps": len(steps), "steps_cut_short": sum(st.cut_short for st in steps),
        "market_values": len(explained.market_values),
        "market_values_cut_short": sum(v.cut_short for v in explained.market_values),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time-budget", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="bench/results/explain_times.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, {"address": "127.0.0.1:0", "database": str(Path(tmp) / "b.db"), "workers": args.workers,
                                 "metrics_port": 0, "max_time_limit": 600}, env={})
        running = start_server(cfg)
        try:
            with AllocationClient(f"127.0.0.1:{running.port}", timeout=900) as client:
                rows = [measure(name, raw, client, args.time_budget) for name, raw in cases().items()]
        finally:
            running.stop(grace=1.0)
    lines = [
        "# Explanation time beside solve time", "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python {' '.join(sys.argv)}` "
        f"(Python {platform.python_version()}, {args.workers} workers for ExplainJob, time budget {args.time_budget:g} s).", "",
        "| case | markets | status | solve wall s | HiGHS s | explanation s (limits, local prices, terms) | limits (priced) "
        "| infeasible variant: method, conflict size, s | ExplainJob wall s | step values (cut short) | market values (cut short) |",
        "|---|---:|---|---:|---:|---:|---|---|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['markets']} | {r['status']} | {r['solve_wall_s']:.2f} | {r['highs_s']:.2f} | "
            f"{r['explanation_s']:.3f} | {r['limits']} ({r['priced_limits']}) | {r['infeasible_method']}, "
            f"{r['infeasible_conflict']}, {r['infeasible_explanation_s']:.2f} | {r['explain_job_wall_s']:.1f} | "
            f"{r['steps']} ({r['steps_cut_short']}) | {r['market_values']} ({r['market_values_cut_short']}) |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text, encoding="utf-8")
    Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
