"""Cash-flow precompute (MODEL.md 2.1–2.2): numpy arrays over the valid columns.

A *column* k is one (market i, option o, entry year τ) with τ ∈ E_o. For every column this
module computes, for every year t and growth scenario s, the option's cost split, its heads and
its contribution, fully vectorised. The formulation (:mod:`.formulation`) and the result
extraction (:mod:`.result`) read only these arrays; nothing here knows about Pyomo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .scenario import MODES, Scenario, entry_window


@dataclass
class Columns:
    """Per-column data; shapes: (K,), (K, T) or (K, T, S)."""

    T: int
    S: int
    N: int
    market: np.ndarray  # (K,) market index i
    mode: np.ndarray  # (K,) index into MODES
    entry: np.ndarray  # (K,) entry year index τ
    entry_cost: np.ndarray  # (K,T) one-off entry cost, at t = τ
    annual_cost: np.ndarray  # (K,T) recurring option cost (growth model annual_cost, or cash_flows.cost)
    compliance_cost: np.ndarray  # (K,T) one-off compliance cost, at t = τ - lead
    heads: np.ndarray  # (K,T) required heads (incl. prehire)
    share: np.ndarray  # (K,T,S) market share (growth model; 0 for cash flows)
    revenue: np.ndarray  # (K,T,S) size x share (growth model; 0 for cash flows)
    contribution: np.ndarray  # (K,T,S)

    @property
    def K(self) -> int:
        return int(self.market.shape[0])

    @property
    def cost(self) -> np.ndarray:
        """cost[o,τ,t] of MODEL.md 2.2 (entry + annual + compliance), (K,T)."""
        return self.entry_cost + self.annual_cost + self.compliance_cost

    @property
    def one_off(self) -> np.ndarray:
        """One-off costs (entry and compliance), never capitalised in a terminal value (2.6)."""
        return self.entry_cost + self.compliance_cost


@dataclass
class MarketArrays:
    """Per-market data used by the levers and policies (2.3–2.5)."""

    salary: np.ndarray  # (N,)
    risk: np.ndarray  # (N,)
    size: np.ndarray  # (N,T,S) market size per year and scenario
    hire_max: np.ndarray  # (N,) growth_hiring.max_heads (0 = none)
    hire_contribution: np.ndarray  # (N,)
    segment_width: list[np.ndarray]  # per market, widths w_j of growth_investment segments
    segment_return: list[np.ndarray]  # per market, return_rate_j


def market_arrays(sc: Scenario) -> MarketArrays:
    T, S = sc.horizon_years, len(sc.growth_scenarios)
    t = np.arange(T, dtype=float)
    g = np.array([m.market_growth for m in sc.markets], dtype=float)
    M = np.array([m.market_size for m in sc.markets], dtype=float)
    dg = np.array([s.market_growth_delta for s in sc.growth_scenarios], dtype=float)
    # size[i,t,s] = M_i (1 + g_i + Δg_s)^t   (MODEL.md 2.2)
    size = M[:, None, None] * (1.0 + g[:, None, None] + dg[None, None, :]) ** t[None, :, None]
    widths, returns = [], []
    for m in sc.markets:
        up = np.array([seg.up_to for seg in m.segments], dtype=float)
        widths.append(np.diff(np.concatenate([[0.0], up])) if up.size else up)
        returns.append(np.array([seg.return_rate for seg in m.segments], dtype=float))
    return MarketArrays(
        salary=np.array([m.salary_per_head for m in sc.markets], dtype=float),
        risk=np.array([m.risk_score for m in sc.markets], dtype=float),
        size=size.reshape(len(sc.markets), T, S),
        hire_max=np.array([m.growth_hiring.max_heads if m.growth_hiring else 0 for m in sc.markets], dtype=float),
        hire_contribution=np.array(
            [m.growth_hiring.contribution_per_head if m.growth_hiring else 0.0 for m in sc.markets], dtype=float
        ),
        segment_width=widths,
        segment_return=returns,
    )


def build_columns(sc: Scenario, size: np.ndarray) -> Columns:
    """Enumerate E_o for every allowed option (2.1) and compute its flows (2.2)."""
    T, S = sc.horizon_years, len(sc.growth_scenarios)
    mult = np.array([s.share_growth_multiplier for s in sc.growth_scenarios], dtype=float)

    # Per-option parameters, one row per column (repeated over the option's entry years).
    mk: list[int] = []
    md: list[int] = []
    tau: list[int] = []
    opt_of: list[int] = []
    options: list[tuple[int, Any]] = []
    for i, m in enumerate(sc.markets):
        lo, hi = entry_window(m, sc.start_year, T)
        if lo > hi:
            continue  # empty E_o: the market cannot be entered (2.5)
        for o in m.options:
            if o.mode in m.compliance.banned_modes:
                continue
            n = hi - lo + 1
            mk.extend([i] * n)
            md.extend([MODES.index(o.mode)] * n)
            tau.extend(range(lo, hi + 1))
            opt_of.extend([len(options)] * n)
            options.append((i, o))
    market = np.array(mk, dtype=np.int64)
    mode = np.array(md, dtype=np.int64)
    entry = np.array(tau, dtype=np.int64)
    opt_idx = np.array(opt_of, dtype=np.int64)
    K = market.size
    if K == 0:
        z2, z3 = np.zeros((0, T)), np.zeros((0, T, S))
        return Columns(T=T, S=S, N=len(sc.markets), market=market, mode=mode, entry=entry,
                       entry_cost=z2, annual_cost=z2.copy(), compliance_cost=z2.copy(), heads=z2.copy(),
                       share=z3, revenue=z3.copy(), contribution=z3.copy())

    t = np.arange(T)
    age = t[None, :] - entry[:, None]  # (K,T) years since entry
    active = age >= 0

    is_cf = np.array([o.cash_flows is not None for _, o in options], dtype=bool)
    lead = np.array([sc.markets[i].compliance.lead_time_years for i, _ in options], dtype=np.int64)
    ccost = np.array([sc.markets[i].compliance.cost for i, _ in options], dtype=float)

    def per_option(attr: str, default: float = 0.0) -> np.ndarray:
        vals = [default if o.cash_flows is not None else float(getattr(o, attr)) for _, o in options]
        return np.array(vals, dtype=float)[opt_idx]

    # compliance cost falls once, in year τ - lead (always >= 0 because τ >= lead)
    compliance_cost = np.where(t[None, :] == (entry - lead[opt_idx])[:, None], ccost[opt_idx][:, None], 0.0)

    # -- growth-model options
    s0 = per_option("initial_share")
    r = per_option("share_growth")
    cap = per_option("max_share", 1.0)
    margin = per_option("margin")
    entry_c = per_option("entry_cost")
    annual_c = per_option("annual_cost")
    headcount = per_option("headcount")
    prehire = per_option("prehire_years")
    gm = ~is_cf[opt_idx]

    agec = np.where(active, age, 0).astype(float)
    # share[o,τ,t,s] = min(cap, S0 (1 + r m_s)^(t-τ)) for t >= τ
    share = np.minimum(
        cap[:, None, None],
        s0[:, None, None] * (1.0 + r[:, None, None] * mult[None, None, :]) ** agec[:, :, None],
    )
    share = np.where((active & gm[:, None])[:, :, None], share, 0.0)
    revenue = size[market] * share
    contribution = margin[:, None, None] * revenue
    entry_cost = np.where((age == 0) & gm[:, None], entry_c[:, None], 0.0)
    annual_cost = np.where(active & gm[:, None], annual_c[:, None], 0.0)
    heads = np.where((age >= -prehire[:, None]) & gm[:, None], headcount[:, None], 0.0)

    # -- explicit cash flows: value[t - τ] for 0 <= t - τ < len(list), no scenario adjustment
    if is_cf.any():
        n_opt = len(options)
        pad = {name: np.zeros((n_opt, T)) for name in ("contribution", "cost", "headcount")}
        for k, (_, o) in enumerate(options):
            if o.cash_flows is None:
                continue
            for name in pad:
                vals = np.asarray(getattr(o.cash_flows, name), dtype=float)[:T]
                pad[name][k, : vals.size] = vals
        cf = is_cf[opt_idx]
        rows = np.nonzero(cf)[0]
        a = age[rows]
        ok = a >= 0
        ac = np.where(ok, a, 0)
        src = opt_idx[rows][:, None]
        contribution[rows] = np.where(ok, pad["contribution"][src, ac], 0.0)[:, :, None]
        annual_cost[rows] = np.where(ok, pad["cost"][src, ac], 0.0)
        heads[rows] = np.where(ok, pad["headcount"][src, ac], 0.0)

    return Columns(
        T=T, S=S, N=len(sc.markets), market=market, mode=mode, entry=entry,
        entry_cost=entry_cost, annual_cost=annual_cost, compliance_cost=compliance_cost,
        heads=heads, share=share, revenue=revenue, contribution=contribution,
    )
