"""Compare two plans (and, when given, the scenarios behind them): plain data, no solver.

:func:`compare` answers "what changed between plan a and plan b": the markets whose decision
changed (entered, left, another mode or entry year), spend and heads per calendar year side by
side, the objective and KPI deltas, and - with both scenarios - the limits and settings that
differ (yearly budgets, headcount caps, net-hire limits, region limits, the risk cap, the
discount rate, the objective). Every money figure carries the currency labels of the results
(docs/model.md "Units and labels"); results in different labels are compared as numbers and a
note says so. A delta is ``b - a``; it is None when either side has no value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .result import Result
from .scenario import Scenario

__all__ = ["Comparison", "LimitChange", "MarketChange", "ValueDelta", "YearDelta", "compare"]


@dataclass
class MarketChange:
    """One market whose decision differs: ``change`` is entered | left | mode | entry_year | mode_and_entry_year."""

    market_id: str
    change: str
    mode_a: str | None
    entry_year_a: int | None
    mode_b: str | None
    entry_year_b: int | None
    expected_npv_a: float
    expected_npv_b: float


@dataclass
class YearDelta:
    """Spend (money) and heads (people) of one calendar year in both plans."""

    year: int
    spend_a: float | None
    spend_b: float | None
    spend_delta: float | None
    heads_a: float | None
    heads_b: float | None
    heads_delta: float | None


@dataclass
class ValueDelta:
    """A number of both plans (objective, KPIs): ``delta = b - a``."""

    name: str
    a: float | None
    b: float | None
    delta: float | None


@dataclass
class LimitChange:
    """A limit or setting that differs between the scenarios (None: not set in that scenario).

    Names follow docs/model.md §4 where there is one (``budget[2029]`` is the yearly budget B_t,
    also with carry_over), else the scenario field (``discount_rate``, ``objective.kind``)."""

    name: str
    a: Any
    b: Any
    delta: float | None  # b - a for two numbers, else None


@dataclass
class Comparison:
    currency: str
    money_unit: str
    status_a: str
    status_b: str
    markets: list[MarketChange] = field(default_factory=list)
    years: list[YearDelta] = field(default_factory=list)
    kpis: list[ValueDelta] = field(default_factory=list)  # objective_value first, then the KPIs
    limits: list[LimitChange] = field(default_factory=list)  # empty unless both scenarios are given
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency, "money_unit": self.money_unit,
            "status_a": self.status_a, "status_b": self.status_b,
            "markets": [dict(vars(m)) for m in self.markets],
            "years": [dict(vars(y)) for y in self.years],
            "kpis": [dict(vars(k)) for k in self.kpis],
            "limits": [dict(vars(lim)) for lim in self.limits],
            "notes": list(self.notes),
        }

    @property
    def changed_markets(self) -> list[str]:
        return [m.market_id for m in self.markets]


def _delta(a: Any, b: Any) -> float | None:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(b) - float(a)
    return None


def _market_changes(a: Result, b: Result) -> list[MarketChange]:
    in_a = {m.id: m for m in a.markets}
    in_b = {m.id: m for m in b.markets}
    out = []
    for market_id in [*in_a, *(k for k in in_b if k not in in_a)]:
        ma, mb = in_a.get(market_id), in_b.get(market_id)
        entered_a = ma is not None and ma.entered
        entered_b = mb is not None and mb.entered
        mode_a = ma.mode if ma is not None and entered_a else None
        mode_b = mb.mode if mb is not None and entered_b else None
        year_a = ma.entry_year if ma is not None and entered_a else None
        year_b = mb.entry_year if mb is not None and entered_b else None
        if entered_a != entered_b:
            change = "entered" if entered_b else "left"
        elif not entered_a or (mode_a == mode_b and year_a == year_b):
            continue
        elif mode_a != mode_b and year_a != year_b:
            change = "mode_and_entry_year"
        else:
            change = "mode" if mode_a != mode_b else "entry_year"
        out.append(MarketChange(market_id, change, None if mode_a is None else str(mode_a), year_a,
                                None if mode_b is None else str(mode_b), year_b,
                                ma.expected_npv if ma is not None else 0.0, mb.expected_npv if mb is not None else 0.0))
    return out


def _year_deltas(a: Result, b: Result) -> list[YearDelta]:
    ya = {y.year: y for y in a.years}
    yb = {y.year: y for y in b.years}
    out = []
    for year in sorted(set(ya) | set(yb)):
        sa = ya[year].spend if year in ya else None
        sb = yb[year].spend if year in yb else None
        ha = ya[year].heads if year in ya else None
        hb = yb[year].heads if year in yb else None
        out.append(YearDelta(year, sa, sb, _delta(sa, sb), ha, hb, _delta(ha, hb)))
    return out


KPI_NAMES = ("expected_npv", "cvar", "payback_year", "markets_entered", "change_penalty", "final_year_contribution")


def _kpi_deltas(a: Result, b: Result) -> list[ValueDelta]:
    out = [ValueDelta("objective_value", a.objective_value, b.objective_value, _delta(a.objective_value, b.objective_value))]
    for name in KPI_NAMES:
        va = None if a.kpis is None else getattr(a.kpis, name)
        vb = None if b.kpis is None else getattr(b.kpis, name)
        out.append(ValueDelta(name, va, vb, _delta(va, vb)))
    return out


def _limits(sc: Scenario) -> dict[str, Any]:
    """The limits and settings of a scenario, by name (per-year limits per calendar year)."""
    out: dict[str, Any] = {}
    years = sc.years

    def per_year(family: str, values: Any, label: str = "") -> None:
        if values is not None:
            for year, value in zip(years, values):
                out[f"{family}[{label}{year}]"] = float(value)

    per_year("budget", sc.budget.limit)
    if sc.budget.limit is not None:
        out["budget.carry_over"] = sc.budget.carry_over
    per_year("headcount_cap", sc.headcount.cap)
    per_year("net_hires", sc.headcount.max_net_hires)
    out["headcount.initial"] = sc.headcount.initial
    for g in sc.regions:
        if g.min_markets > 0:
            out[f"region_min_markets[{g.name}]"] = g.min_markets
        if g.max_markets is not None:
            out[f"region_max_markets[{g.name}]"] = g.max_markets
        if g.max_budget_share is not None:
            out[f"region_budget_share[{g.name}]"] = g.max_budget_share
        per_year("talent_cap", g.talent_cap, f"{g.name},")
    if sc.risk_max_average is not None:
        out["max_average_risk"] = sc.risk_max_average
    out["discount_rate"] = sc.discount_rate
    out["terminal_growth"] = sc.terminal_growth
    objective = sc.objective
    out["objective.kind"] = str(objective.kind)
    out["objective.risk_aversion"] = objective.risk_aversion
    out["objective.cvar_alpha"] = objective.cvar_alpha
    out["min_expected_npv"] = objective.min_expected_npv
    out["min_cvar"] = objective.min_cvar
    return out


def _limit_changes(a: Scenario, b: Scenario) -> list[LimitChange]:
    la, lb = _limits(a), _limits(b)
    out = []
    for name in [*la, *(k for k in lb if k not in la)]:
        va, vb = la.get(name), lb.get(name)
        if va != vb:
            out.append(LimitChange(name, va, vb, _delta(va, vb)))
    return out


def compare(a: Result, b: Result, scenario_a: Scenario | None = None, scenario_b: Scenario | None = None) -> Comparison:
    """What changed from plan ``a`` to plan ``b`` (deltas are b - a); limits when both scenarios are given."""
    notes = []
    if (a.currency, a.money_unit) != (b.currency, b.money_unit):
        notes.append(f"the results use different money labels ({a.currency} {a.money_unit} vs {b.currency} {b.money_unit});"
                     " amounts are compared as numbers, without conversion")
    for label, r in (("a", a), ("b", b)):
        if not r.status.has_plan:
            notes.append(f"plan {label} has no plan (status {r.status.value})")
    limits = _limit_changes(scenario_a, scenario_b) if scenario_a is not None and scenario_b is not None else []
    return Comparison(
        currency=a.currency, money_unit=a.money_unit, status_a=a.status.value, status_b=b.status.value,
        markets=_market_changes(a, b), years=_year_deltas(a, b), kpis=_kpi_deltas(a, b), limits=limits, notes=notes,
    )
