"""Sweep jobs (docs/model.md §7): many variants of one scenario, spread over every worker, warm.

A sweep is one stored job (kind ``sweep``). Its coordinator thread splits the variants into
chunks and queues them on the job queue the solves use, so the worker pool's dispatchers run
them like any other task: each worker keeps the sweep's built model between its chunks
(:class:`~.workers.SweepTask`), so only its first variant builds a model. Every answer is
stored as it arrives (batched) and published to the sweep's watchers; when every variant has an
answer, the summary is computed and the robust plan is evaluated on every variant the same
way; then the summary is stored and the job ends.

An executor other than the local pool (Ray, :mod:`.ray_executor`) replaces only the chunk
runner: the coordinator, storage and streams stay the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from lepton_alloc.models.scenario import Scenario, entry_columns
from lepton_alloc.models.status import JobState
from lepton_alloc.models.sweep import RobustCheck, SweepSpec, SweepSummary, VariantResult, sweep_phases

from .store import DEFAULT_TENANT, AuditRecord, JobRecord, Store, SweepRecord
from .workers import SweepTask

log = logging.getLogger("lepton_alloc.sweeps")

CHUNKS_PER_WORKER = 4  # chunks per worker and phase: small enough to balance, large enough to stay warm
MAX_CHUNK = 25
FLUSH_SECONDS = 0.5  # answers are written to the store in batches at most this often


class SweepEventKind(StrEnum):
    STATE = "state"
    VARIANT = "variant"
    ROBUST = "robust"
    SUMMARY = "summary"
    DONE = "done"


@dataclass
class SweepEventMsg:
    kind: SweepEventKind
    job: JobRecord | None = None
    variant: VariantResult | None = None
    check: RobustCheck | None = None
    summary: SweepSummary | None = None
    done: int = 0
    total: int = 0


@dataclass
class _Sweep:
    job_id: str
    base: Scenario
    spec: SweepSpec
    total: int
    time_limit: float
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    watchers: list[queue.Queue[SweepEventMsg]] = field(default_factory=list)
    results: dict[int, VariantResult] = field(default_factory=dict)
    checks: dict[int, RobustCheck] = field(default_factory=dict)
    pending: list[tuple[str, int, str]] = field(default_factory=list)  # (phase, index, json) not yet stored
    last_flush: float = 0.0
    started: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    tenant: str = ""


def chunks(indices: list[int], workers: int) -> list[list[int]]:
    """Consecutive runs of ``indices``, about CHUNKS_PER_WORKER per worker, at most MAX_CHUNK long."""
    if not indices:
        return []
    size = max(1, min(MAX_CHUNK, math.ceil(len(indices) / (max(1, workers) * CHUNKS_PER_WORKER))))
    return [indices[k:k + size] for k in range(0, len(indices), size)]


class SweepJobs:
    """The sweep half of :class:`~.jobs.JobManager` (a mixin: it shares the manager's queue,
    runtimes, store and workers)."""

    _sweeps: dict[str, _Sweep]
    store: Store
    pool: Any
    queue_size: int
    kill_grace: float
    _lock: threading.Lock
    _pending: list[str]
    _draining: bool
    _runtime: dict[str, Any]
    sweep_executor: Callable[..., list[str]] | None
    sweep_executor_name: str

    if TYPE_CHECKING:  # provided by JobManager
        def effective_time_limit(self, scenario: Scenario, requested: float | None) -> float: ...
        def _record(self, job_id: str, request_id: str, request_hash: str, sc: Scenario, name: str, revision: int,
                    scenario_json: str, opts: dict[str, Any], who: str, tenant: str) -> JobRecord: ...
        def _admit(self, tenant: str) -> None: ...
        lease_seconds: float
        server_id: str
        def _hard_limit(self, solver_seconds: float, columns: int) -> float: ...
        def _enqueue_parts(self, runtimes: list[Any], *, refuse_when_draining: bool = False) -> list[Any]: ...
        @staticmethod
        def _await_parts(runtimes: list[Any], stop: Callable[[], bool]) -> None: ...
        @staticmethod
        def _audit_of(status: str, objective: float | None,
                      solver_version: str) -> Callable[[JobRecord], AuditRecord]: ...
        def _finish(self, job_id: str, state: JobState, *,
                    audit_of: Callable[[JobRecord], AuditRecord] | None = None, **kw: Any) -> JobRecord: ...

    def submit_sweep(self, base: Scenario, spec: SweepSpec, *, request_id: str = "", scenario_name: str = "",
                     scenario_revision: int = 0, who: str = "", tenant: str = DEFAULT_TENANT) -> tuple[JobRecord, bool]:
        """Persist a sweep job and start its coordinator; idempotent on ``request_id`` within the tenant."""
        from .jobs import Draining

        time_limit = self.effective_time_limit(base, spec.time_limit_seconds)
        spec = spec.model_copy(update={"time_limit_seconds": time_limit})  # the server's cap, for every variant
        spec_json = json.dumps(spec.to_dict(), sort_keys=True)
        body = json.dumps({"scenario_sha256": base.sha256(), "sweep": spec_json, "scenario_name": scenario_name,
                           "scenario_revision": scenario_revision}, sort_keys=True)
        request_hash = hashlib.sha256(body.encode()).hexdigest()
        total = spec.variant_count + 1
        opts = {"time_limit_seconds": time_limit, "mip_rel_gap": spec.mip_rel_gap if spec.mip_rel_gap is not None
                else base.solver.mip_rel_gap, "variants": total}
        with self._lock:
            if self._draining:
                raise Draining("the server is shutting down and accepts no new sweeps")
            if request_id:
                existing = self.store.find_job_by_request_id(request_id, tenant=tenant)
                if existing is not None:
                    return self.store.create_job(self._record(existing.job_id, request_id, request_hash, base, scenario_name,
                                                              scenario_revision, base.canonical_json(), opts, who, tenant))
            self._admit(tenant)
            job_id = uuid.uuid4().hex
            record = dataclasses.replace(self._record(job_id, request_id, request_hash, base, scenario_name,
                                                      scenario_revision, base.canonical_json(), opts, who, tenant),
                                         kind="sweep")
            job, created = self.store.create_job(record, SweepRecord(spec_json, total), lease_seconds=self.lease_seconds)
            if created:
                sw = _Sweep(job.job_id, base, spec, total, time_limit, tenant=tenant)
                self._sweeps[job.job_id] = sw
                threading.Thread(target=self._coordinate, args=(sw,), name=f"sweep-{job.job_id[:8]}", daemon=True).start()
        return job, created

    def cancel_sweep(self, job_id: str) -> bool:
        """Cancel a running sweep of this server; False if it is not one."""
        with self._lock:
            sw = self._sweeps.get(job_id)
        if sw is None:
            return False
        sw.cancel.set()
        return True

    def sweep_running(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._sweeps

    # ------------------------------------------------------------------ the coordinator
    def _coordinate(self, sw: _Sweep) -> None:
        state, detail, error = JobState.SUCCEEDED, "", None
        runner = self.sweep_executor or self._pool_phase

        def run_phase(phase: str, indices: list[int], summary: SweepSummary | None, take: Callable[[Any], None]) -> list[str]:
            return runner(sw.job_id, sw.base, sw.spec, phase, indices, summary, take, sw.cancel, sw.time_limit)

        def on_item(phase: str, item: Any) -> None:
            if not sw.started:
                self._sweep_start(sw)
            self._sweep_answer(sw, phase, item)

        try:
            results, summary = sweep_phases(sw.base, sw.spec, run_phase, on_item, sw.cancel.is_set)
            for r in results:  # answers made up for variants without one (errors) are stored too
                if r.index not in sw.results:
                    self._sweep_answer(sw, "variant", r)
            for c in summary.robust_checks:
                if c.index not in sw.checks:
                    self._sweep_answer(sw, "robust", c)
            self._flush(sw, force=True)
            self.store.set_sweep_summary(sw.job_id, json.dumps(summary.to_dict()))
            self._sweep_publish(sw, SweepEventMsg(SweepEventKind.SUMMARY, summary=summary, done=len(sw.results),
                                                  total=sw.total))
            if sw.cancel.is_set():
                state, detail = JobState.CANCELLED, f"cancelled after {sum(r.status != 'error' for r in results)} of {sw.total} variants"
            else:
                detail = f"{len(results)} variants, {summary.with_plan} with a plan"
        except Exception:  # noqa: BLE001 - a sweep failure must end its job, never the server
            log.exception("sweep %s failed", sw.job_id)
            state, error, detail = JobState.FAILED, "internal error while running the sweep", "internal error"
        try:
            self._flush(sw, force=True)
        except Exception:  # noqa: BLE001
            log.exception("could not store the last answers of sweep %s", sw.job_id)
        job = self._finish(sw.job_id, state, error=error, detail=detail, owner=self.server_id,
                           audit_of=self._audit_of(state.lower(), None, ""))
        self._sweep_publish(sw, SweepEventMsg(SweepEventKind.DONE, job=job, done=len(sw.results), total=sw.total))
        sw.done.set()
        with self._lock:
            self._sweeps.pop(sw.job_id, None)

    def _pool_phase(self, sweep_id: str, base: Scenario, spec: SweepSpec, phase: str, indices: list[int],
                    summary: SweepSummary | None, on_item: Callable[[Any], None], cancel: threading.Event,
                    time_limit: float) -> list[str]:
        """The local worker pool: chunks on the job queue, answered by every worker."""
        from .jobs import _Runtime

        columns = entry_columns(base)
        runtimes = []
        for part in chunks(indices, len(self.pool.workers)):
            task = SweepTask(f"{sweep_id}:{phase}:{uuid.uuid4().hex[:8]}", sweep_id, base, spec, part, phase,
                             summary.robust_plan if summary else None, summary.robust_out if summary else None)
            rt = _Runtime(task.job_id, task, self._hard_limit(len(part) * (time_limit + 1.0), columns))
            rt.on_item = on_item
            runtimes.append(rt)
        self._await_parts(self._enqueue_parts(runtimes), cancel.is_set)
        return [rt.error for rt in runtimes if rt.error and not cancel.is_set()]

    def _sweep_start(self, sw: _Sweep) -> None:
        with sw.lock:
            if sw.started:
                return
            sw.started = True
        try:
            job = self.store.set_job_state(sw.job_id, JobState.RUNNING, started_at=time.time(),
                                           detail=f"{sw.total} variants on {self.sweep_executor_name}",
                                           owner=self.server_id)
            self._sweep_publish(sw, SweepEventMsg(SweepEventKind.STATE, job=job, done=len(sw.results), total=sw.total))
        except ValueError:  # cancelled meanwhile
            pass

    def _sweep_answer(self, sw: _Sweep, phase: str, item: Any) -> None:
        with sw.lock:
            if phase == "variant":
                sw.results[item.index] = item
            else:
                sw.checks[item.index] = item
            sw.pending.append((phase, item.index, json.dumps(item.to_dict())))
        if phase == "variant":
            msg = SweepEventMsg(SweepEventKind.VARIANT, variant=item, done=len(sw.results), total=sw.total)
        else:
            msg = SweepEventMsg(SweepEventKind.ROBUST, check=item, done=len(sw.results), total=sw.total)
        self._sweep_publish(sw, msg)
        self._flush(sw)

    def _flush(self, sw: _Sweep, force: bool = False) -> None:
        now = time.monotonic()
        with sw.lock:
            if not sw.pending or (not force and now - sw.last_flush < FLUSH_SECONDS):
                return
            batch, sw.pending, sw.last_flush = sw.pending, [], now
        for phase in ("variant", "robust"):
            items = [(i, text) for p, i, text in batch if p == phase]
            self.store.add_sweep_items(sw.job_id, phase, items)

    def _sweep_publish(self, sw: _Sweep, msg: SweepEventMsg) -> None:
        with self._lock:
            watchers = list(sw.watchers)
        for q in watchers:
            q.put(msg)

    # ------------------------------------------------------------------ watching
    def watch_sweep(self, job_id: str, stop: threading.Event | None = None) -> Iterator[SweepEventMsg]:
        """The sweep's state, every answer stored so far, then live answers, the summary and the ended job."""
        q: queue.Queue[SweepEventMsg] = queue.Queue()
        with self._lock:
            sw = self._sweeps.get(job_id)
            if sw is not None:
                sw.watchers.append(q)
        try:
            job = self.store.get_job(job_id)
            record = self.store.get_sweep(job_id)
            seen: set[tuple[str, int]] = set()
            done = 0
            yield SweepEventMsg(SweepEventKind.STATE, job=job, done=record.done, total=record.total)
            if sw is not None:  # answers still in the coordinator's buffer are in its memory
                with sw.lock:
                    known = [("variant", r) for r in sw.results.values()] + [("robust", c) for c in sw.checks.values()]
            else:
                known = [("variant", VariantResult.from_dict(json.loads(t))) for _, t in self.store.sweep_items(job_id, "variant")]
                known += [("robust", RobustCheck(**json.loads(t))) for _, t in self.store.sweep_items(job_id, "robust")]
            for phase, item in sorted(known, key=lambda pi: (pi[0] != "variant", pi[1].index)):
                seen.add((phase, item.index))
                done += phase == "variant"
                if phase == "variant":
                    yield SweepEventMsg(SweepEventKind.VARIANT, variant=item, done=done, total=record.total)
                else:
                    yield SweepEventMsg(SweepEventKind.ROBUST, check=item, done=done, total=record.total)
            if sw is None:
                if record.summary_json is not None:
                    yield SweepEventMsg(SweepEventKind.SUMMARY, summary=SweepSummary.from_dict(json.loads(record.summary_json)),
                                        done=done, total=record.total)
                yield SweepEventMsg(SweepEventKind.DONE, job=self.store.get_job(job_id), done=done, total=record.total)
                return
            while stop is None or not stop.is_set():
                try:
                    msg = q.get(timeout=0.2)
                except queue.Empty:
                    continue
                key = ("variant", msg.variant.index) if msg.variant else ("robust", msg.check.index) if msg.check else None
                if key is not None and key in seen:
                    continue
                yield msg
                if msg.kind == SweepEventKind.DONE:
                    return
        finally:
            if sw is not None:
                with self._lock:
                    if q in sw.watchers:
                        sw.watchers.remove(q)

