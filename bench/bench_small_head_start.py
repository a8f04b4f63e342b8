"""Small models with and without the head start: where does it stop paying for itself?

On a model HiGHS proves in tens of milliseconds the head start (greedy, local search, eject
search, models/heuristic.py) is not a head start but extra work. This measures, in one run,
the time of ``solve_model`` (head start + transfer + HiGHS, one thread, the scenario's own gap)
with the head start (the service's default) and without it, on generated scenarios from 5 to
30 markets (5 and 10 years, three seeds, every lever of the generator's defaults) and on the
built-in example, interleaved repeat by repeat so that drift in the machine hits both alike.

    .venv/bin/python bench/bench_small_head_start.py [--repeats 7] [--out FILE]

Writes a Markdown table (median of each, ratio, the integer columns, equal objectives) and a
.json next to it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_build import machine_info, machine_lines, report_header  # noqa: E402

SIZES = [(5, 5), (10, 5), (15, 5), (20, 5), (30, 5), (5, 10), (10, 10), (15, 10), (20, 10)]
SEEDS = (0, 1, 2)


def _instances() -> list[tuple[str, object]]:
    from lepton_alloc.models import load_builtin_example, parse_scenario
    from lepton_alloc.models.generator import generate_scenario

    out: list[tuple[str, object]] = [("built-in example", load_builtin_example())]
    for markets, years in SIZES:
        for seed in SEEDS:
            out.append((f"gen-{markets}x{years}-s{seed}", parse_scenario(generate_scenario(markets, years, seed))))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", default=str(HERE / "results" / "small_head_start.md"))
    args = p.parse_args(argv)
    from lepton_alloc.models import build_model, solve_model

    rows = []
    for name, sc in _instances():
        build_model(sc)  # warm
        times: dict[str, list[float]] = {"with": [], "without": []}
        objectives: dict[str, set[float]] = {"with": set(), "without": set()}
        integers = 0
        for _ in range(args.repeats):
            for way, head_start in (("with", None), ("without", False)):
                am = build_model(sc)
                integers = am.integer_count
                t0 = time.perf_counter()
                out = solve_model(am, head_start=head_start)
                times[way].append(time.perf_counter() - t0)
                objectives[way].add(round(float(out.objective_value or 0.0), 6))
        w, wo = statistics.median(times["with"]), statistics.median(times["without"])
        same = objectives["with"] == objectives["without"] and len(objectives["with"]) == 1
        rows.append({"instance": name, "integers": integers, "with_ms": 1000 * w, "without_ms": 1000 * wo,
                     "ratio": w / wo, "same_objective": same, "objectives": sorted(objectives["with"] | objectives["without"])})
        print(f"[bench] {name}: {integers} integers, with {1000 * w:.1f} ms, without {1000 * wo:.1f} ms", file=sys.stderr)
    rows.sort(key=lambda r: r["integers"])
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.with_suffix(".json").write_text(json.dumps({"rows": rows, "machine": machine_info()}, indent=1))
    lines = report_header(
        "Small models: the solve with and without the head start",
        f"`solve_model` (head start + transfer + HiGHS, one thread, the scenario's gap), median of {args.repeats}, "
        "the two ways interleaved. Sorted by integer columns. *same objective*: every run of both ways ended "
        "at the same objective (to 1e-6).") + [
        "| instance | integer columns | with head start ms | without ms | with / without | same objective |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['instance']} | {r['integers']} | {r['with_ms']:.1f} | {r['without_ms']:.1f} | "
                     f"{r['ratio']:.2f} | {'yes' if r['same_objective'] else 'no: ' + ', '.join(map(str, r['objectives']))} |")
    lines += machine_lines()
    out_path.write_text("\n".join(lines))
    print(f"[bench] wrote {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
