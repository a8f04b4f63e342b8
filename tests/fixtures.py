"""Scenario fixtures shared by the tests of more than one room."""

from __future__ import annotations

from typing import Any

# Every field of docs/model.md section 1, most with non-default values.
FULL: dict[str, Any] = {
    "name": "every-field",
    "currency": "EUR",
    "money_unit": "thousands",
    "start_year": 2027,
    "horizon_years": 4,
    "discount_rate": 0.08,
    "terminal_growth": 0.02,
    "markets": [
        {
            "id": "US", "name": "United States", "region": "AMER", "market_size": 900,
            "market_growth": 0.03, "risk_score": 0.1, "salary_per_head": 0.15,
            "compliance": {"lead_time_years": 1, "cost": 2.5, "banned_modes": ["ACQUIRE", "partner"]},
            "earliest_entry_year": 2026, "latest_entry_year": 2040, "must_enter": True,
            "growth_investment": {"segments": [{"up_to": 1.0, "return_rate": 1.8}, {"up_to": 3.0, "return_rate": 1.2}]},
            "growth_hiring": {"max_heads": 20, "contribution_per_head": 0.3},
            "options": [
                {"mode": "build", "initial_share": 0.01, "share_growth": 0.25, "max_share": 0.3,
                 "margin": 0.2, "entry_cost": 5, "annual_cost": 1.5, "headcount": 12, "prehire_years": 1},
            ],
        },
        {
            "id": "DE", "name": "Germany", "region": "EMEA", "market_size": 400.5,
            "market_growth": -0.01, "requires": ["US"],
            "options": [
                {"mode": "acquire", "initial_share": 0.08, "margin": 0.25, "entry_cost": 40},
                {"mode": "partner",
                 "cash_flows": {"contribution": [1.0, 2.0, -0.5], "cost": [0.5, 0.0], "headcount": [2, 0, 3]}},
            ],
        },
        {
            "id": "JP", "region": "", "latest_entry_year": 2028,
            "growth_hiring": {"max_heads": 0, "contribution_per_head": -0.1},
            "options": [{"mode": "partner", "initial_share": 0.0, "margin": 0.0}],
        },
        {"id": "BR", "name": "Brazil", "region": "AMER", "earliest_entry_year": 2029,
         "options": [{"mode": "build", "initial_share": 0.05, "margin": 0.3}]},
    ],
    "budget": {"limit": [60, 60.5, 70, 0], "carry_over": True},
    "headcount": {"cap": [200, 250, 300, 350], "max_net_hires": 120, "initial": 7},
    "regions": [
        {"name": "EMEA", "min_markets": 0, "max_markets": 1, "max_budget_share": 0.5, "talent_cap": [10, 20, 30, 40]},
        {"name": "AMER", "min_markets": 1},
    ],
    "growth_scenarios": [
        {"name": "bear", "probability": 0.25, "market_growth_delta": -0.03, "share_growth_multiplier": 0.6},
        {"name": "base", "probability": 0.5},
        {"name": "bull", "probability": 0.25, "market_growth_delta": 0.02, "share_growth_multiplier": 1.3},
    ],
    "risk": {"max_average_risk": 0.5},
    "commitments": [{"market_id": "US", "mode": "build", "entry_year": 2028}],
    "previous_plan": {
        "change_penalty": 5.0,
        "decisions": [
            {"market_id": "DE", "mode": "partner", "entry_year": 2029},
            {"market_id": "JP", "entered": False},
            {"market_id": "BR", "entered": True, "mode": "acquire", "entry_year": 2031},
        ],
    },
    "objective": {"kind": "risk_adjusted_npv", "risk_aversion": 0.4, "cvar_alpha": 0.8,
                  "min_expected_npv": -100.0, "min_cvar": -250.0},
    "solver": {"time_limit_seconds": 12.5, "mip_rel_gap": 0.0},
}
