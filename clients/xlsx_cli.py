"""``lepton-alloc template`` and ``lepton-alloc export``, and the spreadsheet helpers ``cli.py`` calls.

Kept apart from :mod:`.cli` so the spreadsheet code (openpyxl) is imported only by the commands
that need it: :func:`register` adds the subcommands, :func:`load_scenario_any` reads a scenario
file of any supported format (``.xlsx`` by its extension) and :func:`export_result` writes a
result (a :class:`Result` or its ``to_dict()`` JSON) to a workbook.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lepton_alloc.models.result import Result
from lepton_alloc.models.scenario import Scenario

XLSX_SUFFIXES = (".xlsx", ".xlsm")
EXIT_FAILED, EXIT_INVALID = 1, 2


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def is_xlsx(path: str | Path) -> bool:
    return Path(path).suffix.lower() in XLSX_SUFFIXES


def load_scenario_xlsx(path: str | Path) -> Scenario:
    """A scenario workbook, validated (errors name sheet, row, column and field path)."""
    from .xlsx import load_scenario_xlsx as load

    return load(path)


def load_scenario_any(path: str | Path) -> Scenario:
    """A scenario file: ``.xlsx``/``.xlsm`` as a workbook, anything else as JSON/YAML."""
    if is_xlsx(path):
        return load_scenario_xlsx(path)
    from lepton_alloc.models.loader import load_scenario_file

    return load_scenario_file(path)


def export_result(result: Result | dict[str, Any], path: str | Path, scenario: Scenario | None = None) -> None:
    """Write a result (typed, or the JSON dict ``Result.to_dict()`` / ``solve --json`` gives) to a workbook."""
    from lepton_alloc.models.result import result_from_dict

    from .xlsx import write_result_xlsx

    typed = result if isinstance(result, Result) else result_from_dict(result)
    write_result_xlsx(typed, path, scenario)


def add_xlsx_option(parser: argparse.ArgumentParser) -> None:
    """``--xlsx OUT`` on a command that prints a result (``solve``, ``explain`` …)."""
    parser.add_argument("--xlsx", metavar="OUT", default=None, help="also write the result as a workbook (.xlsx)")


def maybe_export(args: argparse.Namespace, result: Result | dict[str, Any], scenario: Scenario | None = None) -> None:
    """Write the result to ``args.xlsx`` when the command was given ``--xlsx OUT``."""
    out = getattr(args, "xlsx", None)
    if out:
        export_result(result, out, scenario)
        _err(f"wrote {out}")


def cmd_template(args: argparse.Namespace) -> int:
    from .xlsx import write_template

    try:
        write_template(args.out)
    except OSError as exc:
        _err(f"error: cannot write {args.out}: {exc.strerror or exc}")
        return EXIT_FAILED
    _err(f"wrote {args.out}: fill in the sheets (at least scenario.horizon_years, one market and one option), "
         f"then: lepton-alloc solve {args.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from lepton_alloc.models.result import result_from_dict
    from lepton_alloc.models.scenario import ScenarioError

    try:
        with open(args.result, encoding="utf-8") as fh:
            data = json.load(fh)
        result = result_from_dict(data)
    except OSError as exc:
        _err(f"error: cannot read {args.result}: {exc.strerror or exc}")
        return EXIT_INVALID
    except (ValueError, KeyError, TypeError) as exc:
        _err(f"error: {args.result} is not a result JSON (as written by `lepton-alloc solve --json`): {exc}")
        return EXIT_INVALID
    scenario = None
    if args.scenario:
        try:
            scenario = load_scenario_any(args.scenario)
        except ScenarioError as exc:
            _err(f"error: {args.scenario} is not a valid scenario:")
            for v in exc.violations:
                _err(f"  {v.field}: {v.description}")
            return EXIT_INVALID
    out = args.out or str(Path(args.result).with_suffix(".xlsx"))
    try:
        export_result(result, out, scenario)
    except OSError as exc:
        _err(f"error: cannot write {out}: {exc.strerror or exc}")
        return EXIT_FAILED
    _err(f"wrote {out}")
    return 0


def register(sub: Any) -> None:
    """Add ``template`` and ``export`` to the CLI's subparsers (``sub = parser.add_subparsers(...)``)."""
    s = sub.add_parser("template", help="write an empty, annotated scenario workbook (.xlsx) to fill in")
    s.add_argument("-o", "--out", required=True, help="the workbook to write, e.g. scenario.xlsx")
    s.set_defaults(func=cmd_template)

    s = sub.add_parser("export", help="write a result JSON (from `solve --json`) as a workbook (.xlsx)")
    s.add_argument("result", help="result JSON file, as written by `lepton-alloc solve --json`")
    s.add_argument("-o", "--out", default=None, help="the workbook to write (default: RESULT with .xlsx)")
    s.add_argument("--scenario", default=None, help="the scenario file it was solved from (adds its settings)")
    s.set_defaults(func=cmd_export)
