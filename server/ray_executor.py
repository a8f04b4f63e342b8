"""Sweeps on a Ray cluster (docs/model.md §7): actors that keep a built model warm.

Optional: needs the ``ray`` extra (``pip install 'lepton-allocator[ray]'``); nothing imports Ray
unless an executor address is given. The address:

* ``ray://HOST:PORT`` — an existing cluster through Ray Client (its head's client port, 10001 by
  default); the cluster's nodes need this package installed (the same version);
* ``auto`` — the cluster this machine is a node of (``ray start`` was run here);
* ``local`` (or ``ray``) — a Ray runtime started in this process for ``actors`` CPUs (tests,
  one machine).

Each :class:`SweepActor` holds one :class:`~lepton_alloc.models.sweep.WarmSolver` (one HiGHS
thread) and answers chunks of variant indices. The base scenario and the sweep go into Ray's
object store once per phase (``ray.put``) and the actors receive the references; answers come
back as the tasks' return values through the object store. Chunks are handed out as actors
become free, so a slow variant does not hold the others back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from lepton_alloc.models.scenario import Scenario
from lepton_alloc.models.sweep import SweepSpec, SweepSummary, VariantResult, sweep_phases, variants_to

log = logging.getLogger("lepton_alloc.ray")

_LOCK = threading.Lock()


def connect(address: str, cpus: int | None = None) -> Any:
    """``ray`` connected to ``address`` (once per process)."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("the Ray executor needs Ray: pip install 'lepton-allocator[ray]'") from None
    with _LOCK:
        if not ray.is_initialized():
            if address in ("local", "ray", "ray://local"):
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            else:
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
            log.info("connected to Ray at %s: %s CPUs", address, ray.cluster_resources().get("CPU"))
    return ray


def _actor_class(ray: Any) -> Any:
    @ray.remote(num_cpus=1)
    class SweepActor:
        """One warm model per actor; a new sweep id starts a new one."""

        def __init__(self) -> None:
            self.sweep_id = ""
            self.solver: Any = None

        def answer(self, sweep_id: str, base: Scenario, spec: SweepSpec, phase: str, indices: list[int],
                   plan: list[Any] | None, kept_out: list[str] | None) -> list[Any]:
            from lepton_alloc.models.sweep import WarmSolver, answer_chunk

            if sweep_id != self.sweep_id or self.solver is None:
                self.sweep_id, self.solver = sweep_id, WarmSolver(threads=1)
            return list(answer_chunk(self.solver, base, spec, phase, indices, plan, kept_out))

    return SweepActor


class RayExecutor:
    """A phase runner for the sweep coordinator (the server's, or :func:`run_sweep_on_ray`)."""

    def __init__(self, address: str, actors: int = 2):
        self.address = address
        self.ray = connect(address, cpus=actors)
        cls = _actor_class(self.ray)
        self.actors = [cls.remote() for _ in range(max(1, actors))]

    @property
    def name(self) -> str:
        return f"Ray at {self.address} ({len(self.actors)} actors)"

    def close(self) -> None:
        """Release the actors and disconnect this process from Ray. A process left connected to
        a cluster that is then stopped is ended by Ray itself once it gives up reconnecting (a
        test process died that way, with exit code 1 and no word, tests after the Ray one)."""
        ray, actors, self.actors = self.ray, self.actors, []
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - the cluster may be gone already
                log.debug("could not kill a sweep actor", exc_info=True)
        with _LOCK:
            if ray.is_initialized():
                ray.shutdown()

    def __call__(self, sweep_id: str, base: Scenario, spec: SweepSpec, phase: str, indices: list[int],
                 summary: SweepSummary | None, on_item: Callable[[Any], None], cancel: threading.Event | None = None,
                 time_limit: float = 0.0) -> list[str]:
        """Answer ``indices`` of one phase over the actors; the reasons of failed chunks."""
        from .sweeps import chunks

        ray = self.ray
        base_ref, spec_ref = ray.put(base), ray.put(spec)  # once per phase, shared by every chunk
        plan = summary.robust_plan if summary else None
        kept_out = summary.robust_out if summary else None
        todo = chunks(indices, len(self.actors))
        running: dict[Any, Any] = {}  # task ref -> actor
        free = list(self.actors)
        errors: list[str] = []
        while todo or running:
            while todo and free and not (cancel is not None and cancel.is_set()):
                actor = free.pop()
                ref = actor.answer.remote(sweep_id, base_ref, spec_ref, phase, todo.pop(0), plan, kept_out)
                running[ref] = actor
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in ready:
                free.append(running.pop(ref))
                try:
                    for item in ray.get(ref):
                        on_item(item)
                except Exception as exc:  # noqa: BLE001 - a failed chunk is reported, the sweep goes on
                    errors.append(f"a Ray task failed: {type(exc).__name__}: {exc}"[:500])
        return errors


def run_sweep_on_ray(base: Scenario, spec: SweepSpec, address: str, *, actors: int = 2,
                     on_variant: Callable[[VariantResult], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> tuple[list[VariantResult], Any]:
    """A whole sweep on Ray from this process (the CLI without a server)."""
    import uuid

    executor = RayExecutor(address, actors)
    sweep_id = uuid.uuid4().hex

    def run_phase(phase: str, indices: list[int], summary: SweepSummary | None, take: Callable[[Any], None]) -> list[str]:
        return executor(sweep_id, base, spec, phase, indices, summary, take)

    try:
        return sweep_phases(base, spec, run_phase, variants_to(on_variant), should_stop)
    finally:
        executor.close()
