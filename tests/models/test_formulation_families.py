"""Constraint families of models/formulation.py against rows worked out by hand (docs/model.md §2, §4).

One tiny scenario: market A (region EU) with a growth-model ``build`` option that prehires one
year, salary 0.5 and two growth-investment segments; market B with an explicit ``cash_flows``
option, enterable only in 2030. Columns: 0, 1, 2 = A entered in 2030, 2031, 2032; 3 = B in
2030; then y pieces 4..9 = (2030: seg 0, seg 1), (2031: …), (2032: …).

Spend of A's columns per year (entry 4 + annual 1 + salary 0.5 x 2 heads, heads from a year
before entry): τ=2030: 6, 2, 2; τ=2031: 1, 6, 2; τ=2032: 0, 1, 6. B: cost 1, 2, 0; heads 1, 3, 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lepton_alloc.models.formulation import Row, formulate
from lepton_alloc.models.scenario import parse_scenario

RAW: dict[str, Any] = {
    "name": "tiny", "start_year": 2030, "horizon_years": 3, "discount_rate": 0.1,
    "markets": [
        {"id": "A", "region": "EU", "market_size": 100, "salary_per_head": 0.5,
         "growth_investment": {"segments": [{"up_to": 1.0, "return_rate": 2.0}, {"up_to": 3.0, "return_rate": 1.5}]},
         "options": [{"mode": "build", "initial_share": 0.1, "margin": 0.5, "entry_cost": 4, "annual_cost": 1,
                      "headcount": 2, "prehire_years": 1}]},
        {"id": "B", "region": "US", "market_size": 50, "latest_entry_year": 2030,
         "options": [{"mode": "partner", "cash_flows": {"contribution": [5, 6], "cost": [1, 2], "headcount": [1, 3]}}]},
    ],
    "budget": {"limit": [10, 20, 30], "carry_over": True},
    "headcount": {"max_net_hires": 4, "initial": 3},
    "regions": [{"name": "EU", "max_budget_share": 0.25}],
}


@pytest.fixture(scope="module")
def rows() -> dict[str, Row]:
    return {r.name: r for r in formulate(parse_scenario(RAW)).rows}


def _terms(row: Row) -> dict[int, float]:
    return dict(zip(row.idx.tolist(), np.round(row.coef, 9).tolist()))


def test_the_rows_are_exactly_the_families_that_apply(rows: dict[str, Row]) -> None:
    assert list(rows) == [
        "one_decision[A]", "one_decision[B]",
        "invest_link[A,2030,1]", "invest_link[A,2030,2]", "invest_link[A,2031,1]", "invest_link[A,2031,2]",
        "invest_link[A,2032,1]", "invest_link[A,2032,2]",
        "budget_cumulative[2030]", "budget_cumulative[2031]", "budget_cumulative[2032]",
        "net_hires[2030]", "net_hires[2031]", "net_hires[2032]",
        "region_budget_share[EU]",
    ]


def test_cumulative_budget_sums_spend_and_limits(rows: dict[str, Row]) -> None:  # §2.4 carry_over
    assert _terms(rows["budget_cumulative[2031]"]) == {0: 8.0, 1: 7.0, 2: 1.0, 3: 3.0, 4: 1.0, 5: 1.0, 6: 1.0, 7: 1.0}
    assert [rows[f"budget_cumulative[{y}]"].ub for y in (2030, 2031, 2032)] == [10.0, 30.0, 60.0]
    assert rows["budget_cumulative[2030]"].limit


def test_net_hires_start_from_the_initial_staff(rows: dict[str, Row]) -> None:  # §2.4, H_-1 = initial
    assert _terms(rows["net_hires[2030]"]) == {0: 2.0, 1: 2.0, 3: 1.0}  # a prehire counts before entry
    assert rows["net_hires[2030]"].ub == 4 + 3 and rows["net_hires[2031]"].ub == 4
    assert _terms(rows["net_hires[2032]"]) == {3: -3.0}  # B's cash-flow heads end after two years


def test_region_budget_share_weights_total_spend(rows: dict[str, Row]) -> None:  # §2.5
    terms = _terms(rows["region_budget_share[EU]"])
    assert [terms[k] for k in range(4)] == [0.75 * 10, 0.75 * 9, 0.75 * 7, -0.25 * 3]
    assert all(terms[k] == 0.75 for k in range(4, 10))  # growth investment is EU spend, cost 1 per unit
    assert rows["region_budget_share[EU]"].ub == 0.0


def test_invest_link_caps_each_segment_by_its_width_while_active(rows: dict[str, Row]) -> None:  # §2.3, §6.4
    # y[A,2031,j] <= w_j · active[A,2031]: widths 1 and 2; their sum is the page's row (up_to_last 3)
    assert _terms(rows["invest_link[A,2031,1]"]) == {6: 1.0, 0: -1.0, 1: -1.0}
    assert _terms(rows["invest_link[A,2031,2]"]) == {7: 1.0, 0: -2.0, 1: -2.0}


def test_invest_link_per_segment_tightens_the_lp_without_moving_the_optimum() -> None:  # §2.3, §6.4
    """One market, one year, discount 0: entering costs 4 and earns 5 (100 × 0.1 × 0.5), the
    segments return 2 on the first unit and 1.5 on the next two, and the budget is 2, so no plan
    can enter: the optimum is 0. The LP relaxation enters a fraction a. With the page's single row
    (y1 + y2 <= 3a) it buys y1 = 3a at the best rate: 4a + 3a = 2, value a + 3a = 8/7. Segment by
    segment (y1 <= a, y2 <= 2a) a fraction earns only its share of the whole market's 3 (1 from
    entering, 1 + 1 from investing) for its share of the whole spend 7: 2 × 3/7 = 6/7."""
    from lepton_alloc.models import build_model, solve_model
    from lepton_alloc.models.heuristic import lp_relaxation
    from lepton_alloc.models.rowset import RowSet

    raw = {"start_year": 2030, "horizon_years": 1, "budget": {"limit": 2.0},
           "markets": [{"id": "A", "market_size": 100.0,
                        "growth_investment": {"segments": [{"up_to": 1.0, "return_rate": 2.0},
                                                           {"up_to": 3.0, "return_rate": 1.5}]},
                        "options": [{"mode": "build", "initial_share": 0.1, "margin": 0.5, "entry_cost": 4.0}]}]}
    am = build_model(parse_scenario(raw))
    lp = lp_relaxation(am, RowSet.of_model(am), 10.0)
    assert lp is not None and lp[2] == pytest.approx(6.0 / 7.0)
    out = solve_model(am, head_start=False)
    assert out.objective_value == pytest.approx(0.0, abs=1e-9)


def test_growth_investment_npv_is_discounted_net_return() -> None:  # §2.6 with §2.3
    form = formulate(parse_scenario(RAW))
    npv = form.terms.npv[0]
    assert npv[4:10] == pytest.approx([1.0, 0.5, 1.0 / 1.1, 0.5 / 1.1, 1.0 / 1.21, 0.5 / 1.21])
