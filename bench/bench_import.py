"""What a calling service pays to import the client: time and modules, in fresh interpreters.

    .venv/bin/python bench/bench_import.py [--repeats 10] [--out bench/results/client_import.md]

Each repeat starts a new Python process and times ``import lepton_alloc.clients`` (and, for
comparison, the solver entry point ``from lepton_alloc.models import solve_scenario`` resolved
to the real solver code). Median and max are written to the result file with the number of
modules loaded and whether Pyomo, HiGHS or numpy were among them.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROBE = """
import sys, time, json
t = time.perf_counter()
{statement}
elapsed = time.perf_counter() - t
heavy = sorted(m for m in ("pyomo", "highspy", "numpy", "lepton_alloc.server") if m in sys.modules)
print(json.dumps({{"seconds": elapsed, "modules": len(sys.modules), "heavy": heavy}}))
"""

CASES = {
    "import lepton_alloc.clients": "import lepton_alloc.clients",
    "solver stack (build_model)": "from lepton_alloc.models import build_model; build_model",
}


def measure(statement: str, repeats: int) -> dict[str, object]:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", PROBE.format(statement=statement)], capture_output=True,
                             text=True, check=True)
        runs.append(json.loads(out.stdout))
    seconds = [r["seconds"] for r in runs]
    return {"median_s": statistics.median(seconds), "max_s": max(seconds), "modules": runs[-1]["modules"],
            "heavy": runs[-1]["heavy"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default="bench/results/client_import.md")
    args = ap.parse_args()
    rows = {name: measure(stmt, args.repeats) for name, stmt in CASES.items()}
    lines = [
        "# Client import cost", "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `{' '.join([Path(sys.executable).name] + sys.argv)}`"
        f" ({args.repeats} fresh interpreters per row; Python {platform.python_version()}, {platform.machine()}).", "",
        "| what | median s | max s | modules loaded | heavy modules loaded |", "|---|---:|---:|---:|---|",
    ]
    for name, r in rows.items():
        lines.append(f"| `{name}` | {r['median_s']:.3f} | {r['max_s']:.3f} | {r['modules']} | "
                     f"{', '.join(r['heavy']) or 'none'} |")  # type: ignore[arg-type]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
