"""A self-contained HTML report of one result: a plain-language summary, then charts.

``render_html(result)`` returns one HTML page that needs nothing but itself to open: no
network, no script, no external style sheet, font or image. Every chart is inline SVG drawn by
matplotlib (text kept as ``<text>`` so series names are searchable and selectable); the page is
rendered with jinja2, autoescaped (market and scenario names are user text).
``write_report(result, path, png_dir=...)`` also writes one PNG per chart for slides.

Charts (docs/model.md §3 figures, in the result's currency and money unit):

- ``spend``: spend by region × year, stacked, against the yearly budget; when the budget
  carries over (the limits have ``budget_cumulative[...]`` rows) a second panel shows
  cumulative spend against the cumulative budget, which is the binding limit then;
- ``headcount``: heads by region × year, stacked, against the headcount cap;
- ``share_revenue``: expected share and expected revenue of each entered market by year
  (expected contribution instead when no entered market has a revenue model);
- ``npv_scenarios``: NPV per growth scenario with E[NPV] and CVaR;
- ``decision_map``: market × year, coloured by entry mode.

An infeasible result gets the explanation of why and the limits that would have to move
instead of charts. matplotlib and jinja2 are imported only when a report is drawn.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lepton_alloc.models.result import LimitReport, MarketDecision, Result, result_from_dict

__all__ = ["CHART_NAMES", "Chart", "carry_over", "charts", "render_html", "summary", "write_pngs", "write_report"]

CHART_NAMES = ("spend", "headcount", "share_revenue", "npv_scenarios", "decision_map")

MODE_COLOURS = {"build": "#0072B2", "partner": "#E69F00", "acquire": "#009E73"}  # Okabe-Ito, colour-blind safe
NOT_ENTERED = "#d9d9d9"
LIMIT_COLOUR = "#c0392b"
TERM_NAMES = {"expected_npv": "E[NPV]", "cvar": "CVaR", "final_year_contribution": "final-year contribution",
              "change_penalty": "plan-change penalty"}
PLAN_STATUSES = ("optimal", "feasible", "cancelled")  # statuses that may carry a plan
MAX_MAP_ROWS = 40  # more markets: the decision map folds those not entered into one row
MAX_LINES = 20  # markets drawn in the share and revenue chart (those of highest E[NPV])


# ----------------------------------------------------------------------------- words and numbers


def _as_result(result: Result | Mapping[str, Any]) -> Result:
    return result if isinstance(result, Result) else result_from_dict(dict(result))


def carry_over(r: Result) -> bool:
    """The budget carries over: the cumulative budget is the limit (docs/model.md §4)."""
    return any(lim.constraint.startswith("budget_cumulative[") for lim in r.limits)


def has_plan(r: Result) -> bool:
    return str(r.status) in PLAN_STATUSES and r.kpis is not None and bool(r.years)


def _unit_label(r: Result) -> str:
    """``USD millions`` (axis labels); ``USD`` when the unit is units."""
    return r.currency if r.money_unit == "units" else f"{r.currency} {r.money_unit}"


def money(r: Result, v: float | None, digits: int = 1) -> str:
    """``USD 1,117.0 million`` (``USD 1,117.0`` when the money unit is units)."""
    if v is None:
        return "-"
    unit = "" if r.money_unit == "units" else " " + r.money_unit.removesuffix("s")
    sign = "−" if v < 0 else ""
    return f"{sign}{r.currency} {abs(v):,.{digits}f}{unit}"


def _num(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _market_label(m: MarketDecision) -> str:
    return m.name or m.id if not m.id or not m.name or m.name == m.id else f"{m.name} ({m.id})"


def _series(text: str) -> str:
    """User text as a matplotlib label: ``$`` would start mathtext."""
    return text.replace("$", r"\$")


def limit_words(r: Result, lim: LimitReport) -> str:
    """A limit in words: ``the cumulative budget to 2030``, ``APAC's talent cap in 2034``."""
    m = re.fullmatch(r"([a-z_]+)(?:\[(.*)\])?", lim.constraint)
    family, args = (m.group(1), (m.group(2) or "").split(",")) if m else (lim.constraint, [""])
    names = {mk.id: mk.name or mk.id for mk in r.markets}
    a0 = args[0]
    words = {
        "budget": f"the {a0} budget",
        "budget_cumulative": f"the cumulative budget to {a0}",
        "headcount_cap": f"the {a0} headcount cap",
        "net_hires": f"the {a0} net-hire limit",
        "region_min_markets": f"the minimum number of markets in {a0}",
        "region_max_markets": f"the maximum number of markets in {a0}",
        "region_budget_share": f"{a0}'s maximum share of spend",
        "talent_cap": f"{a0}'s talent cap in {args[-1]}",
        "max_average_risk": "the maximum average risk",
        "min_expected_npv": "the E[NPV] floor",
        "min_cvar": "the CVaR floor",
        "must_enter": f"{names.get(a0, a0)} must be entered",
        "commitment": f"the commitment for {names.get(a0, a0)}",
        "one_decision": f"one decision for {names.get(a0, a0)}",
        "requires": f"{names.get(a0, a0)} requires {names.get(args[1], args[1]) if len(args) > 1 else '?'}",
    }
    return words.get(family, lim.constraint)


def _limit_amount(r: Result, lim: LimitReport, v: float) -> str:
    family = lim.constraint.split("[")[0]
    if family in ("budget", "budget_cumulative", "min_expected_npv", "min_cvar"):
        return money(r, v)
    if family in ("region_budget_share",):
        return f"{100 * v:.1f} %"
    if family in ("headcount_cap", "net_hires", "talent_cap"):
        return f"{v:,.0f} people"
    if family in ("region_min_markets", "region_max_markets"):
        return f"{v:,.0f} markets"
    return f"{v:,.3g}"


def _local_value(r: Result, lim: LimitReport) -> str:
    if lim.local_price is None:
        return "no local value (" + (lim.local_price_note.split(":")[0] or "undefined") + ")"
    family = lim.constraint.split("[")[0]
    per = {"budget": f"per {r.currency} 1 more", "budget_cumulative": f"per {r.currency} 1 more",
           "region_budget_share": "per unit (100 %) more share", "min_expected_npv": f"per {r.currency} 1 more"}
    per_unit = per.get(family, "per unit more")
    if "per " + r.currency in per_unit and r.money_unit != "units":
        per_unit = f"per {r.currency} 1 {r.money_unit.removesuffix('s')} more"
    return f"local value {lim.local_price:+,.3f} objective {per_unit}"


def _term(t: Any, first: bool) -> str:
    """``0.7 × E[NPV] 2,548.2`` / ``− plan-change penalty 9.0`` (as the text report writes it)."""
    weight, value = t.weight, t.value
    sign = "−" if weight * value < 0 or (weight < 0 and value == 0) else "+"
    body = f"{TERM_NAMES.get(t.term, t.term)} {_num(abs(value) if weight < 0 else value)}"
    if abs(weight) != 1:
        body = f"{abs(weight):g} × {body}"
    return body if first and sign == "+" else f"{sign} {body}"


@dataclass
class Summary:
    headline: str
    facts: list[tuple[str, str]]  # (label, value) cards
    paragraphs: list[str]
    binding: list[tuple[str, str, str, str]]  # (limit name, in words, use / limit, local value)


def summary(result: Result | Mapping[str, Any]) -> Summary:
    """What is entered, when and how, what it costs, what it returns, what binds (plain words)."""
    r = _as_result(result)
    gap = "" if r.gap is None else f" (within {100 * r.gap:.3g} % of the best bound)"
    status = str(r.status)
    heads = {"optimal": f"Optimal plan{gap}.", "feasible": f"Best plan found before the solve stopped{gap}; a better one may exist.",
             "infeasible": "No plan satisfies every limit: the scenario is infeasible.",
             "unbounded": "The objective is unbounded.", "no_solution": "The solve stopped before any plan was found.",
             "cancelled": "The solve was cancelled" + ("; the plan found so far is shown." if has_plan(r) else " before a plan was found.")}
    headline = heads.get(status, status) + (f" {r.message}." if r.message and status not in ("optimal", "feasible") else "")
    paras: list[str] = []
    facts: list[tuple[str, str]] = []
    binding: list[tuple[str, str, str, str]] = []
    if not has_plan(r):
        inf = r.infeasibility
        if inf is not None:
            paras.append("Why: " + " ".join(inf.explanation))
            if inf.relaxations:
                paras.append("It becomes feasible if " + "; ".join(
                    f"{x.constraint} moves from {_num(x.limit)} to {_num(x.needed)} ({x.change:+,.1f})" for x in inf.relaxations) + ".")
        return Summary(headline, facts, paras, binding)
    k = r.kpis
    assert k is not None
    entered = sorted((m for m in r.markets if m.entered), key=lambda m: (m.entry_year or 0, m.region or "", m.id))
    by_year: dict[int, list[str]] = {}
    for m in entered:
        by_year.setdefault(m.entry_year or 0, []).append(f"{m.name or m.id} ({m.mode})")
    if entered:
        paras.append(f"Enter {len(entered)} of {len(r.markets)} markets: "
                     + "; ".join(f"in {y} {', '.join(ms)}" for y, ms in by_year.items()) + ".")
    else:
        paras.append(f"Enter none of the {len(r.markets)} markets.")
    left_out = [m.name or m.id for m in r.markets if not m.entered]
    if left_out and entered:
        paras.append("Not entered: " + ", ".join(left_out) + ".")
    total = sum(y.spend for y in r.years)
    peak = max(r.years, key=lambda y: y.spend)
    peak_heads = max(r.years, key=lambda y: y.heads)
    first, last = r.years[0].year, r.years[-1].year
    cost = f"It spends {money(r, total)} over {first}–{last}, most in {peak.year} ({money(r, peak.spend)})"
    if carry_over(r) and r.years[-1].cumulative_budget is not None:
        cost += f", against a cumulative budget of {money(r, r.years[-1].cumulative_budget)} (unspent budget carries over)"
    elif all(y.budget_limit is not None for y in r.years):
        cost += f", against yearly budgets totalling {money(r, sum(y.budget_limit or 0.0 for y in r.years))}"
    cost += f"; headcount peaks at {peak_heads.heads:,.0f} people in {peak_heads.year}."
    paras.append(cost)
    scen = ", ".join(f"{n} {_num(v)}" for n, v in k.npv_by_scenario.items())
    ret = f"It returns an expected NPV of {money(r, k.expected_npv)}"
    if scen:
        ret += f" (by growth scenario: {scen}; CVaR at {k.cvar_alpha:g} {_num(k.cvar)})"
    ret += "; " + (f"it pays back in {k.payback_year} (cumulative expected net cash flow turns non-negative)."
                   if k.payback_year else "it does not pay back within the horizon.")
    paras.append(ret)
    if r.objective_terms and r.objective_value is not None:
        paras.append(f"Objective {_num(r.objective_value)} = " + " ".join(_term(t, i == 0) for i, t in enumerate(r.objective_terms)) + ".")
    for lim in r.limits:
        if lim.binds:
            binding.append((lim.constraint, limit_words(r, lim),
                            f"{_limit_amount(r, lim, lim.use)} of {_limit_amount(r, lim, lim.limit)}", _local_value(r, lim)))
    if binding:
        words = ", ".join(b[1] for b in binding[:6]) + (f" and {len(binding) - 6} more" if len(binding) > 6 else "")
        text = f"What binds: {words}."
        priced = [lim for lim in r.limits if lim.binds and lim.local_price]
        if priced:
            best = max(priced, key=lambda lim: abs(lim.local_price or 0.0))
            text += f" The most valuable to loosen locally is {limit_words(r, best)} ({_local_value(r, best)})."
        paras.append(text)
    else:
        paras.append("No limit binds.")
    u = _unit_label(r)
    facts = [("Markets entered", f"{len(entered)} of {len(r.markets)}"), (f"Total spend, {u}", _num(total)),
             (f"Expected NPV, {u}", _num(k.expected_npv)), (f"CVaR ({k.cvar_alpha:g}), {u}", _num(k.cvar)),
             ("Payback year", str(k.payback_year) if k.payback_year else "none"),
             ("Peak headcount, people", f"{peak_heads.heads:,.0f}")]
    return Summary(headline, facts, paras, binding)


# ----------------------------------------------------------------------------- charts


@dataclass
class Chart:
    name: str  # one of CHART_NAMES; the PNG file stem
    title: str
    caption: str
    series: list[str]  # the series names (legend labels) the chart shows
    figure: Any  # a matplotlib Figure


def _style(**extra: Any) -> Any:
    """The charts' matplotlib settings as a context (never the global rcParams)."""
    from matplotlib import rc_context

    rc: Any = {**_RC, **{k.replace("__", "."): v for k, v in extra.items()}}
    return rc_context(rc)


_RC: dict[str, Any] = {"svg.fonttype": "none", "font.family": "sans-serif",
            "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"], "font.size": 11,
            "axes.titlesize": 13, "axes.titleweight": "bold", "axes.labelsize": 11, "axes.spines.top": False,
            "axes.spines.right": False, "axes.grid": True, "axes.grid.axis": "y", "grid.color": "#e3e3e3",
            "axes.axisbelow": True, "legend.frameon": False, "legend.fontsize": 10}


def _figure(w: float, h: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _regions(r: Result) -> list[str]:
    seen: dict[str, None] = {}
    for m in r.markets:
        seen.setdefault(m.region or "no region", None)
    return list(seen)


def _by_region(r: Result, field: str) -> dict[str, list[float]]:
    idx = {y.year: i for i, y in enumerate(r.years)}
    out = {g: [0.0] * len(r.years) for g in _regions(r)}
    for m in r.markets:
        row = out[m.region or "no region"]
        for y in m.years:
            if y.year in idx:
                row[idx[y.year]] += getattr(y, field)
    return {g: v for g, v in out.items() if any(abs(x) > 1e-9 for x in v)}


def _region_colours(r: Result) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if len(_regions(r)) <= 10 else colormaps["tab20"]
    return {g: cmap(i % cmap.N) for i, g in enumerate(_regions(r))}


def _stacked(ax: Any, years: list[int], parts: dict[str, list[float]], colours: dict[str, Any]) -> None:
    bottom = [0.0] * len(years)
    for g, vals in parts.items():
        ax.bar(years, vals, bottom=bottom, width=0.7, color=colours[g], label=_series(g), edgecolor="white", linewidth=0.5)
        bottom = [b + v for b, v in zip(bottom, vals)]


def _limit_steps(ax: Any, years: list[int], limits: list[float | None], label: str, style: str = "-") -> bool:
    pts = [(y, v) for y, v in zip(years, limits) if v is not None]
    if not pts:
        return False
    xs: list[float] = []
    ys: list[float] = []
    for y, v in pts:
        xs += [y - 0.45, y + 0.45, math.nan]
        ys += [v, v, math.nan]
    ax.plot(xs, ys, style, color=LIMIT_COLOUR, linewidth=2.2, label=label)
    return True


def _year_axis(ax: Any, years: list[int]) -> None:
    ax.set_xticks(years)
    ax.set_xticklabels([str(y) for y in years], rotation=0 if len(years) <= 12 else 45)
    ax.set_xlim(years[0] - 0.6, years[-1] + 0.6)


def _money_axis(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _legend_below(fig: Any, ax: Any, ncol: int) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=max(1, ncol))


def chart_spend(r: Result) -> Chart:
    years = [y.year for y in r.years]
    parts = _by_region(r, "spend")
    colours = _region_colours(r)
    cum = carry_over(r)
    fig = _figure(11, 5.2)
    axes = fig.subplots(1, 2) if cum else [fig.subplots()]
    ax = axes[0]
    _stacked(ax, years, parts, colours)
    series = list(parts)
    label = "yearly budget (carries over)" if cum else "budget"
    if _limit_steps(ax, years, [y.budget_limit for y in r.years], label, "--" if cum else "-"):
        series.append(label)
    ax.set_title("Spend per year by region")
    ax.set_ylabel(f"spend ({_unit_label(r)} per year)")
    _year_axis(ax, years)
    _money_axis(ax)
    if cum:
        ax2 = axes[1]
        running = {g: [sum(v[: i + 1]) for i in range(len(v))] for g, v in parts.items()}
        _stacked(ax2, years, running, colours)
        ax2.plot(years, [y.cumulative_budget if y.cumulative_budget is not None else math.nan for y in r.years], "-o",
                 color=LIMIT_COLOUR, linewidth=2.2, markersize=4, label="cumulative budget")
        series.append("cumulative budget")
        ax2.set_title("Cumulative spend vs cumulative budget")
        ax2.set_ylabel(f"cumulative spend ({_unit_label(r)})")
        _year_axis(ax2, years)
        _money_axis(ax2)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        keep = [(h, lab) for h, lab in zip(h2, l2) if lab == "cumulative budget"]
        fig.legend(h1 + [h for h, _ in keep], l1 + [lab for _, lab in keep], loc="outside lower center", ncol=min(8, len(l1) + 1))
    else:
        _legend_below(fig, ax, min(8, len(series)))
    caption = (f"Stacked bars: each region's spend. The budget carries over, so the limit is the cumulative budget (right); "
               f"a year may spend above its own allowance when earlier years spent less. Money in {_unit_label(r)}."
               if cum else f"Stacked bars: each region's spend; the red line is each year's budget. Money in {_unit_label(r)}.")
    return Chart("spend", "Spend by region and year against the budget", caption, series, fig)


def chart_headcount(r: Result) -> Chart:
    years = [y.year for y in r.years]
    parts = _by_region(r, "heads")
    fig = _figure(11, 4.6)
    ax = fig.subplots()
    _stacked(ax, years, parts, _region_colours(r))
    series = list(parts)
    if _limit_steps(ax, years, [y.headcount_cap for y in r.years], "headcount cap"):
        series.append("headcount cap")
    ax.set_title("Headcount by region")
    ax.set_ylabel("heads (people)")
    _year_axis(ax, years)
    _money_axis(ax)
    _legend_below(fig, ax, min(8, len(series)))
    return Chart("headcount", "Headcount against the cap", "Stacked bars: each region's heads (required teams and growth "
                 "hires); the red line is the headcount cap. Heads in people.", series, fig)


def _market_colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if n <= 10 else colormaps["tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def chart_share_revenue(r: Result) -> Chart:
    years = [y.year for y in r.years]
    all_entered = [m for m in r.markets if m.entered]
    top = sorted(all_entered, key=lambda m: -m.expected_npv)[:MAX_LINES]
    entered = sorted(top, key=lambda m: (m.entry_year or 0, m.id))
    revenue_field = "expected_revenue" if any(y.expected_revenue for m in entered for y in m.years) else "expected_contribution"
    fig = _figure(11, 8.2)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    styles = ["-", "--", "-.", ":"]
    series: list[str] = []
    for i, (m, colour) in enumerate(zip(entered, _market_colours(len(entered)))):
        start = m.entry_year or years[0]
        ys = [y for y in m.years if y.year >= start]
        label = _series(m.name or m.id)
        style = styles[(i // 10) % len(styles)]
        ax1.plot([y.year for y in ys], [100 * y.expected_share for y in ys], style, color=colour, linewidth=1.8, label=label)
        ax2.plot([y.year for y in ys], [getattr(y, revenue_field) for y in ys], style, color=colour, linewidth=1.8, label=label)
        series.append(m.name or m.id)
    ax1.set_title("Expected market share")
    ax1.set_ylabel("expected share (% of the market)")
    what = "revenue" if revenue_field == "expected_revenue" else "contribution"
    ax2.set_title(f"Expected {what}")
    ax2.set_ylabel(f"expected {what} ({_unit_label(r)} per year)")
    _year_axis(ax2, years)
    ax1.tick_params(labelbottom=True)
    _money_axis(ax2)
    if entered:
        fig.legend(*ax1.get_legend_handles_labels(), loc="outside right center", ncol=1 if len(entered) <= 16 else 2,
                   title="market")
    else:
        for ax in (ax1, ax2):
            ax.text(0.5, 0.5, "no market is entered", transform=ax.transAxes, ha="center", color="#777")
    caption = ("Each entered market from its entry year, probability-weighted over growth scenarios. "
               + ("Revenue is market size × share." if what == "revenue" else
                  "No entered market has a growth model, so contribution is shown instead of revenue.")
               + f" Money in {_unit_label(r)} per year."
               + (f" The {MAX_LINES} markets of highest E[NPV] of the {len(all_entered)} entered are shown."
                  if len(all_entered) > MAX_LINES else ""))
    return Chart("share_revenue", f"Projected share and {what} by market", caption, series, fig)


def chart_npv_scenarios(r: Result) -> Chart:
    k = r.kpis
    assert k is not None
    names = list(k.npv_by_scenario)
    vals = [k.npv_by_scenario[n] for n in names]
    fig = _figure(11, 4.6)
    ax = fig.subplots()
    bars = ax.bar([_series(n) for n in names], vals, width=0.55, color="#56B4E9", label="NPV of the scenario")
    ax.bar_label(bars, labels=[f"{v:,.1f}" for v in vals], padding=3)
    ax.axhline(k.expected_npv, color="#0072B2", linewidth=2, label=f"E[NPV] {k.expected_npv:,.1f}")
    ax.axhline(k.cvar, color=LIMIT_COLOUR, linewidth=2, linestyle="--", label=f"CVaR ({k.cvar_alpha:g}) {k.cvar:,.1f}")
    ax.axhline(0, color="#555", linewidth=0.8)
    top = max(vals + [k.expected_npv, 0.0])
    ax.set_ylim(min(vals + [k.cvar, 0.0]) * 1.1, top * 1.18 if top > 0 else 1)
    ax.set_title("NPV by growth scenario")
    ax.set_ylabel(f"NPV ({_unit_label(r)})")
    ax.set_xlabel("growth scenario")
    _money_axis(ax)
    _legend_below(fig, ax, 3)
    series = names + ["E[NPV]", "CVaR"]
    return Chart("npv_scenarios", "NPV by growth scenario", f"The plan's NPV in each growth scenario (terminal value included, "
                 f"penalties not), its expectation and its CVaR. Money in {_unit_label(r)}.", series, fig)


def chart_decision_map(r: Result) -> Chart:
    from matplotlib.patches import Patch, Rectangle

    years = [y.year for y in r.years]
    order = sorted(r.markets, key=lambda m: (not m.entered, m.entry_year or 0, m.region or "", m.id))
    if len(order) > MAX_MAP_ROWS and not all(m.entered for m in order):  # one row for all markets not entered
        out = [m for m in order if not m.entered]
        order = [m for m in order if m.entered] + [MarketDecision(id="", name=f"{len(out)} markets not entered", region=None,
                                                                   entered=False, mode=None, entry_year=None, expected_npv=0.0)]
    fig = _figure(11, 1.4 + 0.34 * max(len(order), 3))
    ax = fig.subplots()
    ax.grid(False)
    last = years[-1] + 0.5
    for row, m in enumerate(order):
        if m.entered and m.mode is not None and m.entry_year is not None:
            colour = MODE_COLOURS.get(str(m.mode), "#888")
            ax.add_patch(Rectangle((m.entry_year - 0.5, row - 0.4), 1, 0.8, color=colour))
            if m.entry_year + 0.5 < last:
                ax.add_patch(Rectangle((m.entry_year + 0.5, row - 0.4), last - m.entry_year - 0.5, 0.8, color=colour, alpha=0.35))
            ax.text(m.entry_year, row, str(m.mode), ha="center", va="center", fontsize=8, color="white", fontweight="bold")
        else:
            ax.add_patch(Rectangle((years[0] - 0.5, row - 0.4), last - years[0] + 0.5, 0.8, color=NOT_ENTERED, alpha=0.6))
            ax.text((years[0] + years[-1]) / 2, row, "not entered", ha="center", va="center", fontsize=8, color="#555")
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([_series(_market_label(m)) + (f"  · {m.region}" if m.region else "") for m in order])
    ax.set_ylim(len(order) - 0.5, -0.5)
    _year_axis(ax, years)
    ax.xaxis.tick_top()
    ax.spines[["left", "bottom"]].set_visible(False)
    ax.tick_params(axis="y", length=0)
    modes = [md for md in MODE_COLOURS if any(str(m.mode) == md for m in r.markets)] or list(MODE_COLOURS)
    handles = [Patch(color=MODE_COLOURS[md], label=md) for md in modes] + [Patch(color=NOT_ENTERED, label="not entered")]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), title="entry mode (dark: entry year; light: active)")
    return Chart("decision_map", "Decision map: which market, when, how",
                 "One row per market: the dark cell is the entry year, coloured by entry mode; the light bar is the years the "
                 "market is active.", modes + ["not entered"], fig)


CHART_BUILDERS: dict[str, Callable[[Result], Chart]] = {
    "spend": chart_spend, "headcount": chart_headcount, "share_revenue": chart_share_revenue,
    "npv_scenarios": chart_npv_scenarios, "decision_map": chart_decision_map}


def charts(result: Result | Mapping[str, Any]) -> list[Chart]:
    """The charts of a result with a plan (none for an infeasible or plan-less result)."""
    r = _as_result(result)
    if not has_plan(r):
        return []
    with _style():
        return [CHART_BUILDERS[name](r) for name in CHART_NAMES]


_SVG_HEAD = re.compile(r"\A.*?(<svg\b)", re.S)
_SVG_META = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_SVG_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_SVG_SIZE = re.compile(r'(<svg\b[^>]*?)\s+width="[^"]*"\s+height="[^"]*"')
_SVG_ID = re.compile(r'\bid="([^"]+)"')
_SVG_REF = re.compile(r'(url\(#|href="#)([^")]+)')


def svg_of(chart: Chart) -> str:
    """The chart as an ``<svg>`` element for inline HTML: no XML prolog, metadata or namespace URLs
    (HTML parses inline SVG without them), scaled to its container, text as ``<text>``."""
    buf = io.StringIO()
    with _style(svg__hashsalt=f"lepton-{chart.name}"):  # distinct, stable element ids per chart
        chart.figure.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = _SVG_HEAD.sub(r"\1", buf.getvalue())
    svg = _SVG_META.sub("", svg)
    svg = _SVG_XMLNS.sub("", svg)
    svg = _SVG_SIZE.sub(rf'\1 role="img" aria-label="{chart.title}" class="chart" preserveAspectRatio="xMidYMid meet"', svg, count=1)
    # element ids unique in the page (matplotlib numbers them per figure: axes_1, line2d_1, ...)
    prefix = f"{chart.name}-"
    ids = set(_SVG_ID.findall(svg))
    svg = _SVG_ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = _SVG_REF.sub(lambda m: m.group(1) + prefix + m.group(2) if m.group(2) in ids else m.group(0), svg)
    return svg.replace("<style type=\"text/css\">*{", "<style type=\"text/css\">svg.chart *{").strip()


def write_pngs(result: Result | Mapping[str, Any], png_dir: str | Path, dpi: int = 150,
               built: list[Chart] | None = None) -> list[Path]:
    """One PNG per chart (``spend.png``, ``headcount.png``, …) for slides; none without a plan."""
    out = Path(png_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for chart in built if built is not None else charts(result):
        path = out / f"{chart.name}.png"
        chart.figure.savefig(path, format="png", dpi=dpi, facecolor="white")
        written.append(path)
    return written


# ----------------------------------------------------------------------------- the page

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
  :root { --ink: #1f2933; --muted: #5f6b76; --line: #e3e7eb; --accent: #0072B2; --bad: #c0392b; }
  * { box-sizing: border-box; }
  body { margin: 0; background: #f5f7f9; color: var(--ink);
         font: 16px/1.55 system-ui, -apple-system, "Segoe UI", "Liberation Sans", "DejaVu Sans", Arial, sans-serif; }
  main { max-width: 1180px; margin: 0 auto; padding: 32px 28px 48px; }
  header h1 { margin: 0 0 4px; font-size: 28px; }
  header .sub { color: var(--muted); font-size: 14px; }
  .headline { font-size: 19px; font-weight: 600; margin: 20px 0 12px; }
  .headline.bad { color: var(--bad); }
  .facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; margin: 16px 0 20px; }
  .fact { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
  .fact .label { color: var(--muted); font-size: 13px; }
  .fact .value { font-size: 24px; font-weight: 650; margin-top: 2px; }
  .summary p { margin: 0 0 10px; max-width: 78ch; }
  section.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 20px 22px; margin: 22px 0; }
  section.card h2 { margin: 0 0 4px; font-size: 20px; }
  .caption { color: var(--muted); font-size: 14px; margin: 0 0 12px; }
  svg.chart { display: block; width: 100%; height: auto; }
  table { border-collapse: collapse; width: 100%; font-size: 14px; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { color: var(--muted); font-weight: 600; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  code { font-size: 13px; background: #f0f2f4; padding: 1px 4px; border-radius: 4px; }
  footer { color: var(--muted); font-size: 13px; margin-top: 28px; }
  @media print { body { background: #fff; } section.card { break-inside: avoid; border: none; } }
</style>
</head>
<body>
<main>
<header>
  <h1>{{ title }}</h1>
  <div class="sub">Scenario <strong>{{ r.scenario_name }}</strong> · status {{ r.status }} · money in {{ unit }}; heads in people
    · sha256 {{ r.scenario_sha256[:12] }}…</div>
</header>
<p class="headline{% if not plan %} bad{% endif %}">{{ s.headline }}</p>
{% if s.facts %}<div class="facts">
{% for label, value in s.facts %}  <div class="fact"><div class="label">{{ label }}</div><div class="value">{{ value }}</div></div>
{% endfor %}</div>{% endif %}
<div class="summary">
{% for p in s.paragraphs %}  <p>{{ p }}</p>
{% endfor %}</div>
{% if inf %}
<section class="card" id="infeasibility">
  <h2>Why it is infeasible</h2>
  <p class="caption">Method: {{ inf.method }} · conflicting limits:
    {% for c in inf.constraints %}<code>{{ c }}</code>{% if not loop.last %}, {% endif %}{% endfor %}</p>
  <ul>{% for line in inf.explanation %}<li>{{ line }}</li>{% endfor %}</ul>
  {% if inf.relaxations %}
  <h3>It becomes feasible if these limits move</h3>
  <table><thead><tr><th>limit</th><th class="num">now</th><th class="num">needed</th><th class="num">change</th></tr></thead><tbody>
  {% for x in inf.relaxations %}<tr><td><code>{{ x.constraint }}</code></td><td class="num">{{ fmt(x.limit) }}</td>
    <td class="num">{{ fmt(x.needed) }}</td><td class="num">{{ "%+.1f"|format(x.change) }}</td></tr>
  {% endfor %}</tbody></table>
  {% endif %}
</section>
{% endif %}
{% for c in charts %}
<section class="card chart-card" id="chart-{{ c.name }}">
  <h2>{{ c.title }}</h2>
  <p class="caption">{{ c.caption }}</p>
  {{ c.svg }}
</section>
{% endfor %}
{% if s.binding %}
<section class="card" id="binding">
  <h2>What binds</h2>
  <p class="caption">Limits the plan uses in full. Local value: the change of the objective per unit more of the limit with
    this entry plan fixed (an LP price, valid for small moves).</p>
  <table><thead><tr><th>limit</th><th>in words</th><th>use of limit</th><th>local value</th></tr></thead><tbody>
  {% for name, words, use, price in s.binding %}<tr><td><code>{{ name }}</code></td><td>{{ words }}</td><td>{{ use }}</td><td>{{ price }}</td></tr>
  {% endfor %}</tbody></table>
</section>
{% endif %}
{% if plan %}
<section class="card" id="markets">
  <h2>Markets</h2>
  <p class="caption">Money in {{ unit }}; heads in people.</p>
  <table><thead><tr><th>market</th><th>region</th><th>decision</th><th class="num">entry</th><th class="num">total spend</th>
    <th class="num">peak heads</th><th class="num">E[NPV]</th></tr></thead><tbody>
  {% for m in markets %}<tr><td>{{ m.label }}</td><td>{{ m.region }}</td><td>{{ m.decision }}</td><td class="num">{{ m.entry }}</td>
    <td class="num">{{ m.spend }}</td><td class="num">{{ m.heads }}</td><td class="num">{{ m.npv }}</td></tr>
  {% endfor %}</tbody></table>
</section>
{% endif %}
<footer>{{ footer }}</footer>
</main>
</body>
</html>
"""


def render_html(result: Result | Mapping[str, Any], title: str | None = None, built: list[Chart] | None = None) -> str:
    """The whole report as one self-contained HTML page (``built``: charts already drawn by :func:`charts`)."""
    import jinja2
    from markupsafe import Markup

    r = _as_result(result)
    drawn = built if built is not None else charts(r)
    chart_views = [{"name": c.name, "title": c.title, "caption": c.caption, "svg": Markup(svg_of(c))} for c in drawn]
    markets = [{"label": _market_label(m), "region": m.region or "", "decision": str(m.mode) if m.entered else "not entered",
                "entry": m.entry_year or "", "spend": _num(sum(y.spend for y in m.years)),
                "heads": _num(max((y.heads for y in m.years), default=0.0), 0), "npv": _num(m.expected_npv)}
               for m in sorted(r.markets, key=lambda m: (not m.entered, m.entry_year or 0, m.id))]
    t, ms = r.timings, r.model_size
    footer = (f"Solved in {t.total_seconds:.2f} s (HiGHS {r.solver.get('highs_version', '?')}); model of {ms.variables:,} "
              f"variables ({ms.integer_variables:,} integer) and {ms.constraints:,} constraints. "
              f"Objective {_num(r.objective_value, 3)}, best bound {_num(r.best_bound, 3)}.")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
    page = env.from_string(_PAGE)
    return page.render(title=title or f"Market-entry plan: {r.scenario_name}", r=r, unit=_unit_label(r), s=summary(r),
                       plan=has_plan(r), inf=r.infeasibility, charts=chart_views, markets=markets, footer=footer,
                       fmt=_num)


def write_report(result: Result | Mapping[str, Any], out: str | Path, png_dir: str | Path | None = None,
                 title: str | None = None, dpi: int = 150) -> list[Path]:
    """Write the HTML report to ``out`` (and the charts as PNGs into ``png_dir``); the files written."""
    r = _as_result(result)
    built = charts(r)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(r, title=title, built=built), encoding="utf-8")
    written = [path]
    if png_dir is not None:
        with _style():
            written += write_pngs(r, png_dir, dpi=dpi, built=built)
    return written
