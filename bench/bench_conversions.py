"""How the service's conversions grow with markets: validation, documents, proto, canonical JSON.

    .venv/bin/python bench/bench_conversions.py [--sizes 1000,5000,10000]

For generated 10-year scenarios with every lever on, the best of 3 runs (ms) of each step a
scenario takes on its way through the service: validating the plain data (``parse_scenario``),
reading a JSON document (``load_scenario_document``), ``Scenario.to_dict``,
``scenario_to_proto`` / ``scenario_from_proto`` (the adapter), protobuf serialize / parse, and
the canonical JSON a store keeps (computed fresh). The last columns give the growth from one
size to the next against the growth of the size, to spot a step that grows faster than the
number of markets. Writes ``bench/results/conversions.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_build import machine_lines, report_header  # noqa: E402


def _best(f: Callable[[], object], n: int = 3) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best * 1000


def _steps(raw: dict[str, object]) -> dict[str, Callable[[], object]]:
    """Each step of one scenario, ready to time."""
    from lepton_alloc.models import parse_scenario
    from lepton_alloc.models.loader import load_scenario_document
    from lepton_alloc.proto import adapter
    from lepton_alloc.proto.lepton.allocation.v1 import scenario_pb2

    text = json.dumps(raw)
    sc = parse_scenario(raw)
    msg = adapter.scenario_to_proto(sc)
    data = msg.SerializeToString()
    return {
        "parse_scenario (validation)": lambda: parse_scenario(raw),
        "load_scenario_document (JSON text)": lambda: load_scenario_document(text),
        "Scenario.to_dict": lambda: sc.to_dict(),
        "adapter.scenario_to_proto": lambda: adapter.scenario_to_proto(sc),
        "adapter.scenario_from_proto (incl. validation)": lambda: adapter.scenario_from_proto(msg),
        "protobuf serialize": lambda: msg.SerializeToString(),
        "protobuf parse": lambda: scenario_pb2.Scenario.FromString(data),
        "canonical JSON (fresh scenario)": lambda: parse_scenario(raw).canonical_json(),
    }


def main(argv: list[str] | None = None) -> int:
    from lepton_alloc.models.generator import generate_scenario

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,5000,10000")
    p.add_argument("--out", default=str(HERE / "results" / "conversions.md"))
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    table: dict[str, list[float]] = {}
    for n in sizes:
        steps = _steps(generate_scenario(n, 10, 0, carry_over=True, levers_share=1.0, scenarios=True,
                                         objective="risk_adjusted_npv"))
        for name, f in steps.items():
            table.setdefault(name, []).append(_best(f))
        print(f"[bench] {n} markets done", file=sys.stderr)
    head = " | ".join(f"{n:,} markets ms" for n in sizes)
    growth = " | ".join(f"×{b / a:g} markets: growth" for a, b in zip(sizes, sizes[1:]))
    lines = report_header("Conversions on the way through the service, by size",
                          "Generated 10-year scenarios, every lever on; best of 3 runs, one process.")
    lines += [f"| step | {head} | {growth} |", "|---|" + "---:|" * (2 * len(sizes) - 1)]
    for name, ms in table.items():
        g = " | ".join(f"{b / a:.2f}" for a, b in zip(ms, ms[1:]))
        lines.append(f"| {name} | " + " | ".join(f"{v:,.1f}" for v in ms) + f" | {g} |")
    lines += machine_lines()
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
