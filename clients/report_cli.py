"""``lepton-alloc report RESULT_JSON -o report.html [--png-dir DIR]``: the HTML report of a result.

RESULT_JSON is the JSON of a result (``lepton-alloc solve --json``, ``explain --json``, a
watched job's ``--json``), or ``-`` for stdin. The page opens without network access; with
``--png-dir`` each chart is also written as a PNG for slides. Exit 0 when written, 2 when the
input is not a result.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_INVALID = 2

__all__ = ["cmd_report", "register"]


def register(sub: Any) -> argparse.ArgumentParser:
    """Add the ``report`` command to the CLI's sub-parsers (``build_parser`` calls this)."""
    s: argparse.ArgumentParser = sub.add_parser(
        "report", help="write a self-contained HTML report (summary and charts) of a result JSON; PNG charts for slides")
    s.add_argument("result", metavar="RESULT_JSON", help="a result as JSON (solve --json), or - for stdin")
    s.add_argument("-o", "--out", default="report.html", help="the HTML file to write (default report.html)")
    s.add_argument("--png-dir", dest="png_dir", default=None, help="also write each chart as a PNG into this directory")
    s.add_argument("--title", default=None, help="the page title (default: the scenario's name)")
    s.set_defaults(func=cmd_report)
    return s


def cmd_report(args: argparse.Namespace) -> int:
    from lepton_alloc.models.result import result_from_dict

    from .html_report import write_report

    try:
        text = sys.stdin.read() if args.result == "-" else open(args.result, encoding="utf-8").read()
    except OSError as exc:
        print(f"error: cannot read {args.result}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        data = json.loads(text)
        result = result_from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:
        what = "not JSON" if isinstance(exc, json.JSONDecodeError) else f"not a result ({type(exc).__name__}: {exc})"
        print(f"error: {args.result} is {what}", file=sys.stderr)
        return EXIT_INVALID
    written = write_report(result, args.out, png_dir=args.png_dir, title=args.title)
    print(f"wrote {written[0]}" + (f" and {len(written) - 1} PNG chart(s) in {args.png_dir}" if args.png_dir else ""),
          file=sys.stderr)
    return 0
