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

__all__ = ["Kpis", "MarketDecision", "MarketYear", "ModelSize", "Result", "ShadowPrice", "SolveStatus", "Timings",
           "YearTotal", "result_from_dict", "result_from_json"]


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
    solver_seconds: float = 0.0
    extraction_seconds: float = 0.0
    total_seconds: float = 0.0


@dataclass
class ModelSize:
    variables: int
    integer_variables: int
    constraints: int
    nonzeros: int


@dataclass
class ShadowPrice:
    constraint: str
    value: float


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
    shadow_prices: list[ShadowPrice] = field(default_factory=list)
    conflict: list[str] = field(default_factory=list)
    currency: str = "USD"  # labels of every money amount above (the scenario's)
    money_unit: str = "millions"

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
        out["shadow_prices"] = [dict(vars(p)) for p in self.shadow_prices]
        out["conflict"] = list(self.conflict)
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
        shadow_prices=[ShadowPrice(**s) for s in d.get("shadow_prices", [])],
        conflict=list(d.get("conflict", [])),
        currency=d.get("currency", "USD"),
        money_unit=d.get("money_unit", "millions"),
    )


def result_from_json(text: str) -> Result:
    with paused_gc():
        return result_from_dict(json.loads(text))
