"""Brute force against the MIP: tiny random scenarios, every plan enumerated (docs/model.md 2).

A seeded generator writes tiny scenarios (<= 4 markets, <= 4 years, 1-3 growth scenarios) with
the features of docs/model.md section 1 switched on at random. The brute force enumerates every
combination of entry decisions (each market: not entered, or an allowed (option, τ) with τ in
E_o), scores each plan with the independent evaluator of :mod:`.feasibility` and keeps the best
feasible objective; it must equal the model's objective at mip_rel_gap 0 (relative 1e-6), and
"nothing feasible" must be reported as status 'infeasible'. Every plan the model returns is
also run through ``check_plan``.

The levers of docs/model.md 2.3, which a pure enumeration of entry decisions does not cover:

* growth hiring (integer n[i,t] in [0, max_heads·active]) is generated with max_heads 1 or 2
  and enumerated exhaustively: for every entry combination, every vector of hires over the
  active years of each hiring market (inactive years are 0 by 2.3). The generator keeps the
  total number of enumerated plans small (``MAX_PLANS``).
* growth investment is generated only in scenarios where its optimum has a closed form: no
  budget limit and no region max_budget_share (the only constraints its spend enters), and no
  floors with the final_year_contribution objective. Then y is scenario-independent and shifts
  every NPV_s by the same Σ_t w_t (r_j − 1) y (CVaR is translation-equivariant), so for
  expected_npv / risk_adjusted_npv each segment with return_rate > 1 is filled and the others
  are left empty; for final_year_contribution the last year fills every segment with
  return_rate > 0 (other years do not enter the objective; they are filled with the > 1
  segments, which helps no floor since there is none). Segments are non-increasing in return,
  so both are a prefix of segments.

About a third of the scenarios are "heavy": growth hiring, salaries, budgets, headcount limits
and regions switched on more often, so that these limits bind on hires. Half of the budgets
are scaled to what the plans spend, so that the budget decides between profitable plans.

Power, measured by mutation (each bug injected into a copy of models/, all 200 seeds run):
caught were a terminal value on one-off costs, the terminal factor without (1+g), net hires
without H_-1 = initial or against H_t alone, growth-hire salaries missing from the budget,
compliance paid at τ instead of τ − lead, prehire ignored, a constant previous-plan penalty
dropped, CVaR with α for 1 − α, max_share ignored, talent caps without hires, the final-year
objective without investment or hires, cash-flow heads of the entry year only, carry-over
against one year's spend, the risk row reversed, prerequisites dropped, the share-growth
multiplier or market-growth delta ignored, region min_markets dropped (20 of 22). Not caught:
growth investment or required-head salaries left out of a region's max_budget_share (the
first by design: investment is never generated together with budget shares).
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from lepton_alloc.models import solve_scenario

from .feasibility import PlanEvaluator, check_plan

SEEDS = range(200)
MAX_PLANS = 4000  # enumerated plans (entry combinations x hire vectors) per instance
MODE_NAMES = ("acquire", "partner", "build")


# ----------------------------------------------------------------------------- generator


def _per_year(rng: random.Random, T: int, choices: list[float]) -> Any:
    if rng.random() < 0.5:
        return rng.choice(choices)
    return [rng.choice(choices) for _ in range(T)]


def _mode_text(rng: random.Random, mode: str) -> str:
    # modes are case-insensitive (docs/model.md 1)
    return rng.choice([mode, mode, mode.upper(), mode.capitalize()])


def _plan_count(raw: dict[str, Any]) -> int:
    """Plans the brute force enumerates: Π_i (1 + Σ_{o,τ} (max_heads_i + 1)^(T − τ))."""
    ev = PlanEvaluator(raw)
    T = ev.sc["T"]
    total = 1
    for m in ev.sc["markets"]:
        h = m["hire_max"] + 1
        total *= 1 + sum(h ** (T - tau) for _, tau in ev.entry_choices(m["id"]))
    return total


def generate(seed: int) -> dict[str, Any]:
    """A valid tiny scenario (docs/model.md 1) whose plans are few enough to enumerate."""
    for attempt in range(50):
        raw = _generate(random.Random(seed * 1000 + attempt), attempt)
        if _plan_count(raw) <= MAX_PLANS:
            return raw
    raise AssertionError(f"seed {seed}: no small enough scenario generated")


def _generate(rng: random.Random, attempt: int) -> dict[str, Any]:
    T = rng.randint(1, 4)
    start = rng.choice([0, 2025, 2031])
    d = rng.choice([0.0, 0.05, 0.1])
    max_options = 3 if attempt < 2 else (2 if attempt < 6 else 1)
    max_markets = 4 if attempt < 10 else 2
    gi_mode = rng.random() < 0.3  # growth investment allowed: then no budget / budget shares
    # "heavy": resource limits and growth hiring switched on more often, so that the limits
    # bind on hires (budget with salaries, headcount, net hires, talent caps)
    heavy = not gi_mode and rng.random() < 0.4

    raw: dict[str, Any] = {"name": f"bf-{attempt}", "horizon_years": T}
    if start != 0 or rng.random() < 0.5:
        raw["start_year"] = start
    if d != 0 or rng.random() < 0.5:
        raw["discount_rate"] = d
    if rng.random() < 0.3:
        raw["terminal_growth"] = rng.choice([g for g in (-0.05, -0.02, 0.0, 0.03) if g < d])

    # growth scenarios (1-3)
    S = rng.randint(1, 3)
    if S == 1:
        if rng.random() < 0.5:
            raw["growth_scenarios"] = [{"name": "only", "probability": 1.0}]
    else:
        probs = {2: [0.4, 0.6], 3: [0.25, 0.5, 0.25]}[S]
        gs = []
        for k in range(S):
            g: dict[str, Any] = {"name": f"s{k}", "probability": probs[k]}
            if rng.random() < 0.7:
                g["market_growth_delta"] = rng.choice([-0.03, 0.0, 0.02, 0.05])
            if rng.random() < 0.7:
                g["share_growth_multiplier"] = rng.choice([0.5, 1.0, 1.5])
            gs.append(g)
        raw["growth_scenarios"] = gs

    N = rng.randint(1, max_markets)
    ids = [f"M{k}" for k in range(N)]
    markets = []
    for k in range(N):
        m: dict[str, Any] = {"id": ids[k]}
        if rng.random() < 0.85:
            m["market_size"] = rng.choice([0, 10, 50, 100, 200] if rng.random() < 0.3 else [10, 50, 100, 200])
        if rng.random() < 0.5:
            m["market_growth"] = rng.choice([-0.05, 0.0, 0.05, 0.1])
        if rng.random() < (0.9 if heavy else 0.6):
            m["region"] = rng.choice(["A", "B"])
        if rng.random() < 0.5:
            m["risk_score"] = rng.choice([0.0, 0.2, 0.5, 0.8, 1.0])
        if rng.random() < (0.9 if heavy else 0.5):
            m["salary_per_head"] = rng.choice([0.5, 1.0, 2.0] if heavy else [0.0, 0.5, 1.0, 2.0])
        modes = rng.sample(MODE_NAMES, rng.randint(1, max_options))
        if rng.random() < 0.35:
            comp: dict[str, Any] = {}
            if rng.random() < 0.7:
                comp["lead_time_years"] = rng.choice([0, 1, 1, 2, T])  # T: empty window
            if rng.random() < 0.7:
                comp["cost"] = rng.choice([0.0, 1.0, 3.0])
            if rng.random() < 0.4:
                banned = rng.sample(MODE_NAMES, rng.randint(1, 2))
                comp["banned_modes"] = [_mode_text(rng, b) for b in banned]
            m["compliance"] = comp
        # entry window (calendar years): earliest may precede start_year, latest may pass the end
        if rng.random() < 0.35:
            earliest = start + rng.choice([-1, 0, 1, 2])
            m["earliest_entry_year"] = min(earliest, start + T - 1)
        if rng.random() < 0.35:
            lo = m.get("earliest_entry_year", start)
            m["latest_entry_year"] = max(lo, start + rng.choice([0, 1, 2, T + 2]))
        if rng.random() < 0.1:
            m["must_enter"] = True
        if k > 0 and rng.random() < 0.25:
            m["requires"] = rng.sample(ids[:k], 1)  # only earlier markets: no cycle
        if gi_mode and rng.random() < 0.6:
            nseg = rng.randint(1, 2)
            ups = sorted(rng.sample([0.5, 1.0, 2.0, 3.0], nseg))
            rates = sorted((rng.choice([2.0, 1.5, 1.2, 1.0, 0.8, 0.3, 0.0]) for _ in range(nseg)), reverse=True)
            m["growth_investment"] = {"segments": [{"up_to": u, "return_rate": r} for u, r in zip(ups, rates)]}
        if rng.random() < (0.8 if heavy else 0.4):
            m["growth_hiring"] = {"max_heads": rng.choice([1, 1, 2]),
                                  "contribution_per_head": rng.choice([1.5, 3.0, 6.0] if heavy else [-0.5, 0.5, 1.5, 3.0, 6.0])}
        opts = []
        for md in modes:
            o: dict[str, Any] = {"mode": _mode_text(rng, md)}
            if rng.random() < 0.35:
                cf: dict[str, Any] = {}
                if rng.random() < 0.9:
                    cf["contribution"] = [rng.choice([-2.0, 0.0, 3.0, 5.0, 8.0, 12.0]) for _ in range(rng.randint(0, T + 1))]
                if rng.random() < 0.8:
                    cf["cost"] = [rng.choice([0.0, 1.0, 2.0, 5.0]) for _ in range(rng.randint(0, T + 1))]
                if rng.random() < 0.6:
                    cf["headcount"] = [rng.randint(0, 3) for _ in range(rng.randint(0, T))]
                o["cash_flows"] = cf
            else:
                o["initial_share"] = rng.choice([0.0, 0.02, 0.05, 0.1, 0.2])
                o["margin"] = rng.choice([0.2, 0.4, 0.6])
                if rng.random() < 0.6:
                    o["share_growth"] = rng.choice([-0.1, 0.0, 0.2, 0.5])
                if rng.random() < 0.3:
                    o["max_share"] = rng.choice([0.15, 0.3])
                if rng.random() < 0.7:
                    o["entry_cost"] = rng.choice([0.0, 2.0, 5.0, 10.0, 20.0])
                if rng.random() < 0.6:
                    o["annual_cost"] = rng.choice([0.0, 1.0, 2.0, 4.0])
                if rng.random() < 0.6:
                    o["headcount"] = rng.randint(0, 4)
                if rng.random() < 0.3:
                    o["prehire_years"] = rng.randint(0, 2)
            opts.append(o)
        m["options"] = opts
        markets.append(m)
    raw["markets"] = markets

    if not gi_mode and rng.random() < (0.9 if heavy else 0.6):
        carry = rng.random() < (0.6 if heavy else 0.4)
        if rng.random() < 0.6:
            # scaled to the plans, so that the budget decides between profitable plans: a
            # fraction of what entering every market spends in its dearest year (per-year
            # limits) or on average per year (cumulative limits with carry_over)
            ev = PlanEvaluator(raw)
            scale = 0.0
            for mk in ev.sc["markets"]:
                per_year = [[f["cost"][t] + mk["s"] * f["heads"][t] for t in range(T)]
                            for f in (ev.flows(mk["id"], md, tau) for md, tau in ev.entry_choices(mk["id"]))]
                spends = [sum(v) / T if carry else max(v) for v in per_year]
                scale += sum(spends) / len(spends) if spends else 0.0
            factors = (0.3, 0.5, 0.8, 1.2) if carry else (0.25, 0.4, 0.6, 0.8)
            choices = [max(1.0, round(scale * f * 2) / 2) for f in factors]
        else:
            choices = [2.0, 5.0, 10.0] if heavy else [2.0, 5.0, 10.0, 20.0, 40.0]
        raw["budget"] = {"limit": _per_year(rng, T, choices)}
        if carry:
            raw["budget"]["carry_over"] = True
    if rng.random() < (0.9 if heavy else 0.6):
        hc: dict[str, Any] = {}
        if rng.random() < 0.7:
            hc["cap"] = _per_year(rng, T, [2, 4, 6, 10])
        if rng.random() < 0.6:
            hc["max_net_hires"] = _per_year(rng, T, [0, 1, 2, 4])
        if rng.random() < 0.6:
            hc["initial"] = rng.randint(0, 4)
        raw["headcount"] = hc
    labels = sorted({m["region"] for m in markets if "region" in m})
    regions = []
    for lab in labels:
        if rng.random() < (0.9 if heavy else 0.6):
            r: dict[str, Any] = {"name": lab}
            members = sum(1 for m in markets if m.get("region") == lab)
            if rng.random() < 0.4:
                r["min_markets"] = rng.randint(0, 1)
            if rng.random() < 0.4:
                r["max_markets"] = rng.randint(r.get("min_markets", 0), members)
            if not gi_mode and rng.random() < (0.8 if heavy else 0.4):
                r["max_budget_share"] = rng.choice([0.3, 0.5, 0.7, 1.0])
            if rng.random() < (0.8 if heavy else 0.5):
                r["talent_cap"] = _per_year(rng, T, [1, 2, 4, 8])
            regions.append(r)
    if regions:
        raw["regions"] = regions
    if rng.random() < 0.25:
        raw["risk"] = {"max_average_risk": rng.choice([0.3, 0.5, 0.7])}

    # commitments: a valid (mode, year) of an allowed option inside E_o
    ev = PlanEvaluator(raw)
    if rng.random() < 0.25:
        cands = [mid for mid in ids if ev.entry_choices(mid)]
        if cands:
            mid = rng.choice(cands)
            mode, tau = rng.choice(ev.entry_choices(mid))
            raw["commitments"] = [{"market_id": mid, "mode": _mode_text(rng, mode), "entry_year": start + tau}]
    if rng.random() < 0.35:
        decs = []
        for mid in rng.sample(ids, rng.randint(1, N)):
            kind = rng.random()
            choices = ev.entry_choices(mid)
            if kind < 0.35:
                decs.append({"market_id": mid, "entered": False})
            elif kind < 0.75 and choices:
                mode, tau = rng.choice(choices)
                dd = {"market_id": mid, "mode": _mode_text(rng, mode), "entry_year": start + tau}
                if rng.random() < 0.5:
                    dd["entered"] = True
                decs.append(dd)
            else:  # outside E_o: an unlisted/banned mode or a year outside the window (2.5)
                decs.append({"market_id": mid, "mode": rng.choice(MODE_NAMES),
                             "entry_year": start + rng.choice([-1, T, T + 3])})
        raw["previous_plan"] = {"change_penalty": rng.choice([0.0, 1.0, 5.0, 50.0]), "decisions": decs}

    kind = rng.choice(["expected_npv", "risk_adjusted_npv", "final_year_contribution"])
    obj: dict[str, Any] = {"kind": rng.choice([kind, kind.upper()])}
    if kind == "risk_adjusted_npv" or rng.random() < 0.2:
        obj["risk_aversion"] = rng.choice([0.0, 0.3, 0.7, 1.0])
    if rng.random() < 0.5:
        obj["cvar_alpha"] = rng.choice([0.5, 0.8, 0.9])
    floors_ok = not (gi_mode and kind == "final_year_contribution")
    if floors_ok and rng.random() < 0.15:
        obj["min_expected_npv"] = rng.choice([-20.0, 0.0, 10.0, 30.0])
    if floors_ok and rng.random() < 0.15:
        obj["min_cvar"] = rng.choice([-30.0, 0.0, 10.0])
    if rng.random() < 0.8:
        raw["objective"] = obj
    return raw


# ----------------------------------------------------------------------------- brute force


def _invest_closed_form(ev: PlanEvaluator, mid: str, tau: int) -> list[float]:
    """The optimal growth-investment totals of an entered market (see the module docstring)."""
    sc = ev.sc
    m = sc["by_id"][mid]
    T = sc["T"]
    above_one = sum(w for w, r in m["segs"] if r > 1.0)
    positive = sum(w for w, r in m["segs"] if r > 0.0)
    out = [0.0] * T
    for t in range(tau, T):
        out[t] = positive if (sc["kind"] == "final_year_contribution" and t == T - 1) else above_one
    return out


def brute_force(raw: dict[str, Any]) -> tuple[float | None, dict | None, int]:
    """Best feasible objective over every plan, its plan, and the number of plans scored."""
    ev = PlanEvaluator(raw)
    sc = ev.sc
    T = sc["T"]
    mids = [m["id"] for m in sc["markets"]]
    per_market = [[None] + ev.entry_choices(mid) for mid in mids]
    best: float | None = None
    best_plan = None
    scored = 0
    for combo in itertools.product(*per_market):
        decisions = dict(zip(mids, combo))
        invest = {}
        hire_axes = []  # (market id, year) with a hire variable
        for mid, dec in decisions.items():
            if dec is None:
                continue
            if sc["by_id"][mid]["segs"]:
                invest[mid] = _invest_closed_form(ev, mid, dec[1])
            if sc["by_id"][mid]["hire_max"] > 0:
                hire_axes.extend((mid, t) for t in range(dec[1], T))
        ranges = [range(sc["by_id"][mid]["hire_max"] + 1) for mid, _ in hire_axes]
        for values in itertools.product(*ranges):
            hires = {}
            for (mid, t), v in zip(hire_axes, values):
                hires.setdefault(mid, [0.0] * T)[t] = float(v)
            out = ev.evaluate(decisions, invest, hires)
            scored += 1
            if out["violations"]:
                continue
            if best is None or out["objective"] > best:
                best = out["objective"]
                best_plan = {"decisions": decisions, "invest": invest, "hires": hires}
    return best, best_plan, scored


# ----------------------------------------------------------------------------- tests


def test_generator_is_valid_and_covers_the_features() -> None:
    """Every generated scenario passes validation, and each feature of docs/model.md 1 shows up."""
    from collections import Counter

    from lepton_alloc.models import parse_scenario

    seen: Counter[str] = Counter()
    for seed in SEEDS:
        raw = generate(seed)
        parse_scenario(raw)
        seen.update(k for k in ("budget", "headcount", "regions", "risk", "commitments", "previous_plan",
                                "terminal_growth", "growth_scenarios") if k in raw)
        seen["carry_over"] += bool(raw.get("budget", {}).get("carry_over"))
        seen["max_net_hires"] += "max_net_hires" in raw.get("headcount", {})
        seen["initial"] += bool(raw.get("headcount", {}).get("initial"))
        seen["talent_cap"] += any("talent_cap" in r for r in raw.get("regions", []))
        seen["max_budget_share"] += any("max_budget_share" in r for r in raw.get("regions", []))
        seen["min_max_markets"] += any("min_markets" in r or "max_markets" in r for r in raw.get("regions", []))
        obj = raw.get("objective", {})
        seen[str(obj.get("kind", "expected_npv")).lower()] += 1
        seen["min_expected_npv"] += "min_expected_npv" in obj
        seen["min_cvar"] += "min_cvar" in obj
        for m in raw["markets"]:
            for k in ("growth_investment", "growth_hiring", "requires", "must_enter", "compliance",
                      "earliest_entry_year", "latest_entry_year"):
                seen[k] += k in m
            seen["banned_modes"] += "banned_modes" in m.get("compliance", {})
            seen["cash_flows"] += sum("cash_flows" in o for o in m["options"])
            seen["prehire_years"] += sum(bool(o.get("prehire_years")) for o in m["options"])
    rare = {k: v for k, v in seen.items() if v < 5}
    assert not rare, f"features seldom generated: {rare}"
    assert len(seen) == 29, sorted(seen)  # every counter above is non-zero


def _one_market(**market: Any) -> dict[str, Any]:
    m = {"id": "A", "options": [{"mode": "build", "entry_cost": 10.0, "initial_share": 0.1, "margin": 0.5}]}
    m.update(market)
    return {"horizon_years": 2, "start_year": 2030, "markets": [m], "budget": {"limit": 8.0}}


def _result(objective: float, mode: str | None, year: int | None, spend: list[float],
            invest: list[float] | None = None, hires: list[float] | None = None) -> dict[str, Any]:
    invest = invest or [0.0] * len(spend)
    hires = hires or [0.0] * len(spend)
    return {
        "status": "optimal", "objective_value": objective,
        "markets": [{"id": "A", "mode": mode, "entry_year": year,
                     "years": [{"growth_investment": y, "growth_hires": n, "spend": s}
                               for y, n, s in zip(invest, hires, spend)]}],
        "years": [{"spend": s} for s in spend],
    }


def test_check_plan_flags_broken_plans() -> None:
    """The checker is not vacuous: hand-made results that break docs/model.md are reported."""
    raw = _one_market(market_size=100.0)
    assert check_plan(raw, _result(0.0, None, None, [0.0, 0.0])) == []
    # entering spends 10 > 8 in the entry year (budget[2031])
    v = check_plan(raw, _result(-5.0, "build", 2031, [0.0, 10.0]))
    assert any(x.startswith("budget[2031]") for x in v), v
    # with carry-over the cumulative limit 16 allows it; the objective is 100·0.1·0.5 − 10 = −5
    raw_c = dict(raw, budget={"limit": 8.0, "carry_over": True})
    assert check_plan(raw_c, _result(-5.0, "build", 2031, [0.0, 10.0])) == []
    assert any("objective_value" in x for x in check_plan(raw_c, _result(-4.0, "build", 2031, [0.0, 10.0])))
    assert any("years[1].spend" in x for x in check_plan(raw_c, _result(-5.0, "build", 2031, [0.0, 9.0])))
    # a banned mode, a year outside E_o, must_enter
    assert any("banned" in x for x in check_plan(
        _one_market(compliance={"banned_modes": ["BUILD"]}), _result(-10.0, "build", 2030, [10.0, 0.0])))
    assert any("outside E_o" in x for x in check_plan(
        _one_market(compliance={"lead_time_years": 1}), _result(-10.0, "build", 2030, [10.0, 0.0])))
    assert any(x.startswith("must_enter") for x in check_plan(_one_market(must_enter=True), _result(0.0, None, None, [0.0, 0.0])))
    # levers only when active, within their bounds
    raw_l = _one_market(growth_investment={"segments": [{"up_to": 1.0, "return_rate": 2.0}]},
                        growth_hiring={"max_heads": 1, "contribution_per_head": 1.0})
    assert any("growth_investment" in x for x in check_plan(raw_l, _result(1.0, None, None, [1.0, 0.0], invest=[1.0, 0.0])))
    assert any("growth_hires" in x for x in check_plan(raw_l, _result(1.0, None, None, [0.0, 0.0], hires=[1.0, 0.0])))
    # entered 2030 (spend 10 in 2030 > 8) with 1.5 invested in 2031 (> up_to 1.0)
    v = check_plan(raw_l, _result(0.0, "build", 2030, [10.0, 1.5], invest=[0.0, 1.5]))
    assert any("growth_investment[A,1]" in x for x in v) and any(x.startswith("budget[2030]") for x in v), v


@pytest.mark.parametrize("seed", SEEDS)
def test_model_matches_brute_force(seed: int) -> None:
    raw = generate(seed)
    best, best_plan, _ = brute_force(raw)
    res = solve_scenario(raw, mip_rel_gap=0, time_limit=60).to_dict()
    if best is None:
        assert res["status"] == "infeasible", (
            f"brute force finds no feasible plan, model says {res['status']} "
            f"with objective {res['objective_value']}\nscenario={raw!r}")
        return
    assert res["status"] == "optimal", f"brute force optimum {best}, model status {res['status']}\nscenario={raw!r}"
    violations = check_plan(raw, res)
    assert violations == [], f"model plan violates docs/model.md: {violations}\nscenario={raw!r}"
    assert abs(res["objective_value"] - best) <= 1e-6 * max(1.0, abs(best)), (
        f"model objective {res['objective_value']!r} != brute force {best!r}\n"
        f"brute-force plan={best_plan!r}\nscenario={raw!r}")
