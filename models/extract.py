"""Extraction: solution arrays -> the typed :class:`~.result.Result` (docs/model.md section 3).

Everything here is computed from the precomputed column arrays and the solution vector with
numpy; nothing walks the Pyomo model.
"""

from __future__ import annotations

import platform
import time
from typing import Any

import numpy as np

from .conflict import FeasibleAfterAll, explain_infeasibility
from .explain import explain_plan
from .measures import cvar_of, payback_year
from .formulation import AllocationModel, paused_gc
from .result import Kpis, MarketDecision, MarketYear, ModelSize, Result, SolveStatus, Timings, YearTotal
from .scenario import Mode
from .solve import NUMERICAL_TROUBLE, SolveOutcome, highs_version

MODE_BY_INDEX = tuple(Mode)  # column arrays index modes in declaration order


def solver_info() -> dict[str, str]:
    import pyomo.version

    return {
        "name": "highs",
        "highs_version": highs_version(),
        "pyomo_version": str(pyomo.version.version),
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
    }


def model_size(am: AllocationModel) -> ModelSize:
    return ModelSize(
        variables=am.n_vars,
        integer_variables=am.integer_count,
        constraints=len(am.rows),
        nonzeros=am.nonzeros,
    )


EXPLAIN_INFEASIBLE_SECONDS = 30.0  # default time for finding why a scenario is infeasible
NO_ANSWER = ("no usable plan; numerical trouble: the solver called the scenario infeasible, but it has a plan; "
             "some of its numbers are very large for the model (money, growth, penalties); smaller ones, or a "
             "larger money_unit, avoid it")


def extract_result(am: AllocationModel, out: SolveOutcome, started: float | None = None, *,
                   explain_seconds: float = EXPLAIN_INFEASIBLE_SECONDS, explain: bool = True) -> Result:
    """Turn solution arrays into the typed :class:`Result` (decisions, breakdowns, KPIs) and
    explain it: limits and the objective's parts for a plan, the conflict for an infeasible
    scenario (at most ``explain_seconds`` of extra solves). ``explain`` False skips the plan's
    explanation (a sweep's variants: decisions and KPIs only)."""
    with paused_gc():  # a collection now would rescan the whole built model (~0.5 s at 2000 markets)
        return _extract_result(am, out, started, explain_seconds, explain)


def _extract_result(am: AllocationModel, out: SolveOutcome, started: float | None, explain_seconds: float,
                    explain: bool = True) -> Result:
    t0 = time.perf_counter()
    sc, col, ma = am.scenario, am.columns, am.markets
    T = sc.horizon_years
    years = sc.years
    prob = np.array([g.probability for g in sc.growth_scenarios])
    timings = Timings(am.build_seconds, out.transfer_seconds, out.solver_seconds)
    base: dict[str, Any] = dict(
        scenario_name=sc.name, scenario_sha256=sc.sha256(), status=SolveStatus(out.status),
        currency=sc.currency, money_unit=sc.money_unit.value,
        objective_value=out.objective_value, best_bound=out.best_bound, gap=out.gap,
        message=_message(out), timings=timings, model_size=model_size(am), solver=solver_info(),
    )
    if out.values is None:
        empty = [MarketDecision(m.id, m.name, m.region, False, None, None, 0.0, []) for m in sc.markets]
        timings.extraction_seconds = time.perf_counter() - t0
        infeasibility = None
        if out.status == SolveStatus.INFEASIBLE and explain_seconds > 0:
            t1 = time.perf_counter()
            try:
                infeasibility = explain_infeasibility(am, time_limit=explain_seconds)  # why (§3)
            except FeasibleAfterAll:  # HiGHS's "infeasible" was numerical trouble: no answer, not a proof
                base["status"], base["message"] = SolveStatus.NO_SOLUTION, NO_ANSWER
            timings.explanation_seconds = time.perf_counter() - t1
        timings.total_seconds = _total(timings, started)
        return Result(markets=empty, years=[], kpis=None, infeasibility=infeasibility, **base)

    v = out.values  # its objective is the plan's own: solve_model's self-check (_check_objective) set it
    K = am.n_x
    x = np.round(v[:K]).astype(bool) if K else np.zeros(0, bool)
    y = v[am.y_offset:am.n_offset]
    n = np.round(v[am.n_offset:am.n_offset + am.n_market.size])
    chosen = np.nonzero(x)[0]
    col_of_market = {int(col.market[k]): int(k) for k in chosen}

    # per-market yearly arrays (N,T)
    N = col.N
    def per_market(values: np.ndarray) -> np.ndarray:
        """(N,T) array: the chosen column's values on its market's row, 0 elsewhere."""
        out = np.zeros((N, T))
        if chosen.size:
            out[col.market[chosen]] = values
        return out

    entry = per_market(col.entry_cost[chosen])
    annual = per_market(col.annual_cost[chosen])
    compl = per_market(col.compliance_cost[chosen])
    req = per_market(col.heads[chosen])
    share = per_market(col.share[chosen] @ prob)
    rev = per_market(col.revenue[chosen] @ prob)
    contrib = per_market(col.contribution[chosen] @ prob)
    invest = np.zeros((N, T))
    hires = np.zeros((N, T))
    np.add.at(invest, (am.y_market, am.y_year), y)
    np.add.at(contrib, (am.y_market, am.y_year), am.y_return * y)
    np.add.at(hires, (am.n_market, am.n_year), n)
    contrib += ma.hire_contribution[:, None] * hires
    heads = req + hires
    people = ma.salary[:, None] * heads
    spend = entry + annual + compl + people + invest

    npv_s = am.npv_coef @ v  # (S,)
    expected_npv = float(prob @ npv_s)
    # per-market share of E[NPV] from the same coefficient vectors
    exp_coef = prob @ am.npv_coef
    per_market_npv = np.zeros(N)
    if chosen.size:
        np.add.at(per_market_npv, col.market[chosen], exp_coef[chosen])
    np.add.at(per_market_npv, am.y_market, exp_coef[am.y_offset:am.n_offset] * y)
    np.add.at(per_market_npv, am.n_market, exp_coef[am.n_offset:am.n_offset + am.n_market.size] * n)

    markets: list[MarketDecision] = []
    for i, m in enumerate(sc.markets):
        k = col_of_market.get(i)
        rows = [
            MarketYear(years[t], float(entry[i, t]), float(annual[i, t]), float(compl[i, t]),
                       float(people[i, t]), float(invest[i, t]), float(spend[i, t]), float(req[i, t]),
                       float(hires[i, t]), float(heads[i, t]), float(share[i, t]), float(rev[i, t]),
                       float(contrib[i, t]))
            for t in range(T)
        ]
        markets.append(MarketDecision(
            m.id, m.name, m.region, k is not None,
            MODE_BY_INDEX[int(col.mode[k])] if k is not None else None,
            sc.start_year + int(col.entry[k]) if k is not None else None,
            float(per_market_npv[i]), rows,
        ))

    spend_t = spend.sum(axis=0)
    heads_t = heads.sum(axis=0)
    prev = np.concatenate([[float(sc.headcount.initial)], heads_t[:-1]])
    contrib_t = contrib.sum(axis=0)
    net_t = contrib_t - spend_t
    lim = sc.budget.limit
    totals = [
        YearTotal(
            year=years[t], spend=float(spend_t[t]), budget_limit=None if lim is None else lim[t],
            cumulative_spend=float(spend_t[: t + 1].sum()),
            cumulative_budget=None if lim is None else float(sum(lim[: t + 1])),
            heads=float(heads_t[t]), headcount_cap=None if sc.headcount.cap is None else sc.headcount.cap[t],
            net_hires=float(heads_t[t] - prev[t]),
            net_hires_limit=None if sc.headcount.max_net_hires is None else sc.headcount.max_net_hires[t],
            expected_contribution=float(contrib_t[t]), expected_net_cash_flow=float(net_t[t]),
        )
        for t in range(T)
    ]
    penalty = float(am.penalty_coef @ v + am.penalty_constant)
    kpis = Kpis(
        expected_npv=expected_npv,
        npv_by_scenario={g.name: float(npv_s[s]) for s, g in enumerate(sc.growth_scenarios)},
        cvar=cvar_of(npv_s, prob, sc.objective.cvar_alpha),
        cvar_alpha=sc.objective.cvar_alpha,
        payback_year=payback_year(np.cumsum(net_t), years),
        change_penalty=penalty,
        markets_entered=int(chosen.size),
        final_year_contribution=float(am.final_contribution_coef @ v),
    )
    timings.extraction_seconds = time.perf_counter() - t0
    if not explain:
        timings.total_seconds = _total(timings, started)
        return Result(markets=markets, years=totals, kpis=kpis, **base)
    explanation = explain_plan(am, out)  # limits and what they are worth, the objective's parts (§3)
    timings.explanation_seconds = explanation.seconds
    timings.total_seconds = _total(timings, started)
    return Result(markets=markets, years=totals, kpis=kpis, limits=explanation.limits,
                  objective_terms=explanation.objective_terms, market_terms=explanation.market_terms, **base)


def _total(t: Timings, started: float | None) -> float:
    if started is not None:
        return time.perf_counter() - started
    return t.build_seconds + t.transfer_seconds + t.solver_seconds + t.extraction_seconds


def _message(out: SolveOutcome) -> str:
    """The status in words, then what the solve noted (the head start's plan kept, an objective
    the solver misreported): :attr:`SolveOutcome.message`."""
    words = {
        "optimal": "optimal within the requested gap",
        "feasible": f"stopped by a limit ({out.highs_status}) with a feasible plan; gap shown",
        "infeasible": "no plan satisfies every constraint",
        "unbounded": "the objective is unbounded",
        "no_solution": "no usable plan" if out.highs_status == NUMERICAL_TROUBLE
                       else f"stopped ({out.highs_status}) before any feasible plan was found",
        "cancelled": "cancelled; the best plan found so far is shown" if out.values is not None else "cancelled before any plan was found",
    }.get(out.status, out.highs_status)
    return f"{words}; {out.message}" if out.message else words
