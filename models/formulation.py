"""The Pyomo model of MODEL.md section 2, built in bulk from :mod:`.cashflows` arrays.

Every constraint row is first assembled as numpy (variable indices, coefficients), then turned
into one Pyomo ``LinearExpression`` – the only Python-level loop is over non-zeros, never a
nested generator over sparse data. Constraint names follow MODEL.md section 4 exactly and are
kept in :attr:`AllocationModel.row_names`; resource limits are mutable Params so that a sweep
can change them and re-solve in place with the persistent HiGHS interface.

Variable layout (one global vector, also used for solution arrays):
``x`` (K entry columns) | ``y`` (growth investment pieces) | ``n`` (growth hires) |
``eta``, ``u[s]`` (CVaR, when used) | ``zero`` (bounded to 0: body of otherwise empty rows).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression

from .cashflows import Columns, MarketArrays, build_columns, market_arrays
from .scenario import MODES, Scenario


@dataclass
class Row:
    """One named constraint: lb <= Σ coef·var <= ub (either bound may be None)."""

    name: str
    idx: np.ndarray
    coef: np.ndarray
    lb: float | None
    ub: float | None


@dataclass
class AllocationModel:
    """A built model: scenario, precomputed arrays, the Pyomo model and its row map."""

    scenario: Scenario
    columns: Columns
    markets: MarketArrays
    model: pyo.ConcreteModel
    variables: list[Any]  # global variable vector (Pyomo VarData)
    n_x: int
    y_market: np.ndarray
    y_year: np.ndarray
    y_segment: np.ndarray
    y_return: np.ndarray
    n_market: np.ndarray
    n_year: np.ndarray
    eta_index: int | None
    u_index: np.ndarray
    rows: list[Row]
    constraints: dict[str, Any]  # MODEL.md §4 name -> Pyomo ConstraintData
    objective_coef: np.ndarray  # objective = objective_coef @ v + objective_constant
    objective_constant: float
    npv_coef: np.ndarray  # (S, nvar): NPV_s = npv_coef[s] @ v
    final_contribution_coef: np.ndarray  # Σ_s p_s Σ_i Contribution[i,T-1,s] = coef @ v
    penalty_coef: np.ndarray
    penalty_constant: float
    uses_cvar: bool
    build_seconds: float = 0.0
    integer_count: int = 0

    @property
    def n_vars(self) -> int:
        return len(self.variables)

    @property
    def y_offset(self) -> int:
        return self.n_x

    @property
    def n_offset(self) -> int:
        return self.n_x + self.y_market.size


def _year_weights(sc: Scenario) -> tuple[np.ndarray, float]:
    """w_t = δ_t, plus the terminal multiplier on t = T-1 (MODEL.md 2.6). Returns (w, δ_{T-1}·f)."""
    T, d = sc.horizon_years, sc.discount_rate
    delta = (1.0 + d) ** -np.arange(T, dtype=float)
    w = delta.copy()
    tv = 0.0
    if sc.terminal_growth is not None:
        g = sc.terminal_growth
        tv = delta[T - 1] * (1.0 + g) / (d - g)
        w[T - 1] += tv
    return w, tv


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a model is built or transferred.

    Building creates about a million small Pyomo objects; every 700 allocations the collector
    would rescan the growing heap, which cost ~75 % of the build at 1000 markets (2.1 s -> 0.5 s
    without it). Nothing built here needs collecting meanwhile; the collector resumes after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_model(sc: Scenario) -> AllocationModel:
    """Build the MIP of MODEL.md 2.1–2.6 for a validated scenario."""
    with paused_gc():
        return _build_model(sc)


def _build_model(sc: Scenario) -> AllocationModel:
    import time

    t0 = time.perf_counter()
    T, S = sc.horizon_years, len(sc.growth_scenarios)
    ma = market_arrays(sc)
    col = build_columns(sc, ma.size)
    K, N = col.K, col.N
    prob = np.array([g.probability for g in sc.growth_scenarios], dtype=float)
    years = sc.years
    mid = [m.id for m in sc.markets]

    # contiguous column ranges per market (columns are generated market by market)
    start = np.searchsorted(col.market, np.arange(N), side="left")
    end = np.searchsorted(col.market, np.arange(N), side="right")
    has_cols = end > start

    # -- 2.3 levers: growth investment pieces y[i,t,j] and growth hires n[i,t] (entered markets only)
    y_m, y_t, y_j, y_w, y_r = [], [], [], [], []
    for i, m in enumerate(sc.markets):
        if not has_cols[i] or not m.segments:
            continue
        J = len(m.segments)
        y_m.append(np.full(T * J, i))
        y_t.append(np.repeat(np.arange(T), J))
        y_j.append(np.tile(np.arange(J), T))
        y_w.append(np.tile(ma.segment_width[i], T))
        y_r.append(np.tile(ma.segment_return[i], T))
    cat = lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dtype=dt)  # noqa: E731
    y_market, y_year, y_segment = cat(y_m, np.int64), cat(y_t, np.int64), cat(y_j, np.int64)
    y_width, y_return = cat(y_w, float), cat(y_r, float)
    hire_markets = np.nonzero(has_cols & (ma.hire_max > 0))[0]
    n_market = np.repeat(hire_markets, T).astype(np.int64)
    n_year = np.tile(np.arange(T), hire_markets.size).astype(np.int64)

    objective = sc.objective
    uses_cvar = (objective.kind == "risk_adjusted_npv" and objective.risk_aversion > 0) or objective.min_cvar is not None

    # -- Pyomo variables, in the global order
    mdl = pyo.ConcreteModel(name=sc.name)
    mdl.x = pyo.Var(range(K), domain=pyo.Binary)
    mdl.y = pyo.Var(range(y_market.size), domain=pyo.NonNegativeReals, bounds=lambda _m, k: (0.0, float(y_width[k])))
    hire_max = ma.hire_max
    mdl.n = pyo.Var(range(n_market.size), domain=pyo.NonNegativeIntegers,
                    bounds=lambda _m, k: (0.0, float(hire_max[n_market[k]])))
    variables: list[Any] = list(mdl.x.values()) + list(mdl.y.values()) + list(mdl.n.values())
    eta_index = None
    u_index = np.zeros(0, dtype=np.int64)
    if uses_cvar:
        mdl.eta = pyo.Var(domain=pyo.Reals)
        mdl.u = pyo.Var(range(S), domain=pyo.NonNegativeReals)
        eta_index = len(variables)
        variables.append(mdl.eta)
        u_index = np.arange(len(variables), len(variables) + S)
        variables.extend(mdl.u.values())
    # a variable fixed to 0 by its bounds: the body of rows that have no other term (e.g. must_enter
    # of a market whose E_o is empty), so an infeasible row stays a real, nameable row (2.5)
    mdl.zero = pyo.Var(bounds=(0.0, 0.0))
    zero_index = len(variables)
    variables.append(mdl.zero)
    nvar = len(variables)
    yo, no = K, K + y_market.size

    # -- coefficient blocks (2.4): Spend and Heads per column and year
    salary_x = ma.salary[col.market] if K else np.zeros(0)
    spend_x = col.cost + salary_x[:, None] * col.heads  # (K,T); salary on every head, once
    heads_x = col.heads
    salary_n = ma.salary[n_market]

    def active_terms(markets_idx: np.ndarray, t: int, sign: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """active[i,t] = Σ_{o, τ<=t} x[o,τ] for the given markets, as (indices, coefs)."""
        sel = np.concatenate([np.arange(start[i], end[i]) for i in markets_idx]) if len(markets_idx) else np.zeros(0, np.int64)
        sel = sel[col.entry[sel] <= t]
        return sel.astype(np.int64), np.full(sel.size, sign)

    rows: list[Row] = []
    families: dict[str, list[tuple[Any, Row]]] = {}

    def add(family: str, key: Any, name: str, parts: list[tuple[np.ndarray, np.ndarray]],
            lb: float | None, ub: float | None) -> None:
        idx = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        coef = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
        keep = coef != 0
        idx, coef = idx[keep], coef[keep]
        if idx.size == 0:
            idx, coef = np.array([zero_index]), np.array([1.0])
        row = Row(name, idx.astype(np.int64), coef.astype(float), lb, ub)
        rows.append(row)
        families.setdefault(family, []).append((key, row))

    def nz(vec: np.ndarray, offset: int = 0, sel: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if sel is None:
            k = np.nonzero(vec)[0]
            return k + offset, vec[k]
        k = sel[vec[sel] != 0] if sel.size else sel
        return k + offset, vec[k]

    # 2.1 one decision per market; must_enter
    for i in range(N):
        if has_cols[i]:
            rng = np.arange(start[i], end[i])
            add("one_decision", mid[i], f"one_decision[{mid[i]}]", [(rng, np.ones(rng.size))], None, 1.0)
        if sc.markets[i].must_enter:
            if has_cols[i]:
                rng = np.arange(start[i], end[i])
                add("must_enter", mid[i], f"must_enter[{mid[i]}]", [(rng, np.ones(rng.size))], 1.0, None)
            else:  # empty E_o with must_enter: infeasible by construction (2.5)
                add("must_enter", mid[i], f"must_enter[{mid[i]}]", [], 1.0, None)

    # 2.3 lever links: Σ_j y[i,t,j] <= up_to_last·active[i,t]; n[i,t] <= max_heads·active[i,t]
    for i in np.unique(y_market):
        cap = float(np.sum(ma.segment_width[i]))
        for t in range(T):
            yk = np.nonzero((y_market == i) & (y_year == t))[0] + yo
            ax, ac = active_terms(np.array([i]), t, -cap)
            add("invest_link", (mid[i], years[t]), f"invest_link[{mid[i]},{years[t]}]",
                [(yk, np.ones(yk.size)), (ax, ac)], None, 0.0)
    for k in range(n_market.size):
        i, t = int(n_market[k]), int(n_year[k])
        ax, ac = active_terms(np.array([i]), t, -float(hire_max[i]))
        add("hire_link", (mid[i], years[t]), f"hire_link[{mid[i]},{years[t]}]",
            [(np.array([no + k]), np.array([1.0])), (ax, ac)], None, 0.0)

    # mutable limits (Params) so a sweep can change them and re-solve in place
    mdl.budget_limit_param = pyo.Param(range(T), mutable=True,
                                 initialize=lambda _m, t: sc.budget.limit[t] if sc.budget.limit else 0.0)
    mdl.headcount_cap_param = pyo.Param(range(T), mutable=True,
                                  initialize=lambda _m, t: sc.headcount.cap[t] if sc.headcount.cap else 0.0)
    mdl.max_net_hires_param = pyo.Param(range(T), mutable=True,
                                  initialize=lambda _m, t: sc.headcount.max_net_hires[t] if sc.headcount.max_net_hires else 0.0)
    param_bounds: dict[str, Any] = {}

    # 2.4 budget per year, or cumulative with carry-over
    if sc.budget.limit is not None:
        y_one = np.ones(y_market.size)
        if not sc.budget.carry_over:
            for t in range(T):
                add("budget", years[t], f"budget[{years[t]}]",
                    [nz(spend_x[:, t]), (np.nonzero(y_year == t)[0] + yo, y_one[y_year == t]),
                     nz(salary_n, no, np.nonzero(n_year == t)[0])],
                    None, sc.budget.limit[t])
                param_bounds[f"budget[{years[t]}]"] = mdl.budget_limit_param[t]
        else:
            cum = np.cumsum(spend_x, axis=1) if K else spend_x
            for t in range(T):
                add("budget_cumulative", years[t], f"budget_cumulative[{years[t]}]",
                    [nz(cum[:, t]), (np.nonzero(y_year <= t)[0] + yo, y_one[y_year <= t]),
                     nz(salary_n, no, np.nonzero(n_year <= t)[0])],
                    None, float(np.sum(sc.budget.limit[: t + 1])))
                param_bounds[f"budget_cumulative[{years[t]}]"] = sum(mdl.budget_limit_param[u] for u in range(t + 1))

    # 2.4 headcount cap and net hires (H_{-1} = initial)
    if sc.headcount.cap is not None:
        for t in range(T):
            nk = np.nonzero(n_year == t)[0]
            add("headcount_cap", years[t], f"headcount_cap[{years[t]}]",
                [nz(heads_x[:, t]), (nk + no, np.ones(nk.size))], None, sc.headcount.cap[t])
            param_bounds[f"headcount_cap[{years[t]}]"] = mdl.headcount_cap_param[t]
    if sc.headcount.max_net_hires is not None:
        for t in range(T):
            prev = heads_x[:, t - 1] if t > 0 else np.zeros(K)
            nk, npk = np.nonzero(n_year == t)[0], np.nonzero(n_year == t - 1)[0]
            extra = float(sc.headcount.initial) if t == 0 else 0.0
            add("net_hires", years[t], f"net_hires[{years[t]}]",
                [nz(heads_x[:, t] - prev), (nk + no, np.ones(nk.size)), (npk + no, -np.ones(npk.size))],
                None, sc.headcount.max_net_hires[t] + extra)
            param_bounds[f"net_hires[{years[t]}]"] = mdl.max_net_hires_param[t] + extra

    # 2.5 regions: market counts, budget share over the horizon, talent caps
    region_of = np.array([m.region or "" for m in sc.markets], dtype=object)
    talent = {(r.name, t): r.talent_cap[t] for r in sc.regions if r.talent_cap is not None for t in range(T)}
    if talent:
        mdl.talent_cap_param = pyo.Param(list(talent), mutable=True, initialize=talent)
    for r in sc.regions:
        in_g = np.nonzero(region_of == r.name)[0]
        in_x = np.isin(col.market, in_g) if K else np.zeros(0, bool)
        xk = np.nonzero(in_x)[0]
        if r.min_markets > 0:
            add("region_min_markets", r.name, f"region_min_markets[{r.name}]",
                [(xk, np.ones(xk.size))], float(r.min_markets), None)
        if r.max_markets is not None:
            add("region_max_markets", r.name, f"region_max_markets[{r.name}]",
                [(xk, np.ones(xk.size))], None, float(r.max_markets))
        if r.max_budget_share is not None:
            sh = r.max_budget_share
            wx = (in_x.astype(float) - sh) * spend_x.sum(axis=1) if K else np.zeros(0)
            wy = np.isin(y_market, in_g).astype(float) - sh
            wn = (np.isin(n_market, in_g).astype(float) - sh) * salary_n
            add("region_budget_share", r.name, f"region_budget_share[{r.name}]",
                [nz(wx), nz(wy, yo), nz(wn, no)], None, 0.0)
        if r.talent_cap is not None:
            in_n = np.isin(n_market, in_g)
            for t in range(T):
                sel = np.nonzero(in_x)[0]
                nk = np.nonzero(in_n & (n_year == t))[0]
                add("talent_cap", (r.name, years[t]), f"talent_cap[{r.name},{years[t]}]",
                    [nz(heads_x[:, t], 0, sel), (nk + no, np.ones(nk.size))], None, r.talent_cap[t])
                param_bounds[f"talent_cap[{r.name},{years[t]}]"] = mdl.talent_cap_param[r.name, t]

    # 2.5 prerequisites: active[i,t] <= active[j,t]
    index_of = {m.id: i for i, m in enumerate(sc.markets)}
    for i, m in enumerate(sc.markets):
        if not has_cols[i]:
            continue  # active[i,t] ≡ 0: nothing to require
        for req in m.requires:
            j = index_of[req]
            for t in range(T):
                pi, pc = active_terms(np.array([i]), t, 1.0)
                if pi.size == 0:
                    continue
                qi, qc = active_terms(np.array([j]), t, -1.0)
                add("requires", (m.id, req, years[t]), f"requires[{m.id},{req},{years[t]}]",
                    [(pi, pc), (qi, qc)], None, 0.0)

    # 2.5 average risk: Σ (rho_i - R) entered_i <= 0
    if sc.risk_max_average is not None and K:
        add("max_average_risk", None, "max_average_risk",
            [nz(ma.risk[col.market] - sc.risk_max_average)], None, 0.0)

    # 2.5 commitments: x[o,τ] = 1
    for cm in sc.commitments:
        i = index_of[cm.market_id]
        rng = np.arange(start[i], end[i])
        k = rng[(col.mode[rng] == MODES.index(cm.mode)) & (col.entry[rng] == cm.entry_year - sc.start_year)]
        add("commitment", cm.market_id, f"commitment[{cm.market_id}]", [(k, np.ones(k.size))], 1.0, 1.0)

    # 2.6 NPV per scenario as coefficient vectors over the global variable vector
    w, tv = _year_weights(sc)
    npv = np.zeros((S, nvar))
    if K:
        net_x = col.contribution - spend_x[:, :, None]  # (K,T,S)
        npv[:, :K] = np.einsum("kts,t->sk", net_x, w)
        npv[:, :K] += tv * col.one_off[:, T - 1][None, :]  # one-offs are not capitalised
    npv[:, yo:no] = (w[y_year] * (y_return - 1.0))[None, :]
    npv[:, no:no + n_market.size] = (w[n_year] * (ma.hire_contribution[n_market] - salary_n))[None, :]
    expected_npv = prob @ npv

    final = np.zeros(nvar)
    if K:
        final[:K] = col.contribution[:, T - 1, :] @ prob
    final[yo:no] = np.where(y_year == T - 1, y_return, 0.0)
    final[no:no + n_market.size] = np.where(n_year == T - 1, ma.hire_contribution[n_market], 0.0)

    # 2.5 previous-plan penalty: P(1 - x[o*,τ*]) or P·entered_i
    penalty = np.zeros(nvar)
    penalty_const = 0.0
    if sc.previous_plan is not None:
        P = sc.previous_plan.change_penalty
        for dcs in sc.previous_plan.decisions:
            i = index_of[dcs.market_id]
            rng = np.arange(start[i], end[i])
            if dcs.entered:
                assert dcs.mode is not None and dcs.entry_year is not None
                penalty_const += P
                k = rng[(col.mode[rng] == MODES.index(dcs.mode)) & (col.entry[rng] == dcs.entry_year - sc.start_year)]
                penalty[k] -= P  # outside E_o: x ≡ 0 and P is always paid
            else:
                penalty[rng] += P

    # CVaR_α = η - 1/(1-α) Σ p_s u_s, u_s >= η - NPV_s  (linear model, 2.6)
    alpha = objective.cvar_alpha
    cvar = np.zeros(nvar)
    if uses_cvar:
        assert eta_index is not None
        cvar[eta_index] = 1.0
        cvar[u_index] = -prob / (1.0 - alpha)
        for s in range(S):
            idx = np.nonzero(npv[s])[0]
            add("cvar_tail", sc.growth_scenarios[s].name, f"cvar_tail[{sc.growth_scenarios[s].name}]",
                [(idx, npv[s][idx]), (np.array([u_index[s], eta_index]), np.array([1.0, -1.0]))], 0.0, None)

    if objective.kind == "expected_npv":
        obj = expected_npv.copy()
    elif objective.kind == "risk_adjusted_npv":
        lam = objective.risk_aversion
        obj = (1.0 - lam) * expected_npv + (lam * cvar if uses_cvar else 0.0)
    else:
        obj = final.copy()
    obj -= penalty
    obj_const = -penalty_const

    # 2.6 floors
    if objective.min_expected_npv is not None:
        idx = np.nonzero(expected_npv)[0]
        add("min_expected_npv", None, "min_expected_npv", [(idx, expected_npv[idx])], objective.min_expected_npv, None)
    if objective.min_cvar is not None:
        idx = np.nonzero(cvar)[0]
        add("min_cvar", None, "min_cvar", [(idx, cvar[idx])], objective.min_cvar, None)

    # -- materialise Pyomo constraints, one component per MODEL.md §4 family
    constraints: dict[str, Any] = {}
    for family, entries in families.items():
        keys = [k for k, _ in entries]
        by_key = dict(entries)
        comp = pyo.Constraint(rule=_scalar_rule(entries[0][1], variables, param_bounds)) if keys == [None] \
            else pyo.Constraint(keys, rule=_indexed_rule(by_key, variables, param_bounds))
        setattr(mdl, family, comp)
        for k, row in entries:
            constraints[row.name] = comp if k is None else comp[k]

    oi = np.nonzero(obj)[0]
    mdl.objective = pyo.Objective(expr=_linear(variables, oi, obj[oi], obj_const), sense=pyo.maximize)

    built = AllocationModel(
        scenario=sc, columns=col, markets=ma, model=mdl, variables=variables, n_x=K,
        y_market=y_market, y_year=y_year, y_segment=y_segment, y_return=y_return,
        n_market=n_market, n_year=n_year, eta_index=eta_index, u_index=u_index,
        rows=rows, constraints=constraints, objective_coef=obj, objective_constant=obj_const,
        npv_coef=npv, final_contribution_coef=final, penalty_coef=penalty,
        penalty_constant=penalty_const, uses_cvar=uses_cvar,
        integer_count=K + int(n_market.size),
    )
    built.build_seconds = time.perf_counter() - t0
    return built


def _bounded(r: Row, variables: list[Any], param_bounds: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(lb, body, ub) of a row; resource limits use their mutable Param as the bound."""
    return (r.lb, _linear(variables, r.idx, r.coef), param_bounds.get(r.name, r.ub))


def _scalar_rule(row: Row, variables: list[Any], param_bounds: dict[str, Any]) -> Any:
    return lambda _m: _bounded(row, variables, param_bounds)


def _indexed_rule(by_key: dict[Any, Row], variables: list[Any], param_bounds: dict[str, Any]) -> Any:
    def rule(_m: Any, *key: Any) -> Any:
        return _bounded(by_key[key[0] if len(key) == 1 else tuple(key)], variables, param_bounds)

    return rule


def _linear(variables: list[Any], idx: np.ndarray, coef: np.ndarray, constant: float = 0.0) -> LinearExpression:
    """Σ coef·var (+ constant) as one LinearExpression, without expression-tree arithmetic.

    The monomials are made by ``map`` over C-level iterators (``itemgetter`` picks the
    variables): no Python frame per non-zero, the build's hot loop.
    """
    args: list[Any] = [constant] if constant else []
    if idx.size == 1:
        args.append(MonomialTermExpression((float(coef[0]), variables[int(idx[0])])))
    elif idx.size:
        picked = itemgetter(*idx.tolist())(variables)
        args.extend(map(MonomialTermExpression, zip(coef.tolist(), picked)))
    return LinearExpression(args)
