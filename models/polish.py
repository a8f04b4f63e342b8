"""Polishing HiGHS's incumbent while HiGHS runs (docs/model.md §6.2, "Polishing during the search").

On mid-size models HiGHS's bound often closes in on the optimum while its incumbent stalls: on
yearly-200-s0 (4,612 integer columns) the bound was 7,119 after 11.5 s but the incumbent stayed
at 7,041 (1.1 % gap) until 33 s, though 7,048.5 would have proven a 1 % gap. Fix-and-optimize
from that incumbent (:func:`.heuristic.improve`: blocks of markets re-optimized by small
sub-MIPs, every other market held) reached 7,048.6 in 4.2 s.

:class:`Polisher` does that inside HiGHS's run. HiGHS calls back between units of work
(``cbMipInterrupt``); when its incumbent has not improved for :data:`STALL_SECONDS` and the polish
has used less than :data:`SHARE` of the run so far, a slice of fix-and-optimize runs from HiGHS's
incumbent (in the callback, so HiGHS waits: one thread, as always). A better plan, checked against
every row first, is offered to HiGHS at its next query for a user solution (``cbMipUserSolution``,
the way a start is handed over: see :mod:`.highs_start`), where it becomes HiGHS's incumbent and
prunes its tree. HiGHS's bound is untouched: the polish only ever hands it feasible plans, so what
is optimal and what is proven do not change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .formulation import AllocationModel
from .rowset import RowSet, plan_objective, relative_gap

log = logging.getLogger(__name__)

STALL_SECONDS = 2.0  # HiGHS's incumbent unchanged this long before a slice of polish
# at most this share of the run so far goes to polishing. yearly-200 (40 s runs, time to a 1 % gap,
# s0 / s1): 0.2 -> 15.7 / 5.0 s, 0.3 -> 16.3 / 4.6 s, none -> 34.5 / 4.7 s; HiGHS's nodes after
# 40 s on s0: 835 with 0.2, 535 with 0.3, 1,409 without (its tree is what proves the rest)
SHARE = 0.2
SLICE_SECONDS = 2.0  # one slice of fix-and-optimize
MIN_SLICE_SECONDS = 0.3  # no slice shorter than this, nor one ending this close to HiGHS's time limit
FIRST_AFTER_SECONDS = 3.0  # no polish in the first seconds of the run (HiGHS's root heuristics)


class Polisher:
    """Improve HiGHS's incumbent between its units of work; hand better plans back to it.

    ``to_global`` maps a HiGHS column vector to the model's variable vector, ``to_highs`` back.
    ``mip_rel_gap``: a slice stops once its plan is within this gap of HiGHS's bound.
    ``on_plan``: hears of each polished plan's objective before HiGHS takes it.
    ``seconds``: HiGHS's time limit for this run; a slice ends before it.
    """

    def __init__(self, am: AllocationModel, mip_rel_gap: float,
                 to_global: Callable[[np.ndarray], np.ndarray], to_highs: Callable[[np.ndarray], np.ndarray],
                 should_stop: Callable[[], bool] | None = None,
                 on_plan: Callable[[float], None] | None = None, seconds: float = float("inf")):
        self.am, self.gap = am, mip_rel_gap
        self.seconds = seconds  # HiGHS's time limit: a slice never runs past it
        self.to_global, self.to_highs = to_global, to_highs
        self.should_stop = should_stop
        self.on_plan = on_plan
        self.rows: RowSet | None = None
        self.sub: Any = None
        self.started = time.perf_counter()  # (again) when attached to HiGHS's run
        self.incumbent: np.ndarray | None = None  # global vector of HiGHS's best plan
        self.incumbent_objective = -np.inf
        self.improved_at = self.started
        self.polished_seconds = 0.0
        self.pending: np.ndarray | None = None  # HiGHS columns of a polished plan not yet offered
        self.slices = 0
        self.plans = 0

    # ------------------------------------------------------------------ HiGHS callbacks

    def on_improving(self, e: Any) -> None:
        try:
            sol = np.asarray(e.data_out.mip_solution, dtype=float)
            if sol.size == 0:
                return
            v = self.to_global(sol)
            v[self.am.layout.integer_index] = np.round(v[self.am.layout.integer_index])
            objective = plan_objective(self.am, v)
        except Exception:  # noqa: BLE001 - polishing is a hint; it must never break a solve
            return
        if objective > self.incumbent_objective + 1e-9 * max(1.0, abs(objective)):
            self.incumbent, self.incumbent_objective = v, objective
            self.improved_at = time.perf_counter()

    def on_interrupt(self, e: Any) -> None:
        now = time.perf_counter()
        ran = now - self.started
        if (self.incumbent is None or self.pending is not None or ran < FIRST_AFTER_SECONDS
                or now - self.improved_at < STALL_SECONDS or self.polished_seconds > SHARE * ran):
            return
        left = self.seconds - ran - MIN_SLICE_SECONDS
        if left < MIN_SLICE_SECONDS:
            return
        bound = float(e.data_out.mip_dual_bound)
        if not np.isfinite(bound) or relative_gap(self.incumbent_objective, bound) <= self.gap:
            return
        t0 = time.perf_counter()
        try:
            self._slice(bound, min(SLICE_SECONDS, left))
        except Exception:  # noqa: BLE001 - polishing is a hint; it must never break a solve
            log.exception("a polish slice failed; HiGHS goes on without it")
        finally:
            self.polished_seconds += time.perf_counter() - t0
            self.improved_at = time.perf_counter()  # the next slice only after another stall

    def on_user_solution(self, e: Any) -> None:
        if self.pending is None:
            return
        full, self.pending = self.pending, None
        try:
            e.data_in.setSolution(np.arange(full.size, dtype=np.int32), full)
            e.data_in.user_has_solution = True
        except Exception:  # noqa: BLE001
            return

    # ------------------------------------------------------------------ the polish

    def _slice(self, bound: float, seconds: float) -> None:
        from .heuristic import HeadStart, _SubMip, improve

        assert self.incumbent is not None
        if self.rows is None:
            self.rows = RowSet.of_model(self.am)
            self.sub = _SubMip(self.am, self.rows, self.should_stop)
        self.slices += 1
        start = HeadStart(self.incumbent, self.incumbent_objective, 0.0)
        found = improve(self.am, start, seconds, rows=self.rows, should_stop=self.should_stop,
                        seed=self.slices, sub=self.sub,
                        enough=lambda objective: relative_gap(objective, bound) <= self.gap)
        if found.objective > self.incumbent_objective + 1e-9 * max(1.0, abs(found.objective)):
            self.plans += 1
            self.incumbent, self.incumbent_objective = found.values, found.objective
            self.pending = np.ascontiguousarray(self.to_highs(found.values), dtype=np.float64)
            if self.on_plan is not None:
                self.on_plan(found.objective)

    @contextmanager
    def attached(self, h: Any) -> Iterator[None]:
        pairs = [(h.cbMipImprovingSolution, self.on_improving), (h.cbMipInterrupt, self.on_interrupt),
                 (h.cbMipUserSolution, self.on_user_solution)]
        for cb, fn in pairs:
            cb.subscribe(fn)
        self.started = self.improved_at = time.perf_counter()
        try:
            yield
        finally:
            for cb, fn in pairs:
                cb.unsubscribe(fn)
