"""The job manager: a bounded queue of solve jobs dispatched to the worker pool.

Jobs are persisted in the store before they are acknowledged; their state changes, progress
and results are written back as they happen, and watchers (``WatchJob`` streams, the unary
``Solve``) are fed from an in-memory fan-out (a job another server runs is followed through the
store instead).

Several servers may share one (PostgreSQL) store: each job belongs to the server that accepted it
(its ``owner``), which claims it atomically before running it and renews its lease by heartbeat;
a cancel through another server reaches the owner at its next heartbeat; a job whose owner's
lease expired is failed (it was running) or taken over and run (it had not started).

Fair use: a tenant may hold at most ``tenant_max_queued`` waiting jobs and run at most
``tenant_max_running`` at once, so one caller cannot fill the queue or every worker; a cancelled
waiting job leaves the queue at once. Progress reaching watchers is throttled
(``min_event_interval``) so a fast stream of HiGHS callbacks cannot flood a client; new
incumbents are always forwarded unless they arrive faster than that interval, in which case the
newest one wins: it goes with the next event past the interval or, at the latest, before the
job's end (so the last progress event a watcher sees carries the solve's best plan).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lepton_alloc.models.result import MarketValue, Result, StepValue
from lepton_alloc.models.scenario import Scenario, entry_columns, parse_scenario
from lepton_alloc.models.status import JobState, Progress, SolveStatus

from .limits import RETRY_MAX_SECONDS, TypicalSeconds
from .store import DEFAULT_TENANT, AuditRecord, JobRecord, Store
from .sweeps import SweepJobs
from .workers import ExplainPart, ExplainTask, SolveTask, SweepTask, WorkerPool

log = logging.getLogger("lepton_alloc.jobs")

RECENT_RESULTS = 64  # results kept in memory for the unary Solves that wait on them (a cancelled one's stays until pushed out)
# A solve's hard wall-clock limit is its time limit + hard_margin + this much per entry column:
# building and transferring the model is not covered by the HiGHS time limit (about 1.2e-4 s
# per column measured at 5,000 markets; bench/results/service_overhead.md), so large models get
# room for it, with a 4x safety factor, instead of being killed before HiGHS even starts.
MODEL_SECONDS_PER_COLUMN = 5e-4
# A worker that solved a model with at least this many entry columns exits instead of collecting
# the dead model (seconds of garbage collection at 1,000+ markets); a fresh one takes its place.
RETIRE_AFTER_COLUMNS = 10_000
# Servers sharing a database: a server with a free worker takes a solve another server accepted
# this long ago and has not started (that server's workers are busy).
TAKE_AFTER_SECONDS = 1.0


class QueueFull(Exception):
    """The bounded job queue is full (mapped to RESOURCE_EXHAUSTED, with ``retry_after``: the
    seconds until a place is likely to free, sent to the caller as a ``google.rpc.RetryInfo``)."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class Draining(Exception):
    """The server is shutting down and accepts no new work (mapped to UNAVAILABLE)."""


class EventKind(StrEnum):
    """What a watched job reports: a state change, solver progress, or its end."""

    STATE = "state"
    PROGRESS = "progress"
    DONE = "done"


@dataclass
class JobEventMsg:
    kind: EventKind
    job: JobRecord | None = None
    progress: Progress | None = None


@dataclass
class _Runtime:
    job_id: str
    task: SolveTask | ExplainTask | SweepTask
    hard_limit: float  # seconds of wall clock before the worker is killed
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    watchers: list[queue.Queue[JobEventMsg]] = field(default_factory=list)
    last_emit: float = 0.0
    last_persist: float = 0.0
    pending_progress: Progress | None = None  # the newest progress held back by min_event_interval
    keep_result: bool = False  # a unary Solve waits: keep the typed result for take_result
    part: ExplainPart | None = None  # an explanation chunk's answer
    error: str = ""
    on_item: Any = None  # a sweep chunk: called with each variant's answer
    tenant: str = ""  # whose job it is ("" for the parts of an explanation or a sweep: their job counts)
    moved: bool = False  # taken by another server with a free worker: followed through the store


@dataclass
class SolveOptions:
    time_limit_seconds: float | None = None
    mip_rel_gap: float | None = None
    debug_ignore_cancel_seconds: float = 0.0


class JobManager(SweepJobs):
    def __init__(
        self,
        store: Store,
        pool: WorkerPool,
        *,
        queue_size: int = 16,
        max_time_limit: float = 300.0,
        kill_grace: float = 1.5,
        hard_margin: float = 30.0,
        min_event_interval: float = 0.1,
        metrics: Any = None,
        lease_seconds: float = 30.0,
        tenant_max_queued: int = 0,
        tenant_max_running: int = 0,
    ):
        self.store = store
        self.pool = pool
        self.queue_size = queue_size
        self.max_time_limit = max_time_limit
        self.kill_grace = kill_grace
        self.hard_margin = hard_margin
        self.min_event_interval = min_event_interval
        self.metrics = metrics
        self.lease_seconds = lease_seconds
        # 0 = no cap beyond the queue's and the workers'
        self.tenant_max_queued = tenant_max_queued or queue_size
        self.tenant_max_running = tenant_max_running or len(pool.workers)
        # this server's identity as a job owner: unique per start, readable in job histories
        self.server_id = f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._pending: list[str] = []  # waiting job and part ids, oldest first
        self._running_by_tenant: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        # the heartbeat's own clock: ``_wake`` is notified at every enqueue and release, and
        # waiting on it ran the heartbeat's three statements after every job
        self._heartbeat_stop = threading.Event()
        self._task_seconds = TypicalSeconds()  # a worker task's wall time, for the retry delay
        self._next_turn = 0.0  # monotonic time of the last retry turn handed to a refused call
        self.heartbeat_error = ""  # the store's last failure at a heartbeat ("" = fine)
        self._last_take = 0.0
        self._runtime: dict[str, _Runtime] = {}
        self._draining = False
        self._threads: list[threading.Thread] = []
        self._results: OrderedDict[str, Result] = OrderedDict()  # newest last, bounded
        self._sweeps = {}
        # where sweep chunks run: None = this pool (SweepJobs._pool_phase), else an executor's
        # phase runner with the same signature (server/ray_executor.py)
        self.sweep_executor: Callable[..., list[str]] | None = None
        self.sweep_executor_name = "the local worker pool"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for w in self.pool.workers:
            t = threading.Thread(target=self._dispatch, args=(w,), name=f"dispatch-{w.index}", daemon=True)
            t.start()
            self._threads.append(t)
        threading.Thread(target=self._heartbeat, name="lease-heartbeat", daemon=True).start()

    def _heartbeat(self) -> None:
        """Every third of a lease: renew this server's leases, pass on cancels asked through other
        servers, and deal with jobs whose owner stopped renewing (docs: one database, many servers)."""
        period = min(2.0, max(0.2, self.lease_seconds / 3.0))
        while not self._stopping:
            try:
                for job_id in self.store.renew_leases(self.server_id, self.lease_seconds):
                    self._cancel_local(job_id)
                if self.store.shared:
                    self._notice_moved()
                failed, taken = self.store.take_over_expired(
                    self.server_id, self.lease_seconds, "the server running this job stopped (its lease expired)")
                if failed:
                    log.warning("failed %d job(s) of a stopped server: %s", len(failed), ", ".join(failed))
                for job in taken:
                    log.info("took over queued job %s of a stopped server", job.job_id)
                    self._adopt(job)
                self.heartbeat_error = ""
            except Exception as exc:  # noqa: BLE001 - the store may be down; health reports it
                self.heartbeat_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.error("lease heartbeat failed: %s", self.heartbeat_error)
            self._heartbeat_stop.wait(period)

    def _notice_moved(self) -> None:
        """Waiting jobs of this server that another server took (it had a free worker) leave the
        queue here and are followed through the store, for the callers waiting on them."""
        with self._lock:
            waiting = [j for j in self._pending if (rt := self._runtime.get(j)) is not None and rt.tenant]
        owners = self.store.owners(waiting)
        for job_id, owner in owners.items():
            if owner and owner != self.server_id:
                with self._lock:
                    if job_id not in self._pending:
                        continue
                    self._pending.remove(job_id)
                    rt = self._runtime[job_id]
                self._follow_moved(rt)

    def _follow_moved(self, rt: _Runtime) -> None:
        """Feed this server's watchers of a job another server runs, until it ends."""
        rt.moved = True

        def follow() -> None:
            try:
                job = self.store.get_job(rt.job_id)
                for msg in self._follow(job, None):
                    self._publish(rt, msg)
            except Exception:  # noqa: BLE001 - the store may fail; the job itself goes on elsewhere
                log.exception("following moved job %s", rt.job_id)
            finally:
                rt.done.set()
                with self._lock:
                    self._runtime.pop(rt.job_id, None)

        threading.Thread(target=follow, name=f"follow-{rt.job_id[:8]}", daemon=True).start()

    def _take_waiting(self) -> None:
        """An idle dispatcher of a server sharing its database takes a job another server has
        left waiting (at most one a second per server)."""
        with self._lock:
            if time.monotonic() - self._last_take < 1.0:
                return
            self._last_take = time.monotonic()
        try:
            for job in self.store.take_waiting(self.server_id, self.lease_seconds, waited=TAKE_AFTER_SECONDS):
                log.info("took waiting job %s from another server", job.job_id)
                self._adopt(job)
        except Exception as exc:  # noqa: BLE001 - sharing is an optimisation; the heartbeat reports the store
            log.warning("could not take waiting jobs: %s", exc)

    def _adopt(self, job: JobRecord) -> None:
        """Run a queued solve taken from another server (stopped, or busy), as it was asked for."""
        try:
            opts = json.loads(job.options_json)
            rt = self._solve_runtime(job.job_id, parse_scenario(json.loads(job.scenario_json)),
                                     float(min(opts["time_limit_seconds"], self.max_time_limit)),
                                     float(opts["mip_rel_gap"]), job.tenant)
        except Exception as exc:  # noqa: BLE001
            self._finish(job.job_id, JobState.FAILED, error=f"could not take the job over: {exc}")
            return
        with self._lock:
            self._enqueue(rt)

    def drain(self, grace: float) -> None:
        """Stop accepting work; let running jobs finish within ``grace``, then cancel the rest."""
        with self._lock:
            self._draining = True
            runtimes = list(self._runtime.values())
            sweeps = list(self._sweeps.values())
        deadline = time.monotonic() + grace
        for sw in sweeps:  # a sweep's answers so far stay stored; the rest is not waited for
            sw.cancel.set()
        for rt in runtimes:
            rt.done.wait(max(0.0, deadline - time.monotonic()))
        for rt in runtimes:
            if not rt.done.is_set():
                rt.cancel.set()
        for rt in runtimes:
            rt.done.wait(self.kill_grace + 2.0)
        for sw in sweeps:
            sw.done.wait(self.kill_grace + 5.0)
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._heartbeat_stop.set()

    @property
    def draining(self) -> bool:
        return self._draining

    def queue_depth(self) -> int:
        """Jobs and parts waiting for a worker."""
        return len(self._pending)

    def _enqueue(self, rt: _Runtime) -> None:
        """Queue a job or a part for the dispatchers (the caller holds the lock)."""
        self._runtime[rt.job_id] = rt
        self._pending.append(rt.job_id)
        self._wake.notify_all()
        self._count_waiting()

    def _count_waiting(self) -> None:
        if self.metrics:
            self.metrics.queue_depth.set(len(self._pending))

    def _solve_runtime(self, job_id: str, scenario: Scenario, time_limit: float, gap: float, tenant: str,
                       debug_ignore_cancel_seconds: float = 0.0) -> _Runtime:
        """A solve job's task and limits, for a job accepted here or taken from another server."""
        columns = entry_columns(scenario)  # model size, for the hard limit
        task = SolveTask(job_id, scenario, time_limit, gap, debug_ignore_cancel_seconds,
                         retire_after=columns >= RETIRE_AFTER_COLUMNS)
        # the solve, then at most half its time again explaining an infeasible scenario
        return _Runtime(job_id, task, self._hard_limit(1.5 * time_limit, columns), tenant=tenant)

    def _admit(self, tenant: str) -> None:
        """Refuse new work (QueueFull) when the queue or the tenant's share of it is full; under
        the lock. A tenant at its cap does not block another tenant."""
        if len(self._pending) >= self.queue_size:
            raise QueueFull(f"the solve queue is full ({self.queue_size} jobs waiting); retry later", self._retry_turn())
        mine = sum(1 for j in self._pending if (rt := self._runtime.get(j)) is not None and rt.tenant == tenant)
        mine += sum(1 for sw in self._sweeps.values() if not sw.started and sw.tenant == tenant)
        if mine >= self.tenant_max_queued:
            raise QueueFull(f"tenant {tenant!r} has {mine} jobs waiting (limit {self.tenant_max_queued} per "
                            "tenant); retry when one has started", self._retry_turn())

    def retry_after(self) -> float:
        """Seconds until a waiting job is likely to start (and a place in the queue to free): a
        worker task's typical length over the number of workers, within 0.05-30 s."""
        return self._task_seconds.retry_delay(1 / len(self.pool.workers))

    def _retry_turn(self) -> float:
        """The retry delay of one refused call; under the lock. Refused callers are given turns
        one place apart, like a queue of their own: the first waits until a place is likely to
        free (:meth:`retry_after`), the next one place later, and so on. With one delay for all,
        a crowd of refused callers came back together and was refused again together (16 clients
        on 40 ms solves: about 1,270 refusals in 10 s, bench/results/load.md)."""
        now = time.monotonic()
        # the line is never longer than the longest delay: a burst of refusals by callers that
        # never come back does not keep later callers waiting the longest delay
        self._next_turn = min(max(now, self._next_turn) + self.retry_after(), now + RETRY_MAX_SECONDS)
        return self._next_turn - now

    def _check_open(self) -> None:
        """Refuse new solves (Draining) once the server is shutting down; under the lock."""
        if self._draining:
            raise Draining("the server is shutting down and accepts no new solves")

    def check_room(self, tenant: str) -> None:
        """Refuse early (QueueFull, Draining) when a new job would be refused now: called before a
        request's scenario is parsed and validated, so that a refusal under load costs a lock and
        a count, not a validation (a client retrying every 50 ms while the queue is full took CPU
        from the solves: bench/results/load_example.md). Not binding: :meth:`submit` checks again
        under the same lock when it queues the job."""
        with self._lock:
            self._check_open()
            self._admit(tenant)

    # ------------------------------------------------------------------ requests
    def effective_time_limit(self, scenario: Scenario, requested: float | None) -> float:
        limit = scenario.solver.time_limit_seconds if requested is None or requested <= 0 else requested
        return float(min(limit, self.max_time_limit))

    def submit(
        self,
        scenario: Scenario,
        *,
        options: SolveOptions,
        request_id: str = "",
        scenario_name: str = "",
        scenario_revision: int = 0,
        who: str = "",
        tenant: str = DEFAULT_TENANT,
        audit: AuditRecord | None = None,
        keep_result: bool = False,
    ) -> tuple[JobRecord, bool]:
        """Persist and enqueue a job; idempotent on ``request_id`` within the tenant (same body →
        same job). ``audit`` is stored with a new job, in its transaction (see
        :meth:`Store.create_job`). ``keep_result``: a unary Solve waits for this job, so its
        typed result is kept for :meth:`take_result` (others are read from the store)."""
        time_limit = self.effective_time_limit(scenario, options.time_limit_seconds)
        gap = scenario.solver.mip_rel_gap if options.mip_rel_gap is None else options.mip_rel_gap
        scenario_json = scenario.canonical_json()  # computed once; the hash below reuses it
        opts = {"time_limit_seconds": time_limit, "mip_rel_gap": gap}
        # the request's identity for idempotency: the scenario's hash, not its text again
        body = json.dumps({"scenario_sha256": scenario.sha256(), "options": {
            "time_limit_seconds": options.time_limit_seconds, "mip_rel_gap": options.mip_rel_gap},
            "scenario_name": scenario_name, "scenario_revision": scenario_revision}, sort_keys=True)
        request_hash = hashlib.sha256(body.encode()).hexdigest()
        # the task outside the lock (model size); queued only if the job is new
        rt = self._solve_runtime(uuid.uuid4().hex, scenario, time_limit, gap, tenant, options.debug_ignore_cancel_seconds)
        rt.keep_result = keep_result
        with self._lock:
            self._check_open()
            if request_id:
                existing = self.store.find_job_by_request_id(request_id, tenant=tenant)
                if existing is not None:
                    # the store decides: same body → same job, different body → conflict
                    job, created = self.store.create_job(self._record(
                        existing.job_id, request_id, request_hash, scenario, scenario_name,
                        scenario_revision, scenario_json, opts, who, tenant))
                    return job, created
            self._admit(tenant)
            job, created = self.store.create_job(self._record(
                rt.job_id, request_id, request_hash, scenario, scenario_name, scenario_revision,
                scenario_json, opts, who, tenant), lease_seconds=self.lease_seconds, audit_record=audit)
            if created:
                self._enqueue(rt)
        return job, created

    def _record(self, job_id: str, request_id: str, request_hash: str, sc: Scenario, name: str, revision: int,
                scenario_json: str, opts: dict[str, Any], who: str, tenant: str) -> JobRecord:
        return JobRecord(
            job_id=job_id, state=JobState.QUEUED, request_id=request_id, request_hash=request_hash,
            scenario_name=name or sc.name, scenario_revision=revision, scenario_sha256=sc.sha256(),
            scenario_json=scenario_json, options_json=json.dumps(opts), created_at=time.time(),
            started_at=None, finished_at=None, result_json=None, error=None, progress_json=None, who=who,
            tenant=tenant, owner=self.server_id,
        )

    def cancel(self, job_id: str, tenant: str | None = None) -> JobRecord:
        """Cancel a job of ``tenant`` (None: any): a waiting job leaves the queue at once; a
        running one is interrupted; a job another live server runs is cancelled by that server at
        its next heartbeat (the answer still says RUNNING)."""
        job = self.store.get_job(job_id, tenant=tenant)  # NotFound propagates
        if job.state.terminal:
            return job
        where = self._cancel_local(job_id)
        if where == "waiting":
            job = self._finish(job_id, JobState.CANCELLED, detail="cancelled before it started")
            with self._lock:
                self._runtime.pop(job_id, None)
            return job
        if where:
            job = self.store.get_job(job_id)
            if job.state == JobState.QUEUED:  # between the queue and its claim
                return self._finish(job_id, JobState.CANCELLED, detail="cancelled before it started")
            return job
        alive = job.owner and job.owner != self.server_id and (job.lease_until or 0) > time.time()
        if alive:
            self.store.request_cancel(job_id)
            if job.state == JobState.QUEUED:  # its owner's claim will fail: it never starts
                return self._finish(job_id, JobState.CANCELLED, detail="cancelled before it started")
            return self.store.get_job(job_id)
        # nobody runs it (left over by a stopped server): mark it
        return self._finish(job_id, JobState.CANCELLED, detail="cancelled by request")

    def _cancel_local(self, job_id: str) -> str:
        """Interrupt a job or sweep this server runs: "waiting" (it left the queue: its slot is
        free at once), "running", or "" when it is not this server's."""
        if self.cancel_sweep(job_id):  # its coordinator stops the chunks and ends the job
            return "running"
        with self._lock:
            rt = self._runtime.get(job_id)
            if rt is None or rt.moved:
                return ""
            rt.cancel.set()
            if job_id in self._pending:
                self._pending.remove(job_id)
                self._count_waiting()
                return "waiting"
        return "running"

    def wait(self, job_id: str, timeout: float | None) -> bool:
        with self._lock:
            rt = self._runtime.get(job_id)
        if rt is None:
            return True
        return rt.done.wait(timeout)

    def take_result(self, job_id: str) -> Result | None:
        """The typed result of a job that just ended in this process (None if not kept): the
        unary Solve answers from it without reading the stored JSON back."""
        with self._lock:
            return self._results.pop(job_id, None)

    def _keep_result(self, job_id: str, result: Result) -> None:
        with self._lock:
            self._results[job_id] = result
            while len(self._results) > RECENT_RESULTS:
                self._results.popitem(last=False)

    def watch(self, job_id: str, stop: threading.Event | None = None) -> Iterator[JobEventMsg]:
        """Current state, then live events until the job ends (or ``stop`` is set)."""
        q: queue.Queue[JobEventMsg] = queue.Queue()
        with self._lock:
            rt = self._runtime.get(job_id)
            if rt is not None:
                rt.watchers.append(q)
        try:
            job = self.store.get_job(job_id)
            yield JobEventMsg(EventKind.STATE, job)
            if job.state.terminal:
                yield JobEventMsg(EventKind.DONE, self.store.get_job(job_id))
                return
            if rt is None:  # another server runs it (or nobody, until a take-over): follow the store
                yield from self._follow(job, stop)
                return
            while stop is None or not stop.is_set():
                try:
                    msg = q.get(timeout=0.2)
                except queue.Empty:
                    continue
                yield msg
                if msg.kind == EventKind.DONE:
                    return
        finally:
            if rt is not None:
                with self._lock:
                    if q in rt.watchers:
                        rt.watchers.remove(q)

    def _follow(self, job: JobRecord, stop: threading.Event | None) -> Iterator[JobEventMsg]:
        """Events of a job this server does not run, read from the store twice a second."""
        while stop is None or not stop.is_set():
            time.sleep(0.5)
            now = self.store.get_job(job.job_id)
            if now.state.terminal:
                yield JobEventMsg(EventKind.DONE, now)
                return
            if now.state != job.state:
                yield JobEventMsg(EventKind.STATE, now)
            if now.progress_json and now.progress_json != job.progress_json:
                yield JobEventMsg(EventKind.PROGRESS, progress=Progress.from_event(json.loads(now.progress_json)))
            job = now

    # ------------------------------------------------------------------ internals
    def _publish(self, rt: _Runtime, msg: JobEventMsg) -> None:
        with self._lock:
            watchers = list(rt.watchers)
        for q in watchers:
            q.put(msg)

    def _finish(self, job_id: str, state: JobState, *, audit_of: Callable[[JobRecord], AuditRecord] | None = None,
                **kw: Any) -> JobRecord:
        """End a job or a sweep (``kw`` as for :meth:`Store.set_job_state`). ``audit_of`` makes the
        record of its end: stored with the move, or on its own when the job had ended already."""
        try:
            job = self.store.set_job_state(job_id, state, finished_at=time.time(), audit_of=audit_of, **kw)
        except ValueError:  # already terminal (a race between cancel and completion, or a take-over)
            job = self.store.get_job(job_id)
            if audit_of is not None:
                try:
                    self.store.append_audit(audit_of(job))
                except Exception:  # noqa: BLE001 - the end stands; its record is logged as missing
                    log.exception("could not append the audit record of job %s", job_id)
        with self._lock:
            rt = self._runtime.get(job_id)
        if rt is not None:
            self._publish(rt, JobEventMsg(EventKind.DONE, job))
            rt.done.set()
        return job

    def _next(self) -> _Runtime | None:
        """The oldest waiting job whose tenant may run another (None: the server stops). Idle on
        a shared database, it takes a job another server has left waiting."""
        while True:
            with self._wake:
                if self._stopping:
                    return None
                picked = self._pick()
                if picked is not None:
                    return picked
                notified = self._wake.wait(1.0)
                idle = not (notified or self._pending or self._stopping or self._draining)
            if idle and self.store.shared:
                self._take_waiting()

    def _pick(self) -> _Runtime | None:
        """Under the lock: take the oldest runnable job off the queue (stale ids are dropped)."""
        i = 0
        while i < len(self._pending):
            rt = self._runtime.get(self._pending[i])
            if rt is None:
                del self._pending[i]
                continue
            if not rt.tenant or self._running_by_tenant[rt.tenant] < self.tenant_max_running:
                del self._pending[i]
                if rt.tenant:
                    self._running_by_tenant[rt.tenant] += 1
                self._count_waiting()
                return rt
            i += 1
        return None

    def _dispatch(self, worker: Any) -> None:
        while True:
            rt = self._next()
            if rt is None:
                return
            job_id = rt.job_id
            if rt.cancel.is_set():
                self._release(rt)
                if isinstance(rt.task, (ExplainTask, SweepTask)):
                    rt.done.set()
                continue
            try:
                if isinstance(rt.task, (ExplainTask, SweepTask)):
                    self._run_part(worker, rt)
                    continue
                self._run(worker, rt)
            except Exception:  # noqa: BLE001 - a job failure must never stop the dispatcher
                log.exception("job %s failed in dispatch", job_id)
                self._finish(job_id, JobState.FAILED, error="internal error while running the job")
            finally:
                self._release(rt)
                if not rt.moved:  # a moved job's follower keeps it until the job ends
                    with self._lock:
                        self._runtime.pop(job_id, None)

    def _release(self, rt: _Runtime) -> None:
        """The job's tenant may run another."""
        if rt.tenant:
            with self._wake:
                self._running_by_tenant[rt.tenant] -= 1
                self._wake.notify_all()

    def _run(self, worker: Any, rt: _Runtime) -> None:
        job_id, task = rt.job_id, rt.task
        # the claim: only the owner moves its own queued job to RUNNING, once
        claimed = self.store.claim_job(job_id, self.server_id, self.lease_seconds,
                                       detail=f"running on worker {worker.index} of server {self.server_id}")
        if claimed is None:  # cancelled meanwhile, or taken by another server with a free worker
            now = self.store.get_job(job_id)
            if not now.state.terminal and now.owner != self.server_id:
                self._follow_moved(rt)
                return
            self._finish(job_id, JobState.CANCELLED, detail="cancelled before it started")
            return
        job = claimed
        self._publish(rt, JobEventMsg(EventKind.STATE, job))
        if self.metrics:
            self.metrics.active_workers.inc()
        started = time.monotonic()
        rt.last_persist = started  # stored once a second, from the first second on: a short solve's result says it all

        def on_progress(progress: Progress) -> None:
            now = time.monotonic()
            if now - rt.last_emit >= self.min_event_interval:
                rt.last_emit = now
                rt.pending_progress = None
                self._publish(rt, JobEventMsg(EventKind.PROGRESS, progress=progress))
            else:  # the newest one wins: sent with the next event past the interval, or when the solve ends
                rt.pending_progress = progress
            if now - rt.last_persist >= 1.0:
                rt.last_persist = now
                self.store.set_job_progress(job_id, json.dumps(progress.to_dict()))

        try:
            outcome = worker.run(task, on_progress, rt.cancel, rt.hard_limit, self.kill_grace)
        finally:
            if self.metrics:
                self.metrics.active_workers.dec()
        if rt.pending_progress is not None:  # held back by the interval: HiGHS's last word (often its best plan)
            self._publish(rt, JobEventMsg(EventKind.PROGRESS, progress=rt.pending_progress))
            rt.pending_progress = None
        elapsed = time.monotonic() - started
        self._learn_task_seconds(elapsed)
        if outcome.kind == "result" and outcome.result is not None:
            result = outcome.result
            cancelled = result.status == SolveStatus.CANCELLED or rt.cancel.is_set()
            state = JobState.CANCELLED if cancelled else JobState.SUCCEEDED
            if rt.keep_result:
                self._keep_result(job_id, result)
            if self.metrics:  # counted before waiters wake up
                self.metrics.observe_solve(result.status.value, elapsed)
            self._finish(job_id, state, result_json=result.to_json(), detail=f"solve status {result.status}",
                         audit_of=self._audit_of(result.status, result.objective_value,
                                                 result.solver.get("highs_version", "")))
        else:
            state = JobState.CANCELLED if rt.cancel.is_set() else JobState.FAILED
            if self.metrics:
                self.metrics.observe_solve(state.lower(), elapsed)
            self._finish(job_id, state, error=outcome.error, detail=outcome.error,
                         audit_of=self._audit_of(state.lower(), None, ""))

    # ------------------------------------------------------------------ explanations
    def explain(self, job: JobRecord, scenario: Scenario, result: Result, *, relative_step: float,
                time_budget: float, step_values: bool, market_values: bool,
                cancelled: Callable[[], bool] = lambda: False) -> Result:
        """Step values and market values of an ended job's plan (docs/model.md §3), computed by
        every worker at once, each on its share of the re-solves, within ``time_budget`` seconds.

        The answers are merged into a copy of ``result``; a re-solve the budget cut short is
        marked by the model code, never dropped."""
        time_budget = float(min(time_budget, self.max_time_limit))
        columns = entry_columns(scenario)
        chunks = len(self.pool.workers)
        runtimes = self._enqueue_parts([_Runtime(task.job_id, task, self._hard_limit(time_budget, columns)) for task in (
            ExplainTask(f"{job.job_id}:explain:{uuid.uuid4().hex[:8]}", scenario, result, chunk, chunks, relative_step,
                        time_budget, step_values, market_values, retire_after=columns >= RETIRE_AFTER_COLUMNS)
            for chunk in range(chunks))], refuse_when_draining=True)
        deadline = time.monotonic() + time_budget + self.hard_margin + 5.0
        self._await_parts(runtimes, lambda: cancelled() or time.monotonic() > deadline)
        for rt in runtimes:
            if rt.error:
                raise RuntimeError(rt.error)
        return _merged(result, [rt.part for rt in runtimes if rt.part is not None])

    def _enqueue_parts(self, runtimes: list[_Runtime], *, refuse_when_draining: bool = False) -> list[_Runtime]:
        """Queue the parts of one piece of work (an explanation's chunks, a sweep's) for the
        dispatchers of every worker; :meth:`_await_parts` waits for them. ``refuse_when_draining``:
        :class:`Draining` instead, when the server is shutting down (new work, not a running sweep's)."""
        with self._lock:
            if refuse_when_draining and self._draining:
                raise Draining("the server is shutting down and accepts no new work")
            for rt in runtimes:
                self._enqueue(rt)
        return runtimes

    @staticmethod
    def _await_parts(runtimes: list[_Runtime], stop: Callable[[], bool]) -> None:
        """Wait until every part has ended; once ``stop`` says so, every part is cancelled."""
        for rt in runtimes:
            while not rt.done.wait(0.1):
                if stop():
                    for other in runtimes:
                        other.cancel.set()

    def _hard_limit(self, solver_seconds: float, columns: int) -> float:
        """Wall-clock seconds before a worker is killed: its solver time, the margin, and room
        for building and transferring a model of ``columns`` entry columns."""
        return solver_seconds + self.hard_margin + MODEL_SECONDS_PER_COLUMN * columns

    def _run_part(self, worker: Any, rt: _Runtime) -> None:
        """A dispatcher runs one part (an explanation chunk, a sweep chunk) on its worker: a
        sweep's answers go to ``rt.on_item`` as they come, an explanation's with the result."""
        started = time.monotonic()
        try:
            outcome = worker.run(rt.task, rt.on_item or (lambda _p: None), rt.cancel, rt.hard_limit, self.kill_grace)
            self._learn_task_seconds(time.monotonic() - started)
            if outcome.kind == "result":
                rt.part = outcome.result if isinstance(outcome.result, ExplainPart) else None
            elif not rt.cancel.is_set():
                rt.error = outcome.error or "a part of the work failed in its worker"
        finally:
            rt.done.set()

    def _learn_task_seconds(self, seconds: float) -> None:
        """A worker's task ended after ``seconds``: a solve, or a part of a sweep or an
        explanation (a waiting job starts when any of them ends), for the retry delay."""
        self._task_seconds.learn(seconds)

    @staticmethod
    def _audit_of(status: str, objective: float | None, solver_version: str) -> Callable[[JobRecord], AuditRecord]:
        """The audit record of an ended job, stored in the transaction that ends it."""
        def record(job: JobRecord) -> AuditRecord:
            return AuditRecord(
                id=None, at=time.time(), who=job.who, job_id=job.job_id,
                scenario_sha256=job.scenario_sha256, solver_version=solver_version,
                options_json=job.options_json, status=status, objective_value=objective,
                tenant=job.tenant, action=job.kind, target=job.job_id,
            )
        return record


def _merged(result: Result, parts: list[ExplainPart]) -> Result:
    """The result with the chunks' step values on its limits and market values in market order."""
    steps: dict[str, list[StepValue]] = {}
    values: dict[str, MarketValue] = {}
    for part in parts:
        for name, found in part.steps.items():
            steps.setdefault(name, []).extend(found)
        values.update((v.market_id, v) for v in part.markets)
    limits = [dataclasses.replace(lim, steps=sorted(steps.get(lim.constraint, []), key=lambda st: st.direction != "down"))
              for lim in result.limits]
    return dataclasses.replace(result, limits=limits,
                               market_values=[values[m.id] for m in result.markets if m.id in values])
