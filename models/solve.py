"""Run HiGHS on a built model through Pyomo's persistent interface (``SolverFactory('highs')``).

The built :class:`~.formulation.AllocationModel` keeps its solver object, so a re-solve after a
mutable-Param change (a sweep) or :meth:`~.formulation.AllocationModel.update` (a changed
scenario of the same structure, see :func:`resolve`) only pushes what changed to HiGHS. The
Pyomo -> HiGHS transfer itself (a bulk fast path with the stock interface as fallback) lives in
:mod:`.highs_fast`, the only module that touches Pyomo internals. Progress events come
from HiGHS callbacks (improving solution, MIP interrupt polling); ``should_stop`` is polled from
the interrupt callbacks, so a cancel or an expired deadline stops the run promptly.
Status is reported honestly: a run stopped by a limit with an incumbent is ``feasible``.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager, nullcontext
from functools import cached_property
import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Iterator

import numpy as np

from . import highs_fast
from .formulation import AllocationModel, build_model, paused_gc
from .highs_start import offered_start
from .rowset import relative_gap
from .scenario import Scenario
from .status import Progress, ProgressKind, SolveStatus

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]

LARGE_MODEL_INTEGERS = 10_000
PRESOLVE_OFF_LARGE = 0x18000  # HiGHS presolve rule bits: probing | enumeration
HEAD_START_SHARE = 0.1  # of the time limit, for the head start of a small model (greedy + local search)
HEAD_START_SHARE_LARGE = 0.4  # ... of a large model (and the restricted sub-MIPs)
SMALL_MODEL_INTEGERS = 1_000  # below this HiGHS's RINS and RENS sub-MIPs are off (see _solve_options)
OFFER_START_MAX_INTEGERS = 2_000  # below this the head start's plan is HiGHS's starting solution
# ... but no more than this: HiGHS's own search does better after it (2,000 markets: the head
# start's fix-and-optimize added 0.003-0.004 % between 9 and 15 s; HiGHS from scratch, given
# the time, ends above the head start's plan: yearly-2000-s0 73,706 against 73,649)
HEAD_START_MAX_SECONDS = 10.0
# Below this many integer columns HiGHS alone is faster: the head start is a fixed cost of 5-15 ms
# (greedy, local and eject search) that HiGHS's search does not win back. Measured on 27 generated
# scenarios and the example (bench/results/small_head_start.md, 6 Dec, median of 5): all 18 below
# 260 integers were 6-49 % slower with it (gen-10x5-s0, 120 integers: 39.1 ms against 32.1 ms);
# from 299 to 529 integers it is a toss-up (0.86-1.17; the example, 383: 605 against 607 ms).
HEAD_START_MIN_INTEGERS = 260
# From this many non-zeros HiGHS's own search is not run: the head start (LP relaxation for the
# bound, greedy, local search, sub-MIPs / fix-and-optimize) is the whole solve. Measured at
# 10,000 markets (8.5 M non-zeros, 239,027 integers): HiGHS's presolve alone took 30.4 s, and
# given 48 s it returned no plan after 78 s (it overran its limit); the transfer to it cost 5 s.
# Both paths on the same models (60 s, gap 1e-4, one thread; bench/results/huge_threshold.md):
# from 1.75 M non-zeros the head start alone ends with the better plan and the smaller gap every
# time - gen-2000 0.020 % against 0.040 %, yearly-2000 0.071 % against 0.152 %, levers-1000
# (1.9 M) 0.037 % against 0.133 %, levers-1500 (2.9 M) 0.019 % against 2.23 % with HiGHS 10 s
# past its limit, levers-2000 (3.8 M) 0.015 % against 2.15 % after 103 s. At 1,000 markets
# (0.9 M) it is a toss-up (gen-1000 0.073 % against 0.091 %, yearly-1000 0.306 % against
# 0.338 %, but 0.441 % in a second run of the head start alone), and at 200 markets (0.15 M)
# HiGHS's bound is the better one (0.106 % against the LP's 0.697 %): below 1.5 M HiGHS keeps
# its search.
HUGE_MODEL_NONZEROS = 1_500_000
# HiGHS's incumbents are polished during its run (models/polish.py) on models of this many integer
# columns up to LARGE_MODEL_INTEGERS. Below, HiGHS proves small models in seconds and the head
# start's plan is its start; above, the head start's sub-MIPs have already polished a better plan
# than HiGHS's (yearly-1000-s0/s1, 60 s: the same final plans with and without, HiGHS's nodes 15
# and 6 against 44 and 41). On yearly-200-s0 (4,612 integers) time to a 1 % gap 15.7 s against 34.5 s.
POLISH_MIN_INTEGERS = 2_000
HUGE_RESERVE_SECONDS = 0.5  # of the time limit, kept for extracting the result
MIN_HIGHS_SECONDS = 0.05  # HiGHS always runs (it proves or improves the plan), at least this long
OBJECTIVE_SELF_CHECK = 1e-6  # relative: the reported objective vs the plan's own
NUMERICAL_TROUBLE = "numerical trouble"  # highs_status of an outcome refused for a non-finite objective

@dataclass
class SolveOutcome:
    status: SolveStatus
    objective_value: float | None
    best_bound: float | None
    gap: float | None
    values: np.ndarray | None  # global variable vector (see formulation), None without a solution
    transfer_seconds: float
    solver_seconds: float
    highs_status: str
    message: str = ""
    node_count: int = 0
    head_start: Any = None  # the heuristic's plan offered to HiGHS (models.heuristic.HeadStart), if any
    polished_plans: int = 0  # plans the polish (models/polish.py) handed to HiGHS during its run


def _solver_for(am: AllocationModel, fast_path: bool | None) -> Any:
    """The model's persistent solver; a new one when none exists or the path asked for differs."""
    want_fast = highs_fast.use_fast_path(fast_path)
    if am.solver is None or highs_fast.is_fast(am.solver) != want_fast:
        am.solver = highs_fast.persistent_highs(am.linear_rows, am.variables, want_fast)
    return am.solver


def resolve(am: AllocationModel | None, scenario: Scenario, **solve_options: Any) -> tuple[AllocationModel, SolveOutcome]:
    """Solve ``scenario`` re-using a built model where only its data changed, else a fresh build.

    ``am.update(scenario)`` pushes changed limits and coefficients into ``am`` in place (its
    persistent solver then re-solves warm); a changed structure, or ``am`` None, builds anew.
    Returns the model that was solved (``am`` itself when updated in place) and the outcome.
    """
    if am is None or not am.update(scenario):
        am = build_model(scenario)
    return am, solve_model(am, **solve_options)


def solve_model(
    am: AllocationModel,
    *,
    time_limit: float | None = None,
    mip_rel_gap: float | None = None,
    threads: int = 1,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress_interval: float = 0.25,
    fast_path: bool | None = None,
    start: np.ndarray | None = None,
    head_start: bool | None = None,
    highs_options: dict[str, Any] | None = None,
    polish: bool | None = None,
) -> SolveOutcome:
    """Solve (or re-solve) the model; limits default to the scenario's ``solver`` section.

    ``fast_path`` picks the Pyomo -> HiGHS transfer (:mod:`.highs_fast`): None = automatic (the
    bulk transfer where this Pyomo supports it, unless ``LEPTON_HIGHS_FAST_PATH=0``), False =
    Pyomo's stock interface, True = the bulk transfer or ``RuntimeError``.

    ``start``: a feasible plan (global variable vector) HiGHS starts from. ``head_start``: find
    a first plan with :mod:`.heuristic` before HiGHS runs (None = automatic: every MIP without a
    ``start`` of at least HEAD_START_MIN_INTEGERS integer columns, and every huge one), within
    a share of the time limit (:func:`head_start_seconds`); its plan is the first incumbent
    of the progress stream and HiGHS's starting solution. ``highs_options``: HiGHS options over
    the ones chosen here (:func:`_solve_options`), for measurements.
    ``polish``: improve HiGHS's incumbents during its run (:mod:`.polish`; None = automatic, by
    size: POLISH_MIN_INTEGERS), False = never (for measurements).
    """
    sc = am.scenario
    huge = is_huge(am)
    if not huge:  # HiGHS's search needs the Pyomo model; made now, as part of the build, not of the solve
        am.materialise()
    time_limit = sc.solver.time_limit_seconds if time_limit is None else time_limit
    mip_rel_gap = sc.solver.mip_rel_gap if mip_rel_gap is None else mip_rel_gap
    refused = _non_finite_objective(am)
    if refused is not None:
        return refused
    callbacks = _Callbacks(on_progress, should_stop, progress_interval)
    head = None
    if head_start is None:  # automatic: by size (HEAD_START_MIN_INTEGERS), always for a huge model
        head_start = huge or am.integer_count >= HEAD_START_MIN_INTEGERS
    if start is None and head_start and am.integer_count > 0:
        head = _run_head_start(am, time_limit, callbacks, should_stop, mip_rel_gap)
        if huge:
            return _finite_or_refused(_outcome_of_huge(head, callbacks.stopped, time.perf_counter() - callbacks.started,
                                                       mip_rel_gap))
        if head is not None:
            if am.integer_count < OFFER_START_MAX_INTEGERS:
                # Larger models: HiGHS searches from scratch, the head start's plan stays the
                # fallback result. Handed over, it led HiGHS's own search lower: at 60 s on
                # yearly-2000-s0 73,649 against 73,706 from scratch, gen-2000-s0 73,724 against
                # 73,728, yearly-1000-s0 36,013 against 36,018; at 200 markets (~4,600 integers)
                # the plans at 10 s were 6.2 % / 2.0 % below the best known against 0.19 % / 1.7 %
                # without it (yearly-200-s0 / -s1). Small models prove faster with it (§6.3 table).
                start = head.values
            callbacks.lp_bound = head.lp_bound
            if _proven_by_lp(head, mip_rel_gap) or callbacks.stopped:
                return _finite_or_refused(_outcome_of_head(head, callbacks.stopped, time.perf_counter() - callbacks.started,
                                                           mip_rel_gap))
    spent = time.perf_counter() - callbacks.started
    opt = _solver_for(am, fast_path)

    t0 = time.perf_counter()
    first = highs_fast.loaded_model(opt) is not am.model
    if first:
        with paused_gc():
            opt.set_instance(am.model)  # Pyomo -> HiGHS
    transfer = time.perf_counter() - t0
    h = highs_fast.highs_of(opt)

    remaining = max(time_limit - spent - transfer, MIN_HIGHS_SECONDS)
    columns = _HighsColumns(am, opt, h)
    polisher = _polisher(am, columns, mip_rel_gap, remaining, should_stop, callbacks) if polish is not False else None
    pyomo_log = logging.getLogger("pyomo.contrib.solver")
    level = pyomo_log.level
    pyomo_log.setLevel(logging.ERROR)  # statuses (interrupt, limits) are reported by us, not as warnings
    t_run = time.perf_counter()
    try:
        with callbacks.subscribed(h), offered_start(h, _start_columns(am, columns, start)), \
                (polisher.attached(h) if polisher is not None else nullcontext()):
            opt.solve(am.model, **_solve_options(am, remaining, mip_rel_gap, threads, first, highs_options))
    finally:
        pyomo_log.setLevel(level)
    run_seconds = time.perf_counter() - t_run
    out = _outcome(am, opt, h, callbacks.stopped, transfer)
    if polisher is not None:
        out.polished_plans = polisher.plans
        if polisher.plans and polisher.incumbent is not None:  # the last one may come after HiGHS's last query
            _take_if_better(out, polisher.incumbent, polisher.incumbent_objective,
                            "a polished plan (HiGHS's run ended before it took it)")
    # our clock, not HiGHS's getRunTime(): that one adds up every run of a persistent Highs (re-solves)
    out.solver_seconds = run_seconds + spent
    return _finite_or_refused(_with_head_start(am, out, head, mip_rel_gap))


def _non_finite_objective(am: AllocationModel) -> SolveOutcome | None:
    """A model whose objective has a coefficient or constant that is not a finite number (the
    data overflowed: docs/model.md §1's plausible ranges keep valid scenarios from it) is refused
    before any search, with the reason: HiGHS would stop with status Unknown and no word why."""
    terms = am.formulation.terms
    bad = int(np.count_nonzero(~np.isfinite(terms.objective))) + (0 if math.isfinite(terms.objective_constant) else 1)
    if not bad:
        return None
    note = (f"numerical trouble: the objective is not a finite number ({bad} of its coefficients overflowed); "
            "some numbers of the scenario are too large for the model (money, growth, penalties)")
    log.warning(note)
    return SolveOutcome(SolveStatus.NO_SOLUTION, None, None, None, None, transfer_seconds=0.0, solver_seconds=0.0,
                        highs_status=NUMERICAL_TROUBLE, message=note)


def _finite_or_refused(out: SolveOutcome) -> SolveOutcome:
    """Every outcome's last check: a plan whose objective is not a finite number (inf or nan: the
    data overflowed somewhere) is no answer, never ``optimal`` nor ``feasible``. Its plan, objective,
    bound and gap are dropped and the status becomes ``no_solution`` (``cancelled`` stays), with the
    reason in the message. Validation's plausible ranges (docs/model.md §1) keep valid scenarios
    from getting here; this guards every other way in (a scenario built without validation)."""
    if out.best_bound is not None and not math.isfinite(out.best_bound):
        out.best_bound = None
    if out.gap is not None and not math.isfinite(out.gap):
        out.gap = None
    if out.objective_value is None or math.isfinite(out.objective_value):
        return out
    note = (f"numerical trouble: the plan's objective is {out.objective_value!r}, not a finite number; some numbers "
            "of the scenario are too large for the model (money, growth, penalties)")
    log.warning(note)
    if out.status != SolveStatus.CANCELLED:
        out.status = SolveStatus.NO_SOLUTION
    out.objective_value = out.best_bound = out.gap = out.values = None
    out.highs_status = NUMERICAL_TROUBLE
    out.message = note + ("; " + out.message if out.message else "")
    return out


# ----------------------------------------------------------------------------- the head start


def is_huge(am: AllocationModel) -> bool:
    """Too large for HiGHS's own search within any usual time limit (HUGE_MODEL_NONZEROS)."""
    return am.nonzeros >= HUGE_MODEL_NONZEROS


def head_start_seconds(am: AllocationModel, time_limit: float) -> float:
    """The share of the time limit the head start may use (docs/model.md §6.2).

    Small models: the greedy and local search only (HiGHS's own root heuristics are as good and
    the bound needs HiGHS's time); large ones (>= LARGE_MODEL_INTEGERS integers, where HiGHS's
    presolve and root LP take seconds before its first plan) also get the restricted sub-MIPs;
    huge ones (:func:`is_huge`) the whole time limit, as the head start is their whole solve.
    """
    if is_huge(am):
        return max(time_limit - HUGE_RESERVE_SECONDS, 0.5 * time_limit)
    if am.integer_count >= LARGE_MODEL_INTEGERS:
        return min(HEAD_START_SHARE_LARGE * time_limit, HEAD_START_MAX_SECONDS)
    return HEAD_START_SHARE * time_limit


def _run_head_start(am: AllocationModel, time_limit: float, callbacks: _Callbacks,
                    should_stop: Callable[[], bool] | None, mip_rel_gap: float | None = None) -> Any:
    from .heuristic import head_start

    def on_plan(plan: Any) -> None:
        callbacks.emit_head_start(plan)

    def stop() -> bool:
        if should_stop is not None and should_stop():
            callbacks.stopped = True
        return callbacks.stopped

    try:
        return head_start(am, head_start_seconds(am, time_limit), should_stop=stop, on_plan=on_plan,
                          sub_mips=am.integer_count >= LARGE_MODEL_INTEGERS or is_huge(am), whole=is_huge(am),
                          target_gap=mip_rel_gap)
    except Exception:  # noqa: BLE001 - a head start is a hint; without it HiGHS starts from nothing
        log.exception("the head start failed; HiGHS starts without a plan")
        return None


def _proven_by_lp(head: Any, mip_rel_gap: float) -> bool:
    """The head start's plan is within the asked gap of the LP relaxation's bound: nothing to prove."""
    return head.lp_bound is not None and relative_gap(head.objective, head.lp_bound) <= mip_rel_gap


def _outcome_of_head(head: Any, stopped: bool, seconds: float, mip_rel_gap: float, *, whole: bool = False) -> SolveOutcome:
    """The outcome when HiGHS's search was not run: the LP bound proved the head start's plan, a
    cancel came first, or (``whole``) the model is huge and the head start was the whole solve;
    the LP relaxation's optimum is the bound when it was solved (else no bound, no gap)."""
    bound = head.lp_bound
    gap = relative_gap(head.objective, bound) if bound is not None else None
    if stopped:
        status, words = SolveStatus.CANCELLED, "Interrupted"
    elif gap is not None and gap <= mip_rel_gap:
        status, words = SolveStatus.OPTIMAL, "Optimal" if whole else "head start (within the gap of the LP bound)"
    else:
        status, words = SolveStatus.FEASIBLE, "Time limit reached"
    note = ""
    if whole:
        note = ("the service's own search (LP relaxation, greedy, local search, fix-and-optimize): the model is too "
                "large for HiGHS's search within the time limit" + ("" if bound is not None else "; the LP relaxation "
                                                                    "was not solved in time, so there is no bound"))
    return SolveOutcome(status, head.objective, bound, gap, head.values, 0.0, seconds, words, message=note,
                        head_start=head)


def _outcome_of_huge(head: Any, stopped: bool, seconds: float, mip_rel_gap: float) -> SolveOutcome:
    """The outcome of a huge model, whose whole solve is the head start."""
    if head is None:
        status = SolveStatus.CANCELLED if stopped else SolveStatus.NO_SOLUTION
        return SolveOutcome(status, None, None, None, None, 0.0, seconds, "Interrupted" if stopped else "no plan found")
    return _outcome_of_head(head, stopped, seconds, mip_rel_gap, whole=True)


def _with_head_start(am: AllocationModel, out: SolveOutcome, head: Any, mip_rel_gap: float) -> SolveOutcome:
    """Combine HiGHS's outcome with the head start's plan and LP bound, and self-check the objective.

    HiGHS may end without a plan as good as the head start's (time up in presolve or the root LP
    of a large model, a cancel, or a large model's search that was not handed the plan): the head
    start's plan is then the result (``feasible`` where HiGHS had none). The LP relaxation's
    optimum is an upper bound too: the reported bound is the tighter of the two.
    """
    out.head_start = head
    if head is not None:
        _take_if_better(out, head.values, head.objective,
                        "the plan of the head start (HiGHS found none better within the time limit)")
    if out.status.has_plan and out.values is not None:
        _check_objective(am, out)
        if head is not None and head.lp_bound is not None:
            out.best_bound = head.lp_bound if out.best_bound is None else min(out.best_bound, head.lp_bound)
        if out.best_bound is not None and out.objective_value is not None:
            out.gap = relative_gap(out.objective_value, out.best_bound)
            if out.status == SolveStatus.FEASIBLE and out.gap <= mip_rel_gap:
                out.status = SolveStatus.OPTIMAL  # within the asked gap of a valid bound, as HiGHS counts it
    return out


def _take_if_better(out: SolveOutcome, values: np.ndarray, objective: float, note: str) -> None:
    """A checked plan of ours (the head start's, a polished one) is the result when HiGHS ended
    without one as good; ``note`` says so in the message."""
    usable = (SolveStatus.NO_SOLUTION, SolveStatus.FEASIBLE, SolveStatus.CANCELLED, SolveStatus.OPTIMAL)
    if out.status in usable and (out.values is None or out.objective_value is None
                                 or objective > out.objective_value + 1e-9 * max(1.0, abs(objective))):
        if out.status == SolveStatus.NO_SOLUTION:
            out.status = SolveStatus.FEASIBLE
        out.objective_value, out.values = objective, values.copy()
        out.message = (out.message + "; " if out.message else "") + note


def _check_objective(am: AllocationModel, out: SolveOutcome) -> None:
    """The reported objective is the plan's own (docs/model.md §2.6), recomputed from the plan's
    vector with its integer decisions rounded; a solver figure that differs by more than
    OBJECTIVE_SELF_CHECK (relative) is logged and named in the outcome's message (a starting
    solution once made HiGHS report an objective its plan did not have: see .highs_start)."""
    assert out.values is not None and out.objective_value is not None
    if not math.isfinite(out.objective_value):  # the solver's own figure overflowed: its verdict means nothing,
        return  # and the plan is refused (_finite_or_refused), whatever it recomputes to
    integers = am.layout.integer_index
    out.values[integers] = np.round(out.values[integers])  # the plan: whole decisions, not 0.9999999
    own = float(am.objective_coef @ out.values + am.objective_constant)
    if abs(own - out.objective_value) > OBJECTIVE_SELF_CHECK * max(1.0, abs(own)):
        note = f"HiGHS reported objective {out.objective_value!r} for a plan whose objective is {own!r}; the plan's own is reported"
        log.warning(note)
        out.message = (out.message + "; " if out.message else "") + note
    out.objective_value = own  # exactly the plan's (docs/model.md §2.6), to the last digit of its terms


def _polisher(am: AllocationModel, columns: _HighsColumns, mip_rel_gap: float, seconds: float,
              should_stop: Callable[[], bool] | None, callbacks: _Callbacks) -> Any:
    """A :class:`~.polish.Polisher` of HiGHS's incumbents for this run, or None (see POLISH_MIN_INTEGERS)."""
    if not POLISH_MIN_INTEGERS <= am.integer_count < LARGE_MODEL_INTEGERS:
        return None
    from .polish import Polisher

    return Polisher(am, mip_rel_gap, columns.to_global, columns.to_highs, should_stop, callbacks.emit_polished, seconds)


class _HighsColumns:
    """Vectors between the model's variable layout and HiGHS's columns, through the solver's own
    map (read once, on first use)."""

    def __init__(self, am: AllocationModel, opt: Any, h: Any):
        self.am, self.opt = am, opt
        self.n_cols = int(h.getNumCol())

    @cached_property
    def column(self) -> np.ndarray:
        """The HiGHS column of each global variable (-1: not in HiGHS)."""
        index = np.arange(1.0, self.n_cols + 1.0)
        return np.round(highs_fast.solution_vector(self.opt, self.am.variables, index)).astype(np.int64) - 1

    def to_highs(self, v: np.ndarray) -> np.ndarray:
        """``v`` (global layout) as one value per HiGHS column."""
        keep = self.column >= 0
        full = np.zeros(self.n_cols)
        full[self.column[keep]] = v[keep]
        return full

    def to_global(self, col_value: Any) -> np.ndarray:
        """HiGHS column values in the global layout; 0 for a variable HiGHS never saw."""
        return np.where(self.column >= 0, np.asarray(col_value, dtype=float)[np.maximum(self.column, 0)], 0.0)


def _start_columns(am: AllocationModel, columns: _HighsColumns, start: np.ndarray | None) -> np.ndarray | None:
    """``start`` (global variable layout) as one value per HiGHS column, or None."""
    if start is None or am.integer_count == 0:
        return None
    return columns.to_highs(start)


class _Callbacks:
    """HiGHS callbacks: progress reports (throttled heartbeats, every incumbent) and the
    interrupt poll of ``should_stop`` (a cancel or an expired deadline)."""

    def __init__(self, on_progress: ProgressCallback | None, should_stop: Callable[[], bool] | None,
                 interval: float):
        self.on_progress, self.should_stop, self.interval = on_progress, should_stop, interval
        self.started = time.perf_counter()
        self.last_emit = 0.0
        self.stopped = False
        self.lp_bound: float | None = None  # the head start's LP bound: HiGHS's events report the tighter one
        self.head_objective: float | None = None  # our best plan (head start, polish): HiGHS's events never report less
        self.last_bound: float | None = None  # of the last event (a polished plan's event reports it)
        self.last_nodes = 0

    def emit(self, kind: ProgressKind, out: Any) -> None:
        if self.on_progress is None:
            return
        try:
            objective, bound, gap = _finite(out.objective_function_value), _finite(out.mip_dual_bound), _finite(out.mip_gap)
            if self.head_objective is not None and (objective is None or objective < self.head_objective):
                # HiGHS was not handed the head start's plan (a large model) and has none as good
                # yet: the best plan known is still the head start's, and a worse plan of HiGHS's
                # is no news (the stream's best plan never goes down)
                objective = self.head_objective
                kind = ProgressKind.HEARTBEAT
                gap = relative_gap(objective, bound) if bound is not None else None
            tight = self.tighter(bound)
            if tight is not None and tight != bound:  # the LP bound is the tighter one
                bound = tight
                gap = relative_gap(objective, bound) if objective is not None else None
            self.last_bound, self.last_nodes = bound, int(out.mip_node_count)
            event = Progress(
                kind,
                objective=objective,
                best_bound=bound,
                gap=gap,  # HiGHS reports infinities before it knows a plan or bound
                elapsed_seconds=time.perf_counter() - self.started,
                nodes=int(out.mip_node_count),
                at=time.time(),  # wall clock of the callback (event latency is measured from it)
            )
        except Exception:  # noqa: BLE001 - a progress event must never break a solve
            return
        self.on_progress(event)

    def emit_head_start(self, plan: Any) -> None:
        """The head start's plan (first, then each improvement) as an incumbent event."""
        self.last_emit = time.perf_counter()
        self.head_objective = plan.objective
        if self.on_progress is None:
            return
        bound = plan.lp_bound
        objective = _finite(plan.objective)  # a non-finite plan is never reported (_finite_or_refused)
        self.on_progress(Progress(
            ProgressKind.INCUMBENT, objective=objective, best_bound=bound,
            gap=relative_gap(objective, bound) if bound is not None and objective is not None else None,
            elapsed_seconds=time.perf_counter() - self.started, nodes=0, at=time.time(), head_start=True,
        ))

    def tighter(self, bound: float | None) -> float | None:
        """The tighter of ``bound`` (HiGHS's) and the head start's LP bound."""
        return self.lp_bound if self.lp_bound is not None and (bound is None or self.lp_bound < bound) else bound

    def emit_polished(self, objective: float) -> None:
        """A polished plan (models/polish.py), about to become HiGHS's incumbent: until HiGHS has
        taken it, its own events report it (the stream's best plan never goes down)."""
        if self.head_objective is not None and objective <= self.head_objective:
            return  # no better than a plan already reported
        self.last_emit = time.perf_counter()
        self.head_objective = objective
        if self.on_progress is None:
            return
        bound = self.tighter(self.last_bound)
        self.on_progress(Progress(
            ProgressKind.INCUMBENT, objective=objective, best_bound=bound,
            gap=relative_gap(objective, bound) if bound is not None else None,
            elapsed_seconds=time.perf_counter() - self.started, nodes=self.last_nodes, at=time.time(),
        ))

    def on_interrupt(self, e: Any) -> None:
        if self.should_stop is not None and self.should_stop():
            self.stopped = True
            e.interrupt()
            return
        now = time.perf_counter()
        if self.on_progress is not None and now - self.last_emit >= self.interval:
            self.last_emit = now
            self.emit(ProgressKind.HEARTBEAT, e.data_out)

    def on_improving(self, e: Any) -> None:
        self.last_emit = time.perf_counter()
        self.emit(ProgressKind.INCUMBENT, e.data_out)

    @contextmanager
    def subscribed(self, h: Any) -> Iterator[None]:
        subscriptions: list[tuple[Any, Callable[[Any], None]]] = []
        if self.should_stop is not None or self.on_progress is not None:
            subscriptions += [(cb, self.on_interrupt) for cb in (h.cbMipInterrupt, h.cbSimplexInterrupt, h.cbIpmInterrupt)]
        if self.on_progress is not None:
            subscriptions.append((h.cbMipImprovingSolution, self.on_improving))
        for cb, fn in subscriptions:
            cb.subscribe(fn)
        try:
            yield
        finally:
            for cb, fn in subscriptions:
                cb.unsubscribe(fn)


def _solve_options(am: AllocationModel, time_limit: float, mip_rel_gap: float, threads: int,
                   first: bool, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments of Pyomo's ``solve`` for this model."""
    kwargs: dict[str, Any] = dict(
        time_limit=float(time_limit), rel_gap=float(mip_rel_gap), threads=int(threads),
        load_solutions=False, raise_exception_on_nonoptimal_result=False,
    )
    # No restarts: after root reduced-cost fixing HiGHS re-presolves and starts the root again.
    # Measured (one thread, time to the 1e-4 gap, with / without a start plan): the built-in
    # example 0.63 / 0.67 s without restarts against 1.82 / 0.78 s with them; yearly-20-s0 2.83 /
    # 2.90 s against 4.55 / 3.63 s; yearly-20-s1 1.02 / 1.09 s against 1.71 / 1.57 s; yearly-50-s1
    # 3.32 / 3.82 s against 4.33 / 4.39 s (docs/model.md §6.3; the instances of bench/bench_mip.py).
    options: dict[str, Any] = {"mip_allow_restart": False}
    if am.integer_count < SMALL_MODEL_INTEGERS:
        # RINS and RENS off on small models: the head start's plan is HiGHS's start, and the 13
        # sub-MIPs these two run at the root take half of the built-in example's 0.66 s. Measured
        # (service path, one thread, time to the 1e-4 gap, on / off): below 1,000 integer columns
        # faster on all five instances (example 0.67 / 0.49 s, yearly-20-s0 2.68 / 2.02, yearly-20-s1
        # 0.82 / 0.60, gen-20-s0 0.79 / 0.64, gen-20-s1 0.49 / 0.49); at 50 markets (1,161-1,234
        # integers) mixed: gen-50-s0 10.3 / 12.0 s, yearly-50-s0 gap after 10 s 1.69 / 1.81 %,
        # yearly-50-s1 3.41 / 3.26 s, gen-50-s1 2.47 / 1.86 s; so they stay on there (§6.3).
        options["mip_heuristic_run_rins"] = False
        options["mip_heuristic_run_rens"] = False
    if am.integer_count >= LARGE_MODEL_INTEGERS:
        # HiGHS presolve's probing + enumeration rules take minutes on large models and ignore the
        # time limit meanwhile (1000 markets: ~16 s, 2000: ~87 s, no plan within 60 s); switched
        # off together they cost ~2 s and a plan is found (bench/README.md). Small models keep them.
        options["presolve_rule_off"] = PRESOLVE_OFF_LARGE
    kwargs["solver_options"] = {**options, **(overrides or {})}
    if first:  # nothing changed since set_instance: skip the model walk of update()
        kwargs["auto_updates"] = dict(
            check_for_new_or_removed_constraints=False, check_for_new_or_removed_vars=False,
            check_for_new_or_removed_params=False, check_for_new_objective=False,
            update_constraints=False, update_vars=False, update_parameters=False,
            update_named_expressions=False, update_objective=False,
        )
    return kwargs


def _outcome(am: AllocationModel, opt: Any, h: Any, stopped: bool, transfer: float) -> SolveOutcome:
    """How the run ended, honestly: a run stopped by a limit with a plan is ``feasible``."""
    import highspy

    solver_seconds = float(h.getRunTime())
    info = h.getInfo()
    ms = h.getModelStatus()
    MS = highspy.HighsModelStatus
    has_solution = int(info.primal_solution_status) == 2  # kSolutionStatusFeasible
    values = None
    if has_solution:
        values = highs_fast.solution_vector(opt, am.variables, np.asarray(h.getSolution().col_value, dtype=float))

    if ms == MS.kModelEmpty:
        # nothing can be entered (no columns, no rows): the only plan is "enter nothing",
        # whose objective is the constant term (e.g. previous-plan penalties always paid)
        const = am.objective_constant
        return SolveOutcome(SolveStatus.OPTIMAL, const, const, 0.0, np.zeros(len(am.variables)), transfer,
                            solver_seconds, h.modelStatusToString(ms))

    is_mip = am.integer_count > 0
    objective = float(info.objective_function_value) if has_solution else None
    bound = _finite(info.mip_dual_bound) if is_mip else objective
    gap = (_finite(info.mip_gap) if is_mip else 0.0) if has_solution else None

    if ms == MS.kOptimal:
        status = SolveStatus.OPTIMAL if has_solution else SolveStatus.NO_SOLUTION
    elif ms in (MS.kInfeasible, MS.kUnboundedOrInfeasible):
        status = SolveStatus.INFEASIBLE  # the objective is bounded above (CVaR's eta only helps it): not unbounded
    elif ms == MS.kUnbounded:
        status = SolveStatus.UNBOUNDED
    elif ms == MS.kInterrupt or stopped:
        status = SolveStatus.CANCELLED
    elif has_solution:
        status = SolveStatus.FEASIBLE
    else:
        status = SolveStatus.NO_SOLUTION
    return SolveOutcome(
        status=status,
        objective_value=objective if status.has_plan else None,
        best_bound=bound if status.has_plan or status == SolveStatus.NO_SOLUTION else None,
        gap=gap if status.has_plan else None,
        values=values if status.has_plan else None,
        transfer_seconds=transfer,
        solver_seconds=solver_seconds,
        highs_status=h.modelStatusToString(ms),
        node_count=int(max(info.mip_node_count, 0)) if is_mip else 0,
    )


def _finite(value: Any) -> float | None:
    v = float(value)
    return v if np.isfinite(v) else None


def highs_version() -> str:
    import highspy

    return f"{highspy.HIGHS_VERSION_MAJOR}.{highspy.HIGHS_VERSION_MINOR}.{highspy.HIGHS_VERSION_PATCH}"
