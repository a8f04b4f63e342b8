"""Load: throughput, latency and errors of small solves under 1–16 concurrent clients, by worker count.

    .venv/bin/python bench/bench_load.py                                   # workers 1,2 x clients 1,2,4,8,16
    .venv/bin/python bench/bench_load.py --duration 2 --clients 1,2 --workers-list 1 --out /tmp/load.md

For each worker count of ``--workers-list`` the script starts a real server in its own process —
the service's own entry point, ``python -m lepton_alloc.clients.cli serve`` — on a free port of
a loopback address (anything else is refused) with a temporary SQLite file, and waits for its
``listening on`` line. Then, for each client count of ``--clients``, that many threads of this
process each drive their own ``AllocationClient`` (its own channel and connection, made and
connected before the phase) in a loop of unary ``Solve`` calls of one small scenario, the one
``bench_grpc.py`` measures (generated, 10 markets x 5 years, solved to optimality by HiGHS in
a few tens of milliseconds), until the phase's bound: ``--duration`` seconds or
``--max-requests`` calls, whichever comes first (calls in flight at the bound are awaited).
Each call records its latency and its outcome (``OK`` or the gRPC status name); a successful
one also the worker's own time (``Result.timings``). A call answered ``RESOURCE_EXHAUSTED``
(the server's bounded queue is full) is counted and retried after the delay of the server's
``google.rpc.RetryInfo`` (or a fixed ``--backoff``).

Per (workers, clients): calls, successful solves per second of phase wall time, p50/p95/p99
latency of the successful calls, errors by status, and the CPU used meanwhile by this process
(the load generator), by the server's main process and by its worker processes (from /proc).
Then the throughput of each worker count relative to the first (2 workers / 1 worker) per
client count and best against best. Results: ``--out`` (Markdown, default
``bench/results/load.md``) and a ``.json`` next to it with the raw numbers (latencies too).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import ipaddress
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from bench_build import machine_info  # bench/ is the script's directory, hence on sys.path
from bench_grpc import small_scenario

from lepton_alloc.clients.client import CHANNEL_OPTIONS, AllocationClient, AllocationError
from lepton_alloc.models.scenario import Scenario

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "load.md"
TARGET_RATIO = 1.8  # the issue: 2 workers give at least 1.8x the throughput of 1 on small solves
ALLOWED_ERROR = "RESOURCE_EXHAUSTED"  # the only error allowed: past the queue bound
MAX_CLIENTS = 64  # the server answers RESOURCE_EXHAUSTED itself beyond 60 concurrent RPCs
# each client its own connection: without this, channels with the same target and options share one
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


# ----------------------------------------------------------------------------- loopback only


def loopback_host(host: str) -> str:
    """``host`` if it is a loopback address (127.0.0.0/8, ::1, localhost); SystemExit otherwise."""
    bare = host.strip("[]")
    if bare == "localhost":
        return "127.0.0.1"
    try:
        ok = ipaddress.ip_address(bare).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise SystemExit(f"bench_load: refusing {host!r}: the load generator targets loopback addresses only")
    return f"[{bare}]" if ":" in bare else bare


def check_target(address: str) -> str:
    host, _, port = address.rpartition(":")
    loopback_host(host)
    if not port.isdigit():
        raise SystemExit(f"bench_load: bad address {address!r}")
    return address


# ----------------------------------------------------------------------------- the server process


def _proc_cpu(pid: int) -> tuple[float, int] | None:
    """(user + system CPU seconds, parent pid) of a live process, from /proc (Linux)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(rest[11]) + int(rest[12])) / ticks, int(rest[1])


def server_cpu(pid: int) -> tuple[float, float] | None:
    """CPU seconds so far of the server's main process and of all its live descendants (the
    forkserver and the solver workers); None where /proc is not available."""
    main = _proc_cpu(pid)
    if main is None:
        return None
    procs: dict[int, tuple[float, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            got = _proc_cpu(int(entry.name))
            if got is not None:
                procs[int(entry.name)] = got
    family, frontier = set(), {pid}
    while frontier:
        children = {p for p, (_, ppid) in procs.items() if ppid in frontier and p not in family}
        family |= children
        frontier = children
    return main[0], sum(procs[p][0] for p in family)


@dataclass
class ServerProcess:
    """``lepton-alloc serve`` in a child process, its log in a file."""

    workers: int
    host: str
    tmp: Path
    queue_size: int | None
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.tmp / f"server-{self.workers}w.log"

    def start(self, timeout: float = 90.0) -> None:
        cmd = [sys.executable, "-m", "lepton_alloc.clients.cli", "serve", "--address", f"{self.host}:0",
               "--workers", str(self.workers), "--database", str(self.tmp / f"load-{self.workers}w.db"),
               "--metrics-port", "0", "--grace", "2"]
        if self.queue_size is not None:
            cmd += ["--queue-size", str(self.queue_size)]
        # the server reads LEPTON_* settings from the environment: none of the caller's apply here
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEPTON_")}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.tmp)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"^listening on (\S+):(\d+)$", self.log_path.read_text(errors="replace"), re.M)
            if m:
                self.port = int(m.group(2))
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}) before listening:\n{self.log_tail()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the server did not listen within {timeout:.0f} s:\n{self.log_tail()}")

    @property
    def address(self) -> str:
        return check_target(f"{self.host}:{self.port}")

    def configured_queue(self) -> int | None:
        m = re.search(r"workers \d+, queue (\d+),", self.log_path.read_text(errors="replace"))
        return int(m.group(1)) if m else None

    def cpu(self) -> tuple[float, float] | None:
        return server_cpu(self.proc.pid) if self.proc is not None else None

    def stop(self) -> int | None:
        """SIGTERM (the server drains and stops its workers), then wait; kill only if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def log_problems(self) -> list[str]:
        """The server log's warning/error lines (JSON log lines at level warning or worse; any
        non-JSON line except the ``listening on`` notice)."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                if line.strip() and not line.startswith("listening on"):
                    out.append(line.strip())
                continue
            if isinstance(rec, dict) and rec.get("level") not in ("info", "debug"):
                out.append(f"{rec.get('level')}: {rec.get('message')}" + (" [exception]" if rec.get("exception") else ""))
        return out


# ----------------------------------------------------------------------------- one phase


@dataclass
class Call:
    sent: float  # seconds after the phase started
    latency: float  # seconds
    code: str  # "OK" or a gRPC status name (or "client:<Exception>")
    worker_seconds: float | None = None  # Result.timings.total_seconds of a successful solve
    status: str = ""  # the result's status of a successful solve (optimal, feasible, ...)


class Phase:
    """``clients`` threads, each with its own client, calling ``Solve`` until the bound."""

    def __init__(self, clients: list[AllocationClient], scenario: Scenario, duration: float, max_requests: int,
                 backoff: float, timeout: float):
        self.clients = clients
        self.scenario = scenario
        self.duration = duration
        self.max_requests = max_requests
        self.backoff = backoff
        self.timeout = timeout
        self._lock = threading.Lock()
        self._issued = 0
        self._go = threading.Event()
        self.t0 = 0.0
        self.calls: list[list[Call]] = [[] for _ in clients]
        self.first_message: dict[str, str] = {}

    def _take(self) -> bool:
        with self._lock:
            if self._issued >= self.max_requests or time.perf_counter() - self.t0 >= self.duration:
                return False
            self._issued += 1
            return True

    def _loop(self, i: int) -> None:
        client, out = self.clients[i], self.calls[i]
        self._go.wait()
        while self._take():
            t = time.perf_counter()
            worker: float | None = None
            status = ""
            hint: float | None = None  # the server's RetryInfo delay, if it sent one
            try:
                result = client.solve(self.scenario, timeout=self.timeout)
                code, worker, status = "OK", result.timings.total_seconds, str(result.status)
            except AllocationError as err:
                code, hint = err.code_name, err.retry_after
                self.first_message.setdefault(code, err.message[:200])
            except Exception as err:  # noqa: BLE001 - every failure is an outcome to count
                code = f"client:{type(err).__name__}"
                self.first_message.setdefault(code, str(err)[:200])
            end = time.perf_counter()
            out.append(Call(t - self.t0, end - t, code, worker, status))
            if code == ALLOWED_ERROR:
                # the server's RetryInfo (how long until a place is likely to free), unless a
                # fixed --backoff was asked for (self.backoff >= 0)
                pause = self.backoff if self.backoff >= 0 or hint is None else hint
                if pause > 0:
                    time.sleep(pause)

    def run(self, server: ServerProcess) -> dict[str, Any]:
        threads = [threading.Thread(target=self._loop, args=(i,), name=f"load-{i}", daemon=True)
                   for i in range(len(self.clients))]
        for t in threads:
            t.start()
        cpu0, srv0 = time.process_time(), server.cpu()
        self.t0 = time.perf_counter()
        self._go.set()
        for t in threads:
            t.join()
        wall = time.perf_counter() - self.t0
        cpu1, srv1 = time.process_time(), server.cpu()
        return summarize(len(self.clients), [c for cs in self.calls for c in cs], wall, cpu1 - cpu0, srv0, srv1,
                         self.first_message)


def pct(values: list[float], p: float) -> float | None:
    """The p-th percentile (0–100), linear between closest ranks; None without data."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if 1 <= p <= 99 else None


def summarize(clients: int, calls: list[Call], wall: float, loadgen_cpu: float, srv0: tuple[float, float] | None,
              srv1: tuple[float, float] | None, first_message: dict[str, str]) -> dict[str, Any]:
    ok = sorted(c.latency for c in calls if c.code == "OK")
    worker = sorted(c.worker_seconds for c in calls if c.worker_seconds is not None)
    errors = Counter(c.code for c in calls if c.code != "OK")
    row: dict[str, Any] = {
        "clients": clients, "requests": len(calls), "ok": len(ok), "errors": dict(sorted(errors.items())),
        "other_errors": sum(n for code, n in errors.items() if code != ALLOWED_ERROR),
        "error_messages": first_message, "wall_seconds": wall,
        "statuses": dict(Counter(c.status for c in calls if c.code == "OK")),
        "throughput": len(ok) / wall if wall > 0 else 0.0,
        "p50": pct(ok, 50), "p95": pct(ok, 95), "p99": pct(ok, 99), "max": ok[-1] if ok else None,
        "worker_median": statistics.median(worker) if worker else None,
        "worker_p95": pct(worker, 95),
        "cpu_loadgen": loadgen_cpu / wall if wall > 0 else None,
        "cpu_server_main": (srv1[0] - srv0[0]) / wall if srv0 and srv1 and wall > 0 else None,
        "cpu_server_workers": (srv1[1] - srv0[1]) / wall if srv0 and srv1 and wall > 0 else None,
        "latencies_ok_ms": [round(1000 * x, 3) for x in ok],
        "worker_ms": [round(1000 * x, 3) for x in worker],
    }
    return row


# ----------------------------------------------------------------------------- one server


def run_server(workers: int, client_counts: list[int], scenario: Scenario, args: argparse.Namespace,
               tmp: Path) -> dict[str, Any]:
    server = ServerProcess(workers, args.host, tmp, args.queue_size)
    print(f"[load] starting a server with {workers} worker(s) ...", file=sys.stderr, flush=True)
    server.start()
    clients: list[AllocationClient] = []
    phases: list[dict[str, Any]] = []
    warm: dict[str, Any] = {}
    try:
        address = server.address
        for _ in range(max(max(client_counts), workers)):
            channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS + OWN_CONNECTION)
            grpc.channel_ready_future(channel).result(timeout=30)
            clients.append(AllocationClient(address, timeout=args.timeout, channel=channel))
        # warm-up (not recorded): 2 solves per worker, W at a time, so first-solve costs stay out
        warm = Phase(clients[:workers], scenario, duration=120.0, max_requests=2 * workers, backoff=0.05,
                     timeout=args.timeout).run(server)
        if warm["ok"] != warm["requests"]:
            raise RuntimeError(f"warm-up failed: {warm['errors']} {warm['error_messages']}")
        print(f"[load] {workers}w warm-up: worker solve median {1000 * (warm['worker_median'] or 0):.1f} ms, "
              f"latency p50 {1000 * (warm['p50'] or 0):.1f} ms", file=sys.stderr, flush=True)
        for n in client_counts:
            time.sleep(args.pause)
            row = Phase(clients[:n], scenario, args.duration, args.max_requests, args.backoff, args.timeout).run(server)
            row["workers"] = workers
            phases.append(row)
            print(f"[load] {workers}w x {n:>2} clients: {row['requests']} calls, {row['throughput']:.1f} solves/s, "
                  f"p50 {_ms(row['p50'])} p95 {_ms(row['p95'])} p99 {_ms(row['p99'])} ms, "
                  f"errors {row['errors'] or 'none'}", file=sys.stderr, flush=True)
    finally:
        for c in clients:
            c.close()
        rc = server.stop()
    return {"workers": workers, "queue_size": server.configured_queue(), "port": server.port,
            "exit_code": rc, "log_problems": server.log_problems(), "warmup": _drop_raw(warm),
            "phases": phases}


def _drop_raw(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("latencies_ok_ms", "worker_ms")}


# ----------------------------------------------------------------------------- report


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{1000 * x:.1f}"


def _num(x: float | None, nd: int) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def _pc(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}"


def ratios(servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Throughput of every later worker count relative to the first, per client count and best vs best."""
    if len(servers) < 2:
        return []
    base = servers[0]
    by_clients = {p["clients"]: p["throughput"] for p in base["phases"]}
    out = []
    for s in servers[1:]:
        per = {}
        for p in s["phases"]:
            b = by_clients.get(p["clients"])
            per[str(p["clients"])] = {"base": b, "other": p["throughput"],
                                      "ratio": p["throughput"] / b if b else None}
        best_base = max(by_clients.values(), default=0.0)
        best_other = max((p["throughput"] for p in s["phases"]), default=0.0)
        out.append({"base_workers": base["workers"], "workers": s["workers"], "per_clients": per,
                    "best_base": best_base, "best_other": best_other,
                    "best_ratio": best_other / best_base if best_base else None})
    return out


def report(data: dict[str, Any]) -> str:
    args, servers, sc = data["settings"], data["servers"], data["scenario"]
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    L = [
        "# Load: throughput and latency of small solves under concurrent clients",
        "",
        f"Generated {now} by:",
        "",
        "```",
        data["command"],
        "```",
        "",
        f"Each worker count starts its own server process (`python -m lepton_alloc.clients.cli serve --address "
        f"{args['host']}:0 --workers W`, a temporary SQLite file, queue bound "
        f"{', '.join(sorted({str(s['queue_size']) for s in servers}))}). Each phase runs N client threads in the "
        "benchmark process, each with its own `AllocationClient` (own channel and connection, connected beforehand), "
        f"calling the unary `Solve` in a loop for {args['duration']:g} s or {args['max_requests']} calls, whichever "
        f"comes first (calls in flight at the bound are awaited); per-call deadline {args['timeout']:g} s. "
        f"Scenario: {sc['description']} ({sc['model_size']}; result statuses: {sc['status']}). The worker's own "
        f"time per solve (`Result.timings.total_seconds`: build, HiGHS, extraction) was {_num(sc['worker_ms_median'], 1)} "
        f"ms median, {_num(sc['worker_ms_p95'], 1)} ms p95 over the run's successful solves: a real HiGHS MIP solve "
        "small enough that the workers, not the channel, are the bottleneck. Before the phases, W clients made 2 solves "
        "per worker (warm-up, not counted).",
        "",
        "*throughput* = successful solves / phase wall time (from the start to the last answer); latencies are "
        "client wall times of the successful calls; *worker ms* = median worker time of those solves (the rest of "
        "a latency is queueing and the service); *CPU %* = CPU time during the phase / wall time, in % of one "
        "core, of this process (the load generator), of the server's main process (gRPC, job dispatch, SQLite) "
        "and of its worker processes. "
        "`RESOURCE_EXHAUSTED` (the queue bound: at most W running + queue-size waiting solves) is retried by "
        + (f"the client after {args['backoff']:g} s" if args['backoff'] >= 0 else
           "the client after the delay of the server's `google.rpc.RetryInfo` (0.05 s without one)")
        + " and counted apart from other errors.",
        "",
        "| workers | clients | calls | OK | solves/s | p50 ms | p95 ms | p99 ms | max ms | RESOURCE_EXHAUSTED "
        "| other errors | worker ms | CPU % load gen / server / workers | wall s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|",
    ]
    for s in servers:
        for p in s["phases"]:
            other = ", ".join(f"{k} {v}" for k, v in p["errors"].items() if k != ALLOWED_ERROR) or "0"
            L.append(f"| {s['workers']} | {p['clients']} | {p['requests']} | {p['ok']} | {p['throughput']:.1f} | "
                     f"{_ms(p['p50'])} | {_ms(p['p95'])} | {_ms(p['p99'])} | {_ms(p['max'])} | "
                     f"{p['errors'].get(ALLOWED_ERROR, 0)} | {other} | {_ms(p['worker_median'])} | "
                     f"{_pc(p['cpu_loadgen'])} / {_pc(p['cpu_server_main'])} / {_pc(p['cpu_server_workers'])} | "
                     f"{p['wall_seconds']:.1f} |")
    L.append("")
    for r in data["ratios"]:
        a, b = r["base_workers"], r["workers"]
        L += [f"## Throughput, {b} workers / {a} worker{'s' if a != 1 else ''}", "",
              f"| clients | {a}w solves/s | {b}w solves/s | ratio |", "|---:|---:|---:|---:|"]
        for n, x in r["per_clients"].items():
            L.append(f"| {n} | {_num(x['base'], 1)} | {x['other']:.1f} | {_num(x['ratio'], 2)} |")
        L.append(f"| best of each | {r['best_base']:.1f} | {r['best_other']:.1f} | **{_num(r['best_ratio'], 2)}** |")
        L.append("")
    if data.get("bare"):
        b = data["bare"]
        L += ["## What the cores allow: the same solves in plain processes", "",
              "`solve_scenario` in a loop in k processes side by side for the phase's duration: no server, "
              "gRPC, store or load generator. Their ratio is the ceiling of the service's.", "",
              "| processes | solves/s | ms per solve | ratio to 1 process |", "|---:|---:|---:|---:|"]
        for r in b:
            L.append(f"| {r['processes']} | {r['solves_per_second']:.1f} | {r['ms_per_solve']:.1f} | "
                     f"{r['solves_per_second'] / b[0]['solves_per_second']:.2f} |")
        L.append("")
    L += ["## Against the issue's targets", ""]
    other_total = sum(p["other_errors"] for s in servers for p in s["phases"])
    exhausted = sum(p["errors"].get(ALLOWED_ERROR, 0) for s in servers for p in s["phases"])
    bound = ", ".join(f"{s['workers']} + {s['queue_size']}" for s in servers)
    L.append(f"- Errors other than RESOURCE_EXHAUSTED: **{other_total}** (target 0: "
             f"{'met' if other_total == 0 else 'NOT met'}). RESOURCE_EXHAUSTED answers: {exhausted}, with at most "
             f"{max(args['clients'])} calls outstanding against a bound of workers + queue = {bound} solves.")
    two_one = next((r for r in data["ratios"] if r["base_workers"] == 1 and r["workers"] == 2), None)
    if two_one and two_one["best_ratio"] is not None:
        L.append(f"- 2 workers / 1 worker, best throughput of each: **{two_one['best_ratio']:.2f}x** (target ≥ "
                 f"{TARGET_RATIO}: {'met' if two_one['best_ratio'] >= TARGET_RATIO else 'NOT met'}); per client "
                 "count in the table above.")
    else:
        L.append("- 2 workers / 1 worker: not measured in this run (needs `--workers-list 1,2`).")
    msgs = {code: m for s in servers for p in s["phases"] for code, m in p["error_messages"].items()}
    for code, m in sorted(msgs.items()):
        L.append(f"- first `{code}` message: {m}")
    L.append("")
    L += ["## Server logs", ""]
    for s in servers:
        probs = s["log_problems"]
        L.append(f"- {s['workers']} worker(s): exit code {s['exit_code']}; {len(probs)} warning/error line(s)"
                 + (": " + "; ".join(f"`{x[:160]}`" for x in probs[:5]) if probs else "."))
    L += ["", "## Machine", ""]
    L += [f"- {k}: {v}" for k, v in data["machine"].items()]
    L.append(f"- loadavg at the end: {data['loadavg_end']}")
    L.append("")
    return "\n".join(L)


# ----------------------------------------------------------------------------- the machine's own scaling


def _bare_solves(scenario: Scenario, seconds: float, out: Any) -> None:  # in a child process
    from lepton_alloc.models import solve_scenario

    for _ in range(3):
        solve_scenario(scenario)  # warm
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        solve_scenario(scenario)
        n += 1
    out.put((n, time.perf_counter() - t0))


def bare_scaling(scenario: Scenario, seconds: float, counts: list[int]) -> list[dict[str, Any]]:
    """Solves per second of ``solve_scenario`` in k plain processes side by side (no server, no
    gRPC, no store): what the cores allow, the ceiling of the service's ratio of 2 workers to 1."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    rows = []
    for k in counts:
        q = ctx.Queue()
        procs = [ctx.Process(target=_bare_solves, args=(scenario, seconds, q)) for _ in range(k)]
        for pr in procs:
            pr.start()
        got = [q.get(timeout=seconds + 120) for _ in procs]
        for pr in procs:
            pr.join()
        rows.append({"processes": k, "solves_per_second": sum(n / wall for n, wall in got),
                     "ms_per_solve": statistics.median(1000 * wall / n for n, wall in got if n)})
    return rows


# ----------------------------------------------------------------------------- main


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"bench_load: {what}: comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise SystemExit(f"bench_load: {what}: positive integers, got {text!r}")
    return values


def _command() -> str:
    exe = sys.executable
    try:
        rel = os.path.relpath(exe)
        exe = rel if not rel.startswith("..") else exe
    except ValueError:
        pass
    return " ".join(shlex.quote(a) for a in [exe, *sys.argv])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--workers-list", default="1,2", help="worker counts, one server each (default 1,2)")
    p.add_argument("--clients", default="1,2,4,8,16", help="concurrent clients per phase (default 1,2,4,8,16)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per phase at most (default 10)")
    p.add_argument("--max-requests", type=int, default=2000, help="calls per phase at most (default 2000)")
    p.add_argument("--queue-size", type=int, default=None, help="the server's queue bound (default: the server's, 16)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to serve on (default 127.0.0.1; "
                   "anything but loopback is refused)")
    p.add_argument("--timeout", type=float, default=60.0, help="deadline of each call, seconds (default 60)")
    p.add_argument("--backoff", type=float, default=-1.0,
                   help="pause after a RESOURCE_EXHAUSTED answer, seconds (default: the delay of the server's "
                        "google.rpc.RetryInfo, 0.05 s without one)")
    p.add_argument("--pause", type=float, default=1.0, help="seconds between phases (default 1)")
    p.add_argument("--scenario", default="small", choices=("small", "example"),
                   help="small: the 10-market scenario of bench_grpc (default); example: the built-in example "
                        "(20 markets, a few hundred ms per solve)")
    p.add_argument("--no-bare", dest="bare", action="store_false",
                   help="skip the plain processes' scaling (solves without a server, as many processes as workers)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="Markdown report; the raw numbers go to a .json next to it")
    args = p.parse_args(argv)

    args.host = loopback_host(args.host)
    worker_counts = _ints(args.workers_list, "--workers-list")
    client_counts = _ints(args.clients, "--clients")
    if max(client_counts) > MAX_CLIENTS or max(worker_counts) > 16:
        raise SystemExit(f"bench_load: at most {MAX_CLIENTS} clients and 16 workers")
    if not (0 < args.duration <= 600) or not (1 <= args.max_requests <= 100_000):
        raise SystemExit("bench_load: --duration must be in (0, 600] s and --max-requests in [1, 100000]")

    command = _command()
    info = machine_info()
    if args.scenario == "example":
        from lepton_alloc.models import load_builtin_example

        scenario = load_builtin_example()
        description = "the built-in example (`examples/global_expansion.yaml`, its own gap 1e-4)"
    else:
        scenario = small_scenario()
        description = ("`bench_grpc.small_scenario()` = `generate_scenario(10, 5, seed=3, mip_rel_gap=0.0, "
                       "time_limit=30)`")
    out = Path(args.out)
    servers: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lepton-load-") as tmp:
        for w in worker_counts:
            servers.append(run_server(w, client_counts, scenario, args, Path(tmp)))

    worker_ms = [x for s in servers for p in s["phases"] for x in p["worker_ms"]]
    statuses = Counter(k for s in servers for p in s["phases"] for k, n in p["statuses"].items() for _ in range(n))
    size = f"{len(scenario.markets)} markets x {scenario.horizon_years} years"
    data: dict[str, Any] = {
        "command": command, "machine": info,
        "loadavg_end": " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?",
        "settings": {"workers_list": worker_counts, "clients": client_counts, "duration": args.duration,
                     "max_requests": args.max_requests, "queue_size": args.queue_size, "host": args.host,
                     "timeout": args.timeout, "backoff": args.backoff, "pause": args.pause},
        "scenario": {"description": description,
                     "model_size": size, "sha256": scenario.sha256(),
                     "status": ", ".join(f"{k} {n}" for k, n in statuses.most_common()) or "no successful solve",
                     "worker_ms_median": statistics.median(worker_ms) if worker_ms else None,
                     "worker_ms_p95": pct(worker_ms, 95)},
        "servers": servers,
    }
    data["ratios"] = ratios(servers)
    if args.bare and len(worker_counts) > 1:
        data["bare"] = bare_scaling(scenario, args.duration, sorted(set(worker_counts)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report(data), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"[load] wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)
    print(out.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
