"""The typed result of a solve (docs/model.md section 3).

Light by design (standard library only): the client library, the proto adapter and the store
use these types without the solver stack; :mod:`.extract` fills them from solution arrays.
``Result.to_dict()`` is the JSON the CLI prints and other services rely on (``status``,
``objective_value``, ``best_bound``, ``gap``, ``timings``, ``markets[].id/mode/entry_year`` …);
:func:`result_from_dict` is its typed inverse (results read back from storage).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .gctools import paused_gc
from .scenario import Mode
from .status import SolveStatus

__all__ = ["Infeasibility", "Kpis", "LimitReport", "MarketDecision", "MarketTerms", "MarketValue", "MarketYear",
           "ModelSize", "ObjectiveTerm", "Relaxation", "Result", "SolveStatus", "StepValue", "Timings", "YearTotal",
           "result_from_dict", "result_from_json"]


@dataclass
class MarketYear:
    """One market in one calendar year (money per year; heads in people)."""

    year: int
    entry_cost: float
    annual_cost: float
    compliance_cost: float
    people_cost: float
    growth_investment: float
    spend: float
    required_heads: float
    growth_hires: float
    heads: float
    expected_share: float
    expected_revenue: float
    expected_contribution: float


@dataclass
class MarketDecision:
    id: str
    name: str
    region: str | None
    entered: bool
    mode: Mode | None  # None when not entered
    entry_year: int | None  # calendar year, None when not entered
    expected_npv: float  # this market's share of E[NPV] (incl. terminal value), before penalty
    years: list[MarketYear] = field(default_factory=list)


@dataclass
class YearTotal:
    year: int
    spend: float
    budget_limit: float | None
    cumulative_spend: float
    cumulative_budget: float | None
    heads: float
    headcount_cap: float | None
    net_hires: float
    net_hires_limit: float | None
    expected_contribution: float
    expected_net_cash_flow: float


@dataclass
class Kpis:
    expected_npv: float
    npv_by_scenario: dict[str, float]
    cvar: float
    cvar_alpha: float
    payback_year: int | None
    change_penalty: float
    markets_entered: int
    final_year_contribution: float


@dataclass
class Timings:
    build_seconds: float = 0.0
    transfer_seconds: float = 0.0
    solver_seconds: float = 0.0  # the head start (models/heuristic.py) and the HiGHS run
    extraction_seconds: float = 0.0
    total_seconds: float = 0.0
    explanation_seconds: float = 0.0  # limits, local prices, objective split; why infeasible


@dataclass
class ModelSize:
    variables: int
    integer_variables: int
    constraints: int
    nonzeros: int


# ----------------------------------------------------------------------------- explanations (§3)


@dataclass
class StepValue:
    """A limit moved by a relative step and the scenario re-solved (docs/model.md §3)."""

    direction: str  # "down" | "up"
    relative_step: float  # e.g. 0.05 = the limit moved by 5 %
    limit: float  # the moved limit (units of the limit)
    objective: float | None  # the re-solve's objective; None without a plan (e.g. infeasible)
    objective_change: float | None  # objective - the plan's objective
    plan_changes: bool | None  # whether the entry plan (market -> mode, year) differs
    status: SolveStatus
    cut_short: bool = False  # the time budget ended this re-solve before it was proven optimal


@dataclass
class LimitReport:
    """One resource or policy limit of the plan, under its docs/model.md §4 name."""

    constraint: str  # e.g. "budget_cumulative[2029]", "talent_cap[EMEA,2030]"
    use: float  # the plan's left-hand side in the limit's units
    limit: float
    slack: float  # limit - use (>= 0 for a met upper limit)
    binds: bool  # slack within tolerance
    local_price: float | None  # objective per unit of the limit, integer decisions fixed; None: undefined
    local_price_note: str = ""  # why there is no local price, in words
    steps: list[StepValue] = field(default_factory=list)


@dataclass
class ObjectiveTerm:
    """One term of the maximized objective: contribution = weight x value; they sum to it."""

    term: str  # "expected_npv" | "cvar" | "final_year_contribution" | "change_penalty"
    weight: float
    value: float
    contribution: float


@dataclass
class MarketTerms:
    """One market's share of the objective's parts (before weights)."""

    market_id: str
    expected_npv: float  # its share of E[NPV], terminal value included
    terminal_value: float  # of which terminal value (expected)
    change_penalty: float  # plan-change penalty attributed to it


@dataclass
class Relaxation:
    """How far one limit would have to move for the scenario to become feasible."""

    constraint: str
    limit: float
    needed: float
    change: float  # needed - limit


@dataclass
class Infeasibility:
    """Why a scenario is infeasible: a minimal set of conflicting limits (§3)."""

    method: str  # "lp_iis" (the LP relaxation is infeasible) | "elastic" (only the integer problem is)
    constraints: list[str]  # docs/model.md §4 names
    explanation: list[str]  # the same in business words, one line each
    relaxations: list[Relaxation] = field(default_factory=list)


@dataclass
class MarketValue:
    """What one market is worth to the plan: the objective with it forced out (entered) or in."""

    market_id: str
    entered: bool  # in the plan being explained
    objective: float | None  # the re-solve's objective; None without a plan
    objective_change: float | None  # objective - the plan's objective (<= 0 when proven)
    mode: Mode | None  # forced in: the option the re-solve chose
    entry_year: int | None
    blocking: list[str] = field(default_factory=list)  # forced in: limits that bind and stopped it before
    status: SolveStatus = SolveStatus.OPTIMAL
    cut_short: bool = False


@dataclass
class Result:
    scenario_name: str
    scenario_sha256: str
    status: SolveStatus
    objective_value: float | None
    best_bound: float | None
    gap: float | None
    message: str
    markets: list[MarketDecision]
    years: list[YearTotal]
    kpis: Kpis | None
    timings: Timings
    model_size: ModelSize
    solver: dict[str, str]
    currency: str = "USD"  # labels of every money amount above (the scenario's)
    money_unit: str = "millions"
    # explanations (docs/model.md §3): limits with their values, the objective reconciled to its
    # parts, why an infeasible scenario is infeasible, and what each market is worth
    limits: list[LimitReport] = field(default_factory=list)
    objective_terms: list[ObjectiveTerm] = field(default_factory=list)
    market_terms: list[MarketTerms] = field(default_factory=list)
    infeasibility: Infeasibility | None = None
    market_values: list[MarketValue] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, keys in declaration order (the JSON the CLI prints).

        Written out rather than ``dataclasses.asdict``, which deep-copies every value and took
        most of the time of a 1,000-market result's JSON."""
        out = dict(vars(self))
        out["markets"] = [{**vars(m), "years": [dict(vars(y)) for y in m.years]} for m in self.markets]
        out["years"] = [dict(vars(y)) for y in self.years]
        out["kpis"] = None if self.kpis is None else {**vars(self.kpis), "npv_by_scenario": dict(self.kpis.npv_by_scenario)}
        out["timings"] = dict(vars(self.timings))
        out["model_size"] = dict(vars(self.model_size))
        out["solver"] = dict(self.solver)
        out["limits"] = [{**vars(lim), "steps": [dict(vars(st)) for st in lim.steps]} for lim in self.limits]
        out["objective_terms"] = [dict(vars(t)) for t in self.objective_terms]
        out["market_terms"] = [dict(vars(t)) for t in self.market_terms]
        out["infeasibility"] = None if self.infeasibility is None else {
            **vars(self.infeasibility), "constraints": list(self.infeasibility.constraints),
            "explanation": list(self.infeasibility.explanation),
            "relaxations": [dict(vars(r)) for r in self.infeasibility.relaxations]}
        out["market_values"] = [{**vars(v), "blocking": list(v.blocking)} for v in self.market_values]
        return out

    def to_json(self) -> str:
        with paused_gc():
            return json.dumps(self.to_dict(), allow_nan=False)

    @property
    def decisions(self) -> dict[str, tuple[str | None, int | None]]:
        return {m.id: (m.mode, m.entry_year) for m in self.markets}


def result_from_dict(d: dict[str, Any]) -> Result:
    """Inverse of ``Result.to_dict()`` (for results read back from JSON storage)."""
    kp = d.get("kpis")
    return Result(
        scenario_name=d["scenario_name"], scenario_sha256=d["scenario_sha256"], status=SolveStatus(d["status"]),
        objective_value=d.get("objective_value"), best_bound=d.get("best_bound"), gap=d.get("gap"),
        message=d.get("message", ""),
        markets=[
            MarketDecision(**{**m, "mode": Mode(m["mode"]) if m.get("mode") else None,
                              "years": [MarketYear(**y) for y in m.get("years", [])]})
            for m in d.get("markets", [])
        ],
        years=[YearTotal(**y) for y in d.get("years", [])],
        kpis=Kpis(**kp) if kp else None,
        timings=Timings(**d.get("timings", {})),
        model_size=ModelSize(**d["model_size"]),
        solver=dict(d.get("solver", {})),
        currency=d.get("currency", "USD"),
        money_unit=d.get("money_unit", "millions"),
        limits=[LimitReport(**{**lim, "steps": [StepValue(**{**st, "status": SolveStatus(st["status"])})
                                                 for st in lim.get("steps", [])]})
                for lim in d.get("limits", [])],
        objective_terms=[ObjectiveTerm(**t) for t in d.get("objective_terms", [])],
        market_terms=[MarketTerms(**t) for t in d.get("market_terms", [])],
        infeasibility=_infeasibility_from_dict(d.get("infeasibility")),
        market_values=[MarketValue(**{**v, "mode": Mode(v["mode"]) if v.get("mode") else None,
                                      "status": SolveStatus(v["status"])})
                       for v in d.get("market_values", [])],
    )


def _infeasibility_from_dict(d: dict[str, Any] | None) -> Infeasibility | None:
    if not d:
        return None
    return Infeasibility(method=d["method"], constraints=list(d["constraints"]), explanation=list(d["explanation"]),
                         relaxations=[Relaxation(**r) for r in d.get("relaxations", [])])


def result_from_json(text: str) -> Result:
    with paused_gc():
        return result_from_dict(json.loads(text))
