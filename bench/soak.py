"""Soak: minutes of mixed traffic against one server; memory, file descriptors and threads at start and end.

    .venv/bin/python bench/soak.py                       # 10 minutes, 8 client threads
    .venv/bin/python bench/soak.py --minutes 2           # a shorter check
    .venv/bin/python bench/soak.py --minutes 1 --clients 4 --out /tmp/soak.md

The script starts its own server in a child process — ``python -m lepton_alloc.clients.cli serve``
on a free port of 127.0.0.1 (only loopback addresses are accepted), 2 solver workers, a fresh
SQLite file in a temporary directory, none of the caller's ``LEPTON_*`` settings — and waits for
its health check to answer SERVING. It warms the workers up (a few solves, counted apart), takes
the *start* sample, then ``--clients`` threads, each with its own channel and connection and no
credentials (anonymous loopback callers), run a random mix of operations until ``--minutes`` have
passed or ``--max-requests`` RPCs were sent, whichever comes first:

* small solves: unary ``Solve`` of the built-in example and of small generated scenarios
  (``models/generator.py``; some sent as the scenario object, some as the file's text);
* submit + cancel: ``SubmitSolve`` then ``CancelJob`` at once (queued), or once ``GetJob`` shows
  the job running (a hard generated scenario), then ``GetJob`` until the job ended; some
  ``ExplainJob``/``ComparePlans`` of a job cancelled before it ran (FAILED_PRECONDITION);
* invalid requests: bad scenarios (broken YAML, out-of-range fields, wrong types), unknown job
  and scenario ids, bad scenario names, bad page tokens and sizes, bad options and request ids;
  each has the status code it must get, as has every step of the operations on a thread's own
  jobs and scenarios (answers other than that are counted as mismatches);
* ``WatchJob`` streams opened on a running job and dropped after a few events (the client
  cancels the call), and streams followed to the end of a small solve;
* stored scenarios: ``CreateScenario`` (and again: ALREADY_EXISTS), ``GetScenario``,
  ``UpdateScenario``, ``ListScenarios`` (two pages), ``Solve`` by name, ``DeleteScenario``, then
  ``GetScenario`` again (NOT_FOUND); reads: ``GetJob``, ``ListJobs`` (pages of 20, now and then of 1000, and
  the next page), ``ValidateScenario`` of good and bad scenarios.

Every ``--sample-every`` seconds a sampler thread reads /proc for the server's main process and
each of its descendants (the solver workers, the multiprocessing fork server and resource
tracker): resident memory (``VmRSS``), open file descriptors (entries of ``/proc/PID/fd``) and
threads (``Threads``), and calls the health check. After the drive, jobs still queued or running
are cancelled, the clients close their channels, and once the server is idle the *end* sample is
taken. Every RPC is counted by method and status code with its latency (p50/p95).

Result: ``--out`` (Markdown, default ``bench/results/soak.md``) and a ``.json`` next to it (every
sample and count). The verdict line on growth compares the RSS floor (lowest sample) of the
drive's last quarter with its second quarter's, the fds and threads peaks of the drive's first and
second halves, and the open fds at the end (idle) with the start (idle). Exit code 1 if any RPC got a status code outside the
expected set (OK, INVALID_ARGUMENT, NOT_FOUND, CANCELLED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION,
ALREADY_EXISTS; a client-side exception counts as unexpected), if a request whose answer is
known got another (a mismatch), or if the server died or did not stop cleanly; 0 otherwise
(growth is reported, not judged by the exit code).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from bench_build import machine_lines, report_header  # bench/ is the script's directory, hence on sys.path
from bench_load import OWN_CONNECTION, ServerProcess, check_target, loopback_host, pct
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lepton_alloc.clients.client import CHANNEL_OPTIONS, AllocationClient, AllocationError
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.models.loader import load_builtin_example
from lepton_alloc.models.scenario import parse_scenario
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2 as svc
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2_grpc as svc_grpc

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "soak.md"
EXPECTED = ("OK", "INVALID_ARGUMENT", "NOT_FOUND", "CANCELLED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ALREADY_EXISTS")
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
WORKERS = 2
# the mix: operation kind -> weight (each client thread draws one operation at a time)
MIX = {
    "solve_small": 20, "solve_example": 4, "submit_cancel_queued": 10, "submit_cancel_running": 5,
    "watch_drop": 8, "watch_full": 4, "invalid": 25, "scenarios": 12, "reads": 12,
}
# growth tolerances: second-half peak over first-half peak, fds at the end over the start
TOL_RSS_MB, TOL_RSS_SHARE, TOL_FDS, TOL_THREADS = 16.0, 0.10, 8, 4
MINUTE_METHODS = ("Solve", "SubmitSolve", "GetJob", "CancelJob", "ListJobs", "CreateScenario", "ListScenarios", "ValidateScenario")


class Stop(Exception):
    """The drive's bound is reached (time or request count) or the server died."""


# ----------------------------------------------------------------------------- /proc


def _status(pid: int) -> dict[str, Any] | None:
    """RSS (MB), open fds and threads of one process from /proc; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    out: dict[str, Any] = {"pid": pid, "rss_mb": 0.0, "threads": 0, "fds": fds}
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            out["rss_mb"] = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            out["threads"] = int(line.split()[1])
    return out


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue
            out[int(entry.name)] = int(raw[raw.rindex(")") + 2:].split()[1])
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def sample_processes(server_pid: int) -> dict[str, Any]:
    """The server's main process and its descendants, sorted into solver workers and helpers
    (the multiprocessing fork server and resource tracker)."""
    main = _status(server_pid)
    parents = _parents()
    family, frontier = set(), {server_pid}
    while frontier:
        children = {p for p, pp in parents.items() if pp in frontier and p not in family}
        family |= children
        frontier = children
    workers, helpers = [], []
    for pid in sorted(family):
        st = _status(pid)
        if st is None:
            continue
        cmd = _cmdline(pid)
        if "resource_tracker" in cmd:
            st["role"] = "resource tracker"
            helpers.append(st)
        elif parents.get(pid) == server_pid and "forkserver" in cmd:
            st["role"] = "fork server"
            helpers.append(st)
        else:
            st["role"] = "worker"
            workers.append(st)
    return {"server": main, "workers": workers, "helpers": helpers}


def _sum(procs: list[dict[str, Any]], key: str) -> float:
    return sum(p[key] for p in procs)


# ----------------------------------------------------------------------------- counting


@dataclass
class Budget:
    """The drive's bound: a deadline and a number of RPCs; ``stop()`` ends it early."""

    deadline: float
    max_requests: int
    issued: int = 0
    stopped: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> None:
        with self.lock:
            if self.stopped:
                raise Stop(self.stopped)
            if time.monotonic() >= self.deadline:
                self.stopped = "time"
                raise Stop(self.stopped)
            if self.issued >= self.max_requests:
                self.stopped = "max-requests"
                raise Stop(self.stopped)
            self.issued += 1

    def stop(self, why: str) -> None:
        with self.lock:
            self.stopped = self.stopped or why

    def over(self) -> bool:
        with self.lock:
            return bool(self.stopped) or time.monotonic() >= self.deadline or self.issued >= self.max_requests


class Stats:
    """Every RPC by (method, code) with its latency; operations by kind; mismatches; odd events."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lat: dict[tuple[str, str], list[float]] = defaultdict(list)  # (method, code) -> seconds
        self.by_kind: dict[str, Counter[str]] = defaultdict(Counter)  # kind -> code -> RPCs
        self.ops: dict[str, list[float]] = defaultdict(list)  # kind -> operation seconds
        self.first_message: dict[tuple[str, str], str] = {}
        self.mismatches: Counter[str] = Counter()
        self.mismatch_examples: dict[str, str] = {}
        self.odd: Counter[str] = Counter()
        self.odd_examples: dict[str, str] = {}
        self.cancel_queued: Counter[str] = Counter()  # state in the CancelJob answer
        self.cancel_running_end: Counter[str] = Counter()  # final state of jobs cancelled while running
        self.cancel_to_end: list[float] = []  # seconds from CancelJob of a running job to its end
        self.watch_events: list[int] = []  # events read before a watch was dropped
        self.phase = "drive"
        self.t0 = time.monotonic()  # the drive's start: per-minute latencies count from here
        self.by_minute: dict[tuple[str, int], list[float]] = defaultdict(list)  # (method, minute) -> seconds of OK calls

    def rpc(self, kind: str, method: str, code: str, seconds: float, message: str) -> None:
        with self.lock:
            if self.phase != "drive" and kind != "health":
                kind = self.phase
            self.lat[(method, code)].append(seconds)
            self.by_kind[kind][code] += 1
            if code == "OK" and kind in MIX:
                self.by_minute[(method, int((time.monotonic() - seconds - self.t0) // 60))].append(seconds)
            if code != "OK":
                self.first_message.setdefault((method, code), message[:300])

    def op(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.ops[kind].append(seconds)

    def mismatch(self, label: str, expect: tuple[str, ...], code: str, message: str) -> None:
        with self.lock:
            key = f"{label}: expected {'/'.join(expect)}, got {code}"
            self.mismatches[key] += 1
            self.mismatch_examples.setdefault(key, message[:300])

    def note(self, what: str, detail: str = "") -> None:
        with self.lock:
            self.odd[what] += 1
            if detail:
                self.odd_examples.setdefault(what, detail[:300])

    def total(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.lat.values())


# ----------------------------------------------------------------------------- scenarios


def _dump(d: dict[str, Any]) -> str:
    return yaml.safe_dump(d, sort_keys=False)


class Scenarios:
    """The scenarios of the mix, made once: small (optimal in tens of ms), the example (about
    2 s), medium (runs to its 3 s limit: for watches) and hard (runs to its 30 s limit: cancelled)."""

    def __init__(self) -> None:
        self.small_raw = [generate_scenario(m, y, seed=s, mip_rel_gap=0.0, time_limit=30)
                          for m, y, s in ((10, 5, 3), (10, 5, 4), (8, 4, 5), (6, 5, 6), (12, 4, 7), (5, 3, 8))]
        self.small = [parse_scenario(d) for d in self.small_raw]
        self.small_docs = [_dump(d) for d in self.small_raw]
        self.example = load_builtin_example()
        self.medium = [parse_scenario(generate_scenario(30, 6, seed=s, time_limit=3)) for s in (11, 12)]
        self.hard = [parse_scenario(generate_scenario(50, 10, seed=s, time_limit=30)) for s in (21, 22)]
        base = self.small_raw[0]

        def changed(path: tuple[Any, ...], value: Any) -> str:
            d = json.loads(json.dumps(base))
            node = d
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value
            return json.dumps(d)

        no_markets = json.loads(json.dumps(base))
        no_markets["markets"] = []
        # deliberately invalid scenario documents (INVALID_ARGUMENT)
        self.bad_docs = [
            "markets: [unclosed",  # YAML syntax
            "just a string",
            "{}",
            changed(("markets", 0, "market_size"), -5),
            changed(("markets", 0, "market_size"), 1e308),
            changed(("markets", 0, "market_growth"), "fast"),
            changed(("discount_rate",), -0.5),
            changed(("horizon_years",), 0),
            changed(("markets", 0, "options", 0, "mode"), "teleport"),
            json.dumps(no_markets),
        ]


# ----------------------------------------------------------------------------- one client thread


class Driver:
    """One client thread: its own channel and connection, an ``AllocationClient`` and a raw stub
    on it (for WatchJob streams it cancels midway and for requests the library would refuse)."""

    def __init__(self, idx: int, address: str, args: argparse.Namespace, stats: Stats, budget: Budget,
                 scen: Scenarios, seed: int):
        self.idx = idx
        self.args = args
        self.stats = stats
        self.budget = budget
        self.scen = scen
        self.rng = random.Random(seed)
        self.channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS + OWN_CONNECTION)
        # no token, no TLS, whatever the environment says: an anonymous loopback caller
        self.client = AllocationClient(address, timeout=args.timeout, channel=self.channel, token="", tls_ca="",
                                       tls_cert="", tls_key="")
        self.stub = svc_grpc.AllocationServiceStub(self.channel)
        self.kind = ""
        self.jobs: list[str] = []  # recent job ids of this thread
        self.n = 0
        self.error: str = ""

    def close(self) -> None:
        self.client.close()

    # -- one RPC, counted

    def call(self, method: str, fn: Callable[[], Any], expect: tuple[str, ...] | None = None, label: str = "",
             cleanup: bool = False) -> tuple[str, Any]:
        """Run one RPC: count it (method, code, latency) under the current operation kind; a
        ``cleanup`` call (cancel of the operation's own job) is made even past the bound."""
        if not cleanup:
            self.budget.take()
        t = time.perf_counter()
        value, message = None, ""
        try:
            value = fn()
            code = "OK"
        except AllocationError as err:
            code, message = err.code_name, err.message
        except grpc.RpcError as err:
            code = err.code().name if callable(getattr(err, "code", None)) and err.code() is not None else "UNKNOWN"
            message = err.details() or "" if callable(getattr(err, "details", None)) else str(err)
        except Exception as err:  # noqa: BLE001 - every failure is an outcome to count
            code, message = f"client:{type(err).__name__}", str(err)
        self.stats.rpc(self.kind, method, code, time.perf_counter() - t, message)
        if expect is not None and code not in expect:
            self.stats.mismatch(label or method, expect, code, message)
        return code, value

    def backoff(self, code: str) -> None:
        if code == "RESOURCE_EXHAUSTED":
            time.sleep(self.args.backoff)

    def remember(self, job_id: str) -> None:
        self.jobs.append(job_id)
        del self.jobs[:-20]

    # -- the loop

    def run(self) -> None:
        kinds, weights = list(MIX), list(MIX.values())
        try:
            while not self.budget.over():
                self.kind = self.rng.choices(kinds, weights)[0]
                t = time.perf_counter()
                try:
                    getattr(self, f"op_{self.kind}")()
                except Stop:
                    break
                finally:
                    self.stats.op(self.kind, time.perf_counter() - t)
        except Exception as err:  # noqa: BLE001 - a bug here must not hang the soak
            self.error = f"{type(err).__name__}: {err}"
            self.stats.note("client thread crashed", self.error)

    # -- operations

    def _small(self) -> dict[str, Any]:
        i = self.rng.randrange(len(self.scen.small))
        return {"document": self.scen.small_docs[i]} if self.rng.random() < 0.3 else {"scenario": self.scen.small[i]}

    def op_solve_small(self) -> None:
        code, res = self.call("Solve", lambda: self.client.solve(**self._small(), time_limit_seconds=30))
        if code == "OK" and str(res.status) != "optimal":
            self.stats.note("small solve not optimal", str(res.status))
        self.backoff(code)

    def op_solve_example(self) -> None:
        code, _ = self.call("Solve", lambda: self.client.solve(self.scen.example, time_limit_seconds=20))
        self.backoff(code)

    def _submit(self, **kw: Any) -> Any:
        code, handle = self.call("SubmitSolve", lambda: self.client.submit(**kw))
        self.backoff(code)
        if code != "OK":
            return None
        self.remember(handle.job_id)
        return handle

    def op_submit_cancel_queued(self) -> None:
        pick = self.rng.random()
        source = {"scenario": self.rng.choice(self.scen.hard)} if pick < 0.5 else self._small()
        h = self._submit(**source, time_limit_seconds=30)
        if h is None:
            return
        code, info = self.call("CancelJob", lambda: self.client.cancel(h.job_id), ("OK",), "CancelJob of its own job", cleanup=True)
        if code != "OK":
            return
        self.stats.cancel_queued[str(info.state)] += 1
        if str(info.state) == "CANCELLED" and info.result is None and self.rng.random() < 0.3:
            if self.rng.random() < 0.5:
                self.call("ExplainJob", lambda: self.client.explain(h.job_id, time_budget_seconds=5), ("FAILED_PRECONDITION",),
                          "ExplainJob of a job cancelled before it ran")
            else:
                self.call("ComparePlans", lambda: self.client.compare(h.job_id, h.job_id), ("FAILED_PRECONDITION",),
                          "ComparePlans of a job cancelled before it ran")

    def _wait_state(self, job_id: str, want: tuple[str, ...], limit: float, every: float) -> str:
        """Poll GetJob until the job's state is one of ``want`` (or ended), at most ``limit`` s."""
        end = time.monotonic() + limit
        state = ""
        while time.monotonic() < end:
            code, info = self.call("GetJob", lambda: self.client.get_job(job_id), ("OK",), "GetJob of its own job")
            if code != "OK":
                return code
            state = str(info.state)
            if state in want or state in TERMINAL:
                return state
            time.sleep(every)
        return state

    def op_submit_cancel_running(self) -> None:
        h = self._submit(scenario=self.rng.choice(self.scen.hard), time_limit_seconds=30)
        if h is None:
            return
        try:
            state = self._wait_state(h.job_id, ("RUNNING",), 30.0, 0.1)
        finally:
            code, _ = self.call("CancelJob", lambda: self.client.cancel(h.job_id), ("OK",), "CancelJob of its own job", cleanup=True)
        if code != "OK" or state != "RUNNING":
            return
        t = time.monotonic()
        end_state = self._wait_state_cleanup(h.job_id, 15.0)
        if end_state in TERMINAL:
            self.stats.cancel_to_end.append(time.monotonic() - t)
            self.stats.cancel_running_end[end_state] += 1
        else:
            self.stats.cancel_running_end["not ended 15 s after the cancel"] += 1
            self.stats.note("a running job cancelled did not end within 15 s", h.job_id)

    def _wait_state_cleanup(self, job_id: str, limit: float) -> str:
        end = time.monotonic() + limit
        state = ""
        while time.monotonic() < end:
            code, info = self.call("GetJob", lambda: self.client.get_job(job_id), ("OK",), "GetJob of its own job", cleanup=True)
            if code != "OK":
                return code
            state = str(info.state)
            if state in TERMINAL:
                return state
            time.sleep(0.05)
        return state

    def op_watch_drop(self) -> None:
        h = self._submit(scenario=self.rng.choice(self.scen.medium), time_limit_seconds=3)
        if h is None:
            return
        want = self.rng.randint(1, 4)
        self.budget.take()
        t = time.perf_counter()
        stream = self.stub.WatchJob(svc.WatchJobRequest(job_id=h.job_id), timeout=self.args.timeout)
        got, code, message = 0, "", ""
        try:
            for _ in stream:
                got += 1
                if got >= want:
                    stream.cancel()  # drop the stream midway: the client goes away
                    code = "CANCELLED"
                    break
            else:
                code = "OK"
        except grpc.RpcError as err:
            code, message = err.code().name, err.details() or ""
        self.stats.rpc(self.kind, "WatchJob", code, time.perf_counter() - t, message)
        if code not in ("OK", "CANCELLED"):
            self.stats.mismatch("WatchJob of its own job", ("OK", "CANCELLED"), code, message)
        self.stats.watch_events.append(got)
        if self.rng.random() < 0.67:  # most are cancelled, the rest run to their 3 s limit
            self.call("CancelJob", lambda: self.client.cancel(h.job_id), ("OK",), "CancelJob of its own job", cleanup=True)

    def op_watch_full(self) -> None:
        i = self.rng.randrange(len(self.scen.small))
        h = self._submit(scenario=self.scen.small[i], time_limit_seconds=30)
        if h is None:
            return
        code, events = self.call("WatchJob", lambda: list(self.client.watch(h.job_id, timeout=self.args.timeout)),
                                 ("OK",), "WatchJob to the end")
        if code == "OK" and (not events or str(events[-1].kind) != "done"):
            self.stats.note("a watch ended without its done event", h.job_id)

    def op_invalid(self) -> None:
        c, s, r = self.client, self.stub, self.rng
        t = self.args.timeout
        ghost = f"no-such-job-{r.randrange(10**9)}"
        # a full queue answers Solve and SubmitSolve (without a request id) before the request's
        # scenario or options are read (docs/operations.md): RESOURCE_EXHAUSTED is right there too
        full = "RESOURCE_EXHAUSTED"
        cases: list[tuple[str, str, Callable[[], Any], tuple[str, ...]]] = [
            ("Solve", "Solve of a bad scenario", lambda: c.solve(document=r.choice(self.scen.bad_docs)),
             ("INVALID_ARGUMENT", full)),
            ("SubmitSolve", "SubmitSolve of a bad scenario", lambda: c.submit(document=r.choice(self.scen.bad_docs)),
             ("INVALID_ARGUMENT", full)),
            ("CreateScenario", "CreateScenario of a bad scenario",
             lambda: c.create_scenario(f"bad-{self.idx}-{r.randrange(10**9)}", document=r.choice(self.scen.bad_docs)),
             ("INVALID_ARGUMENT",)),
            ("Solve", "Solve with a negative time limit", lambda: c.solve(self.scen.small[0], time_limit_seconds=-1),
             ("INVALID_ARGUMENT", full)),
            ("SubmitSolve", "SubmitSolve with a 200-character request id", lambda: c.submit(self.scen.small[0], request_id="r" * 200),
             ("INVALID_ARGUMENT",)),
            ("GetJob", "GetJob of an unknown id", lambda: c.get_job(ghost), ("NOT_FOUND",)),
            ("GetJob", "GetJob without an id", lambda: s.GetJob(svc.GetJobRequest(), timeout=t), ("INVALID_ARGUMENT",)),
            ("CancelJob", "CancelJob of an unknown id", lambda: c.cancel(ghost), ("NOT_FOUND",)),
            ("WatchJob", "WatchJob of an unknown id", lambda: list(c.watch(ghost, timeout=t)), ("NOT_FOUND",)),
            ("ExplainJob", "ExplainJob of an unknown id", lambda: c.explain(ghost), ("NOT_FOUND",)),
            ("ComparePlans", "ComparePlans of unknown ids", lambda: c.compare(ghost, ghost + "x"), ("NOT_FOUND",)),
            ("ListJobs", "ListJobs with a bad page token",
             lambda: c.list_jobs(page_token=r.choice(["garbage", "job:9223372036854775808", "job:-1", "scenario:1", "x" * 300])),
             ("INVALID_ARGUMENT",)),
            ("ListJobs", "ListJobs with page_size -1", lambda: s.ListJobs(svc.ListJobsRequest(page_size=-1), timeout=t),
             ("INVALID_ARGUMENT",)),
            ("ListScenarios", "ListScenarios with a bad page token",
             lambda: c.list_scenarios(page_token=r.choice(["zzz", "job:5", "scenario:", "\u00e9" * 40])), ("INVALID_ARGUMENT",)),
            ("GetScenario", "GetScenario of a bad name", lambda: c.get_scenario(r.choice(["bad name!", "", "x" * 65, "a/b"])),
             ("INVALID_ARGUMENT",)),
            ("GetScenario", "GetScenario of an unknown name", lambda: c.get_scenario(f"no-such-{r.randrange(10**9)}"), ("NOT_FOUND",)),
            ("DeleteScenario", "DeleteScenario of an unknown name", lambda: c.delete_scenario(f"no-such-{r.randrange(10**9)}"),
             ("NOT_FOUND",)),
            ("Solve", "Solve of an unknown stored scenario", lambda: c.solve(scenario_name=f"no-such-{r.randrange(10**9)}"),
             ("NOT_FOUND", full)),
        ]
        method, label, fn, expect = r.choice(cases)
        self.call(method, fn, expect, label)

    def op_scenarios(self) -> None:
        c, r = self.client, self.rng
        self.n += 1
        name = f"soak-{self.idx}-{self.n}"
        i = r.randrange(len(self.scen.small))
        code, _ = self.call("CreateScenario", lambda: c.create_scenario(name, self.scen.small[i], description=f"soak {name}"),
                            ("OK",), "CreateScenario of a new name")
        if code != "OK":
            return
        try:
            if r.random() < 0.2:
                self.call("CreateScenario", lambda: c.create_scenario(name, self.scen.small[i]), ("ALREADY_EXISTS",),
                          "CreateScenario of a taken name")
            self.call("GetScenario", lambda: c.get_scenario(name), ("OK",), "GetScenario of a stored name")
            if r.random() < 0.3:
                j = (i + 1) % len(self.scen.small)
                self.call("UpdateScenario", lambda: c.update_scenario(name, document=self.scen.small_docs[j]), ("OK",),
                          "UpdateScenario of a stored name")
                self.call("GetScenario", lambda: c.get_scenario(name, revision=1), ("OK",), "GetScenario of revision 1")
            code, page = self.call("ListScenarios", lambda: c.list_scenarios(page_size=5), ("OK",), "ListScenarios")
            if code == "OK" and page[1]:
                self.call("ListScenarios", lambda: c.list_scenarios(page_size=5, page_token=page[1]), ("OK",), "ListScenarios page 2")
            if r.random() < 0.2:
                code, _ = self.call("Solve", lambda: c.solve(scenario_name=name, time_limit_seconds=30))
                self.backoff(code)
        finally:
            self.call("DeleteScenario", lambda: c.delete_scenario(name), ("OK",), "DeleteScenario of a stored name", cleanup=True)
        self.call("GetScenario", lambda: c.get_scenario(name), ("NOT_FOUND",), "GetScenario after its deletion")

    def op_reads(self) -> None:
        c, r = self.client, self.rng
        if self.jobs:
            job_id = r.choice(self.jobs)
            self.call("GetJob", lambda: c.get_job(job_id), ("OK",), "GetJob of its own job")
        size = 1000 if r.random() < 0.05 else 20  # now and then the largest page
        code, page = self.call("ListJobs", lambda: c.list_jobs(page_size=size, state=r.choice([None, "succeeded", "cancelled"])),
                               ("OK",), "ListJobs")
        if code == "OK" and page[1] and r.random() < 0.5:
            self.call("ListJobs", lambda: c.list_jobs(page_size=20, page_token=page[1]), ("OK",), "ListJobs page 2")
        if r.random() < 0.5:
            code, v = self.call("ValidateScenario", lambda: c.validate(r.choice(self.scen.small)), ("OK",), "ValidateScenario")
            if code == "OK" and not v.valid:
                self.stats.note("a valid scenario did not validate", str(v.violations)[:200])
        else:
            code, v = self.call("ValidateScenario", lambda: c.validate(document=r.choice(self.scen.bad_docs)), ("OK",),
                                "ValidateScenario of a bad scenario")
            if code == "OK" and v.valid:
                self.stats.note("a bad scenario validated", "")


# ----------------------------------------------------------------------------- the run


class Sampler(threading.Thread):
    """Every ``every`` seconds: /proc of the server and its descendants, the health check, and
    whether the server is still alive (if not, the drive stops)."""

    def __init__(self, server: ServerProcess, address: str, stats: Stats, budget: Budget, every: float, t0: float):
        super().__init__(name="sampler", daemon=True)
        self.server, self.stats, self.budget, self.every, self.t0 = server, stats, budget, every, t0
        self.channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS + OWN_CONNECTION)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.samples: list[dict[str, Any]] = []
        self.halt = threading.Event()
        self.died = ""

    def take(self, label: str) -> dict[str, Any]:
        s = sample_processes(self.server.proc.pid)
        t = time.perf_counter()
        try:
            r = self.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            code, health = "OK", health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)
        except grpc.RpcError as err:
            code, health = err.code().name, err.code().name
        self.stats.rpc("health", "Health/Check", code, time.perf_counter() - t, health)
        s.update(label=label, t=round(time.monotonic() - self.t0, 1), health=health, requests=self.stats.total())
        if self.server.proc.poll() is not None or s["server"] is None:
            self.died = f"the server exited (code {self.server.proc.returncode}) at t={s['t']} s"
            self.budget.stop("server died")
        self.samples.append(s)
        return s

    def run(self) -> None:
        while not self.halt.wait(self.every):
            self.take("drive")

    def close(self) -> None:
        self.channel.close()


def wait_serving(address: str, timeout: float = 60.0) -> None:
    with grpc.insecure_channel(address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"the server at {address} did not report SERVING within {timeout:.0f} s")


def warm_up(address: str, args: argparse.Namespace, stats: Stats, scen: Scenarios) -> None:
    """Each worker solves once (two small solves at a time, then the example): first-solve
    costs stay out of the start sample."""
    stats.phase = "warm-up"
    budget = Budget(time.monotonic() + 300, 100)
    d = Driver(-1, address, args, stats, budget, scen, 0)
    try:
        threads = [threading.Thread(target=d.call, args=("Solve", lambda i=i: d.client.solve(scen.small[i]), ("OK",), "warm-up solve"))
                   for i in range(WORKERS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        d.call("Solve", lambda: d.client.solve(scen.example, time_limit_seconds=20), ("OK",), "warm-up solve")
    finally:
        d.close()


def settle(address: str, args: argparse.Namespace, stats: Stats, scen: Scenarios, limit: float = 60.0) -> dict[str, Any]:
    """After the drive: cancel what is still queued or running and wait until nothing is."""
    stats.phase = "cleanup"
    budget = Budget(time.monotonic() + limit + 60, 10_000)
    d = Driver(-2, address, args, stats, budget, scen, 0)
    out: dict[str, Any] = {"cancelled_at_end": 0, "idle_after_s": None}
    try:
        t = time.monotonic()
        while time.monotonic() - t < limit:
            live = []
            for st in ("queued", "running"):
                code, page = d.call("ListJobs", lambda st=st: d.client.list_jobs(state=st, page_size=1000), ("OK",), "ListJobs")
                if code == "OK":
                    live += [j for j in page[0] if str(j.state) not in TERMINAL]
            if not live:
                out["idle_after_s"] = round(time.monotonic() - t, 1)
                break
            for j in live:
                if str(j.state) == "QUEUED" or time.monotonic() - t > 2:
                    d.call("CancelJob", lambda j=j: d.client.cancel(j.job_id), ("OK",), "CancelJob at the end")
                    out["cancelled_at_end"] += 1
            time.sleep(0.5)
    finally:
        d.close()
    return out


def count_jobs(address: str, args: argparse.Namespace, stats: Stats, scen: Scenarios) -> dict[str, int]:
    """The jobs in the database by state: every page of ListJobs, 1000 (the most) at a time."""
    stats.phase = "count"
    d = Driver(-3, address, args, stats, Budget(time.monotonic() + 300, 10_000), scen, 0)
    states: Counter[str] = Counter()
    token = ""
    try:
        for _ in range(1000):
            code, page = d.call("ListJobs", lambda tok=token: d.client.list_jobs(page_size=1000, page_token=tok), ("OK",), "ListJobs")
            if code != "OK":
                break
            states.update(str(j.state) for j in page[0])
            token = page[1]
            if not token:
                break
    finally:
        d.close()
    return dict(states.most_common())


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    scen = Scenarios()
    stats = Stats()
    server = ServerProcess(WORKERS, args.host, tmp, args.queue_size)
    print(f"[soak] starting a server with {WORKERS} workers ...", file=sys.stderr, flush=True)
    server.start()
    data: dict[str, Any] = {"port": server.port}
    sampler = None
    drivers: list[Driver] = []
    try:
        address = check_target(server.address)
        wait_serving(address)
        t0 = time.monotonic()
        budget = Budget(time.monotonic() + 3600, 0)
        sampler = Sampler(server, address, stats, budget, args.sample_every, t0)
        boot = sampler.take("boot")
        warm_up(address, args, stats, scen)
        time.sleep(1.0)
        start = sampler.take("start")
        print(f"[soak] start: server {start['server']['rss_mb']:.0f} MB, {start['server']['fds']} fds, "
              f"{start['server']['threads']} threads; driving {args.clients} clients for {args.minutes:g} min ...",
              file=sys.stderr, flush=True)
        stats.phase = "drive"
        stats.t0 = time.monotonic()
        budget = Budget(time.monotonic() + 60 * args.minutes, args.max_requests)
        sampler.budget = budget
        drive_t0 = time.monotonic()
        drivers = [Driver(i, address, args, stats, budget, scen, args.seed * 1000 + i) for i in range(args.clients)]
        threads = [threading.Thread(target=d.run, name=f"soak-{d.idx}", daemon=True) for d in drivers]
        for th in threads:
            th.start()
        sampler.start()
        last_print = time.monotonic()
        while any(th.is_alive() for th in threads):
            time.sleep(0.5)
            if time.monotonic() - last_print >= 60:
                last_print = time.monotonic()
                s = sampler.samples[-1]
                print(f"[soak] t={s['t']:.0f}s requests {stats.total()}; server {s['server']['rss_mb']:.0f} MB "
                      f"{s['server']['fds']} fds {s['server']['threads']} threads; workers "
                      f"{_sum(s['workers'], 'rss_mb'):.0f} MB", file=sys.stderr, flush=True)
            if budget.over() and time.monotonic() > budget.deadline + args.timeout + 30:
                stats.note("client threads still busy long after the bound", "")
                break
        drive_seconds = time.monotonic() - drive_t0
        sampler.halt.set()
        sampler.join()
        data["drive_seconds"] = drive_seconds
        data["stopped_by"] = budget.stopped or "time"
        data["requests_issued"] = budget.issued
        data["client_errors"] = [d.error for d in drivers if d.error]
        for d in drivers:
            d.close()
        drivers = []
        if not sampler.died:
            data["settle"] = settle(address, args, stats, scen)
            time.sleep(3.0)
        end = sampler.take("end")
        if not sampler.died:
            # after the end sample: a full count pages through every job, 1000 a page (see "after count")
            data["job_states"] = count_jobs(address, args, stats, scen)
            time.sleep(1.0)
            data["after_count"] = sampler.take("after count")
        data.update(boot=boot, start=start, end=end, samples=sampler.samples)
        data["died"] = sampler.died
    finally:
        for d in drivers:
            d.close()
        if sampler is not None:
            sampler.halt.set()
            sampler.close()
        data["exit_code"] = server.stop()
        data["log_problems"] = server.log_problems()
        data["log_tail"] = server.log_tail(10)
    data["stats"] = stats
    return data


# ----------------------------------------------------------------------------- report


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{1000 * x:.1f}" if x < 10 else f"{1000 * x:.0f}"


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per minute; None with fewer than 3 points."""
    if len(points) < 3:
        return None
    mt = statistics.fmean(t for t, _ in points)
    mv = statistics.fmean(v for _, v in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return 60 * sum((t - mt) * (v - mv) for t, v in points) / den if den > 0 else None


def resources(data: dict[str, Any]) -> dict[str, Any]:
    """Per metric: boot, start, end, peak, the peaks of the drive's first and second halves, and
    the trend (least-squares slope per minute) over the second half."""
    drive = [s for s in data["samples"] if s["label"] == "drive" and s["server"] is not None]
    half = len(drive) // 2
    first, second = drive[:half] or drive, drive[half:] or drive
    q = len(drive) // 4
    q2, q4 = (drive[q:2 * q], drive[len(drive) - q:]) if q >= 2 else ([], [])
    metrics: dict[str, Callable[[dict[str, Any]], float]] = {
        "server RSS MB": lambda s: s["server"]["rss_mb"],
        "server fds": lambda s: s["server"]["fds"],
        "server threads": lambda s: s["server"]["threads"],
        "workers RSS MB (sum)": lambda s: _sum(s["workers"], "rss_mb"),
        "worker RSS MB (largest)": lambda s: max((w["rss_mb"] for w in s["workers"]), default=0.0),
        "workers fds (sum)": lambda s: _sum(s["workers"], "fds"),
        "workers threads (sum)": lambda s: _sum(s["workers"], "threads"),
        "worker processes": lambda s: len(s["workers"]),
        "helpers RSS MB (fork server, resource tracker)": lambda s: _sum(s["helpers"], "rss_mb"),
        "helpers fds": lambda s: _sum(s["helpers"], "fds"),
    }
    every = [s for s in data["samples"] if s["server"] is not None and s["label"] != "after count"]
    out = {}
    for name, f in metrics.items():
        def val(s: dict[str, Any] | None, f: Callable[[dict[str, Any]], float] = f) -> float | None:
            return f(s) if s is not None and s.get("server") is not None else None

        out[name] = {"boot": val(data.get("boot")), "start": val(data.get("start")), "end": val(data.get("end")),
                     "peak": max((f(s) for s in every), default=None),
                     "first_half_peak": max((f(s) for s in first), default=None),
                     "second_half_peak": max((f(s) for s in second), default=None),
                     "second_half_slope_per_min": _slope([(s["t"], f(s)) for s in second]),
                     "q2_low": min((f(s) for s in q2), default=None),
                     "q4_low": min((f(s) for s in q4), default=None)}
    return out


def _tol(name: str, base: float) -> float:
    if "RSS" in name:
        return max(TOL_RSS_MB, TOL_RSS_SHARE * base)
    return TOL_THREADS if "threads" in name else TOL_FDS


def growth(res: dict[str, Any]) -> list[str]:
    """What grew beyond its tolerance. Memory: the lowest RSS of the drive's last quarter above
    the lowest of its second quarter (the floor once warm; with at least 8 samples) - retained
    memory raises the floor, while big replies (a ListJobs page of 1000 jobs) only make RSS a
    saw-tooth, so RSS peaks are reported, not judged. Fds and threads: the peak of the drive's
    second half above the peak of its first half, and open fds at the end (idle) above the start
    (idle). RSS and threads at the end are not compared with the start: the first solves of each
    kind and the RPC thread pool (threads made on demand, up to 64) raise them once."""
    found = []
    for name, r in res.items():
        if name == "worker processes" or r["start"] is None:
            continue
        if "RSS" in name:
            a, b = r["q2_low"], r["q4_low"]
            if a is not None and b is not None and b > a + _tol(name, a):
                found.append(f"{name} floor {a:.0f} → {b:.0f} (lowest sample, second → last quarter of the drive)")
            continue
        a, b = r["first_half_peak"], r["second_half_peak"]
        if a is not None and b is not None and b > a + _tol(name, a):
            found.append(f"{name} peak {a:.0f} → {b:.0f} (first → second half of the drive)")
        if "fds" in name and r["end"] is not None and r["end"] > r["start"] + _tol(name, r["start"]):
            found.append(f"{name} {r['start']:.0f} → {r['end']:.0f} (start → end, both idle)")
    return found


def _fmt(x: float | None, name: str) -> str:
    if x is None:
        return "–"
    return f"{x:.1f}" if "RSS" in name else f"{x:.0f}"


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    st: Stats = data["stats"]
    methods: dict[str, dict[str, Any]] = {}
    for (m, code), lat in st.lat.items():
        row = methods.setdefault(m, {"codes": Counter(), "lat": []})
        row["codes"][code] += len(lat)
        row["lat"] += lat
    method_rows = {}
    for m, row in sorted(methods.items()):
        lat = sorted(row["lat"])
        method_rows[m] = {"calls": len(lat), "codes": dict(row["codes"]), "p50": pct(lat, 50), "p95": pct(lat, 95),
                          "unexpected": sum(n for c, n in row["codes"].items() if c not in EXPECTED)}
    kinds = {}
    for k, codes in sorted(st.by_kind.items()):
        ops = sorted(st.ops.get(k, []))
        kinds[k] = {"operations": len(ops), "rpcs": sum(codes.values()), "codes": dict(codes.most_common()),
                    "p50": pct(ops, 50), "p95": pct(ops, 95)}
    unexpected = {f"{m} {c}": len(lat) for (m, c), lat in st.lat.items() if c not in EXPECTED}
    drive_rpcs = sum(sum(st.by_kind[k].values()) for k in MIX if k in st.by_kind)
    res = resources(data)
    return {
        "methods": method_rows, "kinds": kinds, "unexpected": unexpected,
        "unexpected_messages": {f"{m} {c}": msg for (m, c), msg in st.first_message.items() if c not in EXPECTED},
        "mismatches": dict(st.mismatches), "mismatch_examples": st.mismatch_examples,
        "odd": dict(st.odd), "odd_examples": st.odd_examples,
        "cancel_queued": dict(st.cancel_queued), "cancel_running_end": dict(st.cancel_running_end),
        "cancel_to_end_p50": pct(sorted(st.cancel_to_end), 50), "cancel_to_end_p95": pct(sorted(st.cancel_to_end), 95),
        "watch_events_median": statistics.median(st.watch_events) if st.watch_events else None,
        "drive_rpcs": drive_rpcs, "resources": res, "growth": growth(res),
        "p50_by_minute": {m: {mi: pct(sorted(v), 50) for (mm, mi), v in sorted(st.by_minute.items()) if mm == m}
                          for m in MINUTE_METHODS},
    }


def report(data: dict[str, Any], summary: dict[str, Any], args: argparse.Namespace, failed: list[str]) -> str:
    L = report_header(
        f"Soak: {args.minutes:g} minutes of mixed traffic against one server",
        f"One server (`python -m lepton_alloc.clients.cli serve --address {args.host}:0 --workers {WORKERS}`, a fresh "
        f"SQLite file in a temporary directory, queue bound {args.queue_size or 'default'}, no `LEPTON_*` settings), "
        f"driven by {args.clients} client threads of this process (each its own channel and connection, no token: "
        f"anonymous loopback callers) for {args.minutes:g} min or {args.max_requests} RPCs, whichever comes first. "
        "Mix (weights): " + ", ".join(f"{k} {w}" for k, w in MIX.items()) + " – see the docstring of `bench/soak.py`. "
        f"Per-call deadline {args.timeout:g} s; `RESOURCE_EXHAUSTED` is followed by a {args.backoff:g} s pause. "
        f"Samples of /proc (server main process, solver workers, helpers) and a health check every "
        f"{args.sample_every:g} s. *start* = idle after the warm-up (each worker solved once), *end* = idle after the "
        "drive, the cancel of leftover jobs and the clients' channels closed; *peak* = the highest sample.")
    res, s = summary["resources"], summary
    verdict = ("**no growth**: the RSS floor (lowest sample) of the drive's last quarter is within tolerance of its "
               "second quarter's, fds and threads peaked no higher in the second half of the drive than in the first, "
               "and open fds returned to their start level"
               if not s["growth"] else "**growth**: " + "; ".join(s["growth"]))
    L += ["## Summary", "",
          f"- Drive: {data.get('drive_seconds', 0):.0f} s (stopped by {data.get('stopped_by', '?')}), "
          f"{s['drive_rpcs']} RPCs ({s['drive_rpcs'] / max(data.get('drive_seconds', 1), 1e-9):.0f}/s); "
          f"all phases (warm-up, health checks, cleanup) {data['stats'].total()} RPCs.",
          f"- Unexpected status codes: **{sum(s['unexpected'].values())}**"
          + (" (" + ", ".join(f"{k} {n}" for k, n in s["unexpected"].items()) + ")" if s["unexpected"] else "")
          + f"; answers other than the one expected for a request: **{sum(s['mismatches'].values())}**.",
          f"- Server: {data.get('died') or 'alive to the end'}; exit code after SIGTERM {data.get('exit_code')}; "
          f"{len(data.get('log_problems', []))} warning/error log line(s).",
          f"- Verdict on growth (tolerance: RSS +{TOL_RSS_MB:g} MB or +{100 * TOL_RSS_SHARE:g} %, fds +{TOL_FDS}, "
          f"threads +{TOL_THREADS}): {verdict}.",
          f"- Result: **{'FAIL – ' + '; '.join(failed) if failed else 'PASS'}** (exit code {1 if failed else 0}).", "",
          "## Resources", "",
          "| process: metric | boot | start | end | peak | end − start | first-half peak | second-half peak "
          "| 2nd-quarter low | last-quarter low | second-half trend /min |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in res.items():
        diff = r["end"] - r["start"] if r["end"] is not None and r["start"] is not None else None
        trend = "–" if r["second_half_slope_per_min"] is None else f"{r['second_half_slope_per_min']:+.1f}"
        L.append(f"| {name} | {_fmt(r['boot'], name)} | {_fmt(r['start'], name)} | {_fmt(r['end'], name)} | "
                 f"{_fmt(r['peak'], name)} | {'–' if diff is None else ('+' if diff >= 0 else '') + _fmt(diff, name)} | "
                 f"{_fmt(r['first_half_peak'], name)} | {_fmt(r['second_half_peak'], name)} | "
                 f"{_fmt(r['q2_low'], name)} | {_fmt(r['q4_low'], name)} | {trend} |")
    pids = sorted({w["pid"] for smp in data["samples"] for w in smp["workers"]})
    L += ["", f"Solver worker processes seen: {len(pids)} distinct pids ({WORKERS} at a time; more means workers were "
          "replaced, e.g. killed after a cancel they did not honour within the kill grace)." , ""]
    codes = [c for c in EXPECTED]
    L += ["## Requests by method and status code", "",
          "Latency = client wall time of the call, every code (for `WatchJob`, the stream's lifetime; a dropped stream "
          "counts as CANCELLED).", "",
          "| method | calls | " + " | ".join(codes) + " | unexpected | p50 ms | p95 ms |",
          "|---|---:|" + "---:|" * len(codes) + "---:|---:|---:|"]
    for m, r in s["methods"].items():
        L.append(f"| {m} | {r['calls']} | " + " | ".join(str(r["codes"].get(c, 0)) for c in codes)
                 + f" | {r['unexpected']} | {_ms(r['p50'])} | {_ms(r['p95'])} |")
    # calls started within the drive (cleanup cancels just after it are left out)
    minutes = sorted({mi for per in s["p50_by_minute"].values() for mi in per if mi < math.ceil(args.minutes)})
    L += ["", "Latency p50 (ms) of successful calls by minute of the drive (a rise means slowing down as the database "
          "and the server's state grow):", "",
          "| minute | " + " | ".join(MINUTE_METHODS) + " |", "|---:|" + "---:|" * len(MINUTE_METHODS)]
    for mi in minutes:
        L.append(f"| {mi + 1} | " + " | ".join(_ms(s["p50_by_minute"][m].get(mi)) for m in MINUTE_METHODS) + " |")
    L += ["", "## Operations by kind", "",
          "| kind | operations | RPCs | codes | operation p50 ms | operation p95 ms |", "|---|---:|---:|---|---:|---:|"]
    for k, r in s["kinds"].items():
        L.append(f"| {k} | {r['operations'] or '–'} | {r['rpcs']} | " + ", ".join(f"{c} {n}" for c, n in r["codes"].items())
                 + f" | {_ms(r['p50'])} | {_ms(r['p95'])} |")
    settle_ = data.get("settle") or {}
    L += ["", "## Jobs", "",
          f"- Cancel right after submit, state in the CancelJob answer: {_counts(s['cancel_queued'])}.",
          f"- Cancel once running, the job's end state: {_counts(s['cancel_running_end'])}; CancelJob → ended p50 "
          f"{_ms(s['cancel_to_end_p50'])} ms, p95 {_ms(s['cancel_to_end_p95'])} ms (polled every 50 ms).",
          f"- Dropped watches read {s['watch_events_median'] if s['watch_events_median'] is not None else '–'} events "
          "(median) before the client cancelled the stream.",
          f"- After the drive: {settle_.get('cancelled_at_end', 0)} CancelJob(s) of leftover jobs; nothing queued or running "
          f"after {settle_.get('idle_after_s', '–')} s. Jobs in the database by state: {_counts(data.get('job_states', {}))}."]
    after = data.get("after_count")
    if after and after.get("server") and data.get("end") and data["end"].get("server"):
        L.append(f"- Counting them (ListJobs, every page of up to 1000 jobs, after the end sample) took the server's RSS "
                 f"from {data['end']['server']['rss_mb']:.1f} to {after['server']['rss_mb']:.1f} MB (the *after count* "
                 "sample; not in the peaks above).")
    if s["unexpected_messages"] or s["mismatches"] or s["odd"]:
        L += ["", "## Problems", ""]
        for k, msg in s["unexpected_messages"].items():
            L.append(f"- unexpected `{k}` ({s['unexpected'].get(k, 0)}×), first message: {msg}")
        for k, n in s["mismatches"].items():
            L.append(f"- {k} ({n}×): {s['mismatch_examples'].get(k, '')}")
        for k, n in s["odd"].items():
            L.append(f"- {k} ({n}×) {s['odd_examples'].get(k, '')}")
    L += ["", "## Timeline", "",
          "| t s | sample | RPCs so far | health | server RSS MB | server fds | server threads | workers RSS MB | "
          "workers fds | workers threads | worker pids |",
          "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    samples = data["samples"]
    step = max(1, len(samples) // 40)
    for i, smp in enumerate(samples):
        if smp["label"] == "drive" and i % step and i != len(samples) - 2:
            continue
        srv = smp["server"] or {"rss_mb": 0, "fds": 0, "threads": 0}
        L.append(f"| {smp['t']:.0f} | {smp['label']} | {smp['requests']} | {smp['health']} | {srv['rss_mb']:.1f} | {srv['fds']} | "
                 f"{srv['threads']} | {_sum(smp['workers'], 'rss_mb'):.1f} | {_sum(smp['workers'], 'fds'):.0f} | "
                 f"{_sum(smp['workers'], 'threads'):.0f} | {' '.join(str(w['pid']) for w in smp['workers'])} |")
    probs = data.get("log_problems", [])
    L += ["", "## Server log", "",
          f"Exit code {data.get('exit_code')}; {len(probs)} warning/error line(s)"
          + (":" if probs else ".")]
    for line, n in Counter(probs).most_common(10):
        L.append(f"- {n}× `{line[:240]}`")
    L += machine_lines()
    return "\n".join(L)


def _counts(c: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in c.items()) or "none"


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="length of the drive, minutes (default 10, at most 120)")
    p.add_argument("--max-requests", type=int, default=500_000, help="RPCs of the drive at most (default 500000)")
    p.add_argument("--clients", type=int, default=8, help="client threads (default 8, at most 32)")
    p.add_argument("--sample-every", type=float, default=10.0, help="seconds between /proc samples (default 10)")
    p.add_argument("--queue-size", type=int, default=None, help="the server's queue bound (default: the server's)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to serve on (anything but loopback is refused)")
    p.add_argument("--timeout", type=float, default=60.0, help="deadline of each call, seconds (default 60)")
    p.add_argument("--backoff", type=float, default=0.2, help="pause after RESOURCE_EXHAUSTED, seconds (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the clients' random choices (default 0)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="Markdown report; the samples and counts go to a .json next to it")
    args = p.parse_args(argv)
    args.host = loopback_host(args.host)
    if not (0 < args.minutes <= 120) or not (1 <= args.max_requests <= 5_000_000):
        raise SystemExit("soak: --minutes must be in (0, 120] and --max-requests in [1, 5000000]")
    if not (1 <= args.clients <= 32) or not (1 <= args.sample_every <= 600):
        raise SystemExit("soak: --clients must be in [1, 32] and --sample-every in [1, 600] s")

    with tempfile.TemporaryDirectory(prefix="lepton-soak-") as tmp:
        data = run(args, Path(tmp))
    summary = summarize(data)
    failed = []
    if summary["unexpected"]:
        failed.append(f"{sum(summary['unexpected'].values())} unexpected status code(s)")
    if summary["mismatches"]:
        failed.append(f"{sum(summary['mismatches'].values())} answer(s) other than expected")
    if data.get("died"):
        failed.append(data["died"])
    elif data.get("exit_code") != 0:
        failed.append(f"the server's exit code after SIGTERM was {data.get('exit_code')}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report(data, summary, args, failed) + "\n", encoding="utf-8")
    raw = {k: v for k, v in data.items() if k != "stats"}
    raw.update(summary=summary, settings=vars(args), failed=failed)
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"[soak] wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)
    print(out.read_text(encoding="utf-8"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
