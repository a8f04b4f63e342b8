"""``lepton-alloc fit-growth`` and ``solve --market-data``: market history → growth-model parameters.

The fit itself, and how its numbers are read, is in ``models/growth_fit.py``. This module is
imported by the CLI's parser, so it imports nothing heavy (numpy, scipy, matplotlib, the solver)
until a command runs.

    lepton-alloc fit-growth data.csv -o fragment.yaml --plot shares.png [--scenario FILE]
    lepton-alloc solve scenario.yaml --market-data data.csv

Run standalone: ``python -m lepton_alloc.clients.fit_cli data.csv -o fragment.yaml``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lepton_alloc.models import Scenario
    from lepton_alloc.models.growth_fit import DataIssue, FitReport

EXIT_INVALID = 2
COLUMN_OPTIONS = (("market", "market_id"), ("year", "year"), ("revenue", "revenue"), ("total", "total_revenue"), ("mode", "mode"))


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- library functions


def _read_scenario_dict(path: str | Path | None) -> dict[str, Any]:
    """Plain scenario data from a file (default: the built-in example); raises ScenarioError."""
    from lepton_alloc.models.loader import builtin_example_path, parse_text
    from lepton_alloc.models.scenario import FieldViolation, ScenarioError

    p = Path(path) if path else builtin_example_path()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([FieldViolation("<file>", f"cannot read {p}: {exc.strerror}")]) from None
    raw = parse_text(text, "json" if p.suffix.lower() == ".json" else "yaml")
    if not isinstance(raw, dict):
        raise ScenarioError([FieldViolation("<root>", "must be a mapping")])
    return raw


def fit_for_scenario(scenario_dict: dict[str, Any], csv_path: str | Path, *, confidence: float = 0.90,
                     **column_names: str | None) -> tuple[FitReport, dict[str, Any], list[DataIssue]]:
    """Read and fit ``csv_path`` against the scenario's markets: (report, fragment, warnings).

    Raises ``MarketDataError`` when the data cannot be used (see models/growth_fit.py).
    """
    from lepton_alloc.models.growth_fit import Columns, fit_market_data, read_market_csv, scenario_fragment

    cols = Columns.of(**column_names)
    known = [str(m.get("id")) for m in scenario_dict.get("markets", []) if isinstance(m, dict)]
    report = fit_market_data(read_market_csv(csv_path, cols, known), confidence, str(csv_path))
    fragment, notes = scenario_fragment(scenario_dict, report)
    return report, fragment, report.issues + notes


def merge_market_data(scenario_dict: dict[str, Any], csv_path: str | Path, *, confidence: float = 0.90,
                      warn: Callable[[str], None] | None = _err, **column_names: str | None) -> dict[str, Any]:
    """A new scenario dict with the fit of ``csv_path`` merged in (``solve --market-data``).

    Every growth-model option of a market in the data gets the fitted ``initial_share`` (the
    fitted share at ``start_year``) and ``share_growth``; the bear/base/bull growth scenarios
    derived from the fit replace the scenario's ``growth_scenarios``. Column names:
    ``market=``, ``year=``, ``revenue=``, ``total=``, ``mode=`` (None = default). Dropped rows
    and other notes go to ``warn`` (default stderr) as "csv: row N, column: message".
    Raises ``MarketDataError`` for unusable data; the caller validates the result with
    ``parse_scenario`` (which the fit keeps valid).
    """
    from lepton_alloc.models.growth_fit import merge_fragment

    _, fragment, notes = fit_for_scenario(scenario_dict, csv_path, confidence=confidence, **column_names)
    if warn is not None:
        for n in notes:
            warn(f"warning: {csv_path}: {n}")
    return merge_fragment(scenario_dict, fragment)


def load_scenario_with_market_data(scenario_path: str | Path, csv_path: str | Path, *, confidence: float = 0.90,
                                   warn: Callable[[str], None] | None = _err, **column_names: str | None) -> Scenario:
    """Read a scenario file, merge the market data's fit, validate: ScenarioError or MarketDataError on problems."""
    from lepton_alloc.models.scenario import parse_scenario

    raw = _read_scenario_dict(scenario_path)
    return parse_scenario(merge_market_data(raw, csv_path, confidence=confidence, warn=warn, **column_names))


def print_market_data_error(exc: Exception) -> None:
    """Every problem of a MarketDataError (or a ScenarioError), one per line on stderr."""
    issues = getattr(exc, "issues", None)
    if issues is not None:
        _err(f"error: {getattr(exc, 'source', 'market data')}: the market data cannot be used:")
        for i in issues:
            _err(f"  {i}")
        return
    _err("error: invalid scenario:")
    for v in getattr(exc, "violations", []):
        _err(f"  {v.field}: {v.description}")


def column_kwargs(args: argparse.Namespace) -> dict[str, str | None]:
    """The ``--col-*`` options of ``args`` as ``merge_market_data`` keywords."""
    return {role: getattr(args, f"col_{role}", None) for role, _ in COLUMN_OPTIONS}


def load_for_solve(args: argparse.Namespace) -> Scenario | None:
    """``solve FILE --market-data CSV``: the merged, validated scenario, or None after printing the problems."""
    from lepton_alloc.models.growth_fit import MarketDataError
    from lepton_alloc.models.scenario import ScenarioError

    try:
        cols = column_kwargs(args)
        return load_scenario_with_market_data(args.file, args.market_data, confidence=args.confidence, warn=_err,
                                              market=cols["market"], year=cols["year"], revenue=cols["revenue"],
                                              total=cols["total"], mode=cols["mode"])
    except (MarketDataError, ScenarioError) as exc:
        print_market_data_error(exc)
        return None


# ----------------------------------------------------------------------------- fragment text


def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def fragment_text(report: FitReport, fragment: dict[str, Any], scenario_dict: dict[str, Any], scenario_label: str) -> str:
    """The fragment as commented YAML: how it was read, then one comment line per fit."""
    import yaml

    start_year = int(scenario_dict.get("start_year", 0) or 0)
    conf = f"{100 * report.confidence:.0f} %"
    head = [
        f"# Growth-model fragment fitted from {report.source} (lepton-alloc fit-growth) for {scenario_label}.",
        "#",
        "# Fit: least squares on log(share), share = revenue / total_revenue, per market:",
        "#   share(year) = S_fit(start_year) x (1 + r)^(year - start_year)",
        f"# initial_share = the fitted share extrapolated to the scenario's start_year ({start_year}); the model",
        "#   starts the share at this value in the entry year, whatever the entry year.",
        f"# share_growth = r, the fitted yearly growth of the share; [low, high] is its {conf} confidence",
        "#   interval (slope standard error, Student's t with n - 2 degrees of freedom).",
        "# Every growth-model option of a market gets the market's fit (no mode column in the data), or its",
        "#   mode's fit (mode column); options with cash_flows and markets without data are left as they are.",
        "# growth_scenarios replace the scenario's: bear/base/bull with probabilities 0.25/0.50/0.25;",
        "#   share_growth_multiplier = median over markets with r > 0.5 % of r_low/r (bear) and r_high/r (bull);",
        "#   market_growth_delta = median of g_low - g and g_high - g, g the fitted growth of total_revenue.",
        "#",
        "# market  mode      years      n   share(last)  initial_share  r        r interval           R2     g",
    ]
    for f in report.fits.values():
        ri = f.r_interval
        band = f"[{_pct(ri[0])}, {_pct(ri[1])}]" if ri else "[no interval]"
        r2 = f"{f.share.r2:.3f}" if f.share.r2 is not None else "-"
        head.append(f"# {f.market:<7} {f.mode or '(all)':<9} {min(f.years)}-{max(f.years)}  {len(f.years):<3} "
                    f"{_pct(f.shares[-1]):>11}  {_pct(f.share_at(start_year)):>13}  {_pct(f.r):>7}  {band:<20} {r2:<6} {_pct(f.g)}")
    body = yaml.safe_dump(fragment, sort_keys=False, default_flow_style=None, width=120)
    return "\n".join(head) + "\n\n" + body


# ----------------------------------------------------------------------------- the command


def add_column_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("market-data columns")
    for role, default in COLUMN_OPTIONS:
        what = {"market": "market id", "total": "total market revenue", "mode": "entry mode (optional column)"}.get(role, role)
        g.add_argument(f"--col-{role}", dest=f"col_{role}", default=default, metavar="NAME",
                       help=f"CSV column of the {what} (default: %(default)s)")
    g.add_argument("--confidence", type=float, default=0.90,
                   help="confidence level of the interval on share growth (default: %(default)s)")


def add_market_data_options(solve_parser: argparse.ArgumentParser) -> None:
    """``solve --market-data CSV`` and its column options."""
    solve_parser.add_argument("--market-data", dest="market_data", default=None, metavar="CSV",
                              help="fit share growth from a market-history CSV and merge it into the scenario "
                                   "(see fit-growth)")
    add_column_options(solve_parser)


def cmd_fit_growth(args: argparse.Namespace) -> int:
    from lepton_alloc.models.growth_fit import MarketDataError, plot_fits
    from lepton_alloc.models.scenario import ScenarioError, parse_scenario

    if not 0 < args.confidence < 1:
        _err(f"error: --confidence must be between 0 and 1, got {args.confidence:g}")
        return EXIT_INVALID
    label = args.scenario or "the built-in example"
    try:
        scenario = _read_scenario_dict(args.scenario)
        report, fragment, notes = fit_for_scenario(scenario, args.csv, confidence=args.confidence, **column_kwargs(args))
        from lepton_alloc.models.growth_fit import merge_fragment

        parse_scenario(merge_fragment(scenario, fragment))  # the fragment must make a valid scenario
    except (MarketDataError, ScenarioError) as exc:
        print_market_data_error(exc)
        return EXIT_INVALID
    for n in notes:
        _err(f"warning: {args.csv}: {n}")
    text = fragment_text(report, fragment, scenario, label)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            _err(f"error: cannot write {args.out}: {exc.strerror}")
            return 1
        _err(f"wrote {args.out}: {len(fragment['markets'])} market(s) fitted from {len(report.fits)} history(ies)")
    else:
        sys.stdout.write(text)
    if args.plot:
        try:
            plot_fits(report, args.plot, start_year=int(scenario.get("start_year", 0) or 0))
        except (OSError, ValueError) as exc:
            _err(f"error: cannot write the plot {args.plot}: {exc}")
            return 1
        _err(f"wrote {args.plot}")
    return 0


def register(sub: Any) -> argparse.ArgumentParser:
    """Add ``fit-growth`` to the CLI's subparsers (``sub = parser.add_subparsers(...)``)."""
    s: argparse.ArgumentParser = sub.add_parser(
        "fit-growth", help="fit share growth from a market-history CSV; write a scenario fragment (and a PNG)",
        description="Fit S(t) = S0 (1+r)^t per market by least squares on log(revenue / total_revenue), "
                    "and write initial_share / share_growth per growth-model option plus bear/base/bull growth scenarios.")
    s.add_argument("csv", help="market history: market_id, year, revenue, total_revenue (extra columns allowed)")
    s.add_argument("-o", "--out", default=None, help="write the YAML fragment here (default stdout)")
    s.add_argument("--plot", default=None, metavar="PNG", help="write the share history and fitted curves as a PNG")
    s.add_argument("--scenario", default=None, metavar="FILE",
                   help="scenario whose markets, options and start_year the fit is for (omitted: the built-in example)")
    add_column_options(s)
    s.set_defaults(func=cmd_fit_growth)
    return s


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lepton-alloc")
    register(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(["fit-growth", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
