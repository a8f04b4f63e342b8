"""The built-in example, solved as the service solves it, and without issue 10's changes.

Three ways, each repeated, in one run, one HiGHS thread:

* ``service``: the head start, then HiGHS without restarts (what ``solve_model`` does);
* ``no head start``: HiGHS alone, without restarts;
* ``before``: HiGHS alone with its default restarts (the settings before issue 10).

Writes ``bench/results/example_solve.md``: median and range of the solve (head start + transfer +
HiGHS) and of the whole path (build to result), the objective and status.

    .venv/bin/python bench/bench_example.py [--repeats 7] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import shlex
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_build import machine_info  # noqa: E402

WAYS = {
    "service (head start, no restarts)": dict(head_start=None, highs_options=None),
    "no head start (no restarts)": dict(head_start=False, highs_options=None),
    "before issue 10 (HiGHS alone, restarts)": dict(head_start=False, highs_options={"mip_allow_restart": True}),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", default=str(HERE / "results" / "example_solve.md"))
    args = p.parse_args(argv)
    from lepton_alloc.models import build_model, extract_result, load_builtin_example, solve_model

    sc = load_builtin_example()
    build_model(sc)  # warm: imports and first HiGHS instance outside the timings
    rows = []
    for name, kwargs in WAYS.items():
        solve_s, total_s, results = [], [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            am = build_model(sc)
            t1 = time.perf_counter()
            out = solve_model(am, **kwargs)  # type: ignore[arg-type]
            t2 = time.perf_counter()
            res = extract_result(am, out, t0)
            total_s.append(time.perf_counter() - t0)
            solve_s.append(t2 - t1)
            results.append(res)
        rows.append((name, solve_s, total_s, results[-1]))
        print(f"[bench] {name}: solve median {statistics.median(solve_s):.3f} s", file=sys.stderr)
    base = statistics.median(rows[-1][1])
    lines = [
        "# The built-in example: time to a proven optimum", "",
        f"Generated {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M UTC} by:", "", "```",
        " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]), "```", "",
        f"`examples/global_expansion.yaml`, the scenario's own gap (1e-4), one HiGHS thread, {args.repeats} runs each "
        "in one process. *solve* = `solve_model` (head start + transfer + HiGHS); *whole* = build to extracted result.",
        "",
        "| way | solve median s | solve min–max s | whole median s | before / this (solve) | status | objective |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for name, solve_s, total_s, res in rows:
        lines.append(f"| {name} | {statistics.median(solve_s):.3f} | {min(solve_s):.3f}–{max(solve_s):.3f} | "
                     f"{statistics.median(total_s):.3f} | {base / statistics.median(solve_s):.2f} | "
                     f"{res.status.value} | {res.objective_value:,.4f} |")
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in machine_info().items()] + [""]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
