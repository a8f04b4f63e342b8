"""The bulk Pyomo -> HiGHS transfer (models/highs_fast.py) gives the model Pyomo's stock interface gives.

Every scenario is solved twice, with the fast path and with the forced fallback (Pyomo's stock
``Highs``), at mip_rel_gap 0: status and objective must agree. The applicability check is
exercised by faking an untested Pyomo version and a changed private signature.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from pyomo.contrib.solver.common import persistent, util
from pyomo.contrib.solver.solvers import highs as pyomo_highs

from lepton_alloc.models import highs_fast
from lepton_alloc.models.formulation import build_model
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.models.loader import load_builtin_example
from lepton_alloc.models.scenario import parse_scenario
from lepton_alloc.models.solve import SolveOutcome, solve_model

from .test_bruteforce import generate


@pytest.fixture
def fresh_check() -> Iterator[None]:
    """Re-run the applicability check around a test that fakes Pyomo's internals."""
    highs_fast.fast_path_check.cache_clear()
    yield
    highs_fast.fast_path_check.cache_clear()


def _solve(raw_or_scenario: Any, fast_path: bool) -> SolveOutcome:
    sc = raw_or_scenario if not isinstance(raw_or_scenario, dict) else parse_scenario(raw_or_scenario)
    am = build_model(sc)
    # no head start: its plan can match the LP bound and end the solve before HiGHS is made
    out = solve_model(am, mip_rel_gap=0.0, fast_path=fast_path, head_start=False)
    assert highs_fast.is_fast(am.solver) is fast_path
    return out


def _assert_same(fast: SolveOutcome, stock: SolveOutcome) -> None:
    assert fast.status == stock.status
    if stock.objective_value is None:
        assert fast.objective_value is None
    else:
        assert fast.objective_value == pytest.approx(stock.objective_value, rel=1e-6, abs=1e-9)


def _scenarios() -> list[Any]:
    infeasible = generate_scenario(6, 3, seed=5, mip_rel_gap=0.0)
    market = infeasible["markets"][0]
    market.update(must_enter=True, compliance={**market.get("compliance", {}), "lead_time_years": 5})  # empty E_o
    cvar = generate_scenario(10, 4, seed=3, mip_rel_gap=0.0, objective="risk_adjusted_npv", risk_aversion=0.5)
    carry = generate_scenario(12, 5, seed=8, mip_rel_gap=0.0, carry_over=True, cash_flow_share=0.3)
    return [
        pytest.param(load_builtin_example(), id="builtin"),
        pytest.param(generate_scenario(15, 5, seed=1, mip_rel_gap=0.0), id="generated"),
        pytest.param(cvar, id="cvar"),
        pytest.param(carry, id="carry_over+cash_flows"),
        pytest.param(infeasible, id="infeasible"),
        *(pytest.param(generate(seed), id=f"bruteforce-{seed}") for seed in (0, 3, 7, 11, 19, 42)),
    ]


def test_the_fast_path_applies_on_a_tested_pyomo() -> None:
    import pyomo.version

    check = highs_fast.fast_path_check()
    assert check.applies is (tuple(pyomo.version.version_info[:2]) in highs_fast.TESTED_PYOMO), check.reason


@pytest.mark.parametrize("scenario", _scenarios())
def test_fast_path_and_stock_interface_agree(scenario: Any) -> None:
    if not highs_fast.fast_path_check().applies:
        pytest.skip(highs_fast.fast_path_check().reason)
    _assert_same(_solve(scenario, True), _solve(scenario, False))


def test_the_infeasible_case_is_infeasible() -> None:  # so that the comparison above covers a non-optimal status
    raw = [p.values[0] for p in _scenarios() if p.id == "infeasible"][0]
    assert _solve(raw, False).status == "infeasible"


@pytest.mark.parametrize("fast_path", [True, False])
def test_param_change_re_solves_in_place(fast_path: bool) -> None:
    if fast_path and not highs_fast.fast_path_check().applies:
        pytest.skip(highs_fast.fast_path_check().reason)
    raw = generate_scenario(8, 4, seed=11, mip_rel_gap=0.0)
    am = build_model(parse_scenario(raw))
    base = solve_model(am, mip_rel_gap=0.0, fast_path=fast_path)
    solver = am.solver
    year = raw["start_year"] + 1
    name = f"budget[{year}]"
    tighter = 0.5 * am.model.limit[name].value
    am.model.limit[name] = tighter
    again = solve_model(am, mip_rel_gap=0.0, fast_path=fast_path)
    assert am.solver is solver  # the same persistent solver: the bound was pushed, not rebuilt

    changed = copy.deepcopy(raw)
    limits = list(parse_scenario(raw).budget.limit)
    limits[1] = tighter
    changed["budget"]["limit"] = limits
    fresh = _solve(changed, fast_path)
    assert again.status == fresh.status == "optimal"
    assert again.objective_value == pytest.approx(fresh.objective_value, rel=1e-6)
    assert again.objective_value < base.objective_value - 1e-6  # the tighter budget binds


def test_a_fixed_variable_takes_the_stock_route_inside_the_fast_solver() -> None:
    if not highs_fast.fast_path_check().applies:
        pytest.skip(highs_fast.fast_path_check().reason)
    sc = load_builtin_example()
    outcomes = []
    for fast_path in (True, False):
        am = build_model(sc)
        first = solve_model(am, mip_rel_gap=0.0, fast_path=fast_path)
        am.model.x[am.n_x - 1].fix(1.0)  # force the last column in: its rows are re-added with a fixed variable
        outcomes.append(solve_model(am, mip_rel_gap=0.0, fast_path=fast_path))
    _assert_same(*outcomes)
    assert outcomes[0].objective_value != pytest.approx(first.objective_value)  # the fixing mattered


def test_no_module_function_of_pyomo_is_patched() -> None:
    if not highs_fast.fast_path_check().applies:
        pytest.skip(highs_fast.fast_path_check().reason)
    _solve(load_builtin_example(), True)
    assert persistent.collect_vars_and_named_exprs is util.collect_vars_and_named_exprs
    assert "add_constraints" not in vars(pyomo_highs.Highs)  # the override is on the subclass only


def test_an_untested_pyomo_version_falls_back(monkeypatch: pytest.MonkeyPatch, fresh_check: None) -> None:
    monkeypatch.setattr(highs_fast, "TESTED_PYOMO", ((0, 1),))
    check = highs_fast.fast_path_check()
    assert not check.applies and "not a version the fast path was tested with" in check.reason
    assert highs_fast.use_fast_path(None) is False
    with pytest.raises(RuntimeError, match="does not apply"):
        highs_fast.use_fast_path(True)
    am = build_model(load_builtin_example())
    out = solve_model(am, mip_rel_gap=0.0)
    assert type(am.solver) is pyomo_highs.Highs and out.status == "optimal"


def test_a_changed_private_signature_falls_back(monkeypatch: pytest.MonkeyPatch, fresh_check: None) -> None:
    class Changed:
        def __init__(self, lower: Any, upper: Any, con: Any) -> None: ...

    monkeypatch.setattr(pyomo_highs, "_MutableConstraintBounds", Changed)
    check = highs_fast.fast_path_check()
    assert not check.applies and "_MutableConstraintBounds.__init__" in check.reason
    assert highs_fast.use_fast_path(None) is False


def test_the_environment_switch_forces_the_stock_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(highs_fast.ENVIRONMENT_SWITCH, "0")
    assert highs_fast.use_fast_path(None) is False
    am = build_model(load_builtin_example())
    solve_model(am, time_limit=5.0)
    assert type(am.solver) is pyomo_highs.Highs


def test_the_fast_transfer_keeps_pyomo_s_bookkeeping_as_the_stock_one() -> None:
    """The same HiGHS columns in the same order, and the same record of which rows use which
    variable (read by Pyomo when a re-solve replaces rows): the fast path fills that record
    variable by variable instead of per non-zero."""
    sc = parse_scenario(generate_scenario(12, 5, seed=4, levers_share=0.5, carry_over=True))
    solvers = {}
    for fast in (True, False):
        am = build_model(sc)
        opt = highs_fast.persistent_highs(am.linear_rows, am.variables, fast)
        opt.set_instance(am.model)
        names = {id(v): v.name for v in am.variables}
        solvers[fast] = (
            [names.get(vid, "?") for vid, _col in sorted(opt._pyomo_var_to_solver_var_map.items(), key=lambda kv: kv[1])],
            {names[vid]: sorted(c.name for c in refs[0]) for vid, refs in opt._referenced_variables.items()},
            {c.name: [v.name for v in vs] for c, vs in opt._vars_referenced_by_con.items()},
            opt._solver_model.getNumRow(),
        )
    assert solvers[True][0] == solvers[False][0]
    assert solvers[True][1] == solvers[False][1]
    assert solvers[True][2] == solvers[False][2]
    assert solvers[True][3] == solvers[False][3]
