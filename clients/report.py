"""Plain-text rendering of a result dict (the JSON shape of ``Result.to_dict()``).

The same dict comes from a local solve and from the server (``Result.to_dict()`` of the result
``proto.adapter.result_from_proto`` returns), so one renderer serves both.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Sequence


def _num(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[k]) for r in cells]) for k, h in enumerate(headers)]
    align = align or "l" * len(headers)

    def fmt(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align)).rstrip()

    lines = [fmt(list(headers)), "  ".join("-" * w for w in widths)]
    lines.extend(fmt(r) for r in cells)
    return "\n".join(lines)


def render_result(r: dict[str, Any]) -> str:
    out: list[str] = []
    out.append(f"Scenario {r.get('scenario_name', '')}  (sha256 {str(r.get('scenario_sha256', ''))[:12]}…)")
    out.append(f"Money in {r.get('currency', 'USD')} {r.get('money_unit', 'millions')}; heads in people.")
    gap = r.get("gap")
    out.append(
        f"Status: {r['status']} — {r.get('message', '')}\n"
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
    if r.get("markets") and k:
        out.append("")
        rows = []
        for m in sorted(r["markets"], key=lambda m: (not m["entered"], m.get("entry_year") or 0, m["id"])):
            peak = max((y["heads"] for y in m["years"]), default=0.0)
            spend = sum(y["spend"] for y in m["years"])
            rows.append([m["id"], m["name"][:22], m.get("region") or "", m["mode"] or "not entered",
                         m["entry_year"] or "", _num(spend), _num(peak, 0), _num(m.get("expected_npv"))])
        out.append(table(["market", "name", "region", "decision", "entry", "spend", "peak heads", "E[NPV]"],
                         rows, "llllrrrr"))
    if r.get("years"):
        out.append("")
        rows = [[y["year"], _num(y["spend"]), _num(y["budget_limit"]), _num(y["heads"], 0),
                 _num(y["headcount_cap"], 0), _num(y["net_hires"], 0), _num(y["net_hires_limit"], 0),
                 _num(y["expected_contribution"]), _num(y["expected_net_cash_flow"])] for y in r["years"]]
        out.append(table(["year", "spend", "budget", "heads", "cap", "net hires", "limit", "contribution", "net cash"],
                         rows, "rrrrrrrrr"))
    inf = r.get("infeasibility")
    if inf:
        out.append("")
        out.append(f"Why it is infeasible ({inf['method']}): " + ", ".join(inf["constraints"]))
        out.extend(f"  {line}" for line in inf["explanation"])
    t = r.get("timings") or {}
    ms = r.get("model_size") or {}
    out.append("")
    out.append(
        f"Timings: build {t.get('build_seconds', 0):.3f}s  transfer {t.get('transfer_seconds', 0):.3f}s  "
        f"HiGHS {t.get('solver_seconds', 0):.3f}s  extraction {t.get('extraction_seconds', 0):.3f}s  "
        f"total {t.get('total_seconds', 0):.3f}s"
    )
    out.append(
        f"Model: {ms.get('variables', 0)} variables ({ms.get('integer_variables', 0)} integer), "
        f"{ms.get('constraints', 0)} constraints, {ms.get('nonzeros', 0)} non-zeros; "
        f"HiGHS {(r.get('solver') or {}).get('highs_version', '?')}"
    )
    return "\n".join(out)
