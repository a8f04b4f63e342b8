"""Outcomes and states, one spelling in every layer (docs/model.md §3).

Each enum's members map one to one onto the proto enum of the same name
(``SolveStatus.OPTIMAL`` <-> ``SOLVE_STATUS_OPTIMAL``); the adapter checks that mapping when it
is imported, so a value added on one side only fails at once, not on some request. Values are
the lowercase words the JSON output has always used (job states: the words the store keeps).
Light: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SolveStatus(StrEnum):
    """How a solve ended."""

    OPTIMAL = "optimal"  # optimal within the requested gap
    FEASIBLE = "feasible"  # stopped by a limit with a plan; the gap says how good
    INFEASIBLE = "infeasible"  # no plan satisfies every constraint
    UNBOUNDED = "unbounded"
    NO_SOLUTION = "no_solution"  # stopped by a limit before any plan was found
    CANCELLED = "cancelled"  # stopped on request; the best plan so far, if any

    @property
    def has_plan(self) -> bool:
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE, SolveStatus.CANCELLED)


class JobState(StrEnum):
    """Lifecycle of a solve job: QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class ProgressKind(StrEnum):
    """What triggered a progress report of a running solve."""

    HEARTBEAT = "heartbeat"  # periodic, while the solver works
    INCUMBENT = "incumbent"  # the solver found a better plan


@dataclass(frozen=True)
class Progress:
    """One progress report of a running solve; None where not known yet (no plan, no bound)."""

    kind: ProgressKind
    objective: float | None = None
    best_bound: float | None = None
    gap: float | None = None
    elapsed_seconds: float = 0.0
    nodes: int = 0
    at: float | None = None  # when it happened (epoch seconds, the solver callback's clock)
    head_start: bool = False  # the plan came from the head start (docs/model.md §6.2), before HiGHS ran

    @classmethod
    def from_event(cls, event: dict[str, object]) -> Progress:
        """A progress event of :func:`~lepton_alloc.models.solve.solve_model` (a dict), typed.

        Non-finite numbers (HiGHS reports infinities before it knows a bound) become None.
        """

        def finite(key: str) -> float | None:
            value = event.get(key)
            if not isinstance(value, (int, float)):
                return None
            v = float(value)
            return v if v == v and abs(v) != float("inf") else None

        kind = ProgressKind.INCUMBENT if event.get("kind") == "incumbent" else ProgressKind.HEARTBEAT
        nodes = event.get("nodes")
        return cls(kind, finite("objective"), finite("best_bound"), finite("gap"),
                   finite("elapsed_seconds") or 0.0, int(nodes) if isinstance(nodes, (int, float)) else 0,
                   finite("at"), bool(event.get("head_start", False)))

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind.value, "objective": self.objective, "best_bound": self.best_bound,
                "gap": self.gap, "elapsed_seconds": self.elapsed_seconds, "nodes": self.nodes, "at": self.at,
                "head_start": self.head_start}
