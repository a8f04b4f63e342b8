"""gRPC overhead per solve and progress-event latency, measured in one run.

    .venv/bin/python bench/bench_grpc.py [--repeats 30] [--out bench/results/grpc_overhead.md]

1. Overhead: the same small scenario solved (a) in-process with ``solve_scenario`` and (b)
   through a real local server with the unary ``Solve`` RPC (client wall time). The difference
   is what the service adds: conversion, queueing, the pipe to the worker process, the store
   writes (SQLite, synchronous=FULL) and the channel.
2. Event latency: a longer solve is watched; for every progress event, latency = time the
   client received it − time of the HiGHS callback that produced it (same machine clock).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lepton_alloc.clients.client import AllocationClient
from lepton_alloc.models import parse_scenario, solve_scenario
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.server.app import start_server
from lepton_alloc.server.config import load_config


def small_scenario():  # noqa: ANN201
    return parse_scenario(generate_scenario(10, 5, seed=3, mip_rel_gap=0.0, time_limit=30))


def q(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--watch-markets", type=int, default=150)
    ap.add_argument("--watch-seconds", type=float, default=8.0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "grpc_overhead.md"))
    args = ap.parse_args()

    sc = small_scenario()
    solve_scenario(sc)  # warm imports
    local = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        r = solve_scenario(sc)
        local.append(time.perf_counter() - t)
    objective = r.objective_value

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, {"address": "127.0.0.1:0", "workers": 1, "database": f"{tmp}/bench.db",
                                 "metrics_port": 0}, env={})
        running = start_server(cfg)
        try:
            with AllocationClient(f"127.0.0.1:{running.port}", timeout=120) as client:
                client.solve(sc)  # warm the worker
                remote = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    rr = client.solve(sc)
                    remote.append(time.perf_counter() - t)
                    assert rr.objective_value == objective
                big = parse_scenario(generate_scenario(args.watch_markets, 10, seed=7, mip_rel_gap=0.0,
                                                       time_limit=args.watch_seconds))
                job = client.submit(big)
                latencies = []
                for ev in client.watch(job.job_id, timeout=args.watch_seconds + 60):
                    if ev.kind == "progress" and ev.event_time:
                        latencies.append(time.time() - ev.event_time)
        finally:
            running.stop(grace=1.0)

    ml, mr = statistics.median(local), statistics.median(remote)
    lines = [
        "# gRPC overhead per solve and progress-event latency",
        "",
        f"Command: `{' '.join([Path(sys.executable).name] + sys.argv)}`  ",
        f"Machine: {platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}; "
        f"date {time.strftime('%Y-%m-%d %H:%M:%S')}",
        "",
        f"Small scenario: 10 markets x 5 years, optimal objective {objective:.6f}; {args.repeats} solves each way.",
        "",
        "| path | median s | p90 s | min s |",
        "|---|---:|---:|---:|",
        f"| in-process `solve_scenario` | {ml:.4f} | {q(local, 0.9):.4f} | {min(local):.4f} |",
        f"| gRPC `Solve` via local server | {mr:.4f} | {q(remote, 0.9):.4f} | {min(remote):.4f} |",
        "",
        f"Overhead per solve (median remote - median local): **{1000 * (mr - ml):.1f} ms** "
        f"(ratio remote/local {mr / ml:.2f}).",
        "",
        f"Progress events of a {args.watch_markets}-market solve watched for {args.watch_seconds:.0f} s: "
        f"{len(latencies)} events; latency callback -> client median "
        f"**{1000 * statistics.median(latencies):.1f} ms**, p90 {1000 * q(latencies, 0.9):.1f} ms, "
        f"max {1000 * max(latencies):.1f} ms." if latencies else "No progress events were received.",
        "",
    ]
    text = "\n".join(lines)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
