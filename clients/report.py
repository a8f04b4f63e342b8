"""Plain-text rendering of a result dict (the JSON shape of ``Result.to_dict()``).

The same dict comes from a local solve and from the server (``Result.to_dict()`` of the result
``proto.adapter.result_from_proto`` returns), so one renderer serves both.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Sequence

from .safe_text import printable


def _num(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """Aligned columns; every cell goes through :func:`printable` (names come from scenario files)."""
    headers = [printable(str(h)) for h in headers]
    cells = [[printable(str(c)) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[k]) for r in cells]) for k, h in enumerate(headers)]
    align = align or "l" * len(headers)

    def fmt(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align)).rstrip()

    lines = [fmt(list(headers)), "  ".join("-" * w for w in widths)]
    lines.extend(fmt(r) for r in cells)
    return "\n".join(lines)


def _money_unit(r: dict[str, Any]) -> str:
    """``(USD m)``: the money unit for table headers."""
    short = {"units": "", "thousands": " k", "millions": " m", "billions": " bn"}.get(r.get("money_unit", "millions"), "")
    return f"({r.get('currency', 'USD')}{short})"


def _term(t: dict[str, Any], first: bool) -> str:
    """``0.7 × E[NPV] 2,548.2`` / ``− penalty 9.0``: one weighted objective term."""
    names = {"expected_npv": "E[NPV]", "cvar": "CVaR", "final_year_contribution": "final-year contribution",
             "change_penalty": "plan-change penalty"}
    weight, value = t["weight"], t["value"]
    sign = "-" if weight * value < 0 or (weight < 0 and value == 0) else "+"
    w = abs(weight)
    body = f"{names.get(t['term'], t['term'])} {_num(abs(value) if weight < 0 else value, 1)}"
    if w != 1:
        body = f"{w:g} × {body}"
    return body if first and sign == "+" else f"{sign} {body}"


def _steps(steps: list[dict[str, Any]]) -> str:
    """``-5 %: -12.3 (plan changes); +5 %: +4.1`` from a limit's step values."""
    parts = []
    for st in steps:
        pct = f"{'-' if st['direction'] == 'down' else '+'}{100 * st['relative_step']:g} %"
        if st["objective_change"] is None:
            parts.append(f"{pct}: {st['status']}")
        else:
            change = f"{st['objective_change']:+,.1f}" + (" (plan changes)" if st["plan_changes"] else "")
            parts.append(f"{pct}: {change}" + (" cut short" if st["cut_short"] else ""))
    return "; ".join(parts)


def render_result(r: dict[str, Any]) -> str:
    out: list[str] = []
    out.append(f"Scenario {printable(str(r.get('scenario_name', '')))}  (sha256 {str(r.get('scenario_sha256', ''))[:12]}…)")
    out.append(f"Money in {r.get('currency', 'USD')} {r.get('money_unit', 'millions')}; heads in people.")
    money = _money_unit(r)
    gap = r.get("gap")
    out.append(
        f"Status: {r['status']} — {printable(str(r.get('message', '')))}\n"
        f"Objective {_num(r.get('objective_value'), 3)}   best bound {_num(r.get('best_bound'), 3)}   "
        f"gap {'-' if gap is None else f'{100 * gap:.4f}%'}"
    )
    k = r.get("kpis")
    if k:
        entered = sum(1 for m in r["markets"] if m.get("entered"))
        scen = ", ".join(f"{n} {_num(v)}" for n, v in k["npv_by_scenario"].items())
        out.append(
            f"E[NPV] {_num(k['expected_npv'])}   CVaR({k['cvar_alpha']:g}) {_num(k['cvar'])}   "
            f"payback {k['payback_year'] or 'none'}   markets entered {entered}/{len(r['markets'])}"
            + (f"   change penalty {_num(k['change_penalty'])}" if k.get("change_penalty") else "")
        )
        out.append(f"NPV by growth scenario: {scen}")
    if k:
        out.append(f"(E[NPV]: expected net present value over the growth scenarios; CVaR({k['cvar_alpha']:g}): the "
                   f"average NPV of the worst {100 * (1 - k['cvar_alpha']):g} % of outcomes; best bound: no plan can beat it; "
                   "gap: how far this plan could be from the best.)")
    terms = r.get("objective_terms") or []
    if terms:
        parts = " ".join(_term(t, i == 0) for i, t in enumerate(terms))
        out.append(f"Objective {_num(r.get('objective_value'), 1)} = {parts}")
    if r.get("markets") and k:
        out.append("")
        rows = []
        for m in sorted(r["markets"], key=lambda m: (not m["entered"], m.get("entry_year") or 0, m["id"])):
            peak = max((y["heads"] for y in m["years"]), default=0.0)
            spend = sum(y["spend"] for y in m["years"])
            rows.append([m["id"], m["name"][:22], m.get("region") or "", m["mode"] or "not entered",
                         m["entry_year"] or "", _num(spend), _num(peak, 0), _num(m.get("expected_npv"))])
        out.append(table(["market", "name", "region", "decision", "entry", f"spend {money}", "peak heads", f"E[NPV] {money}"],
                         rows, "llllrrrr"))
    if r.get("years"):
        out.append("")
        cumulative = any(lim["constraint"].startswith("budget_cumulative[") for lim in r.get("limits") or [])
        rows = []
        for y in r["years"]:
            row = [y["year"], _num(y["spend"]), _num(y["budget_limit"])]
            if cumulative:
                row += [_num(y["cumulative_spend"]), _num(y["cumulative_budget"])]
            row += [_num(y["heads"], 0), _num(y["headcount_cap"], 0), _num(y["net_hires"], 0),
                    _num(y["net_hires_limit"], 0), _num(y["expected_contribution"]), _num(y["expected_net_cash_flow"])]
            rows.append(row)
        headers = ["year", f"spend {money}", "budget"] + (["cum. spend", "cum. budget"] if cumulative else []) + [
            "heads", "cap", "net hires", "limit", f"contribution {money}", f"net cash {money}"]
        out.append(table(headers, rows, "r" * len(headers)))
        if cumulative:
            out.append("Budget carries over: the cumulative budget (cum. budget) is the limit; a year may spend "
                       "above its own line when earlier years spent less.")
    binding = [lim for lim in r.get("limits") or [] if lim["binds"]]
    if binding:
        out.append("")
        out.append("What binds (local value: objective per unit more of the limit, with this entry plan):")
        rows = [[lim["constraint"], _num(lim["use"]), _num(lim["limit"]),
                 _num(lim["local_price"], 3) if lim["local_price"] is not None else "-",
                 lim["local_price_note"].split(":")[0] or _steps(lim.get("steps") or [])] for lim in binding]
        out.append(table(["limit", "use", "limit", "local value", "note"], rows, "lrrrl"))
    inf = r.get("infeasibility")
    if inf:
        out.append("")
        out.append(f"Why it is infeasible ({inf['method']}): " + printable(", ".join(inf["constraints"])))
        out.extend(f"  {printable(line)}" for line in inf["explanation"])
        if inf.get("relaxations"):
            out.append("It becomes feasible if these limits move:")
            out.extend(f"  {printable(x['constraint'])}: {_num(x['limit'])} -> {_num(x['needed'])} ({x['change']:+,.1f})"
                       for x in inf["relaxations"])
    t = r.get("timings") or {}
    ms = r.get("model_size") or {}
    out.append("")
    out.append(
        f"Timings: build {t.get('build_seconds', 0):.3f}s  transfer {t.get('transfer_seconds', 0):.3f}s  "
        f"solve (head start + HiGHS) {t.get('solver_seconds', 0):.3f}s  extraction {t.get('extraction_seconds', 0):.3f}s  "
        f"total {t.get('total_seconds', 0):.3f}s"
    )
    out.append(
        f"Model: {ms.get('variables', 0)} variables ({ms.get('integer_variables', 0)} integer), "
        f"{ms.get('constraints', 0)} constraints, {ms.get('nonzeros', 0)} non-zeros; "
        f"HiGHS {(r.get('solver') or {}).get('highs_version', '?')}"
    )
    return "\n".join(out)


def render_market_values(r: dict[str, Any]) -> str:
    """What each market is worth: the objective change when it is forced out (entered) or in."""
    values = r.get("market_values") or []
    if not values:
        return ""
    rows = []
    for v in sorted(values, key=lambda v: (not v["entered"], v["objective_change"] if v["objective_change"] is not None else 0.0)):
        test = "forced out" if v["entered"] else "forced in"
        change = "-" if v["objective_change"] is None else f"{v['objective_change']:+,.1f}"
        how = "" if v["entered"] or v["mode"] is None else f"{v['mode']} {v['entry_year']}"
        state = v["status"] + (" (cut short)" if v["cut_short"] else "")
        rows.append([v["market_id"], test, change, how, state, ", ".join(v["blocking"][:3])])
    text = ("What each market is worth (objective change when forced out / in; negative = the plan is better):\n"
            + table(["market", "test", "objective change", "forced-in choice", "re-solve", "blocking limits"], rows,
                    "llrlll"))
    if any(v["cut_short"] for v in values):
        text += ("\ncut short: the re-solve stopped at its share of the time budget with the best plan it had found, so "
                 "the true change is at least the one shown (the forced plan can only be better); give more time to prove it.")
    return text


def render_comparison(c: dict[str, Any]) -> str:
    """Two plans side by side (deltas are B - A)."""
    out = [f"Plan A: {c['status_a']}   Plan B: {c['status_b']}   money in {c['currency']} {c['money_unit']}; deltas are B - A"]
    if c["kpis"]:
        out.append("")
        out.append(table(["figure", "A", "B", "B - A"],
                         [[k["name"], _num(k["a"]), _num(k["b"]), _num(k["delta"])] for k in c["kpis"]], "lrrr"))
    out.append("")
    if c["markets"]:
        rows = [[m["market_id"], m["change"], f"{m['mode_a'] or 'not entered'} {m['entry_year_a'] or ''}".strip(),
                 f"{m['mode_b'] or 'not entered'} {m['entry_year_b'] or ''}".strip(), _num(m["expected_npv_a"]),
                 _num(m["expected_npv_b"])] for m in c["markets"]]
        out.append(table(["market", "change", "plan A", "plan B", "E[NPV] A", "E[NPV] B"], rows, "llllrr"))
    else:
        out.append("Same entry decisions in both plans.")
    if c["years"]:
        out.append("")
        out.append(table(["year", "spend A", "spend B", "delta", "heads A", "heads B", "delta"],
                         [[y["year"], _num(y["spend_a"]), _num(y["spend_b"]), _num(y["spend_delta"]), _num(y["heads_a"], 0),
                           _num(y["heads_b"], 0), _num(y["heads_delta"], 0)] for y in c["years"]], "rrrrrrr"))
    if c["limits"]:
        out.append("")
        out.append("Limits that differ:")
        out.append(table(["limit", "A", "B", "B - A"],
                         [[lim["name"], str(lim["a"]), str(lim["b"]), _num(lim["delta"])] for lim in c["limits"]], "lrrr"))
    out.extend(printable(note) for note in c.get("notes") or [])
    return "\n".join(out)
