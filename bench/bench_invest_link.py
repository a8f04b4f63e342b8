"""Growth investment linked segment by segment (docs/model.md §2.3, §6.4): how much tighter the
LP relaxation is than with the single row, and what a solve then proves.

    .venv/bin/python bench/bench_invest_link.py                 # ~5 min
    .venv/bin/python bench/bench_invest_link.py --cases levers:200:0 --time-limit 10 --out /tmp/il.md

For each generated 10-year scenario (``FAMILY:MARKETS:SEED``; ``levers`` = bench_large.py's
family, growth investment and hiring on every market, risk-adjusted NPV, carry-over; ``gen`` =
bench_mip.py's levers family, levers on 10 % of markets; ``yearly`` = the generator's
defaults), in one process:

* *LP, single row*: the LP relaxation of the model as the code builds it, with each market-year's
  ``invest_link[<market>,<year>,<segment>]`` rows summed back into the one row
  ``Σ_j y[i,t,j] <= up_to_last · active[i,t]`` of the specification (the formulation before);
* *LP, per segment*: the LP relaxation of the model as built;
* a solve of the model as built (``solve_model``, ``--time-limit`` s, one thread): status, plan,
  bound and gap.

The gaps are measured against the best plan known here: the solve's. Writes
``bench/results/invest_link.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_build import machine_lines, report_header  # noqa: E402
from bench_large import FAMILIES as LARGE_FAMILIES  # noqa: E402
from bench_mip import LEVERS  # noqa: E402

FAMILIES: dict[str, dict[str, Any]] = {"levers": LARGE_FAMILIES["levers"], "gen": LEVERS, "yearly": {}}
DEFAULT_CASES = "levers:200:0,levers:500:0,levers:2000:0,gen:200:0,gen:1000:0,yearly:50:0"


def single_row_rows(rows: list[Any]) -> list[Any]:
    """The rows with every market-year's per-segment invest_link rows summed into one (the
    specification's Σ_j y[i,t,j] <= up_to_last · active[i,t])."""
    import numpy as np

    from lepton_alloc.models.formulation import Row

    out: list[Any] = []
    summed: dict[tuple[Any, Any], Row] = {}
    for r in rows:
        if r.family != "invest_link":
            out.append(r)
            continue
        key = (r.key[0], r.key[1])
        if key not in summed:
            summed[key] = Row(f"invest_link[{key[0]},{key[1]}]", r.idx, r.coef, r.lb, r.ub, r.family, key)
            out.append(summed[key])
        else:
            s = summed[key]
            idx = np.concatenate([s.idx, r.idx])
            uniq, inv = np.unique(idx, return_inverse=True)
            s.idx, s.coef = uniq, np.bincount(inv, weights=np.concatenate([s.coef, r.coef]))
    return out


def run_case(family: str, markets: int, seed: int, time_limit: float) -> dict[str, Any]:
    from lepton_alloc.models import build_model, parse_scenario, solve_model
    from lepton_alloc.models.generator import generate_scenario
    from lepton_alloc.models.heuristic import lp_relaxation
    from lepton_alloc.models.rowset import RowSet

    raw = generate_scenario(markets, 10, seed, time_limit=time_limit, mip_rel_gap=1e-4, **FAMILIES[family])
    am = build_model(parse_scenario(raw))
    rows = RowSet.of_model(am)
    t0 = time.perf_counter()
    lp_new = lp_relaxation(am, rows, 600.0)
    t_new = time.perf_counter() - t0
    old_rows = single_row_rows(am.rows)
    t0 = time.perf_counter()
    lp_old = lp_relaxation(am, RowSet(old_rows), 600.0)
    t_old = time.perf_counter() - t0
    out = solve_model(am, time_limit=time_limit, threads=1)
    return {
        "case": f"{family}:{markets}:{seed}", "family": family, "markets": markets, "seed": seed,
        "rows_per_segment": len(am.rows), "rows_single": len(old_rows),
        "nonzeros_per_segment": int(sum(r.idx.size for r in am.rows)),
        "nonzeros_single": int(sum(r.idx.size for r in old_rows)),
        "invest_link_rows": sum(r.family == "invest_link" for r in am.rows),
        "lp_single": None if lp_old is None else lp_old[2], "lp_single_seconds": t_old,
        "lp_per_segment": None if lp_new is None else lp_new[2], "lp_per_segment_seconds": t_new,
        "status": out.status.value, "objective": out.objective_value, "bound": out.best_bound, "gap": out.gap,
        "solver_seconds": out.solver_seconds, "time_limit": time_limit,
    }


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:,.2f}"


def _gap(bound: float | None, plan: float | None) -> str:
    if bound is None or plan is None:
        return "–"
    return f"{100 * (bound - plan) / abs(plan):.3f} %"


def report(rows: list[dict[str, Any]], time_limit: float) -> str:
    lines = report_header(
        "Growth investment linked segment by segment: the LP relaxation before and after",
        f"Generated 10-year scenarios. *LP, single row*: the LP relaxation with each market-year's "
        f"per-segment `invest_link` rows summed back into the specification's one row (the formulation "
        f"before); *LP, per segment*: the model as built. *plan*, *bound*, *gap*: a solve of the model as "
        f"built ({time_limit:g} s, one thread, the head start on). LP gaps are relative to that plan. "
        f"Families: `levers` = bench_large.py's (growth investment and hiring on every market, risk-adjusted "
        f"NPV, carry-over), `gen` = bench_mip.py's levers family (levers on 10 % of markets), `yearly` = the "
        f"generator's defaults.")
    lines += ["| case | invest_link rows | non-zeros, single → per segment | LP, single row | LP, per segment "
              "| plan | bound | status | gap | LP gap, single row | LP gap, per segment |",
              "|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['invest_link_rows']:,} | {r['nonzeros_single']:,} → {r['nonzeros_per_segment']:,} "
            f"| {_num(r['lp_single'])} | {_num(r['lp_per_segment'])} | {_num(r['objective'])} | {_num(r['bound'])} "
            f"| {r['status']} | {_gap(r['bound'], r['objective'])} | {_gap(r['lp_single'], r['objective'])} "
            f"| {_gap(r['lp_per_segment'], r['objective'])} |")
    return "\n".join(lines + machine_lines())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=DEFAULT_CASES, help="FAMILY:MARKETS:SEED, comma-separated")
    p.add_argument("--time-limit", type=float, default=30.0)
    p.add_argument("--out", default=str(HERE / "results" / "invest_link.md"))
    args = p.parse_args(argv)
    rows = []
    for case in args.cases.split(","):
        family, markets, seed = case.split(":")
        rows.append(run_case(family, int(markets), int(seed), args.time_limit))
        r = rows[-1]
        print(f"[bench] {case}: LP {_num(r['lp_single'])} -> {_num(r['lp_per_segment'])}, plan {_num(r['objective'])}, "
              f"gap {_gap(r['bound'], r['objective'])}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report(rows, args.time_limit))
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(f"[bench] wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
