"""Spreadsheets in and out (openpyxl): scenario workbooks, result workbooks, the blank template.

A **scenario workbook** has one sheet per section of a scenario file (docs/model.md §1):

- ``scenario``: one row per top-level setting (``field`` | ``value``), nested settings dotted
  (``objective.kind``, ``budget.carry_over``, ``previous_plan.change_penalty`` …);
- ``markets``: one row per market; ``options``: one row per option, tied to its market by
  ``market_id`` (rows of one market keep their order);
- ``budget`` and ``headcount``: one row per calendar year (the per-year limits);
- ``regions``, ``growth_scenarios``, ``commitments``, ``previous_plan`` (its decisions): one row
  per item.

The columns are not listed here: they are derived from the pydantic declarations of
:mod:`lepton_alloc.models.scenario` (a nested object's fields are dotted, e.g.
``compliance.lead_time_years``), so a field added to the schema appears in the workbook. Header
cells may carry a unit in brackets (``market_size (USD millions/yr)``): the reader matches the
part before the bracket, case-insensitively. Lists sit in one cell: ids and modes separated by
commas (``US, DE``), numbers by semicolons (``1.0; 2.0; -0.5``), growth-investment segments as
``up_to:return_rate`` pairs (``1.0:1.8; 3.0:1.2``). A blank cell means "absent" (the default);
``""`` is an empty text and ``[]`` an empty list.

Reading builds plain data and validates it once with :func:`parse_scenario`; every violation
keeps its field path (``markets[1].options[0].margin``) and says where it is in the workbook
(``sheet options, row 7 (DE acquire), column margin, cell F7``).

A **result workbook** (:func:`write_result_xlsx`) lays out a :class:`Result` (docs/model.md §3)
with number formats, units in the headers and frozen header rows.
"""

from __future__ import annotations

import enum
import math
import re
import types
import typing
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from lepton_alloc.models.result import Result
from lepton_alloc.models.scenario import (
    FieldViolation,
    Market,
    Scenario,
    ScenarioError,
    parse_scenario,
)

__all__ = ["XlsxScenarioError", "CellRef", "load_scenario_xlsx", "read_scenario_xlsx", "write_scenario_xlsx",
           "write_template", "write_result_xlsx", "SCENARIO_SHEETS"]

EMPTY_TEXT = '""'
EMPTY_LIST = "[]"
_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_MONEY = "#,##0.0"
_SHARE = "0.0%"
_HEADS = "0"
_RATIO = "0.000"


# ----------------------------------------------------------------------------- columns from the schema


@dataclass(frozen=True)
class Column:
    """One column of a row sheet (or one key of the ``scenario`` sheet), derived from a field."""

    path: tuple[str, ...]  # inside the row object, e.g. ("compliance", "lead_time_years")
    kind: str  # text | number | integer | flag | choice | text_list | number_list | per_year | pairs
    info: FieldInfo
    required: bool  # required whenever its object is present
    parent_optional: bool  # inside an optional object (growth_hiring, cash_flows …)
    pair_fields: tuple[str, ...] = ()  # kind "pairs": the fields of one pair, in order

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def description(self) -> str:
        return self.info.description or ""


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The type under ``Optional``/``Annotated``, and whether ``None`` is allowed."""
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            annotation = args[0]
        else:
            return annotation, optional


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _scalar_kind(t: Any) -> str:
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return "choice"
    if t is bool:
        return "flag"
    if t is int:
        return "integer"
    if t is float:
        return "number"
    return "text"


def _is_per_year(info: FieldInfo) -> bool:
    return any(getattr(getattr(m, "func", None), "__name__", "") == "_per_year" for m in info.metadata)


def _element(t: Any) -> Any | None:
    """The element type of ``tuple[X, ...]``, else None."""
    if typing.get_origin(t) is tuple:
        return _unwrap(typing.get_args(t)[0])[0]
    return None


def _columns(model: type[BaseModel], prefix: tuple[str, ...] = (), *, per_year: bool = True, pairs: bool = True,
             parent_optional: bool = False) -> list[Column]:
    """The flattened leaf columns of a model: nested objects dotted, lists of objects skipped
    at the top (they get a sheet of their own) and written as pairs below it."""
    out: list[Column] = []
    for name, info in model.model_fields.items():
        t, optional = _unwrap(info.annotation)
        path = (*prefix, name)
        elem = _element(t)
        if _is_model(t):
            inner = _columns(t, path, per_year=per_year, pairs=pairs, parent_optional=parent_optional or optional)
            out.extend(inner)
        elif elem is not None and _is_model(elem):
            if prefix and pairs:  # a list of small objects inside a row: "a:b; c:d"
                out.append(Column(path, "pairs", info, info.is_required(), parent_optional,
                                  tuple(elem.model_fields)))
        elif _is_per_year(info):
            if per_year:
                out.append(Column(path, "per_year", info, info.is_required(), parent_optional))
        elif elem is not None:
            kind = "number_list" if _scalar_kind(elem) in ("number", "integer") else "text_list"
            out.append(Column(path, kind, info, info.is_required(), parent_optional))
        else:
            out.append(Column(path, _scalar_kind(t), info, info.is_required(), parent_optional))
    return out


@dataclass(frozen=True)
class SheetSpec:
    """One sheet of a scenario workbook."""

    name: str
    layout: str  # "settings" | "rows" | "years"
    path: tuple[str, ...]  # where its objects live in a scenario ("markets", "previous_plan.decisions" …)
    columns: tuple[Column, ...]
    key: str = ""  # rows: the column that labels a row in messages
    parent_key: str = ""  # options: the column naming the parent market
    about: str = ""

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None


def _model_at(path: Sequence[str]) -> type[BaseModel]:
    model: type[BaseModel] = Scenario
    for name in path:
        t, _ = _unwrap(model.model_fields[name].annotation)
        elem = _element(t)
        model = elem if elem is not None else t
    return model


def _sheet_specs() -> tuple[SheetSpec, ...]:
    specs: list[SheetSpec] = []
    top = _columns(Scenario, per_year=False, pairs=False)
    specs.append(SheetSpec("scenario", "settings", (), tuple(top), about=(
        "Top-level settings: one row per field (nested settings dotted). A blank value takes the default.")))
    market_cols = tuple(c for c in _columns(Market) if c.path != ("options",))
    specs.append(SheetSpec("markets", "rows", ("markets",), market_cols, key="id", about=(
        "One row per market. Lists: requires and compliance.banned_modes comma-separated; "
        "growth_investment.segments as up_to:return_rate pairs separated by semicolons.")))
    option_model = _model_at(("markets", "options"))
    option_cols = _columns(option_model)
    market_id = Column(("market_id",), "text", Market.model_fields["id"], True, False)
    specs.append(SheetSpec("options", "rows", ("markets", "options"), (market_id, *option_cols), key="mode",
                           parent_key="market_id", about=(
        "One row per option of a market (market_id names it; at most one per mode). Either the growth model "
        "(initial_share, margin …) or cash_flows.* (numbers separated by semicolons, index 0 = entry year).")))
    for name in ("budget", "headcount"):
        model = _model_at((name,))
        cols = tuple(c for c in _columns(model, per_year=True) if c.kind == "per_year")
        specs.append(SheetSpec(name, "years", (name,), cols, about=(
            f"One row per calendar year (start_year … start_year + horizon_years - 1): the per-year {name} limits. "
            "Leave a column blank for no limit.")))
    for name, key, about in (
        ("regions", "name", "One row per region label; talent_cap is one number (every year) or one per year "
                            "separated by semicolons."),
        ("growth_scenarios", "name", "One row per growth scenario; probabilities sum to 1. No rows: one scenario "
                                     "'base' with probability 1."),
        ("commitments", "market_id", "One row per entry decision already taken."),
        ("previous_plan", "market_id", "The previous plan's decisions, one row per market "
                                       "(the change penalty is previous_plan.change_penalty on the scenario sheet)."),
    ):
        path = (name,) if name != "previous_plan" else ("previous_plan", "decisions")
        specs.append(SheetSpec(name, "rows", path, tuple(_columns(_model_at(path))), key=key, about=about))
    return tuple(specs)


SCENARIO_SHEETS: tuple[SheetSpec, ...] = _sheet_specs()
_SPECS = {s.name: s for s in SCENARIO_SHEETS}
_IGNORED_SHEETS = ("instructions",)


def _unit(col: Column, money: str, in_row: bool = True) -> str:
    """The unit of a column, read from its field's description (``in_row``: a cell may hold a list)."""
    if col.kind == "pairs":
        return ":".join(col.pair_fields) + "; …"
    d = col.description.lower()
    suffix = ""
    if col.kind in ("number_list", "text_list") or (col.kind == "per_year" and in_row):
        suffix = ", list"
    if col.path[-1].endswith("_years"):
        return "years"
    if "money per person-year" in d:
        return f"{money}/person-yr"
    if "money per year" in d:
        return f"{money}/yr" + suffix
    if re.search(r"\bmoney\b(?! field)", d):
        return money + suffix
    if "seconds" in d:
        return "s"
    if "people" in d:
        return "people" + suffix
    if "calendar year" in d:
        return "calendar year"
    if "fraction" in d:
        return "fraction"
    return suffix.lstrip(", ")


def _header(col: Column, money: str, in_row: bool = True) -> str:
    unit = _unit(col, money, in_row)
    return f"{col.name} ({unit})" if unit else col.name


def _default_text(col: Column) -> str:
    if col.required:
        return "required" + (f" when {col.path[0]} is used" if col.parent_optional else "")
    info = col.info
    if info.default_factory is not None:
        return "default: see description"
    default = info.default
    if default is None:
        return "optional (blank: none)"
    if isinstance(default, enum.Enum):
        default = default.value
    if isinstance(default, tuple):
        return "optional (blank: empty)" if not default else f"default: {default}"
    if isinstance(default, bool):
        return f"default: {str(default).lower()}"
    return f"default: {default}"


# ----------------------------------------------------------------------------- errors with cells


@dataclass(frozen=True)
class CellRef:
    """Where a value sits in a workbook (for messages)."""

    sheet: str
    row: int | None = None
    column: str | None = None  # the column's field name
    label: str = ""  # the row's key, e.g. "DE acquire"
    col_index: int | None = None  # 1-based
    item: int | None = None  # 1-based element of a list cell

    def __str__(self) -> str:
        parts = [f"sheet {self.sheet}"]
        if self.row is not None:
            parts.append(f"row {self.row}" + (f" ({self.label})" if self.label else ""))
        if self.column:
            parts.append(f"column {self.column}")
        if self.item is not None:
            parts.append(f"item {self.item}")
        if self.row is not None and self.col_index is not None:
            parts.append(f"cell {get_column_letter(self.col_index)}{self.row}")
        return ", ".join(parts)


class XlsxScenarioError(ScenarioError):
    """A :class:`ScenarioError` of a workbook: each violation's description starts with its cell;
    ``cells`` holds the :class:`CellRef` of each violation (None where it has no place)."""

    def __init__(self, violations: Iterable[tuple[FieldViolation, CellRef | None]]):
        pairs = list(violations)
        self.cells: list[CellRef | None] = [c for _, c in pairs]
        super().__init__(v for v, _ in pairs)


_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def _parts(path: str) -> list[str | int]:
    return [int(m.group(2)) if m.group(2) is not None else m.group(1) for m in _TOKEN.finditer(path)]


def _join(parts: Sequence[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


class _Locations:
    """Field path -> cell, filled while reading, consulted for every violation."""

    def __init__(self) -> None:
        self.cells: dict[str, CellRef] = {}
        self.row_specs: dict[str, SheetSpec] = {}  # a row object's path -> its sheet
        self.col_index: dict[tuple[str, str], int] = {}  # (sheet, column name) -> index

    def find(self, path: str) -> CellRef | None:
        parts = _parts(path)
        for n in range(len(parts), 0, -1):
            key = _join(parts[:n])
            ref = self.cells.get(key)
            if ref is None:
                continue
            rest = parts[n:]
            if ref.column is None and ref.row is not None and rest:
                spec = self.row_specs.get(key)
                names = [str(p) for p in rest if isinstance(p, str)]
                for k in range(len(names), 0, -1):
                    col = spec.column(".".join(names[:k])) if spec else None
                    if col is not None:
                        idx = self.col_index.get((ref.sheet, col.name))
                        return CellRef(ref.sheet, ref.row, col.name, ref.label, idx)
            if ref.column is not None and rest and isinstance(rest[0], int) and ref.item is None:
                return CellRef(ref.sheet, ref.row, ref.column, ref.label, ref.col_index, rest[0] + 1)
            return ref
        return None


# ----------------------------------------------------------------------------- reading cells


_INT = re.compile(r"[+-]?\d+")


def _number_token(token: str) -> Any:
    t = token.strip()
    if _INT.fullmatch(t):
        return int(t)
    try:
        return float(t)
    except ValueError:
        return t  # validation reports it as text, with its path


def _split(text: str, seps: str) -> list[str]:
    return [p.strip() for p in re.split(f"[{re.escape(seps)}]", text) if p.strip()]


def _cell_value(col: Column, raw: Any) -> Any:
    """A cell as plain scenario data; ``None`` = absent."""
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw.strip() == "":
            return None
        if raw.strip() == EMPTY_TEXT:
            return ""
    kind = col.kind
    if kind == "text":
        if isinstance(raw, float) and raw.is_integer():
            return str(int(raw))
        return str(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else raw
    if kind in ("number", "integer"):
        return _number_token(raw) if isinstance(raw, str) else raw
    if kind == "flag":
        if isinstance(raw, str) and raw.strip().lower() in ("true", "yes", "y", "1", "false", "no", "n", "0"):
            return raw.strip().lower() in ("true", "yes", "y", "1")
        if isinstance(raw, int) and not isinstance(raw, bool) and raw in (0, 1):
            return bool(raw)
        return raw
    if kind == "choice":
        return raw.strip() if isinstance(raw, str) else raw
    if kind == "text_list":
        if isinstance(raw, str):
            return [] if raw.strip() == EMPTY_LIST else _split(raw, ",;")
        return [str(raw)]
    if kind in ("number_list", "per_year"):
        if isinstance(raw, str):
            if raw.strip() == EMPTY_LIST:
                return []
            values = [_number_token(p) for p in _split(raw, ";")]
            return values if kind == "number_list" or len(values) != 1 or ";" in raw else values[0]
        return [raw] if kind == "number_list" else raw
    if kind == "pairs":
        if not isinstance(raw, str):
            return raw  # validation: must be a list
        if raw.strip() == EMPTY_LIST:
            return []
        out = []
        for part in _split(raw, ";"):
            values = [_number_token(v) for v in part.split(":")]
            out.append(dict(zip(col.pair_fields, values)) if len(values) == len(col.pair_fields) else part)
        return out
    return raw


def _set(target: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for name in path[:-1]:
        target = target.setdefault(name, {})
    target[path[-1]] = value


def _header_name(cell: Any) -> str | None:
    if cell is None:
        return None
    text = str(cell).strip()
    if not text:
        return None
    return text.split("(", 1)[0].strip().lower()


class _Reader:
    def __init__(self) -> None:
        self.errors: list[tuple[FieldViolation, CellRef | None]] = []
        self.loc = _Locations()

    def error(self, path: str, ref: CellRef | None, message: str) -> None:
        self.errors.append((FieldViolation(path, f"{ref}: {message}" if ref else message), ref))

    def table(self, ws: Any, spec: SheetSpec) -> tuple[list[tuple[int, dict[str, Any]]], dict[str, int]]:
        """The data rows of a row/year sheet: (Excel row, column name -> raw cell)."""
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None) or ()
        known = {c.name.lower(): c.name for c in spec.columns}
        if spec.layout == "years":
            known["year"] = "year"
        index: dict[str, int] = {}
        for i, cell in enumerate(header, start=1):
            name = _header_name(cell)
            if name is None:
                continue
            if name not in known:
                self.error(spec.name, CellRef(spec.name, 1, str(cell), col_index=i),
                           f"unknown column {str(cell)!r} (columns: {', '.join(known.values())})")
                continue
            if known[name] in index:
                self.error(spec.name, CellRef(spec.name, 1, known[name], col_index=i), "column appears twice")
                continue
            index[known[name]] = i
            self.loc.col_index[(spec.name, known[name])] = i
        out = []
        for r, values in enumerate(rows, start=2):
            cells = {n: values[i - 1] if i - 1 < len(values) else None for n, i in index.items()}
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in cells.values()):
                continue
            out.append((r, cells))
        return out, index

    def settings(self, ws: Any, spec: SheetSpec, data: dict[str, Any]) -> None:
        rows = ws.iter_rows(values_only=True)
        header = [(_header_name(c) or "") for c in (next(rows, None) or ())]
        fcol = header.index("field") + 1 if "field" in header else 1
        vcol = header.index("value") + 1 if "value" in header else 2
        by_name = {c.name.lower(): c for c in spec.columns}
        seen: dict[str, int] = {}
        for r, values in enumerate(rows, start=2):
            key = values[fcol - 1] if len(values) >= fcol else None
            raw = values[vcol - 1] if len(values) >= vcol else None
            if key is None or not str(key).strip():
                if raw is not None and str(raw).strip():
                    self.error(spec.name, CellRef(spec.name, r, "field", col_index=fcol), "a value without a field name")
                continue
            name = _header_name(key) or ""
            col = by_name.get(name)
            ref = CellRef(spec.name, r, "value", str(key).strip(), vcol)
            if col is None:
                self.error(spec.name, CellRef(spec.name, r, "field", str(key).strip(), fcol),
                           f"unknown setting {str(key).strip()!r}")
                continue
            if col.name in seen:
                self.error(col.name, ref, f"{col.name} is set twice (also row {seen[col.name]})")
                continue
            seen[col.name] = r
            self.loc.cells[col.name] = ref
            value = _cell_value(col, raw)
            if value is not None:
                _set(data, col.path, value)

    def rows(self, ws: Any, spec: SheetSpec, data: dict[str, Any]) -> None:
        table, _ = self.table(ws, spec)
        self.loc.cells.setdefault(_join(list(spec.path)), CellRef(spec.name))
        if spec.parent_key:
            self._child_rows(table, spec, data)
            return
        items: list[dict[str, Any]] = []
        for r, cells in table:
            k = len(items)
            base = _join([*spec.path, k])
            label = str(cells.get(spec.key) or "")
            items.append(self._row_object(spec, cells, r, label, base))
        if items or spec.path == ("markets",):
            _set(data, spec.path, items)

    def _row_object(self, spec: SheetSpec, cells: dict[str, Any], r: int, label: str, base: str) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        self.loc.cells[base] = CellRef(spec.name, r, None, label)
        self.loc.row_specs[base] = spec
        for col in spec.columns:
            if col.name == spec.parent_key or col.name not in cells:
                continue
            self.loc.cells[f"{base}.{col.name}"] = CellRef(spec.name, r, col.name, label,
                                                            self.loc.col_index.get((spec.name, col.name)))
            value = _cell_value(col, cells[col.name])
            if value is not None:
                _set(obj, col.path, value)
        return obj

    def _child_rows(self, table: list[tuple[int, dict[str, Any]]], spec: SheetSpec, data: dict[str, Any]) -> None:
        markets = data.get("markets") or []
        index: dict[str, int] = {}
        for k, m in enumerate(markets):
            if isinstance(m.get("id"), str):
                index.setdefault(m["id"], k)
        for r, cells in table:
            parent = _cell_value(spec.columns[0], cells.get(spec.parent_key))
            mode = cells.get(spec.key)
            label = f"{parent} {mode}" if mode is not None else str(parent)
            at = index.get(parent) if isinstance(parent, str) else None
            if at is None:
                ref = CellRef(spec.name, r, spec.parent_key, label, self.loc.col_index.get((spec.name, spec.parent_key)))
                self.error(spec.name, ref, "market_id is required" if parent is None
                           else f"names market {parent!r}, which is not on the markets sheet")
                continue
            options = markets[at].setdefault(spec.path[-1], [])
            base = _join(["markets", at, spec.path[-1], len(options)])
            options.append(self._row_object(spec, cells, r, label, base))

    def years(self, ws: Any, spec: SheetSpec, data: dict[str, Any]) -> None:
        table, index = self.table(ws, spec)
        start, horizon = data.get("start_year", 0), data.get("horizon_years")
        known_horizon = isinstance(start, int) and isinstance(horizon, int) and 1 <= horizon <= 1000
        for col in spec.columns:
            self.loc.cells[_join([*spec.path, *col.path])] = CellRef(spec.name, None, col.name)
        by_t: dict[int, tuple[int, dict[str, Any]]] = {}
        year_idx = index.get("year")
        for n, (r, cells) in enumerate(table):
            year = _cell_value(Column(("year",), "integer", FieldInfo(), True, False), cells.get("year"))
            ref = CellRef(spec.name, r, "year", "", year_idx)
            if not known_horizon:
                t = n
            elif isinstance(year, int) and not isinstance(year, bool):
                t = year - start
                if not 0 <= t < horizon:
                    self.error(spec.name, ref, f"year {year} is outside the horizon {start}..{start + horizon - 1}")
                    continue
            else:
                self.error(spec.name, ref, "a calendar year is required" if year is None else f"{year!r} is not a year")
                continue
            if t in by_t:
                self.error(spec.name, ref, f"year {year} appears twice (also row {by_t[t][0]})")
                continue
            by_t[t] = (r, cells)
        n_years: int = horizon if known_horizon and isinstance(horizon, int) else len(table)
        for col in spec.columns:
            given = {t: _cell_value(col, cells.get(col.name)) for t, (_, cells) in by_t.items()}
            if all(v is None for v in given.values()):
                continue
            path = _join([*spec.path, *col.path])
            missing = [start + t for t in range(n_years) if t not in by_t] if known_horizon else []
            if missing:
                self.error(path, CellRef(spec.name, None, col.name),
                           f"needs a row for every year; missing {', '.join(map(str, missing))}")
                continue
            for t, (r, _) in by_t.items():
                self.loc.cells[f"{path}[{t}]"] = CellRef(spec.name, r, col.name, str(start + t if known_horizon else t + 1),
                                                         self.loc.col_index.get((spec.name, col.name)))
            _set(data, (*spec.path, *col.path), [given[t] for t in range(n_years)])


def read_scenario_xlsx(path: str | Path) -> tuple[dict[str, Any], _Locations]:
    """The plain data of a scenario workbook (not yet validated) and where each field sits."""
    p = Path(path)
    try:
        wb = load_workbook(p, read_only=True, data_only=True)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ScenarioError([FieldViolation("<file>", f"cannot read {p} as an .xlsx workbook: {exc}")]) from None
    reader = _Reader()
    data: dict[str, Any] = {}
    try:
        names = {ws.title.strip().lower(): ws for ws in wb.worksheets}
        for name in names:
            if name not in _SPECS and name not in _IGNORED_SHEETS and not name.startswith("_"):
                reader.error("<file>", CellRef(names[name].title),
                             f"unknown sheet (sheets: {', '.join(_SPECS)}; a sheet named _… is ignored)")
        for spec in SCENARIO_SHEETS:  # in order: scenario (start_year, horizon) and markets first
            ws = names.get(spec.name)
            if ws is None:
                if spec.name in ("scenario", "markets"):
                    reader.error("<file>", None, f"the workbook has no sheet {spec.name!r}")
                continue
            getattr(reader, spec.layout)(ws, spec, data)
    finally:
        wb.close()
    if reader.errors:
        raise XlsxScenarioError(reader.errors)
    return data, reader.loc


def load_scenario_xlsx(path: str | Path) -> Scenario:
    """Read and validate a scenario workbook; errors name the sheet, row, column and field path."""
    data, loc = read_scenario_xlsx(path)
    try:
        return parse_scenario(data)
    except ScenarioError as exc:
        out = []
        for v in exc.violations:
            ref = loc.find(v.field)
            out.append((FieldViolation(v.field, f"{ref}: {v.description}" if ref else v.description), ref))
        raise XlsxScenarioError(out) from None


# ----------------------------------------------------------------------------- writing a scenario


def _get(obj: Any, path: Sequence[str]) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def _num_text(v: Any) -> str:
    return repr(float(v)) if isinstance(v, float) else str(v)


def _to_cell(col: Column, v: Any) -> Any:
    if v is None:
        return None
    if col.kind in ("text", "choice"):
        return EMPTY_TEXT if v == "" else v
    if col.kind == "text_list":
        return ", ".join(v) if v else None
    if col.kind == "number_list":
        return "; ".join(_num_text(x) for x in v) if v else None
    if col.kind == "per_year":
        if v and all(x == v[0] for x in v):
            return v[0]
        return "; ".join(_num_text(x) for x in v)
    if col.kind == "pairs":
        return "; ".join(":".join(_num_text(item[f]) for f in col.pair_fields) for item in v) if v else EMPTY_LIST
    return v


def _style_header(ws: Worksheet, row: int = 1) -> None:
    for cell in ws[row]:
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(wrap_text=False, vertical="top")


def _fit_columns(ws: Worksheet, minimum: int = 6, maximum: int = 60) -> None:
    widths: dict[int, int] = {}
    for row in ws.iter_rows():
        for cell in row:
            if cell.value is None:
                continue
            v = cell.value
            text = f"{v:,.1f}" if isinstance(v, float) else str(v)
            widths[cell.column] = max(widths.get(cell.column, 0), len(text))
    for col, w in widths.items():
        ws.column_dimensions[get_column_letter(col)].width = max(minimum, min(maximum, w + 2))


def _comment(col: Column) -> Comment:
    text = f"{col.name}: {col.description}\n{_default_text(col)}"
    c = Comment(text, "lepton-alloc")
    c.width, c.height = 300, 120
    return c


def _money_label(s: Scenario | None) -> str:
    return f"{s.currency} {s.money_unit.value}" if s is not None else "money"


def write_scenario_xlsx(scenario: Scenario | None, path: str | Path) -> None:
    """A scenario as a workbook (``None``: the blank, annotated template)."""
    data = scenario.to_dict() if scenario is not None else {}
    money = _money_label(scenario)
    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    _instructions(wb.create_sheet("instructions"), money)
    for spec in SCENARIO_SHEETS:
        ws = wb.create_sheet(spec.name)
        if spec.layout == "settings":
            ws.append(["field", "value", "unit", "required / default", "description"])
            for col in spec.columns:
                ws.append([col.name, _to_cell(col, _get(data, col.path)), _unit(col, money), _default_text(col),
                           col.description])
        elif spec.layout == "years":
            ws.append(["year", *(_header(c, money, False) for c in spec.columns)])
            if scenario is not None:
                for t, year in enumerate(scenario.years):
                    values = [_get(data, (*spec.path, *c.path)) for c in spec.columns]
                    ws.append([year, *(v[t] if v is not None else None for v in values)])
        else:
            ws.append([_header(c, money) for c in spec.columns])
            for parent, obj in _row_objects(data, spec):
                ws.append([parent if c.name == spec.parent_key else _to_cell(c, _get(obj, c.path))
                           for c in spec.columns])
            if spec.name == "options":
                _mark_empty_cash_flows(ws, spec, data)
        cols = spec.columns if spec.layout != "settings" else ()
        offset = 1 if spec.layout == "years" else 0
        for i, col in enumerate(cols, start=1 + offset):
            ws.cell(1, i).comment = _comment(col)
        _style_header(ws)
        ws.freeze_panes = "A2" if spec.layout != "rows" else "B2"
        _fit_columns(ws)
    wb.active = 1
    wb.save(path)


def _row_objects(data: dict[str, Any], spec: SheetSpec) -> Iterator[tuple[str, dict[str, Any]]]:
    if spec.parent_key:
        for m in data.get("markets") or []:
            for o in m.get(spec.path[-1]) or []:
                yield m["id"], o
    else:
        for obj in _get(data, spec.path) or []:
            yield "", obj


def _mark_empty_cash_flows(ws: Worksheet, spec: SheetSpec, data: dict[str, Any]) -> None:
    """An option whose cash_flows are all empty keeps them: ``[]`` in the first cash-flow cell."""
    first = next((i for i, c in enumerate(spec.columns, start=1) if c.path[0] == "cash_flows"), None)
    if first is None:
        return
    for r, (_, o) in enumerate(_row_objects(data, spec), start=2):
        cf = o.get("cash_flows")
        if cf is not None and not any(cf.values()):
            ws.cell(r, first).value = EMPTY_LIST


def _instructions(ws: Worksheet, money: str) -> None:
    lines = [
        "Lepton Allocator scenario workbook (docs/model.md §1). Fill the sheets, then: lepton-alloc solve FILE.xlsx",
        "",
        "Sheet 'scenario': one row per setting; a blank value takes the default. Set at least horizon_years.",
        "Every other sheet: row 1 holds the column names (a unit in brackets is ignored when read); data from row 2.",
        "Hover over a header cell for the field's description and default. Blank cell = absent (the default).",
        'Lists: ids/modes comma-separated ("US, DE"); numbers semicolon-separated ("1.0; 2.0"); '
        'segments as up_to:return_rate pairs ("1.0:1.8; 3.0:1.2"). "" = empty text, [] = empty list.',
        f"Money is in {money if money != 'money' else 'the currency and money_unit set on the scenario sheet'} "
        "(labels only: nothing is converted); rates and shares are fractions (0.05 = 5 %); years are calendar years.",
        "Sheets whose name starts with _ are ignored.",
        "",
    ]
    for line in lines:
        ws.append([line])
    ws.append(["sheet", "column", "unit", "required / default", "description"])
    header_row = ws.max_row
    for spec in SCENARIO_SHEETS:
        ws.append([spec.name, "", "", "", spec.about])
        ws.cell(ws.max_row, 1).font = _HEADER_FONT
        if spec.layout == "years":
            ws.append(["", "year", "calendar year", "required", "The calendar year of the row."])
        for col in spec.columns:
            ws.append(["", col.name, _unit(col, money), _default_text(col), col.description])
    _style_header(ws, header_row)
    ws.column_dimensions["A"].width = 18
    ws.column_dimensions["B"].width = 36
    ws.column_dimensions["C"].width = 24
    ws.column_dimensions["D"].width = 30
    ws.column_dimensions["E"].width = 100


def write_template(path: str | Path) -> None:
    """The blank scenario workbook: every sheet with its headers, units and descriptions."""
    write_scenario_xlsx(None, path)


# ----------------------------------------------------------------------------- writing a result


@dataclass
class _Table:
    headers: list[str]
    formats: list[str | None]
    rows: list[list[Any]] = field(default_factory=list)


def _write_table(ws: Worksheet, table: _Table, *, start_row: int = 1, freeze: str | None = "A2") -> int:
    for i, h in enumerate(table.headers, start=1):
        ws.cell(start_row, i, h)
    _style_header(ws, start_row)
    for r, row in enumerate(table.rows, start=start_row + 1):
        for i, v in enumerate(row, start=1):
            if isinstance(v, enum.Enum):
                v = v.value
            if isinstance(v, float) and not math.isfinite(v):
                v = str(v)
            cell = ws.cell(r, i, v)
            fmt = table.formats[i - 1] if i - 1 < len(table.formats) else None
            if fmt and isinstance(v, (int, float)) and not isinstance(v, bool):
                cell.number_format = fmt
    if freeze:
        ws.freeze_panes = freeze
    return start_row + len(table.rows)


def _steps_text(lim: Any) -> str:
    parts = []
    for st in lim.steps:
        pct = f"{'-' if st.direction == 'down' else '+'}{100 * st.relative_step:g} %"
        if st.objective_change is None:
            parts.append(f"{pct}: {st.status.value if isinstance(st.status, enum.Enum) else st.status}")
        else:
            parts.append(f"{pct}: {st.objective_change:+,.1f}" + (" (plan changes)" if st.plan_changes else "")
                         + (" cut short" if st.cut_short else ""))
    return "; ".join(parts)


def _limit_unit(constraint: str, money: str) -> str:
    name = constraint.split("[", 1)[0]
    if "budget" in name and "share" not in name:
        return money
    if any(k in name for k in ("head", "hire", "talent")):
        return "people"
    if "share" in name or "risk" in name:
        return "fraction"
    if "npv" in name or "cvar" in name:
        return money
    return ""


def write_result_xlsx(result: Result, path: str | Path, scenario: Scenario | None = None) -> None:
    """A result as a workbook: summary, decisions, spend and heads by market x year, year totals
    against their limits, limits with local prices and step values, market values, and why it is
    infeasible when it is."""
    money = f"{result.currency} {result.money_unit}"
    m_ = f"({money})"
    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]

    # summary
    ws = wb.create_sheet("summary")
    summary = _Table(["item", "value", "unit"], [None, None, None])
    add = lambda label, value, unit="", fmt=None: summary.rows.append([label, value, unit, fmt])  # noqa: E731
    add("scenario", result.scenario_name)
    add("scenario sha256", result.scenario_sha256)
    add("status", result.status.value if isinstance(result.status, enum.Enum) else result.status)
    add("message", result.message)
    add("objective", result.objective_value, money, _MONEY)
    add("best bound", result.best_bound, money, _MONEY)
    add("gap", result.gap, "", "0.0000%")
    add("currency", result.currency)
    add("money unit", result.money_unit)
    if scenario is not None:
        add("objective kind", scenario.objective.kind.value)
        add("start year", scenario.start_year)
        add("horizon", scenario.horizon_years, "years")
        add("discount rate", scenario.discount_rate, "", _SHARE)
        if scenario.sha256() != result.scenario_sha256:
            add("note", "the scenario given is not the one this result was solved from (sha256 differs)")
    k = result.kpis
    if k is not None:
        add("E[NPV]", k.expected_npv, money, _MONEY)
        add(f"CVaR (alpha {k.cvar_alpha:g})", k.cvar, money, _MONEY)
        add("payback year", k.payback_year, "calendar year")
        add("markets entered", k.markets_entered, "markets", _HEADS)
        add("final-year contribution", k.final_year_contribution, f"{money}/yr", _MONEY)
        add("plan-change penalty", k.change_penalty, money, _MONEY)
        for name, v in k.npv_by_scenario.items():
            add(f"NPV, growth scenario {name}", v, money, _MONEY)
    add("solve time", result.timings.total_seconds, "s", "0.000")
    rows = summary.rows
    summary.rows = [r[:3] for r in rows]
    _write_table(ws, summary)
    for r, row in enumerate(rows, start=2):
        if row[3] and isinstance(row[1], (int, float)):
            ws.cell(r, 2).number_format = row[3]
    if result.objective_terms:
        start = ws.max_row + 2
        ws.cell(start - 1, 1, "The objective, term by term (contribution = weight x value; they sum to it)").font = _HEADER_FONT
        terms = _Table(["term", "weight", f"value {m_}", f"contribution {m_}"], [None, _RATIO, _MONEY, _MONEY],
                       [[t.term, t.weight, t.value, t.contribution] for t in result.objective_terms])
        _write_table(ws, terms, start_row=start, freeze=None)
    _fit_columns(ws)

    # decisions
    terms_by = {t.market_id: t for t in result.market_terms}
    years = [y.year for y in result.years] or sorted({y.year for m in result.markets for y in m.years})
    risk = {m.id: m for m in scenario.markets} if scenario is not None else {}
    dec = _Table(["market", "name", "region", "entered", "mode", "entry year", f"E[NPV] {m_}",
                  f"terminal value {m_}", f"change penalty {m_}", f"total spend {m_}", "peak heads (people)"],
                 [None, None, None, None, None, "0", _MONEY, _MONEY, _MONEY, _MONEY, _HEADS])
    if risk:
        dec.headers.append("risk score")
        dec.formats.append(_RATIO)
    for m in sorted(result.markets, key=lambda m: (not m.entered, m.entry_year or 0, m.id)):
        t = terms_by.get(m.id)
        row = [m.id, m.name, m.region, m.entered, m.mode.value if m.mode else None, m.entry_year, m.expected_npv,
               t.terminal_value if t else None, t.change_penalty if t else None,
               math.fsum(y.spend for y in m.years), max((y.heads for y in m.years), default=0.0)]
        if risk:
            row.append(risk[m.id].risk_score if m.id in risk else None)
        dec.rows.append(row)
    ws = wb.create_sheet("decisions")
    _write_table(ws, dec, freeze="B2")
    _fit_columns(ws)

    # spend and heads by market x year
    for sheet, attr, unit, fmt in (("spend", "spend", f"{money}/yr", _MONEY), ("heads", "heads", "people", _HEADS)):
        ws = wb.create_sheet(sheet)
        ws.cell(1, 1, f"{sheet} ({unit}) by market and calendar year").font = _HEADER_FONT
        mat = _Table(["market", "name", *[str(y) for y in years], f"total ({unit})" if sheet == "spend" else "peak (people)"],
                     [None, None, *[fmt] * len(years), fmt])
        col_sums = [0.0] * len(years)
        for m in result.markets:
            by_year = {y.year: getattr(y, attr) for y in m.years}
            vals = [by_year.get(y, 0.0) for y in years]
            col_sums = [a + b for a, b in zip(col_sums, vals)]
            mat.rows.append([m.id, m.name, *vals, math.fsum(vals) if sheet == "spend" else max(vals, default=0.0)])
        mat.rows.append(["total", "", *col_sums, math.fsum(col_sums) if sheet == "spend" else max(col_sums, default=0.0)])
        last = _write_table(ws, mat, start_row=2, freeze="C3")
        for c in range(1, len(mat.headers) + 1):
            ws.cell(last, c).font = _HEADER_FONT
        _fit_columns(ws)

    # per-year totals against limits
    yt = _Table(["year", f"spend ({money}/yr)", f"budget ({money}/yr)", f"cumulative spend {m_}",
                 f"cumulative budget {m_}", "heads (people)", "headcount cap (people)", "net hires (people)",
                 "net hires limit (people)", f"expected contribution ({money}/yr)", f"expected net cash flow ({money}/yr)"],
                ["0", _MONEY, _MONEY, _MONEY, _MONEY, _HEADS, _HEADS, _HEADS, _HEADS, _MONEY, _MONEY],
                [[y.year, y.spend, y.budget_limit, y.cumulative_spend, y.cumulative_budget, y.heads, y.headcount_cap,
                  y.net_hires, y.net_hires_limit, y.expected_contribution, y.expected_net_cash_flow]
                 for y in result.years])
    ws = wb.create_sheet("years")
    _write_table(ws, yt, freeze="B2")
    _fit_columns(ws)

    # limits (explanations)
    ws = wb.create_sheet("limits")
    lt = _Table(["constraint", "unit", "use", "limit", "slack", "binds", "local price (objective per unit of the limit)",
                 "note", "step values (objective change)"],
                [None, None, _MONEY, _MONEY, _MONEY, None, "#,##0.000", None, None])
    for lim in result.limits:
        unit = _limit_unit(lim.constraint, money)
        lt.rows.append([lim.constraint, unit, lim.use, lim.limit, lim.slack, lim.binds, lim.local_price,
                        lim.local_price_note, _steps_text(lim)])
    _write_table(ws, lt)
    for r, lim in enumerate(result.limits, start=2):
        unit = _limit_unit(lim.constraint, money)
        for c in (3, 4, 5):
            ws.cell(r, c).number_format = _HEADS if unit == "people" else (_RATIO if unit == "fraction" else _MONEY)
    if not result.limits:
        ws.cell(2, 1, "no limits reported (no plan, or no limits in the scenario)")
    _fit_columns(ws)

    if result.market_values:
        ws = wb.create_sheet("market_values")
        mv = _Table(["market", "entered", "test", f"objective {m_}", f"objective change {m_}", "forced-in mode",
                     "forced-in entry year", "blocking limits", "re-solve status", "cut short"],
                    [None, None, None, _MONEY, _MONEY, None, "0", None, None, None],
                    [[v.market_id, v.entered, "forced out" if v.entered else "forced in", v.objective, v.objective_change,
                      v.mode.value if v.mode else None, v.entry_year, ", ".join(v.blocking),
                      v.status.value if isinstance(v.status, enum.Enum) else v.status, v.cut_short]
                     for v in result.market_values])
        _write_table(ws, mv)
        _fit_columns(ws)

    if result.infeasibility is not None:
        inf = result.infeasibility
        ws = wb.create_sheet("infeasibility")
        ct = _Table(["conflicting limit", "explanation"], [None, None],
                    [[c, inf.explanation[i] if i < len(inf.explanation) else ""] for i, c in enumerate(inf.constraints)])
        for extra in inf.explanation[len(inf.constraints):]:
            ct.rows.append(["", extra])
        last = _write_table(ws, ct)
        ws.cell(last + 2, 1, f"method: {inf.method}")
        if inf.relaxations:
            rt = _Table(["limit to move", "limit", "needed", "change"], [None, _MONEY, _MONEY, _MONEY],
                        [[x.constraint, x.limit, x.needed, x.change] for x in inf.relaxations])
            _write_table(ws, rt, start_row=last + 4, freeze=None)
        _fit_columns(ws, maximum=100)

    wb.save(path)

