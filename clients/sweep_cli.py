"""``lepton-alloc sweep``: many what-ifs of one scenario at once (docs/model.md §7).

A grid over named fields (``--vary budget.limit=scale:0.8,0.9,1,1.1,1.2``) or Monte Carlo draws
(``--draws 1000 --seed 7 --draw 'markets[*].market_growth=add:normal:0:0.02'``), or a sweep file
(``--spec sweep.yaml``); solved locally (one warm model), on a server (``--server``: spread over
its workers), or on a Ray cluster (``--executor ray://HOST:PORT``, or ``local`` for a Ray runtime
on this machine). A progress bar counts the variants; the summary table says how often each
market is entered, the objective's spread, which variants change the plan and the robust plan.
``--out`` writes every variant as JSON, CSV or a workbook (by the file's suffix).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from lepton_alloc.models.sweep import RobustCheck, SweepSummary, VariantResult

from .safe_text import printable

EXIT_FAILED, EXIT_INVALID, EXIT_UNREACHABLE = 1, 2, 3
_DIST_PARAMS = {"normal": ("mean", "sd"), "uniform": ("low", "high"), "triangular": ("low", "mode", "high")}


def register(sub: Any) -> None:
    s = sub.add_parser("sweep", help="many variants of one scenario: a grid or Monte Carlo draws, summarised")
    s.add_argument("file", help="the base scenario file (with --stored: a scenario stored on the server)")
    s.add_argument("--spec", default=None, help="a sweep file (YAML/JSON with grid or monte_carlo, docs/model.md §7)")
    s.add_argument("--vary", action="append", default=[], metavar="PATH=[HOW:]V1,V2,...",
                   help="a grid axis; HOW is set (default), scale or add; e.g. budget.limit=scale:0.8,1,1.2")
    s.add_argument("--draws", type=int, default=None, help="Monte Carlo: how many variants to draw")
    s.add_argument("--seed", type=int, default=0, help="Monte Carlo: seed of the draws")
    s.add_argument("--draw", action="append", default=[], metavar="PATH=HOW:DIST:P1:P2[:P3]",
                   help="Monte Carlo: an uncertain field; DIST normal:MEAN:SD, uniform:LOW:HIGH or "
                        "triangular:LOW:MODE:HIGH; e.g. markets[*].market_growth=add:normal:0:0.02")
    s.add_argument("--robust-share", dest="robust_share", type=float, default=None,
                   help="an entry decision is robust when made in at least this share of the variants; unset: 0.8")
    s.add_argument("--time-limit", type=float, default=None, help="time limit of each variant's solve, seconds")
    s.add_argument("--gap", type=float, default=None, help="relative MIP gap of each variant's solve")
    s.add_argument("--server", default=None, help="HOST:PORT of a Lepton server; without it the sweep runs here")
    s.add_argument("--stored", action="store_true", help="FILE names a scenario stored on the server")
    s.add_argument("--executor", default=os.environ.get("LEPTON_SWEEP_EXECUTOR", ""),
                   help="local runs: ray://HOST:PORT runs the variants on a Ray cluster, 'ray' on a local Ray runtime "
                        "(env LEPTON_SWEEP_EXECUTOR); empty: this process")
    s.add_argument("--actors", type=int, default=2, help="with --executor: Ray actors (each keeps a model warm)")
    s.add_argument("-o", "--out", default=None, help="write every variant: .json, .csv or .xlsx")
    s.add_argument("--json", action="store_true", help="print everything as JSON instead of the summary table")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--top", type=int, default=25, help="markets shown in the table")
    s.set_defaults(func=cmd_sweep)


# ----------------------------------------------------------------------------- the request


def spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The sweep's fields from the command line (validated later, against the base scenario)."""
    if args.spec:
        from lepton_alloc.models.loader import parse_text

        text = Path(args.spec).read_text(encoding="utf-8")
        spec = parse_text(text, "json" if args.spec.endswith(".json") else "yaml")
        if not isinstance(spec, dict):
            raise ValueError(f"{args.spec}: a sweep file is a mapping")
    else:
        spec = {}
    if args.vary:
        spec["grid"] = [_axis(v) for v in args.vary]
    if args.draws is not None or args.draw:
        if not args.draw or args.draws is None:
            raise ValueError("Monte Carlo needs both --draws N and at least one --draw")
        spec["monte_carlo"] = {"draws": args.draws, "seed": args.seed, "vary": [_draw(d) for d in args.draw]}
    for key, value in (("robust_share", args.robust_share), ("time_limit_seconds", args.time_limit),
                       ("mip_rel_gap", args.gap)):
        if value is not None:
            spec[key] = value
    if not spec.get("grid") and not spec.get("monte_carlo"):
        raise ValueError("nothing varies: give --vary, --draws with --draw, or --spec")
    return spec


def _axis(text: str) -> dict[str, Any]:
    path, sep, rest = text.partition("=")
    if not sep or not path or not rest:
        raise ValueError(f"--vary {text!r}: write PATH=[HOW:]V1,V2,...")
    how, _, values = rest.partition(":") if rest.split(":", 1)[0] in ("set", "scale", "add") else ("set", "", rest)
    try:
        return {"path": path.strip(), "how": how, "values": [float(v) for v in values.split(",") if v.strip()]}
    except ValueError:
        raise ValueError(f"--vary {text!r}: the values must be numbers separated by commas") from None


def _draw(text: str) -> dict[str, Any]:
    path, sep, rest = text.partition("=")
    parts = rest.split(":")
    if not sep or len(parts) < 3 or parts[1] not in _DIST_PARAMS:
        raise ValueError(f"--draw {text!r}: write PATH=HOW:normal:MEAN:SD, HOW:uniform:LOW:HIGH or HOW:triangular:LOW:MODE:HIGH")
    names = _DIST_PARAMS[parts[1]]
    if len(parts) != 2 + len(names):
        raise ValueError(f"--draw {text!r}: {parts[1]} takes {len(names)} numbers ({', '.join(names)})")
    try:
        return {"path": path.strip(), "how": parts[0], "distribution": parts[1],
                **{n: float(v) for n, v in zip(names, parts[2:])}}
    except ValueError:
        raise ValueError(f"--draw {text!r}: the parameters must be numbers") from None


# ----------------------------------------------------------------------------- running


def cmd_sweep(args: argparse.Namespace) -> int:
    from lepton_alloc.models.scenario import ScenarioError

    try:
        raw_spec = spec_from_args(args)
    except (ValueError, OSError, ScenarioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    base = None
    if not args.stored:  # read and validated once, here; a stored scenario is the server's
        from .cli import _scenario_for_solve

        base = _scenario_for_solve(args)  # None after printing every problem with its field path
        if base is None:
            return EXIT_INVALID
    if args.server:
        return _remote(args, raw_spec, base)
    if base is None:
        print("error: --stored names a scenario on a server: give --server", file=sys.stderr)
        return EXIT_INVALID
    from lepton_alloc.models.sweep import parse_sweep

    try:
        spec = parse_sweep(raw_spec, base)
    except ScenarioError as exc:
        print("error: the sweep is not valid:", file=sys.stderr)
        for v in exc.violations:
            print(printable(f"  {v.field}: {v.description}"), file=sys.stderr)
        return EXIT_INVALID
    bar = SweepBar(spec.variant_count + 1, enabled=False if args.quiet else None)
    started = time.monotonic()
    with bar:
        if args.executor:
            from lepton_alloc.server.ray_executor import run_sweep_on_ray

            results, summary = run_sweep_on_ray(base, spec, args.executor, actors=args.actors, on_variant=bar.variant)
        else:
            from lepton_alloc.models.sweep import run_sweep

            results, summary = run_sweep(base, spec, on_variant=bar.variant)
    return _finish(args, base.currency, base.money_unit.value, results, summary, time.monotonic() - started)


def _remote(args: argparse.Namespace, raw_spec: dict[str, Any], base: Any) -> int:
    from .client import AllocationClient, AllocationError

    kwargs: dict[str, Any] = {"scenario_name": args.file} if base is None else {"scenario": base}
    started = time.monotonic()
    job_id = ""
    try:
        with AllocationClient(args.server) as client:
            bar: SweepBar | None = None
            try:
                for ev in client.sweep(raw_spec, **kwargs):
                    job_id = ev.job_id
                    if bar is None:
                        bar = SweepBar(ev.total, enabled=False if args.quiet else None).__enter__()
                        print(f"sweep job {job_id}: {ev.total} variants", file=sys.stderr)
                    if ev.variant is not None:
                        bar.variant(ev.variant)
            except KeyboardInterrupt:
                if job_id:
                    client.cancel(job_id)
                    print(f"cancelled sweep job {job_id}; its answers so far stay stored", file=sys.stderr)
                raise
            finally:
                if bar is not None:
                    bar.__exit__(None, None, None)
            info = client.get_sweep(job_id)
    except AllocationError as exc:
        from .cli import _print_violations

        _print_violations(exc)
        return EXIT_INVALID if exc.code_name == "INVALID_ARGUMENT" else EXIT_UNREACHABLE if exc.code_name == "UNAVAILABLE" else EXIT_FAILED
    if info.summary is None:
        print(printable(f"error: sweep job {job_id} ended {info.job.state} without a summary: {info.job.error}"),
              file=sys.stderr)
        return EXIT_FAILED
    currency, unit = (base.currency, base.money_unit.value) if base is not None else ("", "")
    return _finish(args, currency, unit, info.variants, info.summary, time.monotonic() - started, job_id)


class SweepBar:
    """A progress bar of answered variants (rich, stderr, terminals only), with the ETA."""

    def __init__(self, total: int, enabled: bool | None = None):
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.done = 0
        self._bar: Any = None

    def __enter__(self) -> SweepBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("variants"),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("sweep", total=self.total)
        return self

    def variant(self, r: VariantResult) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


# ----------------------------------------------------------------------------- output


def sweep_dict(results: list[VariantResult], summary: SweepSummary, currency: str = "", money_unit: str = "") -> dict[str, Any]:
    return {"currency": currency, "money_unit": money_unit, "summary": summary.to_dict(),
            "variants": [r.to_dict() for r in sorted(results, key=lambda r: r.index)]}


def _finish(args: argparse.Namespace, currency: str, unit: str, results: list[VariantResult], summary: SweepSummary,
            seconds: float, job_id: str = "") -> int:
    if args.out:
        write_sweep(args.out, results, summary, currency, unit)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.json:
        json.dump(sweep_dict(results, summary, currency, unit), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(render_summary(results, summary, currency, unit, seconds, top=args.top, job_id=job_id))
    return 0 if summary.with_plan else EXIT_FAILED


def _money(x: float | None) -> str:
    """One decimal; a value that rounds to zero is 0.0, never -0.0 (a regret a hair below zero:
    a variant's own optimum is only proven within its gap)."""
    return "-" if x is None else f"{0.0 if round(x, 1) == 0 else x:,.1f}"


def render_summary(results: list[VariantResult], s: SweepSummary, currency: str = "", unit: str = "",
                   seconds: float | None = None, top: int = 25, job_id: str = "") -> str:
    """The summary as a finance reader's text: spread, markets, changed variants, robust plan."""
    money = f"{currency} {unit}".strip() or "money"
    by_index = {r.index: r for r in results}
    base = by_index.get(0)
    warm = sum(r.warm for r in results)
    lines = [f"Sweep: {s.variants} variants (the base included), {s.with_plan} with a plan"
             + (f", {seconds:.1f} s" if seconds is not None else "") + (f"  [job {job_id}]" if job_id else ""),
             "  statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(s.statuses.items()))
             + f"; {warm} solved warm (model re-used)", ""]
    if base is not None:
        lines.append(f"Base plan: objective {_money(base.objective_value)} {money}, {base.markets_entered} markets entered "
                     f"({base.status})")
    if s.objective_percentiles:
        p = s.objective_percentiles
        lines += [f"Objective over the variants ({money}):",
                  "  " + "   ".join(f"{k} {_money(p[k])}" for k in ("min", "p5", "p25", "p50", "p75", "p95", "max") if k in p),
                  ""]
    lines.append(f"{len(s.changed_variants)} of {s.variants - 1} variants change the entry plan of the base"
                 + (": " + ", ".join(f"#{i}" for i in s.changed_variants[:12]) + (" …" if len(s.changed_variants) > 12 else "")
                    if s.changed_variants else ""))
    lines += ["", f"{'market':<12} {'entered':>8}  {'modes':<30} {'most common year':>16}"]
    for f in sorted(s.markets, key=lambda f: (-f.share, f.market_id))[:top]:
        modes = ", ".join(f"{m} {100 * c / max(1, f.entered):.0f}%" for m, c in sorted(f.modes.items(), key=lambda mc: -mc[1]))
        year = max(f.years.items(), key=lambda yc: (yc[1], -yc[0]))[0] if f.years else "-"
        lines.append(f"{printable(f.market_id):<12} {100 * f.share:>7.0f}%  {modes:<30} {year!s:>16}")
    if len(s.markets) > top:
        lines.append(f"… {len(s.markets) - top} more markets (--top, or --out for all)")
    lines += ["", f"Robust plan (decisions made in at least {100 * s.robust_share:.0f} % of the variants with a plan):"]
    lines.append("  enter: " + (", ".join(f"{printable(e.market_id)} ({e.mode}, {e.year})" for e in s.robust_plan)
                                or "none"))
    lines.append(f"  keep out: {len(s.robust_out)} markets; decided per variant: "
                 + (printable(", ".join(s.robust_open[:15])) + (" …" if len(s.robust_open) > 15 else "")
                    if s.robust_open else "none"))
    if s.robust_checks:
        lines.append(f"  it is a plan of {s.robust_feasible} of {len(s.robust_checks)} variants"
                     + (f"; regret against each variant's own optimum: mean {_money(s.robust_mean_regret)}, "
                        f"worst {_money(s.robust_worst_regret)} {money}" if s.robust_mean_regret is not None else ""))
        broken = [c.index for c in s.robust_checks if c.objective_value is None]
        if broken:
            lines.append("  it breaks a limit of: " + ", ".join(f"#{i} ({printable(by_index[i].label)})" if i in by_index else f"#{i}"
                                                                for i in broken[:8]) + (" …" if len(broken) > 8 else ""))
    return "\n".join(lines)


VARIANT_COLUMNS = ("index", "label", "status", "objective_value", "gap", "expected_npv", "cvar", "total_spend",
                   "markets_entered", "entries", "warm", "seconds", "robust_objective", "robust_regret", "message")


def variant_rows(results: list[VariantResult], summary: SweepSummary) -> list[dict[str, Any]]:
    checks: dict[int, RobustCheck] = {c.index: c for c in summary.robust_checks}
    rows = []
    for r in sorted(results, key=lambda r: r.index):
        c = checks.get(r.index)
        rows.append({"index": r.index, "label": r.label, "status": r.status, "objective_value": r.objective_value,
                     "gap": r.gap, "expected_npv": r.expected_npv, "cvar": r.cvar, "total_spend": r.total_spend,
                     "markets_entered": r.markets_entered,
                     "entries": "; ".join(f"{e.market_id}:{e.mode}:{e.year}" for e in r.entries), "warm": r.warm,
                     "seconds": round(r.seconds, 4), "robust_objective": c.objective_value if c else None,
                     "robust_regret": c.regret if c else None, "message": r.message})
    return rows


def write_sweep(path: str, results: list[VariantResult], summary: SweepSummary, currency: str = "", unit: str = "") -> None:
    """Every variant and the summary: JSON (all), CSV (one row per variant) or XLSX (sheets)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        Path(path).write_text(json.dumps(sweep_dict(results, summary, currency, unit), indent=2, allow_nan=False), encoding="utf-8")
    elif suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=VARIANT_COLUMNS)
            w.writeheader()
            w.writerows(variant_rows(results, summary))
    elif suffix == ".xlsx":
        _write_xlsx(path, results, summary, currency, unit)
    else:
        raise ValueError(f"{path}: write .json, .csv or .xlsx")


def _write_xlsx(path: str, results: list[VariantResult], s: SweepSummary, currency: str, unit: str) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "Summary"
    money = f"{currency} {unit}".strip() or "money"
    ws.append(["Sweep summary"])
    ws["A1"].font = Font(bold=True, size=14)
    for row in (["Variants (base included)", s.variants], ["With a plan", s.with_plan],
                ["Change the base's entry plan", len(s.changed_variants)], [],
                ["Objective percentile", money], *([k, v] for k, v in s.objective_percentiles.items()), [],
                ["Robust share", s.robust_share], ["Robust plan is a plan of", s.robust_feasible],
                ["Mean regret", s.robust_mean_regret], ["Worst regret", s.robust_worst_regret]):
        ws.append(row)
    wv = wb.create_sheet("Variants")
    wv.append(list(VARIANT_COLUMNS))
    for r in variant_rows(results, s):
        wv.append([r[c] for c in VARIANT_COLUMNS])
    wm = wb.create_sheet("Markets")
    modes = sorted({m for f in s.markets for m in f.modes})
    years = sorted({y for f in s.markets for y in f.years})
    wm.append(["market", "entered", "share", *(f"mode {m}" for m in modes), *(f"year {y}" for y in years)])
    for f in s.markets:
        wm.append([f.market_id, f.entered, f.share, *(f.modes.get(m, 0) for m in modes), *(f.years.get(y, 0) for y in years)])
    wr = wb.create_sheet("Robust plan")
    wr.append(["market", "decision", "mode", "year"])
    for e in s.robust_plan:
        wr.append([e.market_id, "enter", e.mode, e.year])
    for m in s.robust_out:
        wr.append([m, "keep out", None, None])
    for m in s.robust_open:
        wr.append([m, "decided per variant", None, None])
    for sheet in (wv, wm, wr):
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
    wb.save(path)
