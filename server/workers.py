"""Solve worker processes.

Every solve runs in a worker process, never in the gRPC server's own process (two Pyomo HiGHS
solves in two threads of one process can deadlock in Pyomo's output capture, and grpcio does
not survive a plain fork). Workers are created from a ``forkserver`` started *before* the gRPC
server, with the model package preloaded, so a replacement worker starts quickly and without
inheriting any gRPC state.

Protocol per worker (one duplex pipe, one cancel event), typed objects only:
  parent -> worker: ``SolveTask`` (carrying the validated ``Scenario``) or ``None`` (exit)
  worker -> parent: ("progress", job_id, Progress) … then ("result", job_id, Result) or
                    ("error", job_id, message)
The scenario was validated once, at the server's edge; the worker does not validate it again.
A cancel sets the event; the solve's HiGHS interrupt callback polls it. A worker that does not
answer within ``kill_grace`` seconds after a cancel, or runs past its hard wall-clock limit, is
killed and replaced; the pool keeps serving.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
import time
from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lepton_alloc.models.status import Progress

if TYPE_CHECKING:
    from lepton_alloc.models.result import Result
    from lepton_alloc.models.scenario import Scenario
    from lepton_alloc.models.sweep import SweepSpec

log = logging.getLogger("lepton_alloc.workers")


@dataclass
class SolveTask:
    job_id: str
    scenario: Scenario  # validated at the edge; travels to the worker as it is
    time_limit: float
    mip_rel_gap: float
    debug_ignore_cancel_seconds: float = 0.0  # test hook: simulate a solve that ignores interrupts
    retire_after: bool = False  # a large model: the worker exits after sending the result (see below)


@dataclass
class ExplainTask:
    """One chunk of an ExplainJob: every ``chunks``-th re-solve of the plan's what-ifs, starting
    at ``chunk`` (docs/model.md §3: step values, market values); the chunks run on different workers."""

    job_id: str
    scenario: Scenario
    result: Result
    chunk: int
    chunks: int
    relative_step: float
    time_budget: float
    step_values: bool
    market_values: bool
    debug_ignore_cancel_seconds: float = 0.0
    retire_after: bool = False


@dataclass
class ExplainPart:
    """What one chunk found: step values per limit, and market values, for its share of the what-ifs."""

    steps: dict[str, list[Any]]
    markets: list[Any]


@dataclass
class SweepTask:
    """One chunk of a sweep job (docs/model.md §7): the variants ``indices`` of ``spec`` on
    ``base``, solved one after the other on the worker's warm model of this sweep (kept between
    the sweep's chunks), or, in the ``robust`` phase, the robust plan evaluated on them. Each
    answer goes back as a progress message (a ``VariantResult`` or ``RobustCheck``)."""

    job_id: str  # this chunk's runtime id
    sweep_id: str  # the sweep job
    base: Scenario
    spec: SweepSpec
    indices: list[int]
    phase: str = "variant"  # "variant" | "robust"
    plan: list[Any] | None = None  # robust phase: the robust plan's entries
    kept_out: list[str] | None = None  # robust phase: the markets it leaves out
    debug_ignore_cancel_seconds: float = 0.0
    retire_after: bool = False


@dataclass
class TaskOutcome:
    kind: str  # "result" | "error" | "killed"
    result: Result | None = None  # set for kind == "result"
    error: str = ""


def _worker_main(conn: Any, cancel: Any, threads: int) -> None:  # runs in the child process
    """Receive tasks, solve, send results; the cyclic garbage collector runs only while idle.

    A solve builds about a million Pyomo objects that become garbage together once its result is
    extracted. With the collector enabled, the first allocations after the solve (pickling the
    result for the pipe, or unpickling the next task) set off a full collection of that dead
    model: 1.2 s at 1,000 markets, 5.5 s at 5,000, on the caller's clock
    (bench/results/service_overhead.md). So the collector stays off while a task runs, and the
    worker collects after the result is sent, before it waits for the next task.
    """
    import gc
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a worker stops
    import lepton_alloc.models.extract  # noqa: F401 - the solver stack, loaded before the first task
    from lepton_alloc.models import solve_scenario
    from lepton_alloc.models.scenario import ScenarioError

    gc.collect()
    gc.freeze()  # what is loaded now lives as long as the worker: never scan it again
    gc.disable()
    warm: dict[str, Any] = {}  # sweep id -> its WarmSolver (one at a time): the built model between chunks
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        if isinstance(task, SweepTask):
            solver = warm.get(task.sweep_id)
            if solver is None:
                from lepton_alloc.models.sweep import WarmSolver

                warm.clear()
                solver = warm[task.sweep_id] = WarmSolver(threads)
            conn.send(_sweep_chunk(task, conn, cancel, solver))
            continue  # the warm model stays: no collection that would scan it after every chunk
        warm.clear()
        conn.send(_run_task(task, conn, cancel, threads, solve_scenario, ScenarioError))
        if task.retire_after:
            # freeing a large dead model by collection takes seconds (5.5 s at 5,000 markets);
            # ending the process frees it at once, and the pool starts a fresh worker
            conn.close()
            os._exit(0)
        del task
        gc.collect()  # idle: the dead model is collected off the caller's clock


def _run_task(task: SolveTask | ExplainTask, conn: Any, cancel: Any, threads: int, solve: Any,
              scenario_error: type[Exception]) -> tuple[str, str, Any]:
    """Solve one task; the message to send back. Its model is garbage when this returns."""
    job_id = task.job_id
    if isinstance(task, ExplainTask):
        try:
            return ("result", job_id, _explain_part(task, cancel, threads))
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the worker lives on
            return ("error", job_id, f"internal explanation error: {type(exc).__name__}: {exc}")

    def on_progress(progress: Progress) -> None:
        conn.send(("progress", job_id, progress))

    try:
        if task.debug_ignore_cancel_seconds:
            time.sleep(task.debug_ignore_cancel_seconds)  # deliberately deaf to `cancel`
        result = solve(task.scenario, time_limit=task.time_limit, mip_rel_gap=task.mip_rel_gap,
                       threads=threads, on_progress=on_progress, should_stop=cancel.is_set)
        return ("result", job_id, result)
    except scenario_error as exc:
        return ("error", job_id, str(exc))
    except Exception as exc:  # noqa: BLE001 - reported to the job, the worker lives on
        return ("error", job_id, f"internal solver error: {type(exc).__name__}: {exc}")


def _sweep_chunk(task: SweepTask, conn: Any, cancel: Any, solver: Any) -> tuple[str, str, Any]:
    """Answer a sweep chunk variant by variant on ``solver`` (warm); a cancel ends it early."""
    from lepton_alloc.models.sweep import answer_chunk

    done = 0
    try:
        for item in answer_chunk(solver, task.base, task.spec, task.phase, task.indices, task.plan, task.kept_out,
                                 cancel.is_set):
            conn.send(("progress", task.job_id, item))
            done += 1
        return ("result", task.job_id, done)
    except Exception as exc:  # noqa: BLE001 - reported to the sweep, the worker lives on
        solver.am = None  # a model in an unknown state is not re-used
        return ("error", task.job_id, f"internal sweep error: {type(exc).__name__}: {exc}")


def _explain_part(task: ExplainTask, cancel: Any, threads: int) -> ExplainPart:
    from lepton_alloc.models.whatif import market_values_from, plan_whatifs, run_whatifs, step_values_from

    whatifs = plan_whatifs(task.scenario, task.result, relative_step=task.relative_step,
                           steps=task.step_values, markets=task.market_values)[task.chunk::task.chunks]
    outcomes = run_whatifs(task.scenario, task.result, whatifs, task.time_budget, should_stop=cancel.is_set,
                           threads=threads)
    return ExplainPart(step_values_from(task.result, outcomes), market_values_from(task.result, outcomes))


def _context() -> Any:
    ctx = mp.get_context("forkserver")
    # the solver stack (Pyomo, HiGHS, numpy), imported once in the fork server, shared by workers
    ctx.set_forkserver_preload(["lepton_alloc.models.extract", "lepton_alloc.models.solve"])
    return ctx


@dataclass
class Worker:
    """Parent-side handle of one worker process."""

    index: int
    ctx: Any
    threads: int = 1
    process: Any = None
    conn: Any = None
    cancel: Any = None
    busy_job: str | None = None
    replaced: int = 0
    retiring: bool = False  # the process ends after its current result (a large model)

    def start(self) -> None:
        parent, child = self.ctx.Pipe(duplex=True)
        self.cancel = self.ctx.Event()
        self.process = self.ctx.Process(
            target=_worker_main, args=(child, self.cancel, self.threads),
            name=f"lepton-solver-{self.index}", daemon=True,
        )
        self.process.start()
        child.close()
        self.conn = parent

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def kill_and_replace(self, reason: str) -> None:
        log.warning("killing worker %s (pid %s): %s", self.index, self.pid, reason)
        try:
            self.process.kill()
            self.process.join(5)
        except Exception:  # noqa: BLE001
            pass
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass
        self.replaced += 1
        self.start()

    def _restart(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass
        self.start()

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self.conn.send(None)
        except Exception:  # noqa: BLE001
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2)

    def run(
        self,
        task: SolveTask | ExplainTask | SweepTask,
        on_progress: Callable[[Any], None],
        cancel_requested: threading.Event,
        hard_limit: float,
        kill_grace: float,
    ) -> TaskOutcome:
        """Run one task to completion, cancellation or kill. Always leaves a usable worker."""
        if self.retiring:  # it exits after a large task's answer; start its successor
            self.retiring = False
            self.process.join(10)
            if self.alive():
                self.kill_and_replace("did not exit after a large model")
            else:
                self._restart()
        if not self.alive():
            self.kill_and_replace("worker was not alive")
        self.cancel.clear()
        self.busy_job = task.job_id
        started = time.monotonic()
        cancel_sent_at: float | None = None
        try:
            try:
                self.conn.send(task)
            except OSError:  # the worker died while idle: nothing ran yet, so hand the task to a new one
                self.kill_and_replace("worker was gone when a task was sent")
                self.conn.send(task)
            while True:
                if self.conn.poll(0.05):
                    try:
                        kind, _job, payload = self.conn.recv()
                    except (EOFError, OSError):
                        self.kill_and_replace("worker died during a solve")
                        return TaskOutcome("killed", error="the solver process crashed; it was replaced")
                    if kind == "progress":
                        on_progress(payload)
                        continue
                    self.retiring = task.retire_after  # the worker exits after this answer
                    if kind == "result":
                        return TaskOutcome("result", result=payload if not isinstance(task, SweepTask) else None)
                    return TaskOutcome("error", error=str(payload))
                now = time.monotonic()
                if not self.process.is_alive():
                    self.kill_and_replace("worker exited during a solve")
                    return TaskOutcome("killed", error="the solver process crashed; it was replaced")
                if cancel_requested.is_set() and cancel_sent_at is None:
                    self.cancel.set()
                    cancel_sent_at = now
                if cancel_sent_at is not None and now - cancel_sent_at > kill_grace:
                    self.kill_and_replace(f"did not stop within {kill_grace}s of a cancel")
                    return TaskOutcome("killed", error=f"cancelled; the solver did not stop within {kill_grace:g}s, so its worker was replaced")
                if now - started > hard_limit:
                    self.kill_and_replace(f"ran past its hard limit of {hard_limit:.0f}s")
                    return TaskOutcome("killed", error=f"the solve ran past its hard limit of {hard_limit:.0f}s and was stopped")
        finally:
            self.busy_job = None


class WorkerPool:
    """A fixed number of worker processes, started before the gRPC server."""

    def __init__(self, size: int, threads_per_solve: int = 1):
        self.ctx = _context()
        self.workers = [Worker(i, self.ctx, threads_per_solve) for i in range(max(1, size))]

    def start(self) -> None:
        for w in self.workers:
            w.start()
        # make sure each worker has imported the model package before we serve
        log.info("started %d solver workers: pids %s", len(self.workers), [w.pid for w in self.workers])

    def stop(self) -> None:
        for w in self.workers:
            w.stop()

    def busy_count(self) -> int:
        return sum(1 for w in self.workers if w.busy_job is not None)

