"""How fast does HiGHS reach a provably good plan? A MIP benchmark family, by size and seed.

For generated scenarios (:mod:`lepton_alloc.models.generator`) of 20, 50, 200, 1000 and 2000
markets × 10 years, seeds 0 and 1, with every lever of the generator switched on, solve with
the scenario's own ``mip_rel_gap`` (1e-4) and a time limit (60 s), record every progress event
(heartbeats + incumbents) and the final result, and summarise per instance:

* the primal gap to the best known objective, |best_known − incumbent| / max(1, |best_known|),
  and the dual gap HiGHS reports, (bound − incumbent) / |incumbent|, at 1, 5, 10 and 60 s;
* the time to a 1 % dual gap and to the scenario's gap; the root bound; nodes; final status;
  model size; build / transfer seconds.

``bench/best_known.json`` keeps the best objective known per instance id (``gen-200-s0``) with
its source; a run that finds a better plan raises it (never lowers it) unless ``--no-update``.
Writes ``bench/results/mip_family.md`` and ``.json`` (all events). Every instance runs in its
own Python process.

    .venv/bin/python bench/bench_mip.py                               # the whole family (~11 min)
    .venv/bin/python bench/bench_mip.py --sizes 20,50 --seeds 0 --time-limit 10 --no-update --out /tmp/m.md

See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_build import machine_info  # noqa: E402  (same machine block as the other reports)

DEFAULT_OUT = HERE / "results" / "mip_family.md"
DEFAULT_BEST = HERE / "best_known.json"
DEFAULT_SIZES = "20,50,200,1000,2000"
DEFAULT_SEEDS = "0,1"
MARKS = (1.0, 5.0, 10.0, 60.0)
# every lever of the generator on: carry-over of unspent budget (off by default), growth
# investment / growth hiring on 10 % of markets, three growth scenarios, prerequisites,
# explicit cash flows, compliance (all on by default at the generator's own shares)
LEVERS: dict[str, Any] = {"carry_over": True, "levers_share": 0.10, "scenarios": True,
                          "requires_share": 0.08, "cash_flow_share": 0.10}
# the generator exactly as `lepton-alloc generate --markets N --years 10 --seed S` writes it:
# yearly budgets (no carry-over), the hard core of the model (issue 10's measurements)
YEARLY: dict[str, Any] = {}
FAMILIES: dict[str, dict[str, Any]] = {"levers": LEVERS, "yearly": YEARLY}
REL_TOL = 1e-9  # a plan counts as better than the best known only by more than this (relative)


def instance_id(markets: int, years: int, seed: int, objective: str, family: str = "levers") -> str:
    iid = ("gen" if family == "levers" else family) + f"-{markets}" + ("" if years == 10 else f"x{years}") + f"-s{seed}"
    return iid if objective == "expected_npv" else f"{iid}-{objective}"


# ----------------------------------------------------------------------------- one instance


def run_one(markets: int, years: int, seed: int, time_limit: float, objective: str, threads: int,
            family: str = "levers", head_start: bool = True, polish: bool = True) -> dict[str, Any]:
    """Generate, build, solve (recording every progress event) and extract one instance.

    The same steps as :func:`lepton_alloc.models.solve_scenario` (same explanation budget), done
    one by one so the node count and HiGHS's status string of the outcome are kept too.
    """
    from lepton_alloc.models import build_model, extract_result, parse_scenario, solve_model
    from lepton_alloc.models.generator import generate_scenario

    raw = generate_scenario(markets, years, seed, time_limit=time_limit, objective=objective, **FAMILIES[family])
    sc = parse_scenario(raw)
    events: list[list[Any]] = []

    def on_progress(p: Any) -> None:  # lepton_alloc.models.status.Progress
        kind = "s" if p.head_start else p.kind.value[0]
        events.append([round(p.elapsed_seconds, 4), kind, p.objective, p.best_bound, p.gap, p.nodes])

    started = time.perf_counter()
    am = build_model(sc)
    out = solve_model(am, time_limit=time_limit, threads=threads, on_progress=on_progress,
                      head_start=None if head_start else False, polish=None if polish else False)
    res = extract_result(am, out, started, explain_seconds=min(30.0, 0.5 * time_limit))
    tm, size = res.timings, res.model_size
    return {
        "markets": markets, "years": years, "seed": seed, "objective": objective, "family": family,
        "scenario_sha256": res.scenario_sha256, "mip_rel_gap": sc.solver.mip_rel_gap, "time_limit": time_limit,
        "variables": size.variables, "integer_variables": size.integer_variables,
        "constraints": size.constraints, "nonzeros": size.nonzeros,
        "build_seconds": tm.build_seconds, "transfer_seconds": tm.transfer_seconds,
        "solver_seconds": tm.solver_seconds, "extraction_seconds": tm.extraction_seconds,
        "explanation_seconds": tm.explanation_seconds, "total_seconds": tm.total_seconds,
        "status": res.status.value, "highs_status": out.highs_status, "nodes": out.node_count,
        "objective_value": res.objective_value, "best_bound": res.best_bound, "gap": res.gap,
        # [elapsed s since the solve started, "h"eartbeat | "i"ncumbent | head "s"tart plan, objective, bound, gap, nodes]
        "events": events,
    }


# ----------------------------------------------------------------------------- summaries


def _state_at(row: dict[str, Any], t: float) -> dict[str, Any] | None:
    """The last known state at ``t`` seconds of the solve: the last event at or before ``t``, or
    the final result if the solve had ended by then; None if nothing was reported yet."""
    if row["solver_seconds"] <= t:
        return {"t": row["solver_seconds"], "objective": row["objective_value"], "bound": row["best_bound"],
                "gap": row["gap"], "final": True}
    last = None
    for e in row["events"]:
        if e[0] <= t:
            last = e
        else:
            break
    if last is None:
        return None
    return {"t": last[0], "objective": last[2], "bound": last[3], "gap": last[4], "final": False}


def primal_gap(best: float | None, inc: float | None) -> float | None:
    if best is None or inc is None:
        return None
    return abs(best - inc) / max(1.0, abs(best))


def summarise(row: dict[str, Any], best: float | None) -> dict[str, Any]:
    """Gaps at the marks, milestones, root bound — from the events and the final result."""
    ev = row["events"]
    tl = row["time_limit"]
    marks: dict[str, Any] = {}
    for m in MARKS:
        key = f"{m:g}"
        if m > tl + 1e-9 and row["status"] != "optimal":
            marks[key] = None  # not reached: the run stopped at its limit before this mark
            marks[key + "_reached"] = False
            continue
        st = _state_at(row, m)
        marks[key + "_reached"] = True
        marks[key] = None if st is None else {
            **st, "primal_gap": primal_gap(best, st["objective"]),
        }

    def first_time(pred: Any) -> float | None:
        for e in ev:
            if pred(e):
                return e[0]
        return None

    target = row["mip_rel_gap"]
    t_1pct = first_time(lambda e: e[4] is not None and e[4] <= 0.01)
    t_target = first_time(lambda e: e[4] is not None and e[4] <= target)
    if row["status"] == "optimal" and row["gap"] is not None:  # closed after the last event
        if t_target is None and row["gap"] <= target:
            t_target = row["solver_seconds"]
        if t_1pct is None and row["gap"] <= 0.01:
            t_1pct = row["solver_seconds"]
    t_primal_1pct = first_time(lambda e: e[2] is not None and (primal_gap(best, e[2]) or 0.0) <= 0.01) if best is not None else None
    first_bound = next((e for e in ev if e[3] is not None), None)
    root = [e for e in ev if e[3] is not None and e[5] == 0]
    left_root = any(e[5] > 0 for e in ev) or row["nodes"] > 0
    incumbents = [e for e in ev if e[1] in ("i", "s") and e[2] is not None]
    return {
        "marks": marks,
        "time_to_1pct_gap": t_1pct, "time_to_target_gap": t_target, "time_to_1pct_primal": t_primal_1pct,
        "root_bound": first_bound[3] if first_bound else None,
        "root_bound_seconds": first_bound[0] if first_bound else None,
        "root_end_bound": root[-1][3] if root and left_root else None,
        "root_end_seconds": root[-1][0] if root and left_root else None,
        "left_root": left_root,
        "first_incumbent_seconds": incumbents[0][0] if incumbents else None,
        "last_incumbent_seconds": incumbents[-1][0] if incumbents else None,
        "incumbents": len(incumbents), "heartbeats": sum(1 for e in ev if e[1] == "h"),
        "final_primal_gap": primal_gap(best, row["objective_value"]),
        "best_known": best,
    }


# ----------------------------------------------------------------------------- best known


def load_best(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {}


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:  # noqa: BLE001
        return "?"


def update_best(best: dict[str, Any], iid: str, row: dict[str, Any], run: dict[str, Any]) -> str:
    """Raise the best known objective of ``iid`` if ``row`` found a better plan; never lower it.

    Returns what happened: "new", "improved", "proven", "kept", "no plan", or "changed scenario"
    (the stored entry belongs to another scenario sha256 — the generator changed; left alone).
    """
    obj, bound = row["objective_value"], row["best_bound"]
    if obj is None:
        return "no plan"
    proven = row["status"] == "optimal"
    entry = best.get("instances", {}).get(iid)
    source = {
        **run, "status": row["status"], "bound": bound, "gap": row["gap"], "proven_optimal": proven,
        "solver_seconds": round(row["solver_seconds"], 2),
        "found_at_seconds": next((e[0] for e in reversed(row["events"]) if e[1] in ("i", "s") and e[2] == obj), None),
    }
    new = {"objective": obj, "scenario_sha256": row["scenario_sha256"], "source": source,
           "tightest_bound": {"value": bound, **run} if bound is not None else None}
    if entry is None:
        best.setdefault("instances", {})[iid] = new
        return "new"
    if entry.get("scenario_sha256") != row["scenario_sha256"]:
        return "changed scenario"
    what = "kept"
    old = entry["objective"]
    if obj > old + REL_TOL * max(1.0, abs(old)):  # maximised
        tb = entry.get("tightest_bound")
        entry.update(objective=obj, source=source)
        entry["tightest_bound"] = tb
        what = "improved"
    elif proven and not entry["source"].get("proven_optimal") and abs(obj - old) <= 1e-6 * max(1.0, abs(old)):
        entry["source"] = source
        what = "proven"
    tb = entry.get("tightest_bound")
    if bound is not None and (tb is None or bound < tb["value"]):  # a tighter upper bound on the optimum
        entry["tightest_bound"] = {"value": bound, **run}
    return what


# ----------------------------------------------------------------------------- report


def _pct(x: float | None) -> str:
    if x is None:
        return "–"
    if x == 0:
        return "0"
    if x < 1e-5:
        return f"{100 * x:.1e} %"
    return f"{100 * x:.3f} %" if x < 0.1 else f"{100 * x:.1f} %"


def _s(x: float | None, nd: int = 1) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:,.2f}"


def tables(rows: list[dict[str, Any]]) -> str:
    ok = [r for r in rows if "error" not in r]
    out: list[str] = []
    head = "| instance | " + " | ".join(f"primal {m:g} s | dual {m:g} s" for m in MARKS) + " |"
    out += ["### Gaps at 1, 5, 10 and 60 s of the solve", "", head, "|---|" + "---:|" * (2 * len(MARKS))]
    for r in ok:
        s = r["summary"]
        cells = []
        for m in MARKS:
            st = s["marks"][f"{m:g}"]
            if not s["marks"][f"{m:g}_reached"]:
                cells += ["n/r", "n/r"]
            elif st is None or st["objective"] is None:
                cells += ["-", "-" if st is None or st["gap"] is None else _pct(st["gap"])]
            else:
                cells += [_pct(st["primal_gap"]), _pct(st["gap"])]
        out.append(f"| {r['id']} | " + " | ".join(cells) + " |")
    out += ["", "### Milestones and the end of the run", "",
            "| instance | first plan s | t(dual ≤ 1 %) s | t(dual ≤ mip_rel_gap) s | t(primal ≤ 1 %) s | root bound (at s) "
            "| bound leaving the root (at s) | final objective | final bound | best known | final primal | final dual "
            "| nodes | incumbents | status |",
            "|---|" + "---:|" * 13 + "---|"]
    for r in ok:
        s = r["summary"]
        rb = "–" if s["root_bound"] is None else f"{_num(s['root_bound'])} ({s['root_bound_seconds']:.1f})"
        re_ = ("still at the root" if not s["left_root"] else
               "–" if s["root_end_bound"] is None else f"{_num(s['root_end_bound'])} ({s['root_end_seconds']:.1f})")
        out.append(
            f"| {r['id']} | {_s(s['first_incumbent_seconds'], 2)} | {_s(s['time_to_1pct_gap'])} "
            f"| {_s(s['time_to_target_gap'])} | {_s(s['time_to_1pct_primal'])} | {rb} | {re_} "
            f"| {_num(r['objective_value'])} | {_num(r['best_bound'])} | {_num(s['best_known'])} "
            f"| {_pct(s['final_primal_gap'])} | {_pct(r['gap'])} | {r['nodes']:,} | {s['incumbents']} "
            f"| {r['status']} ({r['highs_status']}) |")
    out += ["", "### Model size and time outside HiGHS", "",
            "| instance | variables | integer | constraints | nonzeros | build s | transfer s | HiGHS run s "
            "| extraction + explanation s | best known |",
            "|---|" + "---:|" * 8 + "---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['id']} | error: {r['error']} |" + " |" * 8)
            continue
        out.append(
            f"| {r['id']} | {r['variables']:,} | {r['integer_variables']:,} | {r['constraints']:,} | {r['nonzeros']:,} "
            f"| {r['build_seconds']:.2f} | {r['transfer_seconds']:.2f} | {r['solver_seconds']:.2f} "
            f"| {r['extraction_seconds'] + r['explanation_seconds']:.2f} | {r['best_known_update']} |")
    return "\n".join(out)


def report(rows: list[dict[str, Any]], info: dict[str, str], command: str, args: argparse.Namespace,
           best_path: Path) -> str:
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    options = "".join(f", {k}={v}" for k, v in FAMILIES[args.family].items())
    what = ("every lever of the generator on (unspent budget carried over, growth investment and growth "
            "hiring on ~10 % of markets, bear/base/bull scenarios, prerequisites, explicit cash flows, "
            "compliance). Id `gen-<markets>-s<seed>`" if args.family == "levers" else
            "the generator's defaults, as `lepton-alloc generate` writes them: yearly budgets without "
            "carry-over (the hard core: budget and headcount knapsacks per year), bear/base/bull scenarios, "
            "regions, risk limit, compliance, explicit cash flows. Id `yearly-<markets>-s<seed>`")
    lines = [
        "# MIP family: how fast HiGHS reaches a provably good plan",
        "",
        f"Generated {now} (commit {git_commit()}) by:",
        "",
        "```",
        command,
        "```",
        "",
        f"Instances: `generate_scenario(markets, {args.years}, seed, time_limit={args.time_limit:g}, "
        f"objective={args.objective!r}{options})` — {what}. Solver: HiGHS via "
        f"Pyomo's persistent interface, the scenario's mip_rel_gap (1e-4), time limit {args.time_limit:g} s, "
        f"threads {args.threads}; one Python process per instance, one instance at a time.",
        "",
        tables(rows),
        "",
        "How to read it:",
        "",
        "* Times are seconds of the solve, counted from its start: the head start (docs/model.md §6.2), "
        "then the HiGHS run (the progress clock; build and transfer come before it and are in the last table)."
        + (" This run is HiGHS alone (`--no-head-start`)." if getattr(args, "no_head_start", False) else
           " The head start's plans are events too (the first plan, usually); from 2,000 integer columns "
           "HiGHS is not handed them, and events report the better of its plan and the head start's.")
        + (" HiGHS's incumbents were not polished (`--no-polish`)." if getattr(args, "no_polish", False) else
           " From 2,000 to 10,000 integer columns HiGHS's stalled incumbents are polished during its run "
           "(models/polish.py); a polished plan is an incumbent event."),
        "* *primal* = |best known − incumbent| / max(1, |best known|) against the best known objective "
        f"of the instance (`{best_path.name}`, after this run's update"
        + (", not updated: `--no-update`" if args.no_update else "") + "); "
        "*dual* = (bound − incumbent) / |incumbent| as HiGHS reports it. A value at *t* s is the last "
        "progress event (heartbeat, every ≥ 0.25 s while HiGHS calls back, or new incumbent) at or before "
        "*t*, or the final result if the solve had ended by then; `-` = no plan yet; n/r = the mark lies "
        "beyond the time limit. A 60 s mark with a 60 s limit is the last event before the limit (the "
        "final columns show the end). HiGHS calls back only between units of work, so during long LP "
        "solves (root of the big models) there are no events and a mark shows the state of the last one.",
        "* *root bound* = the first finite dual bound any event reports: with the head start, the "
        "LP relaxation's optimum it solved; without, HiGHS's root LP bound after presolve (HiGHS reports "
        "no bound before it has solved the root LP; the first one comes with nodes = 0); *bound leaving the root* = the bound of the "
        "last event with nodes = 0 when later events show nodes > 0 (the root bound after cuts and "
        "heuristics); *still at the root* = HiGHS never left the root node within the limit.",
        "* *t(dual ≤ …)* = first event whose reported gap is at most 1 % / the scenario's mip_rel_gap "
        "(or the end, if the run was proven optimal after the last event); *t(primal ≤ 1 %)* = first "
        "incumbent within 1 % of the best known objective. *nodes* = HiGHS's final node count.",
        "* *best known* (last table) = what this run did to the best-known entry: new, improved, proven "
        "(same objective, now proven optimal), kept, or changed scenario (the generator changed; not compared).",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated market counts (default {DEFAULT_SIZES})")
    p.add_argument("--seeds", default=DEFAULT_SEEDS, help=f"comma-separated seeds (default {DEFAULT_SEEDS})")
    p.add_argument("--years", type=int, default=10)
    p.add_argument("--time-limit", type=float, default=60.0, help="HiGHS time limit per instance, seconds (default 60)")
    p.add_argument("--objective", default="expected_npv",
                   choices=("expected_npv", "risk_adjusted_npv", "final_year_contribution"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-head-start", action="store_true",
                   help="HiGHS alone, without the head start (models/heuristic.py): the 'before' of issue 10")
    p.add_argument("--no-polish", action="store_true",
                   help="no polishing of HiGHS's incumbents during its run (models/polish.py)")
    p.add_argument("--family", default="levers", choices=sorted(FAMILIES),
                   help="levers: every lever of the generator on (carry-over budget); yearly: the generator's "
                        "defaults (yearly budgets, the hard core)")
    p.add_argument("--best-known", default=str(DEFAULT_BEST), help="best-known objectives (JSON)")
    p.add_argument("--no-update", action="store_true", help="compare with the best-known file but do not change it")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="Markdown report (the .json with all events is written next to it)")
    p.add_argument("--one", type=str, help=argparse.SUPPRESS)  # internal: "markets,seed": run one, print JSON
    args = p.parse_args(argv)

    if args.one is not None:
        n, seed = (int(x) for x in args.one.split(","))
        row = run_one(n, args.years, seed, args.time_limit, args.objective, args.threads, args.family,
                      not args.no_head_start, not args.no_polish)
        print("RESULT " + json.dumps(row))
        return 0

    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    best_path = Path(args.best_known)
    best = load_best(best_path)
    best.setdefault("description", (
        "Best objective (maximised) known per generated instance of bench/bench_mip.py, with where it came "
        "from; raised by a run that finds a better plan, never lowered. tightest_bound = the lowest "
        "(tightest) upper bound any run proved. Entries are tied to the scenario's sha256."))
    info = machine_info()
    run = {"run": "bench/bench_mip.py", "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
           "commit": git_commit(), "time_limit": args.time_limit, "threads": args.threads,
           "highs": info.get("HiGHS", "?")}
    rows: list[dict[str, Any]] = []
    for seed in seeds:  # seed-major: a short family (one seed) covers every size first
        for n in sizes:
            iid = instance_id(n, args.years, seed, args.objective, args.family)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--one", f"{n},{seed}", "--years", str(args.years),
                   "--time-limit", str(args.time_limit), "--objective", args.objective, "--threads", str(args.threads),
                   "--family", args.family] + (["--no-head-start"] if args.no_head_start else []) \
                + (["--no-polish"] if args.no_polish else [])
            print(f"[bench] {iid} ...", file=sys.stderr, flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"[bench] {iid}: failed: {err}", file=sys.stderr)
                rows.append({"id": iid, "markets": n, "seed": seed, "error": err[:120]})
                continue
            row = json.loads(line[len("RESULT "):])
            row["id"] = iid
            scratch = json.loads(json.dumps(best))
            what = update_best(scratch, iid, row, run)
            if not args.no_update:
                best = scratch
                best_path.write_text(json.dumps(best, indent=2) + "\n", encoding="utf-8")
            row["best_known_update"] = what + (" (not written: --no-update)" if args.no_update and what in ("new", "improved", "proven") else "")
            rows.append(row)
            print(f"[bench] {iid}: {row['status']} obj {row['objective_value']} bound {row['best_bound']} "
                  f"gap {row['gap']} HiGHS {row['solver_seconds']:.1f}s nodes {row['nodes']} best-known: {what}",
                  file=sys.stderr, flush=True)
    for row in rows:
        if "error" in row:
            continue
        entry = best.get("instances", {}).get(row["id"])
        ref = entry["objective"] if entry and entry.get("scenario_sha256") == row["scenario_sha256"] else None
        if ref is None and row["objective_value"] is not None:
            ref = row["objective_value"]  # nothing comparable stored (--no-update on a new instance): this run
        row["summary"] = summarise(row, ref)
    text = report(rows, info, command, args, best_path)
    out.write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({
        "command": command, "machine": info, "marks_seconds": list(MARKS),
        "family": args.family, "generator_options": FAMILIES[args.family], "head_start": not args.no_head_start, "polish": not args.no_polish,
        "event_columns": ["elapsed_seconds", "kind (h=heartbeat, i=incumbent, s=head start plan)", "objective",
                          "best_bound", "gap", "nodes"],
        "rows": rows}, indent=1) + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
