"""An independent feasibility checker and objective evaluator for docs/model.md (sections 1-2).

Everything here is recomputed from the *raw* scenario dict (as a user would write it) and the
decisions of a result, in plain Python loops, with its own reading of the defaults of the
docs/model.md section 1 table. It deliberately imports nothing from ``lepton_alloc.models``: it is a
second implementation of the page, so that a bug in the project's model shows up as a
disagreement here.

Public entry points
-------------------
``check_plan(scenario_dict, result_dict, tol=1e-6) -> list[str]``
    Violations of a result's plan (empty list = feasible and consistent with the result).
``PlanEvaluator(scenario_dict)``
    Normalised scenario plus ``evaluate(decisions, invest, hires)``; the brute-force test reuses
    it to score every enumerated plan.

Growth investment (docs/model.md 2.3): a result reports the per-market-year *total* Σ_j y[i,t,j]. The
contribution it earns is recomputed by filling the segments in order (highest return first),
which is what any optimal plan does: return_rate >= 0, so for a given total spend a greedy fill
never lowers the objective (nor E[NPV], CVaR or the final-year contribution); a different split
can only tie.
"""

from __future__ import annotations

from typing import Any

MODES = ("acquire", "partner", "build")


# ----------------------------------------------------------------------------- normalisation


def _get(d: dict[str, Any] | None, key: str, default: Any = None) -> Any:
    if d is None:
        return default
    v = d.get(key)
    return default if v is None else v


def _per_year(value: Any, T: int) -> list[float] | None:
    """One number (every year) or a list of exactly T numbers; None = unconstrained."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        assert len(value) == T, f"per-year list must have {T} values"
        return [float(v) for v in value]
    return [float(value)] * T


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """Fill every default of docs/model.md section 1; years become indices t = year - start_year."""
    start = int(_get(raw, "start_year", 0))
    T = int(raw["horizon_years"])
    sc: dict[str, Any] = {
        "start": start,
        "T": T,
        "d": float(_get(raw, "discount_rate", 0.0)),
        "g_tv": None if raw.get("terminal_growth") is None else float(raw["terminal_growth"]),
    }
    gs = raw.get("growth_scenarios")
    if not gs:
        sc["scen"] = [{"name": "base", "p": 1.0, "dg": 0.0, "m": 1.0}]
    else:
        sc["scen"] = [
            {
                "name": g["name"],
                "p": float(g["probability"]),
                "dg": float(_get(g, "market_growth_delta", 0.0)),
                "m": float(_get(g, "share_growth_multiplier", 1.0)),
            }
            for g in gs
        ]
    markets = []
    for m in raw["markets"]:
        comp = _get(m, "compliance", {})
        lead = int(_get(comp, "lead_time_years", 0))
        earliest = m.get("earliest_entry_year")
        latest = m.get("latest_entry_year")
        e_idx = 0 if earliest is None else int(earliest) - start
        l_idx = T - 1 if latest is None else int(latest) - start
        lo = max(e_idx, lead, 0)  # τ is a year of the horizon: τ >= 0
        hi = min(l_idx, T - 1)
        segs = []
        prev_up = 0.0
        for sg in _get(_get(m, "growth_investment", {}), "segments", []):
            up = float(sg["up_to"])
            segs.append((up - prev_up, float(sg["return_rate"])))
            prev_up = up
        gh = m.get("growth_hiring")
        options = {}
        for o in _get(m, "options", []):
            mode = str(o["mode"]).strip().lower()
            if o.get("cash_flows") is not None:
                cf = o["cash_flows"]
                options[mode] = {
                    "cf": True,
                    "contribution": [float(v) for v in _get(cf, "contribution", [])],
                    "cost": [float(v) for v in _get(cf, "cost", [])],
                    "headcount": [int(v) for v in _get(cf, "headcount", [])],
                }
            else:
                options[mode] = {
                    "cf": False,
                    "S0": float(o["initial_share"]),
                    "r": float(_get(o, "share_growth", 0.0)),
                    "cap": float(_get(o, "max_share", 1.0)),
                    "margin": float(o["margin"]),
                    "entry_cost": float(_get(o, "entry_cost", 0.0)),
                    "annual_cost": float(_get(o, "annual_cost", 0.0)),
                    "headcount": int(_get(o, "headcount", 0)),
                    "prehire": int(_get(o, "prehire_years", 0)),
                }
        banned = {str(b).strip().lower() for b in _get(comp, "banned_modes", [])}
        markets.append({
            "id": m["id"],
            "region": m.get("region"),
            "M": float(_get(m, "market_size", 0.0)),
            "g": float(_get(m, "market_growth", 0.0)),
            "rho": float(_get(m, "risk_score", 0.0)),
            "lead": lead,
            "ccost": float(_get(comp, "cost", 0.0)),
            "banned": banned,
            "lo": lo,
            "hi": hi,
            "must": bool(_get(m, "must_enter", False)),
            "requires": list(_get(m, "requires", [])),
            "s": float(_get(m, "salary_per_head", 0.0)),
            "segs": segs,
            "up_last": prev_up,
            "hire_max": int(gh["max_heads"]) if gh else 0,
            "hire_c": float(gh["contribution_per_head"]) if gh else 0.0,
            "options": options,
            # allowed options: listed and not banned (2.1)
            "allowed": [md for md in MODES if md in options and md not in banned],
        })
    sc["markets"] = markets
    sc["by_id"] = {m["id"]: m for m in markets}

    b = _get(raw, "budget", {})
    sc["budget"] = _per_year(b.get("limit"), T)
    sc["carry"] = bool(_get(b, "carry_over", False))
    h = _get(raw, "headcount", {})
    sc["hcap"] = _per_year(h.get("cap"), T)
    sc["mnh"] = _per_year(h.get("max_net_hires"), T)
    sc["initial"] = int(_get(h, "initial", 0))
    sc["regions"] = [
        {
            "name": r["name"],
            "min": int(_get(r, "min_markets", 0)),
            "max": None if r.get("max_markets") is None else int(r["max_markets"]),
            "share": None if r.get("max_budget_share") is None else float(r["max_budget_share"]),
            "talent": _per_year(r.get("talent_cap"), T),
        }
        for r in _get(raw, "regions", [])
    ]
    sc["risk_max"] = _get(_get(raw, "risk", {}), "max_average_risk", None)
    sc["commit"] = {
        c["market_id"]: (str(c["mode"]).strip().lower(), int(c["entry_year"]) - start)
        for c in _get(raw, "commitments", [])
    }
    pp = raw.get("previous_plan")
    if pp is None:
        sc["prev"] = None
    else:
        decs = []
        for dd in _get(pp, "decisions", []):
            has_choice = dd.get("mode") is not None or dd.get("entry_year") is not None
            entered = bool(_get(dd, "entered", has_choice))
            if entered:
                decs.append((dd["market_id"], True, str(dd["mode"]).strip().lower(), int(dd["entry_year"]) - start))
            else:
                decs.append((dd["market_id"], False, None, None))
        sc["prev"] = (float(_get(pp, "change_penalty", 0.0)), decs)
    ob = _get(raw, "objective", {})
    sc["kind"] = str(_get(ob, "kind", "expected_npv")).strip().lower()
    sc["lam"] = float(_get(ob, "risk_aversion", 0.0))
    sc["alpha"] = float(_get(ob, "cvar_alpha", 0.9))
    sc["min_npv"] = ob.get("min_expected_npv")
    sc["min_cvar"] = ob.get("min_cvar")
    return sc


# ----------------------------------------------------------------------------- cash flows (2.2)


def option_flows(sc: dict[str, Any], m: dict[str, Any], mode: str, tau: int) -> dict[str, Any]:
    """Per-year lists of one option of market m entered in year index tau (docs/model.md 2.2)."""
    T, S = sc["T"], len(sc["scen"])
    o = m["options"][mode]
    entry = [0.0] * T
    annual = [0.0] * T
    compliance = [0.0] * T
    heads = [0] * T
    contrib = [[0.0] * S for _ in range(T)]
    for t in range(T):
        if t == tau - m["lead"]:
            compliance[t] = m["ccost"]
        if o["cf"]:
            k = t - tau
            if 0 <= k < len(o["contribution"]):
                for s in range(S):
                    contrib[t][s] = o["contribution"][k]
            if 0 <= k < len(o["cost"]):
                annual[t] = o["cost"][k]  # every cash_flows cost is recurring (2.6)
            if 0 <= k < len(o["headcount"]):
                heads[t] = o["headcount"][k]
        else:
            if t == tau:
                entry[t] = o["entry_cost"]
            if t >= tau:
                annual[t] = o["annual_cost"]
            if t >= tau - o["prehire"]:
                heads[t] = o["headcount"]
            if t >= tau:
                for s, g in enumerate(sc["scen"]):
                    size = m["M"] * (1.0 + m["g"] + g["dg"]) ** t
                    share = min(o["cap"], o["S0"] * (1.0 + o["r"] * g["m"]) ** (t - tau))
                    contrib[t][s] = o["margin"] * size * share
    return {
        "entry": entry, "annual": annual, "compliance": compliance, "heads": heads,
        "contrib": contrib,
        "cost": [entry[t] + annual[t] + compliance[t] for t in range(T)],
        "one_off": [entry[t] + compliance[t] for t in range(T)],
    }


def invest_return(m: dict[str, Any], total: float) -> float:
    """Contribution of a growth-investment total, segments filled in order (2.3)."""
    out = 0.0
    left = total
    for width, rate in m["segs"]:
        take = min(width, max(0.0, left))
        out += rate * take
        left -= take
    return out


def cvar(npv: list[float], prob: list[float], alpha: float) -> float:
    """Mean NPV of the worst 1-α probability mass (the max over η of docs/model.md 2.6)."""
    mass = 1.0 - alpha
    acc = 0.0
    total = 0.0
    for v, p in sorted(zip(npv, prob)):
        take = min(p, mass - acc)
        if take <= 0:
            break
        total += take * v
        acc += take
    return total / mass


# ----------------------------------------------------------------------------- evaluation


def _leq(lhs: float, rhs: float, tol: float, scale: float = 0.0) -> bool:
    return lhs <= rhs + tol * max(1.0, abs(rhs), abs(scale))


class PlanEvaluator:
    """A normalised scenario that scores plans: decisions -> totals, violations, objective."""

    def __init__(self, raw: dict[str, Any]):
        self.raw = raw
        self.sc = normalize(raw)
        self._cache: dict[tuple[str, str, int], dict[str, Any]] = {}

    def flows(self, mid: str, mode: str, tau: int) -> dict[str, Any]:
        key = (mid, mode, tau)
        f = self._cache.get(key)
        if f is None:
            f = option_flows(self.sc, self.sc["by_id"][mid], mode, tau)
            self._cache[key] = f
        return f

    def entry_choices(self, mid: str) -> list[tuple[str, int]]:
        """Every (mode, τ) with τ in E_o of an allowed option (2.1)."""
        m = self.sc["by_id"][mid]
        return [(md, tau) for md in m["allowed"] for tau in range(m["lo"], m["hi"] + 1)]

    def evaluate(
        self,
        decisions: dict[str, tuple[str, int] | None],
        invest: dict[str, list[float]] | None = None,
        hires: dict[str, list[float]] | None = None,
        tol: float = 1e-6,
    ) -> dict[str, Any]:
        """Score a plan. decisions: market id -> (mode, τ index) or None (not entered).

        invest / hires: market id -> per-year totals (missing = zeros). Returns a dict with the
        recomputed totals, ``violations`` (list of str) and ``objective``.
        """
        sc = self.sc
        T, S = sc["T"], len(sc["scen"])
        prob = [g["p"] for g in sc["scen"]]
        invest = invest or {}
        hires = hires or {}
        viol: list[str] = []

        spend_m: dict[str, list[float]] = {}
        heads_m: dict[str, list[float]] = {}
        contrib_m: dict[str, list[list[float]]] = {}
        one_off_t = [0.0] * T
        tau_of: dict[str, int | None] = {}

        for m in sc["markets"]:
            mid = m["id"]
            dec = decisions.get(mid)
            spend = [0.0] * T
            heads = [0.0] * T
            contrib = [[0.0] * S for _ in range(T)]
            tau = None
            if dec is not None:
                mode, tau = dec
                if mode not in m["options"]:
                    viol.append(f"market {mid}: mode {mode!r} is not an option of the market")
                    tau = None
                elif mode in m["banned"]:
                    viol.append(f"market {mid}: mode {mode!r} is banned")
                    tau = None
                elif not (m["lo"] <= tau <= m["hi"]):
                    viol.append(f"market {mid}: entry year index {tau} outside E_o [{m['lo']}, {m['hi']}]")
                    tau = None
                else:
                    f = self.flows(mid, mode, tau)
                    for t in range(T):
                        spend[t] += f["cost"][t] + m["s"] * f["heads"][t]
                        heads[t] += f["heads"][t]
                        one_off_t[t] += f["one_off"][t]
                        for s in range(S):
                            contrib[t][s] += f["contrib"][t][s]
            tau_of[mid] = tau
            y = invest.get(mid, [0.0] * T)
            n = hires.get(mid, [0.0] * T)
            for t in range(T):
                active = tau is not None and t >= tau
                # 2.3 growth investment: 0 <= Σ_j y <= up_to_last · active
                if y[t] < -tol:
                    viol.append(f"growth_investment[{mid},{t}] = {y[t]} < 0")
                cap_y = m["up_last"] if active else 0.0
                if not _leq(y[t], cap_y, tol):
                    viol.append(f"growth_investment[{mid},{t}] = {y[t]} > {cap_y} (active={active})")
                # 2.3 growth hiring: integer n in [0, max_heads · active]
                if abs(n[t] - round(n[t])) > tol:
                    viol.append(f"growth_hires[{mid},{t}] = {n[t]} is not an integer")
                if n[t] < -tol:
                    viol.append(f"growth_hires[{mid},{t}] = {n[t]} < 0")
                cap_n = m["hire_max"] if active else 0
                if not _leq(n[t], cap_n, tol):
                    viol.append(f"growth_hires[{mid},{t}] = {n[t]} > {cap_n} (active={active})")
                heads[t] += n[t]
                spend[t] += m["s"] * n[t] + y[t]  # salary on growth hires; the investment itself
                gain = invest_return(m, y[t]) + m["hire_c"] * n[t]
                for s in range(S):
                    contrib[t][s] += gain
            spend_m[mid] = spend
            heads_m[mid] = heads
            contrib_m[mid] = contrib

        entered = {mid: tau_of[mid] is not None for mid in tau_of}

        # 2.1 must_enter
        for m in sc["markets"]:
            if m["must"] and not entered[m["id"]]:
                viol.append(f"must_enter[{m['id']}]: market not entered")

        # 2.4 totals and resource limits
        spend_t = [sum(spend_m[mid][t] for mid in spend_m) for t in range(T)]
        heads_t = [sum(heads_m[mid][t] for mid in heads_m) for t in range(T)]
        if sc["budget"] is not None:
            B = sc["budget"]
            if sc["carry"]:
                cs = cb = 0.0
                for t in range(T):
                    cs += spend_t[t]
                    cb += B[t]
                    if not _leq(cs, cb, tol):
                        viol.append(f"budget_cumulative[{sc['start'] + t}]: {cs} > {cb}")
            else:
                for t in range(T):
                    if not _leq(spend_t[t], B[t], tol):
                        viol.append(f"budget[{sc['start'] + t}]: {spend_t[t]} > {B[t]}")
        if sc["hcap"] is not None:
            for t in range(T):
                if not _leq(heads_t[t], sc["hcap"][t], tol):
                    viol.append(f"headcount_cap[{sc['start'] + t}]: {heads_t[t]} > {sc['hcap'][t]}")
        if sc["mnh"] is not None:
            prev = float(sc["initial"])
            for t in range(T):
                if not _leq(heads_t[t] - prev, sc["mnh"][t], tol):
                    viol.append(f"net_hires[{sc['start'] + t}]: {heads_t[t] - prev} > {sc['mnh'][t]}")
                prev = heads_t[t]

        # 2.5 regions
        total_spend = sum(spend_t)
        for r in sc["regions"]:
            members = [m["id"] for m in sc["markets"] if m["region"] == r["name"]]
            count = sum(1 for mid in members if entered[mid])
            if count < r["min"]:
                viol.append(f"region_min_markets[{r['name']}]: {count} < {r['min']}")
            if r["max"] is not None and count > r["max"]:
                viol.append(f"region_max_markets[{r['name']}]: {count} > {r['max']}")
            if r["share"] is not None:
                g_spend = sum(spend_m[mid][t] for mid in members for t in range(T))
                if not _leq(g_spend, r["share"] * total_spend, tol, total_spend):
                    viol.append(f"region_budget_share[{r['name']}]: {g_spend} > {r['share']} x {total_spend}")
            if r["talent"] is not None:
                for t in range(T):
                    h = sum(heads_m[mid][t] for mid in members)
                    if not _leq(h, r["talent"][t], tol):
                        viol.append(f"talent_cap[{r['name']},{sc['start'] + t}]: {h} > {r['talent'][t]}")

        # 2.5 prerequisites: active[i,t] <= active[j,t]
        for m in sc["markets"]:
            ti = tau_of[m["id"]]
            if ti is None:
                continue
            for req in m["requires"]:
                tj = tau_of[req]
                if tj is None or tj > ti:
                    viol.append(f"requires[{m['id']},{req}]: {m['id']} active from {ti}, {req} from {tj}")

        # 2.5 risk
        if sc["risk_max"] is not None:
            lhs = sum(m["rho"] for m in sc["markets"] if entered[m["id"]])
            rhs = sc["risk_max"] * sum(1 for m in sc["markets"] if entered[m["id"]])
            if not _leq(lhs, rhs, tol):
                viol.append(f"max_average_risk: {lhs} > {rhs}")

        # 2.5 commitments
        for mid, (mode, tau) in sc["commit"].items():
            if decisions.get(mid) != (mode, tau) or tau_of[mid] is None:
                viol.append(f"commitment[{mid}]: plan has {decisions.get(mid)}, committed {(mode, tau)}")

        # 2.5 previous-plan penalty
        penalty = 0.0
        if sc["prev"] is not None:
            P, decs = sc["prev"]
            for mid, was_entered, mode, tau in decs:
                if was_entered:
                    if tau_of[mid] is None or decisions.get(mid) != (mode, tau):
                        penalty += P
                elif entered[mid]:
                    penalty += P

        # 2.6 objective
        d = sc["d"]
        delta = [(1.0 + d) ** (-t) for t in range(T)]
        net = [[sum(contrib_m[mid][t][s] for mid in contrib_m) - spend_t[t] for s in range(S)] for t in range(T)]
        npv = []
        for s in range(S):
            v = sum(delta[t] * net[t][s] for t in range(T))
            if sc["g_tv"] is not None:
                g = sc["g_tv"]
                recurring = net[T - 1][s] + one_off_t[T - 1]
                v += delta[T - 1] * recurring * (1.0 + g) / (d - g)
            npv.append(v)
        enpv = sum(p * v for p, v in zip(prob, npv))
        cv = cvar(npv, prob, sc["alpha"])
        final = sum(prob[s] * sum(contrib_m[mid][T - 1][s] for mid in contrib_m) for s in range(S))
        if sc["kind"] == "expected_npv":
            obj = enpv - penalty
        elif sc["kind"] == "risk_adjusted_npv":
            obj = (1.0 - sc["lam"]) * enpv + sc["lam"] * cv - penalty
        elif sc["kind"] == "final_year_contribution":
            obj = final - penalty
        else:
            raise ValueError(f"unknown objective kind {sc['kind']!r}")
        if sc["min_npv"] is not None and enpv < float(sc["min_npv"]) - tol * max(1.0, abs(float(sc["min_npv"]))):
            viol.append(f"min_expected_npv: {enpv} < {sc['min_npv']}")
        if sc["min_cvar"] is not None and cv < float(sc["min_cvar"]) - tol * max(1.0, abs(float(sc["min_cvar"]))):
            viol.append(f"min_cvar: {cv} < {sc['min_cvar']}")

        return {
            "violations": viol,
            "spend_t": spend_t,
            "heads_t": heads_t,
            "spend_m": spend_m,
            "heads_m": heads_m,
            "npv": npv,
            "expected_npv": enpv,
            "cvar": cv,
            "final_year_contribution": final,
            "penalty": penalty,
            "objective": obj,
        }


# ----------------------------------------------------------------------------- result checking


def plan_from_result(raw: dict[str, Any], result: dict[str, Any]) -> tuple[dict, dict, dict, list[str]]:
    """Decisions (mode, τ index), investments and hires from ``Result.to_dict()``."""
    start = int(_get(raw, "start_year", 0))
    T = int(raw["horizon_years"])
    problems: list[str] = []
    decisions: dict[str, tuple[str, int] | None] = {}
    invest: dict[str, list[float]] = {}
    hires: dict[str, list[float]] = {}
    ids = [m["id"] for m in raw["markets"]]
    seen: set[str] = set()
    for rm in result.get("markets") or []:
        mid = rm["id"]
        if mid in seen:
            problems.append(f"market {mid} has more than one decision in the result")
        seen.add(mid)
        if mid not in ids:
            problems.append(f"result names unknown market {mid}")
            continue
        if rm.get("mode") is None:
            if rm.get("entry_year") is not None:
                problems.append(f"market {mid}: entry_year without a mode")
            decisions[mid] = None
        else:
            if rm.get("entry_year") is None:
                problems.append(f"market {mid}: mode without an entry_year")
                decisions[mid] = None
            else:
                decisions[mid] = (str(rm["mode"]).lower(), int(rm["entry_year"]) - start)
        years = rm.get("years") or []
        if len(years) != T:
            problems.append(f"market {mid}: {len(years)} year rows, expected {T}")
            continue
        invest[mid] = [float(yr.get("growth_investment", 0.0)) for yr in years]
        hires[mid] = [float(yr.get("growth_hires", 0.0)) for yr in years]
    for mid in ids:
        if mid not in seen:
            problems.append(f"market {mid} missing from the result")
            decisions.setdefault(mid, None)
    return decisions, invest, hires, problems


def check_plan(scenario_dict: dict[str, Any], result_dict: dict[str, Any], tol: float = 1e-6) -> list[str]:
    """Every violation of docs/model.md by the result's plan, plus disagreements with its numbers.

    Recomputes spend, heads, every constraint of 2.1-2.5, the floors and the objective of 2.6,
    and compares the objective with ``objective_value`` (relative ``tol``) and the per-year spend
    with ``years[].spend``. The CVaR term is recomputed exactly (the max over η), which is what an
    optimal solution reports; a plan stopped early may carry a worse η and report less.
    """
    if result_dict.get("objective_value") is None:
        return [f"result has no plan (status {result_dict.get('status')!r})"]
    ev = PlanEvaluator(scenario_dict)
    decisions, invest, hires, problems = plan_from_result(scenario_dict, result_dict)
    out = ev.evaluate(decisions, invest, hires, tol=tol)
    viol = problems + out["violations"]

    obj = float(result_dict["objective_value"])
    if abs(obj - out["objective"]) > tol * max(1.0, abs(out["objective"])):
        viol.append(f"objective_value {obj!r} != recomputed {out['objective']!r}")
    # docs/model.md §3: the objective reconciled to its terms (every solved plan carries them;
    # hand-made results in the checker's own tests have no such key)
    terms = result_dict.get("objective_terms")
    if terms is not None and not terms:
        viol.append("result has no objective_terms")
    elif terms:
        total = sum(float(t["contribution"]) for t in terms)
        if abs(total - obj) > 1e-9 * max(1.0, abs(obj)):
            viol.append(f"objective_terms sum to {total!r}, objective_value is {obj!r}")
        for t in terms:
            if abs(float(t["weight"]) * float(t["value"]) - float(t["contribution"])) > 1e-9 * max(1.0, abs(t["contribution"])):
                viol.append(f"objective term {t['term']}: weight x value != contribution")

    T = ev.sc["T"]
    years = result_dict.get("years") or []
    if len(years) != T:
        viol.append(f"result has {len(years)} year totals, expected {T}")
    else:
        for t in range(T):
            rs = float(years[t]["spend"])
            if abs(rs - out["spend_t"][t]) > tol * max(1.0, abs(out["spend_t"][t])):
                viol.append(f"years[{t}].spend {rs!r} != recomputed {out['spend_t'][t]!r}")
            if "heads" in years[t]:
                rh = float(years[t]["heads"])
                if abs(rh - out["heads_t"][t]) > tol * max(1.0, abs(out["heads_t"][t])):
                    viol.append(f"years[{t}].heads {rh!r} != recomputed {out['heads_t'][t]!r}")
    for rm in result_dict.get("markets") or []:
        mid = rm["id"]
        if mid not in out["spend_m"] or len(rm.get("years") or []) != T:
            continue
        for t, yr in enumerate(rm["years"]):
            if "spend" in yr and abs(float(yr["spend"]) - out["spend_m"][mid][t]) > tol * max(1.0, abs(out["spend_m"][mid][t])):
                viol.append(f"markets[{mid}].years[{t}].spend {yr['spend']!r} != recomputed {out['spend_m'][mid][t]!r}")
    return viol
