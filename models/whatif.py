"""What-if re-solves of a solved plan: step values of limits and market values (docs/model.md §3).

Each question is a small picklable :class:`WhatIf` spec, so the work can be split into chunks,
run by different worker processes and merged:

    specs = plan_whatifs(scenario, result)                      # cheap: no solve
    outcomes = run_whatifs(scenario, result, chunk, time_budget)  # per worker, one built model
    steps = step_values_from(result, outcomes)                  # merge (any order of chunks)
    values = market_values_from(result, outcomes)

:func:`step_values` and :func:`market_values` do all three in one process.

**Warm re-solves.** :func:`run_whatifs` builds the model once (or takes a built one) and answers
every spec of its chunk on it, in place, restoring it after each:

- a limit held in a mutable Param (``budget``, ``budget_cumulative``, ``headcount_cap``,
  ``net_hires``, ``talent_cap``, ``region_min_markets``, ``region_max_markets``) is moved
  through ``am.model.limit[name]``, so only one row bound goes to HiGHS;
- a limit inside row coefficients (``region_budget_share``, ``max_average_risk``) is moved
  through ``am.update(moved scenario)`` (same structure: only that row's body is replaced);
- a market forced out gets upper bound 0 on all its entry columns; a market forced in gets
  lower bound 1 on its ``one_decision`` row (with ``≤ 1``: exactly one entry).

**The plan's knowledge.** The plan of ``result`` is rebuilt as a solution vector
(:func:`plan_vector`). A limit moved *down* that the plan still meets needs no re-solve: the
feasible set only shrank and still holds the plan, so the plan stays optimal (objective
change 0, same entry plan, the plan's status). Where the plan (or the plan with the forced
market removed, or with the forced market added in its best column) is feasible for the
re-solve, it is handed to HiGHS as a start solution (the MIP user-solution callback).

**Time budget.** ``time_budget`` covers the whole chunk (model build included). Each re-solve
gets the remaining budget split evenly over the re-solves still to run; one that cannot start
within the budget is reported with status ``no_solution`` and ``cut_short`` True, never
omitted. ``cut_short`` marks every re-solve that ended before optimality (or infeasibility) was
proven.

**Steps.** A limit moves by ``relative_step`` times its magnitude, down and up. Exceptions:

- ``region_min_markets`` / ``region_max_markets`` count whole markets: they move by
  ``max(1, round(relative_step · limit))`` markets (a 5 % move of 6 markets would change
  nothing); down stops at 0. ``relative_step`` of the reported step is the actual relative move
  (None-free: 1.0 for a move away from 0).
- shares and the risk cap stay within [0, 1]; a direction that cannot move is not reported.
- a limit of 0 moved by a relative step stays 0: that direction is not reported (the limit's
  list of steps may then be empty).
- ``budget_cumulative[<year>]`` is limited by the cumulative sum of the yearly budgets; its
  step moves *that row's* right-hand side only (the Param of the row), not the yearly budget
  (which would move every later cumulative row too). The reported limit is the cumulative one.
- ``net_hires[<first year>]`` reports and moves ``max_net_hires``; the row's bound adds the
  initial headcount (docs/model.md §2.4).

**Market values.** Every entered market is forced out, every market left out is forced in (the
re-solve chooses mode and year). ``blocking`` of a forced-in market: the limits (the step
families, ``min_expected_npv`` and ``min_cvar``) that bind in the forced plan but not in the
original plan. When forcing in is infeasible, ``blocking`` is the simple check "limits binding in
the original plan whose row the market's entry columns would load further" (a positive
coefficient on an upper limit, or a negative one on a lower limit), i.e. the full limits it
would need room in; a market that has no entry column at all (empty window) is infeasible with
empty ``blocking``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .extract import MODE_BY_INDEX
from .formulation import AllocationModel, Row, build_model, formulate
from .rowset import RowSet, complete_cvar
from .result import MarketValue, Result, StepValue
from .scenario import Mode, Scenario, parse_scenario
from .solve import SolveOutcome, solve_model
from .status import SolveStatus

__all__ = ["LIMIT_FAMILIES", "WhatIf", "WhatIfOutcome", "limit_values", "market_values", "market_values_from",
           "plan_vector", "plan_whatifs", "run_whatifs", "step_values", "step_values_from"]

PARAM_FAMILIES = ("budget", "budget_cumulative", "headcount_cap", "net_hires", "talent_cap",
                  "region_min_markets", "region_max_markets")
COEFFICIENT_FAMILIES = ("region_budget_share", "max_average_risk")
LIMIT_FAMILIES = PARAM_FAMILIES + COEFFICIENT_FAMILIES  # the limits of docs/model.md §3 that get step values
BLOCKING_FAMILIES = LIMIT_FAMILIES + ("min_expected_npv", "min_cvar")
COUNT_FAMILIES = ("region_min_markets", "region_max_markets")
FRACTION_FAMILIES = ("region_budget_share", "max_average_risk")
MIN_START_SECONDS = 1e-3  # a re-solve with less time left than this is not started
PROVEN = (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE, SolveStatus.UNBOUNDED)


@dataclass(frozen=True)
class WhatIf:
    """One what-if question (picklable, hashable).

    ``kind`` "step": the limit ``target`` (a docs/model.md §4 name) moved ``direction`` ("down" |
    "up") from ``limit`` to ``moved``; ``relative_step`` is the actual relative move.
    ``kind`` "force_out" / "force_in": the market ``target`` forced out of / into the plan.
    """

    kind: str
    target: str
    direction: str = ""
    relative_step: float = 0.0
    limit: float = 0.0
    moved: float = 0.0


@dataclass
class WhatIfOutcome:
    """The answer to one :class:`WhatIf`."""

    whatif: WhatIf
    status: SolveStatus
    objective: float | None
    plan: dict[str, tuple[Mode, int]] | None  # entered markets -> (mode, calendar entry year); None without a plan
    cut_short: bool = False
    blocking: list[str] = field(default_factory=list)
    solved: bool = True  # False: answered without a re-solve (the plan provably stays optimal, or nothing could start)
    seconds: float = 0.0


# ----------------------------------------------------------------------------- planning


def limit_values(scenario: Scenario, rows: list[Row] | None = None) -> dict[str, float]:
    """Every step-value limit of the scenario's model, §4 name -> the limit as the scenario states it.

    ``budget_cumulative`` rows report their cumulative limit (the row's right-hand side),
    ``net_hires`` reports ``max_net_hires`` (without the initial headcount of the first year).
    """
    rows = formulate(scenario).rows if rows is None else rows
    out: dict[str, float] = {}
    initial = float(scenario.headcount.initial)
    first = scenario.start_year
    for r in rows:
        if r.family not in LIMIT_FAMILIES:
            continue
        if r.family == "region_budget_share":
            region = next(g for g in scenario.regions if g.name == r.key)
            assert region.max_budget_share is not None
            out[r.name] = float(region.max_budget_share)
        elif r.family == "max_average_risk":
            assert scenario.risk_max_average is not None
            out[r.name] = float(scenario.risk_max_average)
        elif r.family == "net_hires" and r.key == first:
            out[r.name] = float(r.limit_value or 0.0) - initial
        else:
            out[r.name] = float(r.limit_value or 0.0)
    return out


def _moves(family: str, limit: float, relative_step: float) -> list[tuple[str, float, float]]:
    """(direction, actual relative move, moved limit) for each direction that really moves."""
    out = []
    for direction, sign in (("down", -1.0), ("up", 1.0)):
        if family in COUNT_FAMILIES:
            moved = max(0.0, limit + sign * max(1.0, round(relative_step * limit)))
        else:
            moved = limit + sign * relative_step * abs(limit)
            if family in FRACTION_FAMILIES:
                moved = min(1.0, max(0.0, moved))
        if moved == limit:
            continue
        out.append((direction, abs(moved - limit) / abs(limit) if limit else 1.0, moved))
    return out


def plan_whatifs(scenario: Scenario, result: Result | None = None, limits: list[str] | None = None,
                 relative_step: float = 0.05, *, steps: bool = True, markets: bool = True) -> list[WhatIf]:
    """The what-if specs: limit steps (every limit, or ``limits``) and, with a result, market values.

    Raises ``ValueError`` for a name in ``limits`` that is not a step-value limit of this scenario.
    """
    if relative_step <= 0:
        raise ValueError("relative_step must be > 0")
    specs: list[WhatIf] = []
    if steps:
        values = limit_values(scenario)
        names = list(values) if limits is None else list(limits)
        unknown = [n for n in names if n not in values]
        if unknown:
            raise ValueError(f"not a limit of this scenario: {', '.join(unknown)}")
        for name in names:
            family = name.split("[", 1)[0]
            for direction, rel, moved in _moves(family, values[name], relative_step):
                specs.append(WhatIf("step", name, direction, rel, values[name], moved))
    if markets and result is not None and result.status.has_plan:
        specs += [WhatIf("force_out" if m.entered else "force_in", m.id) for m in result.markets]
    return specs


# ----------------------------------------------------------------------------- the plan as a vector


def plan_vector(am: AllocationModel, result: Result) -> np.ndarray:
    """The solution vector (global variable layout) of ``result``'s plan on ``am``'s model.

    x from the decisions; growth investment filled into segments in order (the concave
    response: the same spend and the same objective as the solver's split); growth hires; the
    CVaR variables at their optimum for this plan. Raises ``ValueError`` when the result's plan
    is not a plan of this model (another scenario).
    """
    data, lay = am.formulation.data, am.layout
    v = np.zeros(lay.size)
    by_id = {m.id: m for m in result.markets}
    for m in result.markets:
        if not m.entered:
            continue
        if m.id not in data.index_of or m.mode is None or m.entry_year is None:
            raise ValueError(f"the result's market {m.id!r} is not a market of this scenario")
        k = data.column_of(m.id, m.mode, m.entry_year)
        if k.size != 1:
            raise ValueError(f"the result's decision for {m.id!r} ({m.mode}, {m.entry_year}) is not an entry column")
        v[int(k[0])] = 1.0
    markets = am.scenario.markets
    remaining: dict[tuple[int, int], float] = {}
    for p in range(lay.y_market.size):  # pieces are grouped by market, year and ordered by segment
        i, t = int(lay.y_market[p]), int(lay.y_year[p])
        key = (i, t)
        if key not in remaining:
            d = by_id.get(markets[i].id)
            remaining[key] = d.years[t].growth_investment if d is not None and d.years else 0.0
        take = min(float(lay.y_width[p]), max(0.0, remaining[key]))
        v[lay.y_offset + p] = take
        remaining[key] -= take
    for q in range(lay.n_market.size):
        d = by_id.get(markets[int(lay.n_market[q])].id)
        v[lay.n_offset + q] = round(d.years[int(lay.n_year[q])].growth_hires) if d is not None and d.years else 0.0
    complete_cvar(am, v)
    return v


# ----------------------------------------------------------------------------- running


def run_whatifs(scenario: Scenario, result: Result, whatifs: list[WhatIf], time_budget: float = 60.0, *,
                mip_rel_gap: float | None = None, model: AllocationModel | None = None,
                should_stop: Callable[[], bool] | None = None, threads: int = 1,
                use_plan: bool = True) -> list[WhatIfOutcome]:
    """Answer ``whatifs`` (one chunk) on one built model, warm, within ``time_budget`` seconds.

    ``result`` is the plan being explained (a solve of ``scenario``). ``model``: a built model of
    ``scenario`` to re-use (it is restored after every spec); else one is built. ``mip_rel_gap``
    defaults to the scenario's. ``should_stop`` (a cancel) ends the chunk: the specs not yet run
    are reported ``no_solution``/``cut_short``. ``use_plan`` False disables the plan shortcuts and
    start solutions (for measurements). One outcome per spec, in the order given.
    """
    deadline = time.perf_counter() + time_budget
    if model is not None and model.scenario != scenario and not model.update(scenario):
        model = None
    am = model if model is not None else build_model(scenario)
    rows = RowSet(am.rows)
    base = plan_vector(am, result) if result.status.has_plan else None
    base_binding = rows.binding(base, BLOCKING_FAMILIES) if base is not None else set()
    base_plan = _entry_plan(result)
    values = limit_values(scenario, am.rows)

    outcomes: list[WhatIfOutcome | None] = [None] * len(whatifs)
    pending: list[int] = []
    for k, w in enumerate(whatifs):
        quick = _without_resolve(am, rows, w, base if use_plan else None, result, base_plan, values)
        if quick is not None:
            outcomes[k] = quick
        else:
            pending.append(k)

    for position, k in enumerate(pending):
        w = whatifs[k]
        left = deadline - time.perf_counter()
        if left < MIN_START_SECONDS or (should_stop is not None and should_stop()):
            outcomes[k] = WhatIfOutcome(w, SolveStatus.NO_SOLUTION, None, None, cut_short=True, solved=False)
            continue
        started = time.perf_counter()
        limit = left / (len(pending) - position)
        outcomes[k] = _resolve_one(am, rows, w, scenario, base if use_plan else None, base_binding, values,
                                   limit, mip_rel_gap, should_stop, threads)
        outcomes[k].seconds = time.perf_counter() - started  # type: ignore[union-attr]
    return [o for o in outcomes if o is not None]


def _entry_plan(result: Result) -> dict[str, tuple[Mode, int]] | None:
    if not result.status.has_plan:
        return None
    return {m.id: (m.mode, m.entry_year) for m in result.markets
            if m.entered and m.mode is not None and m.entry_year is not None}


def _without_resolve(am: AllocationModel, rows: RowSet, w: WhatIf, base: np.ndarray | None, result: Result,
                     base_plan: dict[str, tuple[Mode, int]] | None, values: dict[str, float]) -> WhatIfOutcome | None:
    """Answers that need no re-solve: a tightened limit the plan still meets; a market that cannot be entered."""
    if w.kind == "force_in" and f"one_decision[{w.target}]" not in am.constraints:
        return WhatIfOutcome(w, SolveStatus.INFEASIBLE, None, None, solved=False)  # no entry column at all
    if w.kind != "step" or base is None or w.direction != "down" or w.target not in rows.position:
        return None
    if w.target.split("[", 1)[0] not in PARAM_FAMILIES:
        moved_scenario = _moved_scenario(am.scenario, w)
        form = formulate(moved_scenario)
        if not RowSet(form.rows).feasible(base):
            return None
    else:
        k = rows.position[w.target]
        lb, ub = rows.lb.copy(), rows.ub.copy()
        rhs = _moved_rhs(rows, k, w, values)
        if np.isfinite(ub[k]):
            ub[k] = rhs
        else:
            lb[k] = rhs
        if not rows.feasible(base, lb, ub):
            return None
    # the feasible set only shrank and still holds the plan: the plan stays optimal (within its gap)
    return WhatIfOutcome(w, result.status, result.objective_value, base_plan, solved=False)


def _moved_rhs(rows: RowSet, k: int, w: WhatIf, values: dict[str, float]) -> float:
    """The row bound for the moved limit (the row's bound may differ from the limit by a constant)."""
    bound = rows.ub[k] if np.isfinite(rows.ub[k]) else rows.lb[k]
    return float(bound + (w.moved - values[w.target]))


def _moved_scenario(sc: Scenario, w: WhatIf) -> Scenario:
    """The scenario with a coefficient limit (region budget share, risk cap) moved."""
    d = sc.to_dict()
    if w.target.startswith("region_budget_share["):
        name = w.target[len("region_budget_share["):-1]
        for region in d["regions"]:
            if region["name"] == name:
                region["max_budget_share"] = w.moved
    elif w.target == "max_average_risk":
        d["risk"]["max_average_risk"] = w.moved
    else:
        raise ValueError(f"not a coefficient limit: {w.target}")
    return parse_scenario(d)


def _resolve_one(am: AllocationModel, rows: RowSet, w: WhatIf, scenario: Scenario, base: np.ndarray | None,
                 base_binding: set[str], values: dict[str, float], time_limit: float, mip_rel_gap: float | None,
                 should_stop: Callable[[], bool] | None, threads: int) -> WhatIfOutcome:
    with _applied(am, rows, w, scenario, values) as target:
        in_place = w.kind != "step" or w.target.split("[", 1)[0] in PARAM_FAMILIES
        start = _start_vector(target, rows if in_place else RowSet(target.rows), w, base)
        out = solve_model(target, time_limit=time_limit, mip_rel_gap=mip_rel_gap, should_stop=should_stop,
                          threads=threads, start=start, head_start=False)
    return _outcome(am, rows, w, out, base, base_binding)


@contextmanager
def _applied(am: AllocationModel, rows: RowSet, w: WhatIf, scenario: Scenario,
             values: dict[str, float]) -> Iterator[AllocationModel]:
    """The model with the what-if applied (restored on exit); a fresh model if it cannot be applied in place."""
    if w.kind == "step":
        family = w.target.split("[", 1)[0]
        if family in PARAM_FAMILIES:
            param = am.model.limit[w.target]
            old = param.value
            param.value = _moved_rhs(rows, rows.position[w.target], w, values)
            try:
                yield am
            finally:
                param.value = old
            return
        moved = _moved_scenario(scenario, w)
        if not am.update(moved):
            yield build_model(moved)  # a different structure (not expected): solve it on its own
            return
        try:
            yield am
        finally:
            am.update(scenario)
        return
    columns = am.formulation.data.columns_of(am.formulation.data.index_of[w.target])
    if w.kind == "force_out":
        for k in columns.tolist():
            am.variables[k].setub(0.0)
        try:
            yield am
        finally:
            for k in columns.tolist():
                am.variables[k].setub(1.0)
        return
    if w.kind == "force_in":
        con = am.constraints[f"one_decision[{w.target}]"]
        body = am.linear_rows[con][1]
        con.set_value((1.0, body, 1.0))
        try:
            yield am
        finally:
            con.set_value((None, body, 1.0))
        return
    raise ValueError(f"unknown what-if kind {w.kind!r}")


def _start_vector(am: AllocationModel, rows: RowSet, w: WhatIf, base: np.ndarray | None) -> np.ndarray | None:
    """A feasible plan for the re-solve built from the original plan, or None."""
    if base is None:
        return None
    lb, ub = rows.lb.copy(), rows.ub.copy()
    if w.kind == "step":
        if w.target in rows.position and w.target.split("[", 1)[0] in PARAM_FAMILIES:
            k = rows.position[w.target]
            bound = float(am.model.limit[w.target].value)
            if np.isfinite(ub[k]):
                ub[k] = bound
            else:
                lb[k] = bound
        return base if rows.feasible(base, lb, ub) else None
    data, lay = am.formulation.data, am.layout
    i = data.index_of[w.target]
    columns = data.columns_of(i)
    levers = np.concatenate([lay.y_offset + np.nonzero(lay.y_market == i)[0], lay.n_offset + np.nonzero(lay.n_market == i)[0]])
    v = base.copy()
    v[columns] = 0.0
    v[levers] = 0.0
    if w.kind == "force_out":
        complete_cvar(am, v)
        return v if rows.feasible(v) else None
    k = rows.position[f"one_decision[{w.target}]"]
    lb[k] = 1.0
    best, best_value = None, -np.inf
    for c in columns.tolist():  # the plan plus this market in one of its columns (no levers)
        trial = v.copy()
        trial[c] = 1.0
        complete_cvar(am, trial)
        if rows.feasible(trial, lb, ub):
            value = float(am.objective_coef @ trial)
            if value > best_value:
                best, best_value = trial, value
    return best


def _outcome(am: AllocationModel, rows: RowSet, w: WhatIf, out: SolveOutcome, base: np.ndarray | None,
             base_binding: set[str]) -> WhatIfOutcome:
    cut_short = out.status not in PROVEN
    if out.values is None or not out.status.has_plan:
        blocking = _simple_blocking(am, rows, w, base_binding) if w.kind == "force_in" and out.status == SolveStatus.INFEASIBLE else []
        return WhatIfOutcome(w, out.status, None, None, cut_short=cut_short, blocking=blocking)
    plan = _plan_of(am, out.values)
    blocking = []
    if w.kind == "force_in":
        binding = rows.binding(out.values, BLOCKING_FAMILIES)
        blocking = sorted(binding - base_binding)
    return WhatIfOutcome(w, out.status, out.objective_value, plan, cut_short=cut_short, blocking=blocking)


def _plan_of(am: AllocationModel, v: np.ndarray) -> dict[str, tuple[Mode, int]]:
    col, sc = am.columns, am.scenario
    chosen = np.nonzero(np.round(v[:am.n_x]) > 0.5)[0]
    return {sc.markets[int(col.market[k])].id: (MODE_BY_INDEX[int(col.mode[k])], sc.start_year + int(col.entry[k]))
            for k in chosen.tolist()}


def _simple_blocking(am: AllocationModel, rows: RowSet, w: WhatIf, base_binding: set[str]) -> list[str]:
    """Limits binding in the original plan whose row the market's entry columns would load further."""
    columns = set(am.formulation.data.columns_of(am.formulation.data.index_of[w.target]).tolist())
    out = []
    for name in sorted(base_binding):
        k = rows.position[name]
        lo, hi = int(rows.starts[k]), int(rows.starts[k] + rows.sizes[k])
        upper = np.isfinite(rows.ub[k])
        for var, coef in zip(rows.idx[lo:hi].tolist(), rows.coef[lo:hi].tolist()):
            if var in columns and (coef > 0 if upper else coef < 0):
                out.append(name)
                break
    return out


# ----------------------------------------------------------------------------- merging


def step_values_from(result: Result, outcomes: list[WhatIfOutcome]) -> dict[str, list[StepValue]]:
    """Step values per limit from the outcomes of step specs (any chunks, any order): down before up."""
    out: dict[str, list[StepValue]] = {}
    base_plan = _entry_plan(result)
    for o in outcomes:
        w = o.whatif
        if w.kind != "step":
            continue
        change = None if o.objective is None or result.objective_value is None else o.objective - result.objective_value
        changes = None if o.plan is None or base_plan is None else o.plan != base_plan
        out.setdefault(w.target, []).append(StepValue(w.direction, w.relative_step, w.moved, o.objective, change, changes,
                                                      o.status, o.cut_short))
    for steps in out.values():
        steps.sort(key=lambda s: s.direction != "down")
    return out


def market_values_from(result: Result, outcomes: list[WhatIfOutcome]) -> list[MarketValue]:
    """Market values from the outcomes of force_in / force_out specs, in the result's market order."""
    by_market = {o.whatif.target: o for o in outcomes if o.whatif.kind in ("force_in", "force_out")}
    values = []
    for m in result.markets:
        o = by_market.get(m.id)
        if o is None:
            continue
        change = None if o.objective is None or result.objective_value is None else o.objective - result.objective_value
        mode, year = (o.plan or {}).get(m.id, (None, None)) if not m.entered else (None, None)
        values.append(MarketValue(m.id, m.entered, o.objective, change, mode, year, list(o.blocking), o.status, o.cut_short))
    return values


# ----------------------------------------------------------------------------- one-call entry points


def step_values(scenario: Scenario, result: Result, limits: list[str] | None = None, relative_step: float = 0.05,
                time_budget: float = 60.0, mip_rel_gap: float | None = None, *,
                model: AllocationModel | None = None, should_stop: Callable[[], bool] | None = None
                ) -> dict[str, list[StepValue]]:
    """Step values (docs/model.md §3) of every limit (or ``limits``), each moved down and up by ``relative_step``.

    Every limit of the scenario is a key (its list is empty when no step can move it, e.g. a
    limit of 0). One process, one built model; see :func:`plan_whatifs` / :func:`run_whatifs` to split.
    """
    specs = plan_whatifs(scenario, result, limits, relative_step, markets=False)
    names = list(limit_values(scenario)) if limits is None else list(limits)
    outcomes = run_whatifs(scenario, result, specs, time_budget, mip_rel_gap=mip_rel_gap, model=model, should_stop=should_stop)
    found = step_values_from(result, outcomes)
    return {name: found.get(name, []) for name in names}


def market_values(scenario: Scenario, result: Result, time_budget: float = 60.0, mip_rel_gap: float | None = None, *,
                  model: AllocationModel | None = None, should_stop: Callable[[], bool] | None = None) -> list[MarketValue]:
    """What each market is worth: entered markets forced out, the others forced in (one re-solve each)."""
    specs = plan_whatifs(scenario, result, steps=False)
    outcomes = run_whatifs(scenario, result, specs, time_budget, mip_rel_gap=mip_rel_gap, model=model, should_stop=should_stop)
    return market_values_from(result, outcomes)
