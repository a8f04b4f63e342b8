"""Where should HiGHS's own search stop being run? Both paths of ``solve_model`` on the same
models (docs/model.md §6.2, ``solve.HUGE_MODEL_NONZEROS``).

    .venv/bin/python bench/bench_huge_threshold.py                 # ~18 min
    .venv/bin/python bench/bench_huge_threshold.py --cases levers:2000:0 --time-limit 30 --out /tmp/h.md

For each generated 10-year scenario (``FAMILY:MARKETS:SEED``; ``levers`` = bench_large.py's
family, growth investment and hiring on every market, risk-adjusted NPV, carry-over; ``gen`` and
``yearly`` = bench_mip.py's families) and ``--time-limit`` (60 s, gap 1e-4, one thread), in its
own process, twice:

* *normal*: the head start, then HiGHS's search on the whole model;
* *head start only*: the path of a huge model (the threshold set to 1 non-zero): LP relaxation
  without presolve, greedy, local search, sub-MIPs and fix-and-optimize for the whole limit.

Reported: plan, bound, gap and wall seconds of each (a wall time past the limit is HiGHS not
honouring it). Writes ``bench/results/huge_threshold.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_build import machine_lines, report_header  # noqa: E402

DEFAULT_CASES = "gen:2000:0,yearly:2000:0,levers:1000:0,levers:1500:0,levers:2000:0,gen:1000:0,yearly:1000:0,gen:200:0"
ONE = """
import json, sys, time
sys.path.insert(0, {here!r})
from bench_large import FAMILIES as LARGE
from bench_mip import FAMILIES as MIP
from lepton_alloc.models import build_model, parse_scenario, solve_model
from lepton_alloc.models import solve as S
from lepton_alloc.models.generator import generate_scenario
family, markets, seed, limit, head_only = {family!r}, {markets}, {seed}, {limit}, {head_only}
if head_only:
    S.HUGE_MODEL_NONZEROS = 1
opts = dict(LARGE["levers"]) if family == "levers" else dict(MIP["levers" if family == "gen" else family], objective="expected_npv")
raw = generate_scenario(markets, 10, seed, time_limit=limit, mip_rel_gap=1e-4, **opts)
am = build_model(parse_scenario(raw), pyomo=False)
t = time.perf_counter()
out = solve_model(am, time_limit=limit, threads=1)
print(json.dumps({{"wall": time.perf_counter() - t, "status": out.status.value, "objective": out.objective_value,
                  "bound": out.best_bound, "gap": out.gap, "nonzeros": am.nonzeros, "integers": am.integer_count}}))
"""


def run(family: str, markets: int, seed: int, limit: float, head_only: bool) -> dict[str, Any]:
    code = ONE.format(here=str(HERE), family=family, markets=markets, seed=seed, limit=limit, head_only=head_only)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.3f} %"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:,.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=DEFAULT_CASES, help="FAMILY:MARKETS:SEED, comma-separated")
    p.add_argument("--time-limit", type=float, default=60.0)
    p.add_argument("--out", default=str(HERE / "results" / "huge_threshold.md"))
    p.add_argument("--merge", help="an earlier run's .json whose rows come first in the report (same time limit)")
    args = p.parse_args(argv)
    rows = json.loads(Path(args.merge).read_text(encoding="utf-8")) if args.merge else []
    for case in args.cases.split(","):
        family, markets, seed = case.split(":")
        pair = {way: run(family, int(markets), int(seed), args.time_limit, way == "head start only")
                for way in ("normal", "head start only")}
        rows.append({"case": case, **pair})
        print(f"[bench] {case}: " + "; ".join(f"{k} {_num(v['objective'])} gap {_pct(v['gap'])} in {v['wall']:.1f} s"
                                              for k, v in pair.items()), flush=True)
    lines = report_header(
        "HiGHS's search or the head start alone: where the huge-model path should begin",
        f"Generated 10-year scenarios, time limit {args.time_limit:g} s, gap 1e-4, one thread, one process per "
        "solve. *normal*: the head start, then HiGHS's search on the whole model; *head start only*: the path "
        "of a huge model (LP relaxation without presolve, greedy, local search, sub-MIPs, fix-and-optimize). "
        "A wall time past the limit is HiGHS not honouring it.")
    lines += ["| case | non-zeros | integers | normal: plan | bound | gap | wall s | head start only: plan | bound "
              "| gap | wall s |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        n, h = r["normal"], r["head start only"]
        lines.append(f"| {r['case']} | {n['nonzeros']:,} | {n['integers']:,} | {_num(n['objective'])} | "
                     f"{_num(n['bound'])} | {_pct(n['gap'])} | {n['wall']:.1f} | {_num(h['objective'])} | "
                     f"{_num(h['bound'])} | {_pct(h['gap'])} | {h['wall']:.1f} |")
    out = Path(args.out)
    out.write_text("\n".join(lines + machine_lines()), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print(f"[bench] wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
