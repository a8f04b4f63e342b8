"""compare(): the example against the example with a 10 % lower budget lists exactly the markets whose
decision differs in the two results, spend and heads per year side by side, KPI deltas, and every
yearly budget as a changed limit (and nothing else)."""

from __future__ import annotations

import json

import pytest

from lepton_alloc.models import Result, Scenario, solve_scenario
from lepton_alloc.models.compare import compare
from lepton_alloc.models.loader import load_builtin_example
from lepton_alloc.models.scenario import parse_scenario


@pytest.fixture(scope="module")
def pair() -> tuple[Scenario, Result, Scenario, Result]:
    a = load_builtin_example()
    d = a.to_dict()
    d["budget"]["limit"] = [0.9 * v for v in d["budget"]["limit"]]
    b = parse_scenario(d)
    return a, solve_scenario(a, mip_rel_gap=0.0), b, solve_scenario(b, mip_rel_gap=0.0)


def test_markets_whose_decision_changed(pair: tuple[Scenario, Result, Scenario, Result]) -> None:
    sa, ra, sb, rb = pair
    c = compare(ra, rb, sa, sb)
    da, db = ra.decisions, rb.decisions
    expected = [m.id for m in ra.markets if da[m.id] != db[m.id]]
    assert expected  # a 10 % tighter budget changes the plan
    assert c.changed_markets == expected
    for m in c.markets:
        (mode_a, year_a), (mode_b, year_b) = da[m.market_id], db[m.market_id]
        assert (m.mode_a, m.entry_year_a, m.mode_b, m.entry_year_b) == (mode_a, year_a, mode_b, year_b)
        if mode_a is None:
            assert m.change == "entered"
        elif mode_b is None:
            assert m.change == "left"
        else:
            assert m.change == {(True, False): "mode", (False, True): "entry_year",
                                (True, True): "mode_and_entry_year"}[(mode_a != mode_b, year_a != year_b)]


def test_years_kpis_and_labels(pair: tuple[Scenario, Result, Scenario, Result]) -> None:
    sa, ra, sb, rb = pair
    c = compare(ra, rb, sa, sb)
    assert (c.currency, c.money_unit) == (sa.currency, sa.money_unit.value) and c.notes == []
    assert [y.year for y in c.years] == sa.years
    for y, ya, yb in zip(c.years, ra.years, rb.years):
        assert (y.spend_a, y.spend_b, y.heads_a, y.heads_b) == (ya.spend, yb.spend, ya.heads, yb.heads)
        assert y.spend_delta == pytest.approx(yb.spend - ya.spend) and y.heads_delta == pytest.approx(yb.heads - ya.heads)
    kpis = {k.name: k for k in c.kpis}
    assert kpis["objective_value"].delta == pytest.approx(rb.objective_value - ra.objective_value)
    assert kpis["objective_value"].delta < 0  # less budget never helps
    assert rb.kpis is not None and ra.kpis is not None
    assert kpis["expected_npv"].delta == pytest.approx(rb.kpis.expected_npv - ra.kpis.expected_npv)
    assert kpis["cvar"].b == rb.kpis.cvar and kpis["markets_entered"].delta == rb.kpis.markets_entered - ra.kpis.markets_entered
    assert kpis["payback_year"].a == ra.kpis.payback_year and "change_penalty" in kpis
    json.dumps(c.to_dict())  # plain data


def test_limit_changes_are_the_yearly_budgets_only(pair: tuple[Scenario, Result, Scenario, Result]) -> None:
    sa, ra, sb, rb = pair
    c = compare(ra, rb, sa, sb)
    assert sa.budget.limit is not None
    assert [lim.name for lim in c.limits] == [f"budget[{y}]" for y in sa.years]
    for lim, value in zip(c.limits, sa.budget.limit):
        assert lim.a == value and lim.b == pytest.approx(0.9 * value) and lim.delta == pytest.approx(-0.1 * value)
    assert compare(ra, rb).limits == []  # without scenarios: no limits
    assert compare(ra, ra, sa, sa).markets == [] and compare(ra, ra, sa, sa).limits == []


def test_other_settings_are_listed() -> None:
    a = load_builtin_example()
    d = a.to_dict()
    d["discount_rate"] = 0.12
    d["objective"]["kind"] = "expected_npv"
    d["risk"]["max_average_risk"] = 0.6
    d["regions"][0]["max_markets"] = (d["regions"][0].get("max_markets") or 5) + 1
    b = parse_scenario(d)
    r = solve_scenario(a, time_limit=5)
    names = {lim.name: lim for lim in compare(r, r, a, b).limits}
    assert names["discount_rate"].b == 0.12 and names["objective.kind"].b == "expected_npv"
    assert names["max_average_risk"].b == 0.6
    assert f"region_max_markets[{d['regions'][0]['name']}]" in names
