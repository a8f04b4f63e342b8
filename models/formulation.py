"""The Pyomo model of docs/model.md §2, built in bulk from :mod:`.cashflows` arrays.

A model is built in two steps:

1. :func:`formulate` computes everything as numpy, without Pyomo: the :class:`VariableLayout`
   (where each decision sits in the one global variable vector), one :class:`Row` list per
   constraint family (one short function per family below, each citing the section it
   implements) and the objective's coefficient vectors (:class:`ObjectiveTerms`).
2. :func:`build_model` turns that :class:`Formulation` into Pyomo components: each row becomes
   one ``LinearExpression`` (the only Python-level loop is over non-zeros, never a nested
   generator over sparse data); each family becomes one indexed ``Constraint`` named as in
   docs/model.md §4 (kept in :attr:`AllocationModel.constraints`).

Every row bound that is a scenario limit (budget, headcount, net hires, region counts, talent
caps, floors) is a mutable Param ``model.limit[<constraint name>]``. :func:`update_model`
re-runs step 1 for a changed scenario and, when the structure is unchanged, pushes only what
changed (limit Params, variable bounds, changed row bodies, the objective) into the same Pyomo
model, so the persistent HiGHS interface re-solves in place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression

from .cashflows import Columns, MarketArrays, build_columns, market_arrays
from .gctools import paused_gc  # building creates ~1e6 Pyomo objects: no collector rescans meanwhile
from .scenario import MODES, Scenario

_NO_INDEX = np.zeros(0, dtype=np.int64)


@dataclass
class Row:
    """One named constraint: lb <= Σ coef·var <= ub (either bound may be None).

    ``family`` is its docs/model.md §4 family (one Pyomo ``Constraint`` component), ``key`` its
    index in that family (None for a scalar constraint). ``limit`` marks a row whose one bound is
    a scenario limit, held in the mutable Param ``model.limit[name]``.
    """

    name: str
    idx: np.ndarray
    coef: np.ndarray
    lb: float | None
    ub: float | None
    family: str = ""
    key: Any = None
    limit: bool = False

    @property
    def limit_value(self) -> float | None:
        return self.lb if self.lb is not None else self.ub


# ----------------------------------------------------------------------------- variable layout


@dataclass(frozen=True, eq=False)
class VariableLayout:
    """The global variable vector (also the layout of every solution vector):

    ``x`` K entry columns (§2.1) | ``y`` growth-investment pieces y[i,t,j] (§2.3) |
    ``n`` growth hires n[i,t] (§2.3) | ``eta``, ``u[s]`` (the CVaR of §2.6, when used) |
    ``zero`` (bounded to 0: the body of a row that has no other term, so that it stays a real,
    nameable row, e.g. ``must_enter`` of a market that cannot be entered).
    """

    n_x: int
    y_market: np.ndarray  # market i of each y piece
    y_year: np.ndarray  # year t
    y_segment: np.ndarray  # segment j
    y_width: np.ndarray  # upper bound w_j
    y_return: np.ndarray  # return_rate_j
    n_market: np.ndarray  # market i of each growth-hire variable
    n_year: np.ndarray  # year t
    n_max: np.ndarray  # upper bound max_heads_i
    n_scenarios: int
    uses_cvar: bool

    @property
    def y_offset(self) -> int:
        return self.n_x

    @property
    def n_offset(self) -> int:
        return self.n_x + self.y_market.size

    @property
    def eta_index(self) -> int | None:
        return self.n_offset + self.n_market.size if self.uses_cvar else None

    @property
    def u_index(self) -> np.ndarray:
        if not self.uses_cvar:
            return _NO_INDEX
        first = self.n_offset + self.n_market.size + 1
        return np.arange(first, first + self.n_scenarios, dtype=np.int64)

    @property
    def zero_index(self) -> int:
        return self.n_offset + self.n_market.size + (1 + self.n_scenarios if self.uses_cvar else 0)

    @property
    def size(self) -> int:
        return self.zero_index + 1

    @property
    def integer_count(self) -> int:
        return self.n_x + int(self.n_market.size)

    @property
    def integer_index(self) -> np.ndarray:
        """Positions of the integer variables: the entry columns x and the growth hires n."""
        return np.r_[np.arange(self.n_x), self.n_offset + np.arange(self.n_market.size)].astype(np.int32)

    def same_structure(self, other: VariableLayout) -> bool:
        """The same variables in the same places (bounds and return rates may differ)."""
        return (self.n_x == other.n_x and self.n_scenarios == other.n_scenarios
                and self.uses_cvar == other.uses_cvar
                and all(np.array_equal(a, b) for a, b in (
                    (self.y_market, other.y_market), (self.y_year, other.y_year),
                    (self.y_segment, other.y_segment), (self.n_market, other.n_market),
                    (self.n_year, other.n_year))))


def _uses_cvar(sc: Scenario) -> bool:
    objective = sc.objective
    return (objective.kind == "risk_adjusted_npv" and objective.risk_aversion > 0) or objective.min_cvar is not None


def _variable_layout(sc: Scenario, col: Columns, ma: MarketArrays, enterable: np.ndarray) -> VariableLayout:
    """y pieces and n hires exist only for markets that can be entered (§2.3)."""
    T = sc.horizon_years
    invest_markets = [i for i, m in enumerate(sc.markets) if enterable[i] and m.segments]
    counts = np.array([len(ma.segment_width[i]) for i in invest_markets], dtype=np.int64)
    y_market = np.repeat(np.array(invest_markets, dtype=np.int64), counts * T)
    y_year = np.concatenate([np.repeat(np.arange(T), J) for J in counts]) if counts.size else _NO_INDEX
    y_segment = np.concatenate([np.tile(np.arange(J), T) for J in counts]) if counts.size else _NO_INDEX
    y_width = np.concatenate([np.tile(ma.segment_width[i], T) for i in invest_markets]) if counts.size else np.zeros(0)
    y_return = np.concatenate([np.tile(ma.segment_return[i], T) for i in invest_markets]) if counts.size else np.zeros(0)
    hire_markets = np.nonzero(enterable & (ma.hire_max > 0))[0]
    n_market = np.repeat(hire_markets, T).astype(np.int64)
    return VariableLayout(
        n_x=col.K, y_market=y_market, y_year=y_year.astype(np.int64), y_segment=y_segment.astype(np.int64),
        y_width=y_width.astype(float), y_return=y_return.astype(float),
        n_market=n_market, n_year=np.tile(np.arange(T), hire_markets.size).astype(np.int64),
        n_max=ma.hire_max[n_market], n_scenarios=len(sc.growth_scenarios), uses_cvar=_uses_cvar(sc),
    )


# ----------------------------------------------------------------------------- numpy inputs


@dataclass(frozen=True, eq=False)
class ModelData:
    """The arrays every constraint family reads: columns, market data, layout, Spend/Heads blocks."""

    scenario: Scenario
    columns: Columns
    markets: MarketArrays
    layout: VariableLayout
    start: np.ndarray  # (N,) first column of each market (columns are generated market by market)
    end: np.ndarray  # (N,) one past its last column
    spend_x: np.ndarray  # (K,T) Spend of a column (§2.4): cost + salary on every required head
    salary_n: np.ndarray  # salary of each growth-hire variable
    probability: np.ndarray  # (S,) p_s
    years: list[int]
    index_of: dict[str, int]  # market id -> i

    def columns_of(self, i: int) -> np.ndarray:
        return np.arange(self.start[i], self.end[i], dtype=np.int64)

    def active_terms(self, i: int, t: int, sign: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """active[i,t] = Σ_{o, τ<=t} x[o,τ] (§2.1), as (indices, coefficients)."""
        k = self.columns_of(i)
        k = k[self.columns.entry[k] <= t]
        return k, np.full(k.size, sign)

    def column_of(self, market_id: str, mode: str, entry_year: int) -> np.ndarray:
        """The column of (market, mode, calendar entry year): one index, or none outside E_o."""
        k = self.columns_of(self.index_of[market_id])
        col = self.columns
        return k[(col.mode[k] == MODES.index(mode)) & (col.entry[k] == entry_year - self.scenario.start_year)]

    def row(self, family: str, key: Any, parts: list[tuple[np.ndarray, np.ndarray]],
            lb: float | None, ub: float | None, limit: bool = False) -> Row:
        """A named row from (indices, coefficients) parts; zero coefficients are dropped."""
        idx = np.concatenate([p[0] for p in parts]) if parts else _NO_INDEX
        coef = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
        keep = coef != 0
        idx, coef = idx[keep], coef[keep]
        if idx.size == 0:
            idx, coef = np.array([self.layout.zero_index]), np.array([1.0])
        label = key if isinstance(key, tuple) else (key,)
        name = family if key is None else f"{family}[{','.join(map(str, label))}]"
        return Row(name, idx.astype(np.int64), coef.astype(float), lb, ub, family, key, limit)


def _model_data(sc: Scenario) -> ModelData:
    ma = market_arrays(sc)
    col = build_columns(sc, ma.size)
    markets = np.arange(col.N)
    start = np.searchsorted(col.market, markets, side="left")
    end = np.searchsorted(col.market, markets, side="right")
    layout = _variable_layout(sc, col, ma, end > start)
    salary_x = ma.salary[col.market] if col.K else np.zeros(0)
    return ModelData(
        scenario=sc, columns=col, markets=ma, layout=layout, start=start, end=end,
        spend_x=col.cost + salary_x[:, None] * col.heads,  # salary on every head, once (§2.4)
        salary_n=ma.salary[layout.n_market],
        probability=np.array([g.probability for g in sc.growth_scenarios], dtype=float),
        years=sc.years, index_of={m.id: i for i, m in enumerate(sc.markets)},
    )


def _nonzero(vec: np.ndarray, offset: int = 0, sel: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indices + offset, values) of the non-zeros of vec (restricted to sel when given)."""
    k = np.nonzero(vec)[0] if sel is None else sel[vec[sel] != 0]
    return k + offset, vec[k]


def _ones(idx: np.ndarray, offset: int = 0, sign: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    return idx + offset, np.full(idx.size, sign)


# ----------------------------------------------------------------------------- objective terms


@dataclass(frozen=True, eq=False)
class ObjectiveTerms:
    """The objective and its parts as coefficient vectors over the global variable vector."""

    npv: np.ndarray  # (S, nvar): NPV_s = npv[s] @ v
    expected_npv: np.ndarray  # E[NPV] = p @ npv
    final_contribution: np.ndarray  # Σ_s p_s Σ_i Contribution[i,T-1,s]
    cvar: np.ndarray  # CVaR_α = cvar @ v (zero when CVaR is not modelled)
    penalty: np.ndarray  # previous-plan penalty = penalty @ v + penalty_constant
    penalty_constant: float
    objective: np.ndarray  # maximized: objective @ v + objective_constant
    objective_constant: float


def _year_weights(sc: Scenario) -> tuple[np.ndarray, float]:
    """w_t = δ_t, plus the terminal multiplier on t = T-1 (§2.6). Returns (w, δ_{T-1}·f)."""
    T, d = sc.horizon_years, sc.discount_rate
    delta = (1.0 + d) ** -np.arange(T, dtype=float)
    w = delta.copy()
    tv = 0.0
    if sc.terminal_growth is not None:
        g = sc.terminal_growth
        tv = delta[T - 1] * (1.0 + g) / (d - g)
        w[T - 1] += tv
    return w, tv


# docs/model.md §2.6: NPV_s = Σ_t δ_t Net[t,s] + TV_s; one-off costs are never capitalised.
def _npv_coefficients(data: ModelData) -> np.ndarray:
    col, lay, T = data.columns, data.layout, data.scenario.horizon_years
    w, tv = _year_weights(data.scenario)
    npv = np.zeros((lay.n_scenarios, lay.size))
    if col.K:
        net_x = col.contribution - data.spend_x[:, :, None]  # (K,T,S)
        npv[:, :col.K] = np.einsum("kts,t->sk", net_x, w)
        npv[:, :col.K] += tv * col.one_off[:, T - 1][None, :]
    npv[:, lay.y_offset:lay.n_offset] = (w[lay.y_year] * (lay.y_return - 1.0))[None, :]
    hire_net = data.markets.hire_contribution[lay.n_market] - data.salary_n
    npv[:, lay.n_offset:lay.n_offset + lay.n_market.size] = (w[lay.n_year] * hire_net)[None, :]
    return npv


# docs/model.md §2.6: final_year_contribution = Σ_s p_s Σ_i Contribution[i,T-1,s].
def _final_year_coefficients(data: ModelData) -> np.ndarray:
    col, lay, last = data.columns, data.layout, data.scenario.horizon_years - 1
    final = np.zeros(lay.size)
    if col.K:
        final[:col.K] = col.contribution[:, last, :] @ data.probability
    final[lay.y_offset:lay.n_offset] = np.where(lay.y_year == last, lay.y_return, 0.0)
    hire = data.markets.hire_contribution[lay.n_market]
    final[lay.n_offset:lay.n_offset + lay.n_market.size] = np.where(lay.n_year == last, hire, 0.0)
    return final


# docs/model.md §2.5 previous plan: P(1 - x[o*,τ*]) for a market entered before, P·entered_i if not.
def _penalty_coefficients(data: ModelData) -> tuple[np.ndarray, float]:
    penalty, constant = np.zeros(data.layout.size), 0.0
    plan = data.scenario.previous_plan
    if plan is None:
        return penalty, constant
    for decision in plan.decisions:
        if decision.entered:
            assert decision.mode is not None and decision.entry_year is not None
            constant += plan.change_penalty
            # outside E_o the column does not exist: x ≡ 0 and P is always paid
            penalty[data.column_of(decision.market_id, decision.mode, decision.entry_year)] -= plan.change_penalty
        else:
            penalty[data.columns_of(data.index_of[decision.market_id])] += plan.change_penalty
    return penalty, constant


# docs/model.md §2.6: CVaR_α = η - 1/(1-α) Σ_s p_s u_s with u_s >= η - NPV_s (rows: _cvar_tail_rows).
def _cvar_coefficients(data: ModelData) -> np.ndarray:
    lay = data.layout
    cvar = np.zeros(lay.size)
    if lay.eta_index is not None:
        cvar[lay.eta_index] = 1.0
        cvar[lay.u_index] = -data.probability / (1.0 - data.scenario.objective.cvar_alpha)
    return cvar


# docs/model.md §2.6: the three objective kinds, each minus the previous-plan penalty.
def _objective_terms(data: ModelData) -> ObjectiveTerms:
    npv = _npv_coefficients(data)
    expected_npv = data.probability @ npv
    final = _final_year_coefficients(data)
    cvar = _cvar_coefficients(data)
    penalty, penalty_constant = _penalty_coefficients(data)
    objective = data.scenario.objective
    if objective.kind == "expected_npv":
        maximized = expected_npv.copy()
    elif objective.kind == "risk_adjusted_npv":
        maximized = (1.0 - objective.risk_aversion) * expected_npv + objective.risk_aversion * cvar
    else:
        maximized = final.copy()
    return ObjectiveTerms(npv, expected_npv, final, cvar, penalty, penalty_constant,
                          maximized - penalty, -penalty_constant)


# ----------------------------------------------------------------------------- constraint families


# docs/model.md §2.1: Σ_{o of i, τ∈E_o} x[o,τ] <= 1 per market that can be entered.
def _one_decision_rows(data: ModelData) -> list[Row]:
    return [data.row("one_decision", m.id, [_ones(data.columns_of(i))], None, 1.0)
            for i, m in enumerate(data.scenario.markets) if data.end[i] > data.start[i]]


# docs/model.md §2.1, §2.5: Σ x[o,τ] >= 1 for must_enter; with an empty E_o the row is 0 >= 1.
def _must_enter_rows(data: ModelData) -> list[Row]:
    return [data.row("must_enter", m.id, [_ones(data.columns_of(i))], 1.0, None)
            for i, m in enumerate(data.scenario.markets) if m.must_enter]


# docs/model.md §2.3: Σ_j y[i,t,j] <= up_to_last · active[i,t], written segment by segment as
# y[i,t,j] <= w_j · active[i,t] (docs/model.md §6.4). With active[i,t] in {0, 1} both forms allow
# exactly the same plans (the segment rows sum to the page's row, and y[i,t,j] <= w_j is a bound
# anyway), so the optimum is the same; the LP relaxation is tighter: with the page's row alone a
# market entered to a fraction a may put all of a · up_to_last into its best-returning segment,
# earning more per unit than the whole market could. Measured on generated scenarios with growth
# investment on every market, the LP bound falls by 0.37 % at 200 markets, 0.88 % at 500 and
# 0.86 % at 2,000 (bench/results/invest_link.md).
def _invest_link_rows(data: ModelData) -> list[Row]:
    lay, years = data.layout, data.years
    rows = []
    for p in np.lexsort((lay.y_segment, lay.y_year, lay.y_market)).tolist() if lay.y_market.size else []:
        i, t, j = int(lay.y_market[p]), int(lay.y_year[p]), int(lay.y_segment[p])
        rows.append(data.row("invest_link", (data.scenario.markets[i].id, years[t], j + 1),
                             [_ones(np.array([p]), lay.y_offset), data.active_terms(i, t, -float(lay.y_width[p]))],
                             None, 0.0))
    return rows


# docs/model.md §2.3: n[i,t] <= max_heads_i · active[i,t].
def _hire_link_rows(data: ModelData) -> list[Row]:
    lay, markets = data.layout, data.scenario.markets
    return [data.row("hire_link", (markets[i].id, data.years[t]),
                     [(np.array([lay.n_offset + k]), np.array([1.0])), data.active_terms(i, t, -float(lay.n_max[k]))],
                     None, 0.0)
            for k, (i, t) in enumerate(zip(lay.n_market.tolist(), lay.n_year.tolist()))]


def _spend_parts(data: ModelData, spend_x: np.ndarray, y_sel: np.ndarray, n_sel: np.ndarray
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Spend (§2.4) of the given x block, y pieces and growth hires, as row parts."""
    lay = data.layout
    return [_nonzero(spend_x), _ones(np.nonzero(y_sel)[0], lay.y_offset),
            _nonzero(data.salary_n, lay.n_offset, np.nonzero(n_sel)[0])]


# docs/model.md §2.4: Spend_t <= B_t (without carry_over).
def _budget_rows(data: ModelData) -> list[Row]:
    budget, lay = data.scenario.budget, data.layout
    if budget.limit is None or budget.carry_over:
        return []
    return [data.row("budget", year, _spend_parts(data, data.spend_x[:, t], lay.y_year == t, lay.n_year == t),
                     None, float(budget.limit[t]), limit=True)
            for t, year in enumerate(data.years)]


# docs/model.md §2.4: Σ_{u<=t} Spend_u <= Σ_{u<=t} B_u (with carry_over).
def _budget_cumulative_rows(data: ModelData) -> list[Row]:
    budget, lay = data.scenario.budget, data.layout
    if budget.limit is None or not budget.carry_over:
        return []
    cumulative_spend = np.cumsum(data.spend_x, axis=1)
    cumulative_limit = np.cumsum(np.asarray(budget.limit, dtype=float))
    return [data.row("budget_cumulative", year,
                     _spend_parts(data, cumulative_spend[:, t], lay.y_year <= t, lay.n_year <= t),
                     None, float(cumulative_limit[t]), limit=True)
            for t, year in enumerate(data.years)]


# docs/model.md §2.4: H_t <= Hcap_t.
def _headcount_cap_rows(data: ModelData) -> list[Row]:
    cap, lay, heads = data.scenario.headcount.cap, data.layout, data.columns.heads
    if cap is None:
        return []
    return [data.row("headcount_cap", year,
                     [_nonzero(heads[:, t]), _ones(np.nonzero(lay.n_year == t)[0], lay.n_offset)],
                     None, float(cap[t]), limit=True)
            for t, year in enumerate(data.years)]


# docs/model.md §2.4: H_t - H_{t-1} <= max_net_hires_t, H_{-1} = initial (so row 0 has ub + initial).
def _net_hires_rows(data: ModelData) -> list[Row]:
    headcount, lay, heads = data.scenario.headcount, data.layout, data.columns.heads
    if headcount.max_net_hires is None:
        return []
    rows = []
    for t, year in enumerate(data.years):
        previous = heads[:, t - 1] if t > 0 else np.zeros(heads.shape[0])
        initial = float(headcount.initial) if t == 0 else 0.0
        rows.append(data.row("net_hires", year, [
            _nonzero(heads[:, t] - previous), _ones(np.nonzero(lay.n_year == t)[0], lay.n_offset),
            _ones(np.nonzero(lay.n_year == t - 1)[0], lay.n_offset, -1.0),
        ], None, float(headcount.max_net_hires[t]) + initial, limit=True))
    return rows


def _region_masks(data: ModelData, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(markets of region g, mask over the x columns of those markets)."""
    in_region = np.nonzero([m.region == name for m in data.scenario.markets])[0]
    return in_region, np.isin(data.columns.market, in_region)


# docs/model.md §2.5: min_markets_g <= Σ_{i∈g} entered_i <= max_markets_g.
def _region_market_count_rows(data: ModelData) -> list[Row]:
    rows = []
    for region in data.scenario.regions:
        entered = [_ones(np.nonzero(_region_masks(data, region.name)[1])[0])]
        if region.min_markets > 0:
            rows.append(data.row("region_min_markets", region.name, entered, float(region.min_markets), None, limit=True))
        if region.max_markets is not None:
            rows.append(data.row("region_max_markets", region.name, entered, None, float(region.max_markets), limit=True))
    return rows


# docs/model.md §2.5: Σ_t Σ_{i∈g} Spend[i,t] <= share_g Σ_t Spend_t, as Σ (1[i∈g] - share_g) Spend <= 0.
def _region_budget_share_rows(data: ModelData) -> list[Row]:
    lay, rows = data.layout, []
    for region in data.scenario.regions:
        if region.max_budget_share is None:
            continue
        share = region.max_budget_share
        in_region, in_x = _region_masks(data, region.name)
        weight_x = (in_x.astype(float) - share) * data.spend_x.sum(axis=1)
        weight_y = np.isin(lay.y_market, in_region).astype(float) - share
        weight_n = (np.isin(lay.n_market, in_region).astype(float) - share) * data.salary_n
        rows.append(data.row("region_budget_share", region.name, [
            _nonzero(weight_x), _nonzero(weight_y, lay.y_offset), _nonzero(weight_n, lay.n_offset)], None, 0.0))
    return rows


# docs/model.md §2.5: Σ_{i∈g} Heads[i,t] <= talent_cap_{g,t}.
def _talent_cap_rows(data: ModelData) -> list[Row]:
    lay, heads, rows = data.layout, data.columns.heads, []
    for region in data.scenario.regions:
        if region.talent_cap is None:
            continue
        in_region, in_x = _region_masks(data, region.name)
        x_cols, in_n = np.nonzero(in_x)[0], np.isin(lay.n_market, in_region)
        for t, year in enumerate(data.years):
            hires = np.nonzero(in_n & (lay.n_year == t))[0]
            rows.append(data.row("talent_cap", (region.name, year),
                                 [_nonzero(heads[:, t], 0, x_cols), _ones(hires, lay.n_offset)],
                                 None, float(region.talent_cap[t]), limit=True))
    return rows


# docs/model.md §2.5: active[i,t] <= active[j,t] for every prerequisite j of i (no row where active[i,t] ≡ 0).
def _requires_rows(data: ModelData) -> list[Row]:
    rows = []
    for i, m in enumerate(data.scenario.markets):
        for required in m.requires:
            j = data.index_of[required]
            for t, year in enumerate(data.years):
                own = data.active_terms(i, t, 1.0)
                if own[0].size:
                    rows.append(data.row("requires", (m.id, required, year),
                                         [own, data.active_terms(j, t, -1.0)], None, 0.0))
    return rows


# docs/model.md §2.5: Σ_i ρ_i entered_i <= R Σ_i entered_i, as Σ (ρ_i - R) entered_i <= 0.
def _max_average_risk_rows(data: ModelData) -> list[Row]:
    limit, col = data.scenario.risk_max_average, data.columns
    if limit is None or not col.K:
        return []
    return [data.row("max_average_risk", None, [_nonzero(data.markets.risk[col.market] - limit)], None, 0.0)]


# docs/model.md §2.5: x[o,τ] = 1 for each commitment (validated to lie in E_o).
def _commitment_rows(data: ModelData) -> list[Row]:
    return [data.row("commitment", c.market_id, [_ones(data.column_of(c.market_id, c.mode, c.entry_year))], 1.0, 1.0)
            for c in data.scenario.commitments]


# docs/model.md §2.6: u_s >= η - NPV_s, as NPV_s + u_s - η >= 0 (the linear CVaR model).
def _cvar_tail_rows(data: ModelData, terms: ObjectiveTerms) -> list[Row]:
    lay = data.layout
    if lay.eta_index is None:
        return []
    return [data.row("cvar_tail", g.name,
                     [_nonzero(terms.npv[s]), (np.array([lay.u_index[s], lay.eta_index]), np.array([1.0, -1.0]))], 0.0, None)
            for s, g in enumerate(data.scenario.growth_scenarios)]


# docs/model.md §2.6 floors: E[NPV] >= min_expected_npv; CVaR_α >= min_cvar.
def _floor_rows(data: ModelData, terms: ObjectiveTerms) -> list[Row]:
    objective, rows = data.scenario.objective, []
    if objective.min_expected_npv is not None:
        rows.append(data.row("min_expected_npv", None, [_nonzero(terms.expected_npv)],
                             float(objective.min_expected_npv), None, limit=True))
    if objective.min_cvar is not None:
        rows.append(data.row("min_cvar", None, [_nonzero(terms.cvar)], float(objective.min_cvar), None, limit=True))
    return rows


def _constraint_rows(data: ModelData, terms: ObjectiveTerms) -> list[Row]:
    """Every row, family by family, in the order of the model's Constraint components."""
    return [
        *_one_decision_rows(data), *_must_enter_rows(data),
        *_invest_link_rows(data), *_hire_link_rows(data),
        *_budget_rows(data), *_budget_cumulative_rows(data),
        *_headcount_cap_rows(data), *_net_hires_rows(data),
        *_region_market_count_rows(data), *_region_budget_share_rows(data), *_talent_cap_rows(data),
        *_requires_rows(data), *_max_average_risk_rows(data), *_commitment_rows(data),
        *_cvar_tail_rows(data, terms), *_floor_rows(data, terms),
    ]


@dataclass(frozen=True, eq=False)
class Formulation:
    """The whole model as numpy: inputs, rows, objective (no Pyomo)."""

    data: ModelData
    rows: list[Row]
    terms: ObjectiveTerms


def formulate(sc: Scenario) -> Formulation:
    """docs/model.md §2.1–2.6 for a validated scenario, as arrays and rows."""
    data = _model_data(sc)
    terms = _objective_terms(data)
    return Formulation(data, _constraint_rows(data, terms), terms)


# ----------------------------------------------------------------------------- the built model


@dataclass
class PyomoParts:
    """The Pyomo side of a built model (:func:`_materialise`)."""

    model: pyo.ConcreteModel
    variables: list[Any]  # global variable vector (Pyomo VarData), see VariableLayout
    constraints: dict[str, Any]  # docs/model.md §4 name -> Pyomo ConstraintData
    linear_rows: dict[Any, tuple[Row, Any]]  # ConstraintData -> (its Row, the body built from it)


@dataclass
class AllocationModel:
    """A built model: its numpy :class:`Formulation`, and the Pyomo model and row map made from it
    on first use (:attr:`model`, :attr:`variables`, :attr:`constraints`, :attr:`linear_rows`).

    A huge model whose whole solve is the head start (``models/solve.py``: :func:`is_huge`) works
    on the formulation's arrays alone and never pays for the Pyomo model: at 10,000 markets that
    is 4–5 s of an 8 s build. ``build_seconds`` counts the Pyomo build too when it happens.
    The properties read the current formulation, which :meth:`update` replaces in place.
    """

    formulation: Formulation
    build_seconds: float = 0.0
    solver: Any = None  # the persistent HiGHS interface once solved (models/solve.py)
    pyomo: PyomoParts | None = None  # made on first use

    def materialise(self) -> PyomoParts:
        """The Pyomo model, built now if it was not yet."""
        if self.pyomo is None:
            started = time.perf_counter()
            with paused_gc():
                self.pyomo = _materialise(self.formulation)
            self.build_seconds += time.perf_counter() - started
        return self.pyomo

    @property
    def materialised(self) -> bool:
        return self.pyomo is not None

    @property
    def model(self) -> pyo.ConcreteModel:
        return self.materialise().model

    @property
    def variables(self) -> list[Any]:
        return self.materialise().variables

    @property
    def constraints(self) -> dict[str, Any]:
        return self.materialise().constraints

    @property
    def linear_rows(self) -> dict[Any, tuple[Row, Any]]:
        return self.materialise().linear_rows

    def update(self, scenario: Scenario) -> bool:
        """Change this model in place to ``scenario``; False (nothing changed) if its structure differs."""
        return update_model(self, scenario)

    @property
    def scenario(self) -> Scenario:
        return self.formulation.data.scenario

    @property
    def columns(self) -> Columns:
        return self.formulation.data.columns

    @property
    def markets(self) -> MarketArrays:
        return self.formulation.data.markets

    @property
    def layout(self) -> VariableLayout:
        return self.formulation.data.layout

    @property
    def rows(self) -> list[Row]:
        return self.formulation.rows

    @property
    def n_vars(self) -> int:
        return self.layout.size

    @property
    def nonzeros(self) -> int:
        """Non-zeros of the rows (the objective not counted)."""
        return int(sum(r.idx.size for r in self.rows))

    @property
    def n_x(self) -> int:
        return self.layout.n_x

    @property
    def y_offset(self) -> int:
        return self.layout.y_offset

    @property
    def n_offset(self) -> int:
        return self.layout.n_offset

    @property
    def y_market(self) -> np.ndarray:
        return self.layout.y_market

    @property
    def y_year(self) -> np.ndarray:
        return self.layout.y_year

    @property
    def y_segment(self) -> np.ndarray:
        return self.layout.y_segment

    @property
    def y_return(self) -> np.ndarray:
        return self.layout.y_return

    @property
    def n_market(self) -> np.ndarray:
        return self.layout.n_market

    @property
    def n_year(self) -> np.ndarray:
        return self.layout.n_year

    @property
    def eta_index(self) -> int | None:
        return self.layout.eta_index

    @property
    def u_index(self) -> np.ndarray:
        return self.layout.u_index

    @property
    def uses_cvar(self) -> bool:
        return self.layout.uses_cvar

    @property
    def integer_count(self) -> int:
        return self.layout.integer_count

    @property
    def objective_coef(self) -> np.ndarray:
        return self.formulation.terms.objective

    @property
    def objective_constant(self) -> float:
        return self.formulation.terms.objective_constant

    @property
    def npv_coef(self) -> np.ndarray:
        return self.formulation.terms.npv

    @property
    def final_contribution_coef(self) -> np.ndarray:
        return self.formulation.terms.final_contribution

    @property
    def penalty_coef(self) -> np.ndarray:
        return self.formulation.terms.penalty

    @property
    def penalty_constant(self) -> float:
        return self.formulation.terms.penalty_constant


def build_model(sc: Scenario, *, pyomo: bool = True) -> AllocationModel:
    """Build the MIP of docs/model.md §2.1–2.6 for a validated scenario.

    ``pyomo`` False: the formulation only; the Pyomo model is made on first use
    (:meth:`AllocationModel.materialise`), which a huge model's solve never needs.
    """
    started = time.perf_counter()
    with paused_gc():
        built = AllocationModel(formulate(sc))
    built.build_seconds = time.perf_counter() - started
    if pyomo:
        built.materialise()
    return built


def _add_variables(mdl: pyo.ConcreteModel, layout: VariableLayout) -> list[Any]:
    """The Pyomo variables, in the order of the global vector (:class:`VariableLayout`)."""
    width, n_max = layout.y_width, layout.n_max
    mdl.x = pyo.Var(range(layout.n_x), domain=pyo.Binary)
    mdl.y = pyo.Var(range(width.size), domain=pyo.NonNegativeReals, bounds=lambda _m, k: (0.0, float(width[k])))
    mdl.n = pyo.Var(range(n_max.size), domain=pyo.NonNegativeIntegers, bounds=lambda _m, k: (0.0, float(n_max[k])))
    variables: list[Any] = [*mdl.x.values(), *mdl.y.values(), *mdl.n.values()]
    if layout.uses_cvar:
        mdl.eta = pyo.Var(domain=pyo.Reals)
        mdl.u = pyo.Var(range(layout.n_scenarios), domain=pyo.NonNegativeReals)
        variables += [mdl.eta, *mdl.u.values()]
    mdl.zero = pyo.Var(bounds=(0.0, 0.0))
    variables.append(mdl.zero)
    assert len(variables) == layout.size
    return variables


def _bounds(mdl: pyo.ConcreteModel, row: Row) -> tuple[Any, Any]:
    """(lb, ub) of a row; a scenario limit is its mutable Param ``limit[name]``."""
    if not row.limit:
        return row.lb, row.ub
    param = mdl.limit[row.name]
    return (param, None) if row.lb is not None else (None, param)


def _materialise(form: Formulation) -> PyomoParts:
    """Pyomo components for a formulation: one Constraint component per family (§4)."""
    mdl = pyo.ConcreteModel(name=form.data.scenario.name)
    variables = _add_variables(mdl, form.data.layout)
    limits = {r.name: r.limit_value for r in form.rows if r.limit}
    mdl.limit = pyo.Param(list(limits), mutable=True, initialize=limits, within=pyo.Reals)
    families: dict[str, list[Row]] = {}
    for row in form.rows:
        families.setdefault(row.family, []).append(row)
    bodies: dict[str, Any] = {}

    def expression(row: Row) -> tuple[Any, Any, Any]:
        body = bodies[row.name] = _linear(variables, row.idx, row.coef)
        lb, ub = _bounds(mdl, row)
        return lb, body, ub

    constraints: dict[str, Any] = {}
    for family, rows in families.items():
        component = _constraint_component(rows, expression)
        setattr(mdl, family, component)  # a ConcreteModel constructs the rows here
        constraints.update((row.name, component if row.key is None else component[row.key]) for row in rows)
    terms = form.terms
    mdl.objective = pyo.Objective(expr=_objective_expression(variables, terms), sense=pyo.maximize)
    linear_rows = {constraints[row.name]: (row, bodies[row.name]) for row in form.rows}
    return PyomoParts(mdl, variables, constraints, linear_rows)


def _constraint_component(rows: list[Row], expression: Callable[[Row], tuple[Any, Any, Any]]) -> pyo.Constraint:
    """One Constraint component for the rows of one family: scalar (key None) or indexed by key."""
    if rows[0].key is None:
        return pyo.Constraint(expr=expression(rows[0]))
    by_key = {row.key: row for row in rows}
    return pyo.Constraint(list(by_key), rule=lambda _m, *key: expression(by_key[key[0] if len(key) == 1 else key]))


def _objective_expression(variables: list[Any], terms: ObjectiveTerms) -> LinearExpression:
    nonzero = np.nonzero(terms.objective)[0]
    return _linear(variables, nonzero, terms.objective[nonzero], terms.objective_constant)


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


# ----------------------------------------------------------------------------- update in place


def same_structure(old: Formulation, new: Formulation) -> bool:
    """Same variables (columns, levers, CVaR) and the same named rows with the same limit bounds.

    Everything else – limits, coefficients, variable bounds, the objective – can be pushed into
    a built model in place (:func:`update_model`).
    """
    a, b = old.data.columns, new.data.columns
    return (old.data.layout.same_structure(new.data.layout)
            and np.array_equal(a.market, b.market) and np.array_equal(a.mode, b.mode)
            and np.array_equal(a.entry, b.entry)
            and [(r.name, r.limit, r.lb is None, r.ub is None) for r in old.rows]
            == [(r.name, r.limit, r.lb is None, r.ub is None) for r in new.rows])


def update_model(built: AllocationModel, scenario: Scenario) -> bool:
    """Re-target a built model to a changed scenario of the same structure, in place.

    Limits go to the mutable Params, variable bounds are reset where they changed, and only the
    rows (and the objective) whose coefficients changed get a new body, so the persistent HiGHS
    interface pushes only those on the next solve. Returns False, changing nothing, when the
    structure differs (:func:`same_structure`): the caller rebuilds.
    """
    started = time.perf_counter()
    with paused_gc():
        new = formulate(scenario)
        if not same_structure(built.formulation, new):
            return False
        if built.materialised:  # else nothing was made from the old formulation: swapping it is all
            _push_limits(built, new)
            _push_variable_bounds(built, new)
            _push_rows(built, new)
            if not _same_vector(built.formulation.terms.objective, new.terms.objective) \
                    or built.objective_constant != new.terms.objective_constant:
                built.model.objective.expr = _objective_expression(built.variables, new.terms)
        built.formulation = new
    built.build_seconds = time.perf_counter() - started
    return True


def _same_vector(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _push_limits(built: AllocationModel, new: Formulation) -> None:
    for row in new.rows:
        if row.limit and built.model.limit[row.name].value != row.limit_value:
            built.model.limit[row.name] = row.limit_value


def _push_variable_bounds(built: AllocationModel, new: Formulation) -> None:
    old, lay = built.layout, new.data.layout
    for k in np.nonzero(old.y_width != lay.y_width)[0].tolist():
        built.variables[lay.y_offset + k].setub(float(lay.y_width[k]))
    for k in np.nonzero(old.n_max != lay.n_max)[0].tolist():
        built.variables[lay.n_offset + k].setub(float(lay.n_max[k]))


def _push_rows(built: AllocationModel, new: Formulation) -> None:
    """A new body (and constant bounds) for every row whose coefficients changed."""
    for old, row in zip(built.rows, new.rows):
        con = built.constraints[row.name]
        body = built.linear_rows[con][1]
        if not (_same_vector(old.idx, row.idx) and _same_vector(old.coef, row.coef)
                and (row.limit or (old.lb, old.ub) == (row.lb, row.ub))):
            body = _linear(built.variables, row.idx, row.coef)
            lb, ub = _bounds(built.model, row)
            con.set_value((lb, body, ub))
        built.linear_rows[con] = (row, body)
