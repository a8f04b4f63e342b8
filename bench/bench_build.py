"""Where does the time of one solve go? Build vs transfer vs HiGHS vs extraction, by size.

For generated scenarios (:mod:`lepton_alloc.models.generator`) of 50, 200, 1000 and 2000
markets × 10 years, run ``build_model`` → ``solve_model`` → ``extract_result`` and write a
Markdown table to ``bench/results/build_times.md`` (also printed). Every size runs in a fresh
Python process, so one size's garbage never slows the next.

    .venv/bin/python bench/bench_build.py                      # all four sizes
    .venv/bin/python bench/bench_build.py --sizes 50,200       # a subset
    .venv/bin/python bench/bench_build.py --sizes 1000 --profile   # + cProfile of build+solve

See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "build_times.md"
DEFAULT_SIZES = "50,200,1000,2000"


# ----------------------------------------------------------------------------- one size


def run_one(markets: int, years: int, seed: int, time_limit: float, mip_rel_gap: float | None,
            threads: int, profile_out: str | None) -> dict[str, Any]:
    """Generate, validate, build, solve and extract one scenario; return the measurements."""
    from lepton_alloc.models import build_model, extract_result, parse_scenario, solve_model
    from lepton_alloc.models.generator import generate_scenario

    t0 = time.perf_counter()
    raw = generate_scenario(markets, years, seed)
    t1 = time.perf_counter()
    sc = parse_scenario(raw)
    t2 = time.perf_counter()

    prof = None
    if profile_out:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    started = time.perf_counter()
    am = build_model(sc)
    out = solve_model(am, time_limit=time_limit, mip_rel_gap=mip_rel_gap, threads=threads)
    if prof is not None:
        prof.disable()
    res = extract_result(am, out, started)
    wall = time.perf_counter() - started
    if prof is not None:
        _write_profile(prof, profile_out, markets, years)

    tm, size = res.timings, res.model_size
    return {
        "markets": markets, "years": years, "seed": seed, "columns": am.n_x,
        "variables": size.variables, "integer_variables": size.integer_variables,
        "constraints": size.constraints, "nonzeros": size.nonzeros,
        "generate_seconds": t1 - t0, "validate_seconds": t2 - t1,
        "build_seconds": tm.build_seconds, "transfer_seconds": tm.transfer_seconds,
        "solver_seconds": tm.solver_seconds, "extraction_seconds": tm.extraction_seconds,
        "total_seconds": tm.total_seconds, "wall_seconds": wall,
        "status": res.status, "gap": res.gap, "objective_value": res.objective_value,
        "markets_entered": res.kpis.markets_entered if res.kpis else None,
        "profiled": bool(profile_out),
    }


def _write_profile(prof: Any, path: str, markets: int, years: int) -> None:
    import io
    import pstats

    prof.dump_stats(path)
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    buf.write(f"cProfile of build_model + solve_model, {markets} markets x {years} years\n\n")
    buf.write("== by cumulative time ==\n")
    st.sort_stats("cumulative").print_stats(45)
    buf.write("\n== by internal (self) time ==\n")
    st.sort_stats("tottime").print_stats(30)
    Path(path).with_suffix(".txt").write_text(buf.getvalue(), encoding="utf-8")


# ----------------------------------------------------------------------------- report


def machine_info() -> dict[str, str]:
    import highspy  # noqa: F401
    import numpy
    import pyomo.version

    from lepton_alloc.models.solve import highs_version

    try:
        from importlib.metadata import version

        highspy_version = version("highspy")
    except Exception:  # noqa: BLE001
        highspy_version = "?"
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "nproc": str(usable), "cpu": cpu, "memory": mem,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(), "highspy": highspy_version, "HiGHS": highs_version(),
        "pyomo": str(pyomo.version.version), "numpy": numpy.__version__,
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?",
    }


def report_header(title: str, what: str) -> list[str]:
    """The first lines of a report: its title, when, the exact command that wrote it, what it measures."""
    return [f"# {title}", "", f"Generated {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M UTC} by:", "", "```",
            " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]), "```", "", what, ""]


def machine_lines() -> list[str]:
    """The report's closing machine section."""
    return ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in machine_info().items()] + [""]


def _fmt(x: float | None, nd: int = 2) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| markets | years | columns (K) | variables | constraints | nonzeros | build s | transfer s "
            "| HiGHS run s | extraction s | total s | total / HiGHS run | status | gap |")
    sep = "|" + "---:|" * 12 + "---|---:|"
    lines = [head, sep]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['markets']} | {r['years']} | – | – | – | – | – | – | – | – | – | – | error: {r['error']} | – |")
            continue
        ratio = r["total_seconds"] / r["solver_seconds"] if r["solver_seconds"] > 0 else None
        gap = "–" if r["gap"] is None else f"{r['gap']:.2e}"
        lines.append(
            f"| {r['markets']} | {r['years']} | {r['columns']:,} | {r['variables']:,} | {r['constraints']:,} "
            f"| {r['nonzeros']:,} | {_fmt(r['build_seconds'])} | {_fmt(r['transfer_seconds'])} "
            f"| {_fmt(r['solver_seconds'])} | {_fmt(r['extraction_seconds'], 3)} | {_fmt(r['total_seconds'])} "
            f"| {_fmt(ratio)} | {r['status']} | {gap} |"
        )
    return "\n".join(lines)


def report(rows: list[dict[str, Any]], info: dict[str, str], command: str, args: argparse.Namespace) -> str:
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Build / transfer / solve / extraction times by model size",
        "",
        f"Generated {now} by:",
        "",
        "```",
        command,
        "```",
        "",
        f"Scenarios: `lepton_alloc.models.generator.generate_scenario(markets, {args.years}, seed={args.seed})` "
        "(default options: 3 growth scenarios, objective expected_npv, binding budget and headcount). "
        f"Solver: HiGHS via Pyomo's persistent interface, time limit {args.time_limit:g} s, "
        f"mip_rel_gap {'scenario default (1e-4)' if args.mip_rel_gap is None else f'{args.mip_rel_gap:g}'}, "
        f"threads {args.threads}. Each size runs in its own Python process.",
        "",
        table(rows),
        "",
        "Columns: *columns (K)* = entry decisions x[market, option, year]; *build* = `build_model` "
        "(cash-flow arrays + Pyomo components); *transfer* = Pyomo → HiGHS (`set_instance`); "
        "*HiGHS run* = `Highs.getRunTime()` of the solve; *extraction* = `extract_result`; "
        "*total* = wall clock from the start of `build_model` to the end of `extract_result`; "
        "*total / HiGHS run* = overhead factor of the modelling layer (1.0 = none). A HiGHS run "
        "can overrun its time limit (HiGHS checks the clock between units of work); *no_solution* = "
        "no incumbent within the limit. See bench/README.md for what the numbers mean.",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated market counts (default {DEFAULT_SIZES})")
    p.add_argument("--years", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=60.0, help="HiGHS time limit per solve, seconds (default 60)")
    p.add_argument("--mip-rel-gap", type=float, default=None, help="default: the scenario's (1e-4)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(DEFAULT_OUT), help="Markdown report (a .json with the raw rows is written next to it)")
    p.add_argument("--profile", action="store_true",
                   help="also cProfile build_model + solve_model (writes results/profile_<markets>.prof/.txt; "
                        "profiling inflates the timings of that run)")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size, print JSON
    p.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.one is not None:
        row = run_one(args.one, args.years, args.seed, args.time_limit, args.mip_rel_gap, args.threads, args.profile_out)
        print("RESULT " + json.dumps(row))
        return 0

    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    rows: list[dict[str, Any]] = []
    for n in sizes:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", str(n), "--years", str(args.years),
               "--seed", str(args.seed), "--time-limit", str(args.time_limit), "--threads", str(args.threads)]
        if args.mip_rel_gap is not None:
            cmd += ["--mip-rel-gap", str(args.mip_rel_gap)]
        if args.profile:
            cmd += ["--profile-out", str(out.parent / f"profile_{n}.prof")]
        print(f"[bench] {n} markets x {args.years} years ...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"[bench] {n}: failed: {err}", file=sys.stderr)
            rows.append({"markets": n, "years": args.years, "error": err[:120]})
            continue
        row = json.loads(line[len("RESULT "):])
        rows.append(row)
        print(f"[bench] {n}: build {row['build_seconds']:.2f}s transfer {row['transfer_seconds']:.2f}s "
              f"HiGHS {row['solver_seconds']:.2f}s total {row['total_seconds']:.2f}s {row['status']}",
              file=sys.stderr, flush=True)
    text = report(rows, info, command, args)
    out.write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"command": command, "machine": info, "rows": rows}, indent=2) + "\n",
                                        encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
