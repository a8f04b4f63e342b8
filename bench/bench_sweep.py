"""Sweeps (docs/model.md §7): warm variants against rebuilt ones, and Monte Carlo on the worker
pool against Ray.

    .venv/bin/python bench/bench_sweep.py warm [--markets 200] [--years 10] [--variants 200] [--gap 1e-4]
    .venv/bin/python bench/bench_sweep.py montecarlo [--markets 50] [--draws 1000] [--actors 2] [--gap 0.01]

``warm``: a generated scenario (every lever on: ``bench_mip.LEVERS``) and ``--variants`` budget
variants (``budget.limit`` scaled evenly from 0.8 to 1.2), solved one after the other in one
process, first on one model re-targeted in place with the previous plan as HiGHS's start
(what a worker does), then with a model built afresh for each variant. Per variant: the whole
time, the model work (build or re-target + hand-over to HiGHS), the solver time (head start +
HiGHS), and whether the two ways found the same entry plan and objective. Writes
``bench/results/sweep_warm.md`` and ``.json``.

``montecarlo``: ``--draws`` draws of every market's growth rate on a generated scenario,
through a real server twice: its worker pool (2 workers), then a Ray cluster of one node with
``--actors`` actors (started here with ``ray start --head``, as an operator would), the server
pointed at it. Wall time as the client sees it, and agreement variant by variant. Writes
``bench/results/sweep_montecarlo.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_build import machine_lines, report_header  # noqa: E402
from bench_mip import LEVERS  # noqa: E402


def _same(a: Any, b: Any, gap: float) -> tuple[bool, bool]:
    """(same entry plan, objectives within the larger of the asked gap and the two reported gaps)."""
    if a.objective_value is None or b.objective_value is None:
        return a.plan() == b.plan(), a.objective_value == b.objective_value
    tol = max(gap, a.gap or 0.0, b.gap or 0.0, 1e-9) * max(1.0, abs(a.objective_value), abs(b.objective_value))
    return a.plan() == b.plan(), abs(a.objective_value - b.objective_value) <= tol + 1e-9


# ----------------------------------------------------------------------------- warm


def bench_warm(args: argparse.Namespace) -> int:
    import numpy as np

    from lepton_alloc.models import parse_scenario
    from lepton_alloc.models.generator import generate_scenario
    from lepton_alloc.models.sweep import WarmSolver, parse_sweep, variants

    base = parse_scenario(generate_scenario(args.markets, args.years, args.seed, time_limit=args.time_limit,
                                            mip_rel_gap=args.gap, **LEVERS))
    scales = [round(float(x), 6) for x in np.linspace(0.8, 1.2, args.variants)]
    spec = parse_sweep({"grid": [{"path": "budget.limit", "how": "scale", "values": scales}]}, base)
    ways: dict[str, list[Any]] = {}
    for name, is_warm in (("warm", True), ("rebuild", False)):
        solver = WarmSolver(1, is_warm)
        solver.solve_variant(base, spec, variants(spec)[0])  # the base: both ways start from a built model
        rows = []
        for v in variants(spec)[1:]:
            rows.append(solver.solve_variant(base, spec, v))
        ways[name] = rows
        print(f"[bench] {name}: median {statistics.median(r.seconds for r in rows):.3f} s per variant", file=sys.stderr)
    warm, cold = ways["warm"], ways["rebuild"]
    same_plan = sum(_same(a, b, args.gap)[0] for a, b in zip(warm, cold))
    same_obj = sum(_same(a, b, args.gap)[1] for a, b in zip(warm, cold))

    def med(rows: list[Any], key: str) -> float:
        return statistics.median(getattr(r, key) for r in rows)

    def tot(rows: list[Any], key: str) -> float:
        return sum(getattr(r, key) for r in rows)

    lines = report_header("Sweep: warm variants against rebuilt ones",
                    f"A generated scenario of {args.markets} markets × {args.years} years (seed {args.seed}, every lever on), "
                    f"{args.variants} budget variants (`budget.limit` × 0.8 … 1.2), gap {args.gap:g}, time limit "
                    f"{args.time_limit:g} s per variant, one HiGHS thread, one process. *warm*: one model re-targeted in "
                    "place, the previous plan offered to HiGHS as its start; *rebuild*: a new model per variant (the "
                    "head start runs). *model* = build or re-target + hand-over to HiGHS; *solver* = head start + HiGHS.")
    lines += ["| way | variants | median s / variant | mean s | total s | median model s | total model s "
              "| median solver s | total solver s | optimal |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, rows in ways.items():
        lines.append(f"| {name} | {len(rows)} | {med(rows, 'seconds'):.3f} | {tot(rows, 'seconds') / len(rows):.3f} | "
                     f"{tot(rows, 'seconds'):.1f} | {med(rows, 'model_seconds'):.4f} | {tot(rows, 'model_seconds'):.2f} | "
                     f"{med(rows, 'solver_seconds'):.3f} | {tot(rows, 'solver_seconds'):.1f} | "
                     f"{sum(r.status == 'optimal' for r in rows)} |")
    ratio = tot(cold, "seconds") / max(1e-9, tot(warm, "seconds"))
    model_ratio = tot(cold, "model_seconds") / max(1e-9, tot(warm, "model_seconds"))
    lines += ["", f"- rebuild / warm, whole variant (totals): **{ratio:.2f}×**; model work alone: **{model_ratio:.1f}×**",
              f"- same entry plan: {same_plan} of {len(warm)}; objective within the gap: {same_obj} of {len(warm)}",
              f"- share of a rebuilt variant's time that is model work: "
              f"{100 * tot(cold, 'model_seconds') / max(1e-9, tot(cold, 'seconds')):.1f} %"]
    differ = [(a.index, a.label, a.objective_value, b.objective_value) for a, b in zip(warm, cold) if not _same(a, b, args.gap)[0]]
    if differ:
        lines += ["", "Variants whose plans differ (objectives warm / rebuild):", ""]
        lines += [f"- #{i} {label}: {oa:,.4f} / {ob:,.4f}" for i, label, oa, ob in differ[:20]]
    lines += machine_lines()
    out = Path(args.out or HERE / "results" / "sweep_warm.md")
    out.write_text("\n".join(lines), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({k: [r.to_dict() for r in v] for k, v in ways.items()}), encoding="utf-8")
    print("\n".join(lines))
    return 0


# ----------------------------------------------------------------------------- Monte Carlo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _through_server(settings: dict[str, Any], base: Any, spec: dict[str, Any]) -> tuple[float, Any]:
    from lepton_alloc.clients.client import AllocationClient
    from lepton_alloc.server.app import start_server
    from lepton_alloc.server.config import load_config

    with tempfile.TemporaryDirectory() as tmp:
        cfg = {"address": "127.0.0.1:0", "workers": 2, "database": str(Path(tmp) / "bench.db"), "max_time_limit": 600,
               **settings}
        server = start_server(load_config(None, cfg, env={}))
        try:
            with AllocationClient(f"127.0.0.1:{server.port}", timeout=3600) as client:
                t0 = time.perf_counter()
                events = list(client.sweep(spec, base, timeout=7200))
                wall = time.perf_counter() - t0
                info = client.get_sweep(events[0].job_id)
        finally:
            server.stop(grace=1.0)
    return wall, info


def bench_montecarlo(args: argparse.Namespace) -> int:
    from lepton_alloc.models import parse_scenario
    from lepton_alloc.models.generator import generate_scenario

    base = parse_scenario(generate_scenario(args.markets, args.years, args.seed, time_limit=args.time_limit,
                                            mip_rel_gap=args.gap, **LEVERS))
    spec = {"monte_carlo": {"draws": args.draws, "seed": 2026, "vary": [
        {"path": "markets[*].market_growth", "how": "add", "distribution": "normal", "mean": 0.0, "sd": 0.02}]}}
    runs: dict[str, tuple[float, Any]] = {}
    runs["worker pool (2 workers)"] = _through_server({}, base, spec)
    print(f"[bench] pool: {runs['worker pool (2 workers)'][0]:.1f} s", file=sys.stderr)
    ray_cli = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    os.environ.update(auth)
    subprocess.run([ray_cli, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={args.actors}",
                    "--include-dashboard=false", "--disable-usage-stats"], check=True, capture_output=True, timeout=300)
    try:
        name = f"Ray cluster ({args.actors} actors)"
        runs[name] = _through_server({"sweep_executor": f"127.0.0.1:{port}", "ray_actors": args.actors}, base, spec)
        print(f"[bench] ray: {runs[name][0]:.1f} s", file=sys.stderr)
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120)
    (pool_wall, pool), (ray_wall, on_ray) = runs.values()
    pairs = list(zip(pool.variants, on_ray.variants))
    same_plan = sum(_same(a, b, args.gap)[0] for a, b in pairs)
    same_obj = sum(_same(a, b, args.gap)[1] for a, b in pairs)
    lines = report_header("Sweep: Monte Carlo on the worker pool and on Ray",
                    f"{args.draws} draws of every market's growth rate (normal, sd 0.02, added) on a generated scenario of "
                    f"{args.markets} markets × {args.years} years (seed {args.seed}, every lever on), gap {args.gap:g}, time limit "
                    f"{args.time_limit:g} s per variant, one HiGHS thread per worker or actor, through a real server "
                    "(SubmitSweep stream to the end, robust-plan evaluation included). Wall time as the client sees it.")
    lines += ["| executor | wall s | variants | with a plan | warm | s per variant (wall / variants) | summary p50 | robust plan holds in |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, (wall, info) in runs.items():
        s = info.summary
        lines.append(f"| {name} | {wall:.1f} | {len(info.variants)} | {s.with_plan} | {sum(v.warm for v in info.variants)} | "
                     f"{wall / len(info.variants):.3f} | {s.objective_percentiles.get('p50', float('nan')):,.2f} | "
                     f"{s.robust_feasible} of {len(s.robust_checks)} |")
    lines += ["", f"- Ray / pool wall time: {ray_wall / pool_wall:.2f}",
              f"- agreement, variant by variant: same entry plan {same_plan} of {len(pairs)}; objective within the gap "
              f"{same_obj} of {len(pairs)}",
              f"- same robust plan: {pool.summary.robust_plan == on_ray.summary.robust_plan}"]
    lines += machine_lines()
    out = Path(args.out or HERE / "results" / "sweep_montecarlo.md")
    out.write_text("\n".join(lines), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({k: {"wall_seconds": w, **i.to_dict()} for k, (w, i) in runs.items()},
                                                   default=str), encoding="utf-8")
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    w = sub.add_parser("warm")
    w.add_argument("--markets", type=int, default=200)
    w.add_argument("--years", type=int, default=10)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--variants", type=int, default=200)
    w.add_argument("--gap", type=float, default=1e-4)
    w.add_argument("--time-limit", type=float, default=60.0)
    w.add_argument("--out", default=None)
    m = sub.add_parser("montecarlo")
    m.add_argument("--markets", type=int, default=50)
    m.add_argument("--years", type=int, default=10)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--draws", type=int, default=1000)
    m.add_argument("--actors", type=int, default=2)
    m.add_argument("--gap", type=float, default=0.01)
    m.add_argument("--time-limit", type=float, default=10.0)
    m.add_argument("--out", default=None)
    args = p.parse_args(argv)
    return bench_warm(args) if args.what == "warm" else bench_montecarlo(args)


if __name__ == "__main__":
    sys.exit(main())
