"""Seeded generator of large, plausible synthetic scenarios (docs/model.md section 1).

``generate_scenario(markets, years, seed)`` returns plain scenario data (a dict, as read from a
JSON or YAML file) that :func:`lepton_alloc.models.parse_scenario` accepts. The same
``(markets, years, seed, opts)`` always gives the same scenario (``numpy.random.default_rng``).

What a generated scenario looks like:

* markets spread over regions, each with 2–3 of the modes acquire / partner / build (growth-model
  options with plausible USD-millions numbers scaled to the market's size), a share of the
  options written as explicit ``cash_flows`` instead;
* compliance lead times, costs and banned modes on some markets, a few entry windows
  narrowed by ``earliest_entry_year`` / ``latest_entry_year``, acyclic ``requires`` (a market
  may only require an *earlier* market of its own region), growth investment and growth hiring
  on a few markets;
* per-year budget and headcount limits set to a fraction of what entering every market would
  need, so they bind (the MIP has a real choice: a multidimensional-knapsack-like structure, hard
  to close to a 1e-4 gap already at 50 markets); the limits never fall below what the cheapest
  option of any single market needs, and a region minimum is set only on regions with at least
  10 markets, 3 of them low-risk, so every generated scenario is feasible;
* three growth scenarios (bear / base / bull), an average-risk limit, region limits.

The number of entry columns (market × option × entry year) is about markets × 2.5 × years:
every option may be entered in any year of the horizon (less a compliance lead time).

Command line::

    python -m lepton_alloc.models.generator --markets 200 --years 10 --seed 1 [--out FILE]

prints YAML, or JSON when ``--out`` ends in ``.json`` or ``--format json`` is given.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np

REGION_NAMES = (
    "AMER", "EMEA", "APAC", "LATAM", "NORDICS", "DACH", "CEE", "GCC", "SEA", "ANZ", "IBERIA", "AFRICA",
)

_DEFAULTS: dict[str, Any] = {
    "start_year": 2027,
    "regions": None,  # number of regions; None = from the number of markets (3..12)
    "objective": "expected_npv",  # expected_npv | risk_adjusted_npv | final_year_contribution
    "risk_aversion": 0.3,  # used with risk_adjusted_npv
    "cvar_alpha": 0.9,
    "time_limit": 60.0,
    "mip_rel_gap": 1e-4,
    "budget_tightness": 0.30,  # budget = this fraction of the spend of entering every market
    "headcount_tightness": 0.35,  # headcount cap = this fraction of the heads of every market
    "carry_over": False,
    "cash_flow_share": 0.10,  # share of options written as explicit cash_flows
    "requires_share": 0.08,  # share of markets that require an earlier market of their region
    "levers_share": 0.10,  # share of markets with growth investment / growth hiring
    "discount_rate": 0.10,
    "terminal_growth": 0.02,
    "scenarios": True,  # three growth scenarios (bear/base/bull); False = the default base only
    "name": None,
}


def _r(x: float, nd: int = 4) -> float:
    """A plain Python float with a few significant decimals (readable, deterministic files)."""
    return float(round(float(x), nd))


def generate_scenario(markets: int, years: int, seed: int, **opts: Any) -> dict[str, Any]:
    """A synthetic scenario of ``markets`` markets over ``years`` years, deterministic in ``seed``.

    Keyword options (see ``_DEFAULTS``): ``start_year``, ``regions``, ``objective``,
    ``risk_aversion``, ``cvar_alpha``, ``time_limit``, ``mip_rel_gap``, ``budget_tightness``,
    ``headcount_tightness``, ``carry_over``, ``cash_flow_share``, ``requires_share``,
    ``levers_share``, ``discount_rate``, ``terminal_growth``, ``scenarios``, ``name``.
    """
    unknown = set(opts) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"generate_scenario() got unknown option(s): {', '.join(sorted(unknown))}")
    o = {**_DEFAULTS, **opts}
    if markets < 1:
        raise ValueError("markets must be >= 1")
    if not 1 <= years <= 50:
        raise ValueError("years must be in 1..50")
    rng = np.random.default_rng(seed)
    T = int(years)
    start = int(o["start_year"])
    n_regions = o["regions"]
    if n_regions is None:
        n_regions = int(np.clip(round(math.sqrt(markets) / 2), 3, len(REGION_NAMES)))
    n_regions = int(max(1, min(n_regions, markets)))
    region_names = [REGION_NAMES[k] if k < len(REGION_NAMES) else f"R{k:03d}" for k in range(n_regions)]

    # region "profiles": cost level (salary) and risk level differ by region
    region_salary = rng.uniform(0.06, 0.22, n_regions)
    region_risk = rng.uniform(0.1, 0.5, n_regions)
    region_of = rng.integers(0, n_regions, markets)
    region_of[:n_regions] = np.arange(n_regions)  # every region carries at least one market

    out_markets: list[dict[str, Any]] = []
    spend_need = 0.0  # typical yearly spend of the "median" option of every market
    heads_need = 0.0
    single_spend = 0.0  # the largest peak-year spend (heads) of a market's cheapest option:
    single_heads = 0.0  # limits never fall below it, so every market can be entered on its own
    risk_of = np.zeros(markets)
    for i in range(markets):
        g = int(region_of[i])
        size = float(np.clip(rng.lognormal(math.log(300.0), 1.0), 20.0, 12000.0))
        scale = size / 300.0
        growth = rng.uniform(0.03, 0.16)
        risk = float(np.clip(rng.normal(region_risk[g], 0.15), 0.0, 1.0))
        salary = float(np.clip(rng.normal(region_salary[g], 0.02), 0.05, 0.25))
        m: dict[str, Any] = {
            "id": f"M{i:05d}",
            "name": f"Synthetic market {i}",
            "region": region_names[g],
            "market_size": _r(size, 1),
            "market_growth": _r(growth),
            "risk_score": _r(risk, 3),
            "salary_per_head": _r(salary),
        }
        # compliance: lead time, cost, bans on ~30 % of markets
        banned: list[str] = []
        if rng.random() < 0.30:
            lead = int(rng.integers(0, 3)) if T > 2 else 0
            if rng.random() < 0.4:
                banned.append("acquire")
            m["compliance"] = {"lead_time_years": lead, "cost": _r(rng.uniform(0.5, 5.0), 2),
                               "banned_modes": banned}
        # entry windows narrowed on a few markets
        if T > 3 and rng.random() < 0.08:
            m["earliest_entry_year"] = start + int(rng.integers(1, max(2, T // 3)))
        if T > 3 and rng.random() < 0.05:
            m["latest_entry_year"] = start + int(rng.integers(T // 2, T))
        # acyclic prerequisites: only an earlier market of the same region
        if i > 0 and rng.random() < o["requires_share"]:
            same = np.nonzero(region_of[:i] == g)[0]
            if same.size:
                m["requires"] = [f"M{int(rng.choice(same)):05d}"]
        # levers on a few markets
        if rng.random() < o["levers_share"]:
            a = _r(rng.uniform(0.5, 2.0) * max(scale, 0.2), 2)
            b = _r(a + rng.uniform(0.5, 3.0) * max(scale, 0.2), 2)
            r1 = _r(rng.uniform(1.3, 2.0), 3)
            m["growth_investment"] = {"segments": [{"up_to": a, "return_rate": r1},
                                                   {"up_to": b, "return_rate": _r(r1 * rng.uniform(0.5, 0.8), 3)}]}
        if rng.random() < o["levers_share"]:
            m["growth_hiring"] = {"max_heads": int(rng.integers(5, 31)),
                                  "contribution_per_head": _r(salary * rng.uniform(1.3, 2.5), 3)}

        # options: 2 or 3 of the modes, each with a plausible profile
        k_modes = 3 if rng.random() < 0.5 else 2
        modes = [str(x) for x in rng.choice(["acquire", "partner", "build"], size=k_modes, replace=False)]
        if all(md in banned for md in modes):
            modes.append("partner")
        options = []
        typical_spend, typical_heads, peaks = [], [], []
        ccost = m.get("compliance", {}).get("cost", 0.0)
        for md in modes:
            opt = _option(rng, md, size, scale, T, o["cash_flow_share"])
            options.append(opt)
            if md in banned:
                continue
            if "cash_flows" in opt:
                cf = opt["cash_flows"]
                typical_spend.append(float(np.mean(cf["cost"])) + salary * float(np.mean(cf["headcount"])))
                typical_heads.append(float(np.mean(cf["headcount"])))
                peak_h = float(max(cf["headcount"]))
                peak_s = max(c + salary * h for c, h in zip(cf["cost"], cf["headcount"]))
            else:
                typical_spend.append(opt["entry_cost"] / T + opt["annual_cost"] + salary * opt["headcount"])
                typical_heads.append(float(opt["headcount"]))
                peak_h = float(opt["headcount"])
                peak_s = opt["entry_cost"] + opt["annual_cost"] + salary * peak_h
            peaks.append((peak_s + ccost, peak_h))
        m["options"] = options
        if typical_spend:
            spend_need += float(np.median(typical_spend))
            heads_need += float(np.median(typical_heads))
            cheapest = min(peaks)
            single_spend = max(single_spend, cheapest[0])
            single_heads = max(single_heads, cheapest[1])
        risk_of[i] = risk
        out_markets.append(m)

    # limits that bind: a fraction of the needs of entering everything, ramping up over time
    ramp = np.linspace(0.7, 1.3, T) if T > 1 else np.ones(1)
    floor_s, floor_h = 1.2 * single_spend + 1.0, math.ceil(1.2 * single_heads) + 1
    budget = [_r(max(floor_s, o["budget_tightness"] * spend_need * f), 1) for f in ramp]
    cap = [float(max(floor_h, int(o["headcount_tightness"] * heads_need * f))) for f in ramp]
    max_net = float(max(floor_h, int(0.5 * cap[0])))
    max_risk = 0.4

    # regions: counts, budget shares and talent caps
    # (a region minimum only where it is easy to meet: >= 10 markets, some of them low-risk;
    # the budget share only with >= 3 regions, so the other regions can balance a forced entry)
    regions = []
    for k, nm in enumerate(region_names):
        in_g = region_of == k
        n_g = int(np.sum(in_g))
        low_risk = int(np.sum(risk_of[in_g] <= max_risk))
        regions.append({
            "name": nm,
            "min_markets": 1 if (k % 2 == 0 and n_g >= 10 and low_risk >= 3) else 0,
            "max_markets": max(1, int(math.ceil(0.6 * n_g))),
            "max_budget_share": _r(min(1.0, 2.5 / n_regions), 3) if n_regions >= 3 else 1.0,
            "talent_cap": float(max(floor_h, int(2.0 * cap[-1] / n_regions))),
        })

    sc: dict[str, Any] = {
        "name": o["name"] or f"synthetic-{markets}x{T}-seed{seed}",
        "start_year": start,
        "horizon_years": T,
        "discount_rate": float(o["discount_rate"]),
        "terminal_growth": o["terminal_growth"],
        "markets": out_markets,
        "budget": {"limit": budget, "carry_over": bool(o["carry_over"])},
        "headcount": {"cap": cap, "max_net_hires": max_net, "initial": 0},
        "regions": regions,
        "risk": {"max_average_risk": max_risk},
        "objective": {"kind": o["objective"], "risk_aversion": float(o["risk_aversion"]) if o["objective"] == "risk_adjusted_npv" else 0.0,
                      "cvar_alpha": float(o["cvar_alpha"])},
        "solver": {"time_limit_seconds": float(o["time_limit"]), "mip_rel_gap": float(o["mip_rel_gap"])},
    }
    if o["scenarios"]:
        sc["growth_scenarios"] = [
            {"name": "bear", "probability": 0.25, "market_growth_delta": -0.03, "share_growth_multiplier": 0.6},
            {"name": "base", "probability": 0.5},
            {"name": "bull", "probability": 0.25, "market_growth_delta": 0.02, "share_growth_multiplier": 1.3},
        ]
    return sc


def _option(rng: np.random.Generator, mode: str, size: float, scale: float, T: int, cf_share: float) -> dict[str, Any]:
    """One option of a market: a growth-model profile per mode, or explicit cash flows."""
    if mode != "acquire" and rng.random() < cf_share:
        # a contract schedule: ramping contribution, a signing fee then a yearly fee, a small team
        n = int(rng.integers(max(1, T // 2), T + 1))
        c0 = rng.uniform(0.2, 0.6) * max(scale, 0.1)
        step = rng.uniform(0.1, 0.4) * max(scale, 0.1)
        fee = rng.uniform(0.1, 0.4) * max(scale, 0.1)
        heads = int(rng.integers(2, 8))
        return {"mode": mode, "cash_flows": {
            "contribution": [_r(c0 + step * k, 3) for k in range(n)],
            "cost": [_r(fee * rng.uniform(2.0, 4.0), 3)] + [_r(fee, 3)] * (n - 1),
            "headcount": [heads + min(k, 3) for k in range(n)],
        }}
    if mode == "acquire":
        s0 = rng.uniform(0.02, 0.045)
        rev0 = size * s0
        return {"mode": mode, "initial_share": _r(s0, 5), "share_growth": _r(rng.uniform(0.04, 0.09)),
                "max_share": _r(min(1.0, s0 * rng.uniform(1.5, 2.2)), 5), "margin": _r(rng.uniform(0.22, 0.34), 3),
                "entry_cost": _r(np.clip(rev0 * rng.uniform(1.2, 2.5), 5.0, 200.0), 2),
                "annual_cost": _r(0.05 * rev0 * rng.uniform(0.5, 1.5) + 0.3, 2),
                "headcount": int(np.clip(round(rev0 * rng.uniform(0.4, 0.8)), 5, 80)), "prehire_years": 0}
    if mode == "partner":
        s0 = rng.uniform(0.008, 0.016)
        return {"mode": mode, "initial_share": _r(s0, 5), "share_growth": _r(rng.uniform(0.08, 0.14)),
                "max_share": _r(min(1.0, s0 * rng.uniform(2.0, 3.0)), 5), "margin": _r(rng.uniform(0.15, 0.21), 3),
                "entry_cost": _r(np.clip(rng.uniform(1.5, 4.0) * math.sqrt(scale), 1.0, 15.0), 2),
                "annual_cost": _r(np.clip(rng.uniform(0.3, 0.8) * math.sqrt(scale), 0.1, 5.0), 2),
                "headcount": int(np.clip(round(rng.uniform(3, 6) * math.sqrt(scale)), 2, 30)), "prehire_years": 0}
    # build
    s0 = rng.uniform(0.003, 0.006)
    return {"mode": mode, "initial_share": _r(s0, 5), "share_growth": _r(rng.uniform(0.22, 0.32)),
            "max_share": _r(rng.uniform(0.03, 0.05), 4), "margin": _r(rng.uniform(0.30, 0.38), 3),
            "entry_cost": _r(np.clip(rng.uniform(4.0, 9.0) * math.sqrt(scale), 3.0, 60.0), 2),
            "annual_cost": _r(np.clip(rng.uniform(1.0, 2.5) * math.sqrt(scale), 0.3, 10.0), 2),
            "headcount": int(np.clip(round(rng.uniform(8, 15) * math.sqrt(scale)), 5, 80)),
            "prehire_years": int(rng.integers(0, 2))}


def dumps(scenario: dict[str, Any], fmt: str = "yaml") -> str:
    """Serialise generated data as YAML (default) or JSON."""
    if fmt == "json":
        return json.dumps(scenario, indent=1)
    import yaml

    return yaml.safe_dump(scenario, sort_keys=False, default_flow_style=None, width=120)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lepton_alloc.models.generator",
                                description="Generate a seeded synthetic scenario (docs/model.md section 1).")
    p.add_argument("--markets", type=int, required=True)
    p.add_argument("--years", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write to this file (.json = JSON, else YAML); default stdout")
    p.add_argument("--format", choices=("yaml", "json"), help="output format (default: from --out, else yaml)")
    p.add_argument("--objective", default=_DEFAULTS["objective"],
                   choices=("expected_npv", "risk_adjusted_npv", "final_year_contribution"))
    p.add_argument("--time-limit", type=float, default=_DEFAULTS["time_limit"])
    p.add_argument("--mip-rel-gap", type=float, default=_DEFAULTS["mip_rel_gap"])
    p.add_argument("--regions", type=int, default=None)
    p.add_argument("--carry-over", action="store_true")
    args = p.parse_args(argv)
    fmt = args.format or ("json" if args.out and args.out.lower().endswith(".json") else "yaml")
    try:
        sc = generate_scenario(args.markets, args.years, args.seed, objective=args.objective,
                               time_limit=args.time_limit, mip_rel_gap=args.mip_rel_gap,
                               regions=args.regions, carry_over=args.carry_over)
    except ValueError as exc:
        p.error(str(exc))
    text = dumps(sc, fmt)
    if args.out:
        Path(args.out).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
