"""Large scenarios end to end through the service: time, peak memory, and where the time goes.

    .venv/bin/python bench/bench_large.py                       # 5,000 markets every lever on; 10,000 markets
    .venv/bin/python bench/bench_large.py --cases 10000:yearly:60 --out /tmp/large.md

Each case (``MARKETS:FAMILY:TIME_LIMIT``; family ``levers`` = every lever of the generator on —
growth investment and hiring on every market, three growth scenarios, risk-adjusted NPV with
CVaR, budget carry-over —; ``yearly`` = ``lepton-alloc generate``'s defaults) is a generated
10-year scenario with ``mip_rel_gap`` ``--gap`` (default 1 %), written to a file and solved by
a separate client process (``AllocationClient.solve`` of the file's text: it reads, encodes,
calls, decodes) against a server started with the service's own entry point
(``python -m lepton_alloc.clients.cli serve``, 1 worker, a temporary SQLite file). Every process
is its own, so each peak resident memory is that process's: the server's main process and its
worker (sampled from /proc every 0.1 s: a worker that solved a model this large exits after
answering), and the client (its ``ru_maxrss``).

Reported: the client's wall time, the worker's timings (build, transfer to HiGHS, solver = the
head start and HiGHS, extraction, explanation), status, objective, bound and gap, and the share
of the wall time that is not the solver. Writes ``bench/results/large_scenarios.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_build import machine_lines, report_header  # noqa: E402

FAMILIES: dict[str, dict[str, Any]] = {
    "levers": {"carry_over": True, "levers_share": 1.0, "scenarios": True, "objective": "risk_adjusted_npv"},
    "yearly": {},
}
CLIENT = """
import json, resource, sys, time
from lepton_alloc.clients.client import AllocationClient
text = open(sys.argv[2]).read()
t0 = time.perf_counter()
with AllocationClient(sys.argv[1], timeout=3600) as c:
    r = c.solve(document=text)
wall = time.perf_counter() - t0
t = r.timings
print(json.dumps({"wall": wall, "status": r.status.value, "objective": r.objective_value, "bound": r.best_bound,
                  "gap": r.gap, "build": t.build_seconds, "transfer": t.transfer_seconds, "solver": t.solver_seconds,
                  "extraction": t.extraction_seconds, "explanation": t.explanation_seconds, "worker_total": t.total_seconds,
                  "variables": r.model_size.variables, "integers": r.model_size.integer_variables,
                  "nonzeros": r.model_size.nonzeros, "message": r.message,
                  "client_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for t in tasks:
        try:
            kids = [int(k) for k in (t / "children").read_text().split()]
        except OSError:
            continue
        for k in kids:
            out += [k, *_descendants(k)]
    return out


def _rss_mb(pid: int) -> tuple[str, float] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    rss = max(int(fields.get("VmHWM", "0 kB").split()[0]), int(fields.get("VmRSS", "0 kB").split()[0]))
    return fields.get("Name", "?").strip(), rss / 1024


class _Sampler(threading.Thread):
    """Peak memory of the server's process tree, sampled (a retiring worker's peak is seen before it exits)."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root = root
        self.peak: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for pid in [self.root, *_descendants(self.root)]:
                got = _rss_mb(pid)
                if got is not None:
                    self.names[pid] = got[0]
                    self.peak[pid] = max(self.peak.get(pid, 0.0), got[1])
            time.sleep(0.1)


def run_case(markets: int, family: str, time_limit: float, gap: float, seed: int) -> dict[str, Any]:
    from lepton_alloc.models.generator import generate_scenario

    raw = generate_scenario(markets, 10, seed, time_limit=time_limit, mip_rel_gap=gap, **FAMILIES[family])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.json"
        path.write_text(json.dumps(raw), encoding="utf-8")
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "lepton_alloc.clients.cli", "serve", "--address", f"127.0.0.1:{port}",
                                   "--workers", "1", "--database", str(Path(tmp) / "bench.db"), "--max-time-limit", "3600"],
                                  stderr=subprocess.DEVNULL)
        try:
            _wait_listening(port)
            time.sleep(1.0)  # the worker has imported the model package
            sampler = _Sampler(server.pid)
            sampler.start()
            out = subprocess.run([sys.executable, "-c", CLIENT, f"127.0.0.1:{port}", str(path)], capture_output=True,
                                 text=True, timeout=7200)
            sampler.stop.set()
            sampler.join()
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-2000:])
            row = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            server.terminate()
            server.wait(60)
    main_pid = server.pid
    workers = {pid: mb for pid, mb in sampler.peak.items() if pid != main_pid and sampler.names.get(pid, "").startswith("python")}
    row.update(markets=markets, family=family, time_limit=time_limit, gap_target=gap,
               server_peak_mb=sampler.peak.get(main_pid, 0.0), worker_peak_mb=max(workers.values(), default=0.0),
               processes={f"{sampler.names.get(p, '?')} {p}": round(mb, 1) for p, mb in sampler.peak.items()})
    return row


def _wait_listening(port: int, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server did not listen on port {port} within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default="5000:levers:120,10000:yearly:60", help="MARKETS:FAMILY:TIME_LIMIT, comma-separated")
    p.add_argument("--gap", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(HERE / "results" / "large_scenarios.md"))
    args = p.parse_args(argv)
    rows = []
    for case in args.cases.split(","):
        markets, family, limit = case.split(":")
        rows.append(run_case(int(markets), family, float(limit), args.gap, args.seed))
        r = rows[-1]
        print(f"[bench] {markets} {family}: wall {r['wall']:.1f} s, {r['status']}, gap {r['gap']}", file=sys.stderr)
    lines = report_header("Large scenarios through the service",
                          f"Generated 10-year scenarios (seed {args.seed}), `mip_rel_gap` {args.gap:g}; a server process (1 "
                          "worker) and a client process that sends the scenario file's text "
                          "(`AllocationClient.solve(document=…)`). *solver* = the head start and HiGHS in the worker; "
                          "*not solver* = (wall − solver) / wall.")
    lines += ["| markets | family | variables | integers | non-zeros | time limit s | wall s | build s | transfer s | solver s "
             "| extraction s | explanation s | not solver | status | gap | server peak MB | worker peak MB | client peak MB |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        gap = "-" if r["gap"] is None else f"{100 * r['gap']:.3f} %"
        lines.append(f"| {r['markets']:,} | {r['family']} | {r['variables']:,} | {r['integers']:,} | {r['nonzeros']:,} | "
                     f"{r['time_limit']:g} | {r['wall']:.1f} | {r['build']:.2f} | {r['transfer']:.2f} | {r['solver']:.1f} | "
                     f"{r['extraction']:.2f} | {r['explanation']:.2f} | {100 * (r['wall'] - r['solver']) / r['wall']:.1f} % | "
                     f"{r['status']} | {gap} | {r['server_peak_mb']:.0f} | {r['worker_peak_mb']:.0f} | {r['client_peak_mb']:.0f} |")
    lines += ["", "Messages:", ""] + [f"- {r['markets']:,} {r['family']}: {r['message']}" for r in rows]
    lines += machine_lines()
    out = Path(args.out)
    out.write_text("\n".join(lines), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
