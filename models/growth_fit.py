"""Market data → projected growth: fit the share model of docs/model.md §2.2 to a market history.

A finance team keeps a market-history CSV with one row per market and year::

    market_id,year,revenue,total_revenue[,mode][,any other column]

``revenue`` is the revenue of the business whose share is being tracked (ours, or the reference
player's) and ``total_revenue`` the whole market's, in the same money unit; their ratio is the
market share of that year. Column names are configurable (:class:`Columns`); extra columns are
ignored; a ``mode`` column is optional (see "Reading" below).

The fit
-------
Per market (and per mode, when the file has a mode column) ordinary least squares on the log
share::

    log S(year) = a + b · (year − last_year) + e        S(year) = S_last · (1 + r)^(year − last_year)

with ``r = exp(b) − 1``. The confidence interval on r comes from the slope's standard error and
Student's t with n − 2 degrees of freedom (default 90 %, two-sided): ``r_low, r_high =
exp(b ∓ t·se) − 1``. Two usable years give an exact fit and no interval (0 degrees of freedom);
one usable year cannot be fitted. The same fit on ``total_revenue`` gives the market's own growth
g with its interval; it only feeds the growth scenarios' ``market_growth_delta``.

Reading of S0 and the time origin
---------------------------------
The scenario's S0 (``initial_share``) is the share in the entry year (§2.2). The fit writes
``initial_share = S(start_year)``, the fitted trajectory evaluated (extrapolated, usually one
year) at the scenario's ``start_year``, and ``share_growth = r``. An entry later than
``start_year`` therefore starts from that share, not from the trend's later value: the model
compounds the share from the entry year on. The fitted share is clipped into [0, 1].

Which options receive the fit: without a mode column the history is the market's organic share
trajectory, and every growth-model option of the market (an option without ``cash_flows``) gets
the same ``initial_share`` and ``share_growth``; their costs, margins, caps and teams stay as the
scenario has them. With a mode column, a history row applies to that mode's option only. Options
with explicit ``cash_flows`` are never changed. Markets of the scenario absent from the data keep
their values.

Growth scenarios (bear / base / bull, probabilities 0.25 / 0.50 / 0.25)
-------------------------------------------------------------------------
The scenario's multiplier and delta are portfolio-wide, so the per-market intervals are pooled by
their median:

* ``share_growth_multiplier`` = median over markets with r > ``MIN_GROWTH`` of r_low / r (bear)
  and r_high / r (bull), base 1. Markets with r ≤ ``MIN_GROWTH`` (flat or shrinking share) or no
  interval do not vote: a multiplier scales r, and for a shrinking share a "bear" multiplier
  below 1 would slow the decline. The bear multiplier is clipped into [``MIN_MULTIPLIER``, 1], the
  bull one into [1, ``MAX_MULTIPLIER``] and below what keeps 1 + r·m > 0 for every option. No
  voting market: multipliers 1 (and a warning).
* ``market_growth_delta`` = median of g_low − g (bear) and g_high − g (bull), base 0, kept so that
  1 + g + Δ stays > 0.

These scenarios replace the scenario's ``growth_scenarios`` on a merge: they come from the data.

Problems with the data are :class:`DataIssue` values (row number as in the file, header = row 1;
column; message). Unusable rows are dropped and reported as warnings; :class:`MarketDataError`
is raised when the file cannot be used at all, or (on a merge) when a market of the scenario has
data but no fit.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CONFIDENCE = 0.90
SCENARIO_PROBABILITIES = {"bear": 0.25, "base": 0.50, "bull": 0.25}
MIN_GROWTH = 0.005        # r at or below this does not vote for the share-growth multipliers
MIN_MULTIPLIER = 0.05     # the schema requires a multiplier > 0
MAX_MULTIPLIER = 3.0
ROUND = 6                 # significant digits written into a scenario

# ----------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class DataIssue:
    """One problem in the market data: where (file row, header = 1; column) and what."""

    row: int | None
    column: str | None
    message: str
    market: str | None = None

    def __str__(self) -> str:
        where = [f"row {self.row}"] if self.row is not None else []
        if self.column:
            where.append(self.column)
        return f"{', '.join(where)}: {self.message}" if where else self.message


class MarketDataError(ValueError):
    """Market data that cannot be used; carries every problem found (fatal ones and warnings)."""

    def __init__(self, issues: Iterable[DataIssue], source: str = "market data"):
        self.issues: list[DataIssue] = list(issues)
        self.source = source
        lines = "\n".join(f"  - {i}" for i in self.issues)
        super().__init__(f"{source}: unusable market data ({len(self.issues)} problem(s)):\n{lines}")


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Columns:
    """Column names of the market-history CSV (matched case-insensitively, spaces trimmed)."""

    market: str = "market_id"
    year: str = "year"
    revenue: str = "revenue"
    total: str = "total_revenue"
    mode: str = "mode"          # optional: absent from the header means "every growth-model option"

    @classmethod
    def of(cls, **names: str | None) -> Columns:
        """Columns from keyword names (``market=``, ``year=``, ``revenue=``, ``total=``, ``mode=``); None = default."""
        unknown = sorted(set(names) - {"market", "year", "revenue", "total", "mode"})
        if unknown:
            raise TypeError(f"unknown column name keyword(s): {', '.join(unknown)}")
        return cls(**{k: v for k, v in names.items() if v})


@dataclass
class History:
    """The usable share history of one market (and mode, when the data has modes)."""

    market: str
    mode: str | None
    years: list[int] = field(default_factory=list)
    revenue: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.market, self.mode)

    @property
    def shares(self) -> np.ndarray:
        return np.asarray(self.revenue, dtype=float) / np.asarray(self.total, dtype=float)


@dataclass
class MarketData:
    histories: dict[tuple[str, str | None], History]
    issues: list[DataIssue]
    has_mode: bool
    rows_read: int
    rows_used: int
    dropped: dict[tuple[str, str | None], list[int]] = field(default_factory=dict)  # rows of keys with no usable row


_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)?(\.\d*)?([eE][-+]?\d+)?$")


def _number(text: str) -> float | None:
    """A finance-style number: ``1234.5``, ``1,234.5``, `` 12 ``; None when it is not one."""
    t = text.strip().replace("\u00a0", "").replace(" ", "")
    if not t or not _NUMBER.match(t) or not any(c.isdigit() for c in t):
        return None
    try:
        v = float(t.replace(",", ""))
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _year(text: str) -> int | None:
    v = _number(text)
    if v is None or v != int(v) or not 1800 <= v <= 2200:
        return None
    return int(v)


def read_market_csv(source: str | Path | io.TextIOBase, columns: Columns | None = None,
                    known_markets: Iterable[str] | None = None) -> MarketData:
    """Read a market-history CSV; unusable rows are dropped and listed in ``issues``.

    Raises :class:`MarketDataError` when the file cannot be read, lacks a required column or has
    no usable row. ``known_markets``: ids that may appear; other ids are reported and dropped.
    """
    cols = columns or Columns()
    name = str(source) if isinstance(source, str | Path) else "market data"
    if isinstance(source, str | Path):
        try:
            text = Path(source).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise MarketDataError([DataIssue(None, None, f"cannot read {source}: {exc.strerror}")], name) from None
        except UnicodeDecodeError:
            raise MarketDataError([DataIssue(None, None, f"{source} is not UTF-8 text (save it as CSV UTF-8)")], name) from None
    else:
        text = source.read()
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if not first:
        raise MarketDataError([DataIssue(None, None, "the file is empty")], name)
    try:
        delimiter = csv.Sniffer().sniff(first, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    records = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    header_at = next(i for i, r in enumerate(records) if any(c.strip() for c in r))
    header = [c.strip().lower() for c in records[header_at]]
    where: dict[str, int] = {}
    missing = []
    for role in ("market", "year", "revenue", "total"):
        col = getattr(cols, role)
        if col.strip().lower() in header:
            where[role] = header.index(col.strip().lower())
        else:
            missing.append(col)
    if missing:
        raise MarketDataError([DataIssue(header_at + 1, None, f"missing column(s) {', '.join(repr(m) for m in missing)}; "
                                         f"the header has {', '.join(repr(h) for h in header if h) or 'nothing'}")], name)
    has_mode = cols.mode.strip().lower() in header
    if has_mode:
        where["mode"] = header.index(cols.mode.strip().lower())
    known = set(known_markets) if known_markets is not None else None

    issues: list[DataIssue] = []
    histories: dict[tuple[str, str | None], History] = {}
    seen: dict[tuple[str, str | None, int], int] = {}
    key_rows: dict[tuple[str, str | None], list[int]] = {}
    unknown_rows: dict[str, list[int]] = {}
    read = used = 0
    for k in range(header_at + 1, len(records)):
        rec = records[k]
        row = k + 1
        if not any(c.strip() for c in rec):
            continue
        read += 1

        def cell(role: str, rec: list[str] = rec) -> str:
            i = where[role]
            return rec[i].strip() if i < len(rec) else ""

        market = cell("market")
        mode = cell("mode").lower() if has_mode else None
        if not market:
            issues.append(DataIssue(row, cols.market, "missing market id; row dropped"))
            continue
        if known is not None and market not in known:
            unknown_rows.setdefault(market, []).append(row)
            continue
        key_rows.setdefault((market, mode), []).append(row)
        problems: list[DataIssue] = []
        year = _year(cell("year"))
        if year is None:
            raw = cell("year")
            problems.append(DataIssue(row, cols.year, "missing value" if not raw else f"{raw!r} is not a calendar year", market))
        values: dict[str, float] = {}
        for role in ("revenue", "total"):
            col = getattr(cols, role)
            raw = cell(role)
            v = _number(raw)
            if not raw:
                problems.append(DataIssue(row, col, "missing value", market))
            elif v is None:
                problems.append(DataIssue(row, col, f"{raw!r} is not a number", market))
            elif v < 0:
                problems.append(DataIssue(row, col, f"negative value {raw}", market))
            elif v == 0:
                problems.append(DataIssue(row, col, "zero: no share (log of 0)" if role == "revenue" else "zero: no share", market))
            else:
                values[role] = v
        if not problems and values["revenue"] > values["total"]:
            problems.append(DataIssue(row, cols.revenue, f"revenue {values['revenue']:g} exceeds total_revenue "
                                      f"{values['total']:g} (share > 100 %)", market))
        if not problems and year is not None:
            dup = seen.get((market, mode, year))
            if dup is not None:
                problems.append(DataIssue(row, cols.year, f"duplicate of row {dup} ({market} {year}); the first is kept", market))
        if problems:
            issues.extend(DataIssue(p.row, p.column, p.message + "; row dropped", p.market) for p in problems)
            continue
        assert year is not None
        seen[(market, mode, year)] = row
        h = histories.setdefault((market, mode), History(market, mode))
        h.years.append(year)
        h.revenue.append(values["revenue"])
        h.total.append(values["total"])
        h.rows.append(row)
        used += 1
    for market, rows in unknown_rows.items():
        shown = ", ".join(str(r) for r in rows[:8]) + (", …" if len(rows) > 8 else "")
        issues.append(DataIssue(rows[0], cols.market, f"unknown market {market!r} (not in the scenario; "
                                f"{len(rows)} row(s) ignored: {shown})", market))
    if not histories:
        issues.append(DataIssue(None, None, f"no usable row ({read} data row(s) read)"))
        raise MarketDataError(issues, name)
    dropped = {k: rows for k, rows in key_rows.items() if k not in histories}
    return MarketData(histories, issues, has_mode, read, used, dropped)


# ----------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class LogLinearFit:
    """log y = a + b·(year − ref_year): the growth rate exp(b) − 1 and its interval."""

    ref_year: int
    intercept: float
    slope: float
    slope_se: float | None       # None: 0 degrees of freedom (two points)
    dof: int
    confidence: float
    r2: float | None

    @property
    def rate(self) -> float:
        return math.expm1(self.slope)

    @property
    def interval(self) -> tuple[float, float] | None:
        if self.slope_se is None:
            return None
        from scipy.stats import t as student_t

        q = float(student_t.ppf(0.5 + self.confidence / 2, self.dof))
        return math.expm1(self.slope - q * self.slope_se), math.expm1(self.slope + q * self.slope_se)

    def value_at(self, year: float) -> float:
        return math.exp(self.intercept + self.slope * (year - self.ref_year))


def fit_log_linear(years: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> LogLinearFit:
    """OLS of log(values) on years (at least two distinct years, positive values)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(years, dtype=float)
    y = np.log(np.asarray(values, dtype=float))
    if len(np.unique(x)) < 2:
        raise ValueError("at least two distinct years are needed")
    ref = int(x.max())
    xc = x - ref
    design = np.column_stack([np.ones_like(xc), xc])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    a, b = float(coef[0]), float(coef[1])
    n = len(x)
    dof = n - 2
    resid = y - design @ coef
    sxx = float(((xc - xc.mean()) ** 2).sum())
    se: float | None = None
    r2: float | None = None
    if dof > 0:
        s2 = float(resid @ resid) / dof
        se = math.sqrt(s2 / sxx)
        sst = float(((y - y.mean()) ** 2).sum())
        r2 = 1 - float(resid @ resid) / sst if sst > 0 else 1.0
    return LogLinearFit(ref, a, b, se, dof, confidence, r2)


@dataclass(frozen=True)
class GrowthFit:
    """The fitted share trajectory of one market (and mode) and the market's own growth."""

    market: str
    mode: str | None
    years: tuple[int, ...]
    shares: tuple[float, ...]
    rows: tuple[int, ...]
    share: LogLinearFit
    size: LogLinearFit

    @property
    def r(self) -> float:
        return self.share.rate

    @property
    def r_interval(self) -> tuple[float, float] | None:
        return self.share.interval

    @property
    def g(self) -> float:
        return self.size.rate

    @property
    def g_interval(self) -> tuple[float, float] | None:
        return self.size.interval

    def share_at(self, year: float) -> float:
        return min(1.0, self.share.value_at(year))

    def to_dict(self, start_year: int | None = None) -> dict[str, Any]:
        ri, gi = self.r_interval, self.g_interval
        d: dict[str, Any] = {
            "market": self.market, "mode": self.mode, "years": [min(self.years), max(self.years)], "n": len(self.years),
            "share_growth": self.r, "share_growth_interval": list(ri) if ri else None,
            "last_share": self.shares[self.years.index(max(self.years))], "r2": self.share.r2,
            "market_growth": self.g, "market_growth_interval": list(gi) if gi else None,
            "confidence": self.share.confidence,
        }
        if start_year is not None:
            d["initial_share"] = self.share_at(start_year)
            d["start_year"] = start_year
        return d


@dataclass
class FitReport:
    fits: dict[tuple[str, str | None], GrowthFit]
    issues: list[DataIssue]
    unfitted: dict[tuple[str, str | None], DataIssue]
    confidence: float
    has_mode: bool
    source: str = "market data"


def fit_market_data(data: MarketData, confidence: float = CONFIDENCE, source: str = "market data") -> FitReport:
    """Fit every history of ``data``; a history with one usable year is reported, not fitted."""
    fits: dict[tuple[str, str | None], GrowthFit] = {}
    unfitted: dict[tuple[str, str | None], DataIssue] = {}
    issues = list(data.issues)
    for key, h in sorted(data.histories.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        label = h.market + (f" ({h.mode})" if h.mode else "")
        if len(h.years) < 2:
            issue = DataIssue(h.rows[0], None, f"{label}: a single usable year ({h.years[0]}): a growth rate needs at least "
                              "two years; market not fitted", h.market)
            unfitted[key] = issue
            issues.append(issue)
            continue
        order = np.argsort(h.years)
        years = [h.years[i] for i in order]
        shares = h.shares[order]
        totals = np.asarray(h.total, dtype=float)[order]
        fit = GrowthFit(h.market, h.mode, tuple(years), tuple(float(s) for s in shares), tuple(h.rows[i] for i in order),
                        fit_log_linear(years, shares, confidence), fit_log_linear(years, totals, confidence))
        if fit.share.slope_se is None:
            issues.append(DataIssue(h.rows[0], None, f"{label}: only two usable years: exact fit, no confidence "
                                    "interval (it does not vote for the bear/bull scenarios)", h.market))
        fits[key] = fit
    for key, rows in data.dropped.items():
        label = key[0] + (f" ({key[1]})" if key[1] else "")
        issue = DataIssue(rows[0], None, f"{label}: no usable row left ({len(rows)} row(s) dropped); market not fitted", key[0])
        unfitted[key] = issue
        issues.append(issue)
    return FitReport(fits, issues, unfitted, confidence, data.has_mode, source)


def fit_market_csv(path: str | Path, columns: Columns | None = None, known_markets: Iterable[str] | None = None,
                   confidence: float = CONFIDENCE) -> FitReport:
    return fit_market_data(read_market_csv(path, columns, known_markets), confidence, str(path))


# ----------------------------------------------------------------------------- scenarios


def _median(values: list[float]) -> float:
    return float(np.median(values))


def _round(v: float) -> float:
    return float(f"{v:.{ROUND}g}")


def growth_scenarios(report: FitReport, share_growths: Iterable[float] = (), market_growths: Iterable[float] = (),
                     warn: list[DataIssue] | None = None) -> list[dict[str, Any]]:
    """Bear / base / bull from the fits' intervals (see the module text).

    ``share_growths``/``market_growths``: every r and g of the scenario the result goes into, so
    the multipliers and deltas keep 1 + r·m > 0 and 1 + g + Δ > 0.
    """
    lows, highs, g_lows, g_highs = [], [], [], []
    for f in report.fits.values():
        ri = f.r_interval
        if ri is not None and f.r > MIN_GROWTH:
            lows.append(ri[0] / f.r)
            highs.append(ri[1] / f.r)
        gi = f.g_interval
        if gi is not None:
            g_lows.append(gi[0] - f.g)
            g_highs.append(gi[1] - f.g)
    if lows:
        m_bear = min(1.0, max(MIN_MULTIPLIER, _median(lows)))
        m_bull = max(1.0, min(MAX_MULTIPLIER, _median(highs)))
    else:
        m_bear = m_bull = 1.0
        if warn is not None:
            warn.append(DataIssue(None, None, f"no market with share growth above {MIN_GROWTH:g} and a confidence interval: "
                                  "the growth scenarios do not vary share growth (multipliers 1)"))
    negative = [r for r in share_growths if r < 0]
    if negative:  # 1 + r·m > 0 for a shrinking share: m < 1/|r|
        m_bull = min(m_bull, 0.99 / max(-r for r in negative))
        m_bear = min(m_bear, m_bull)
    d_bear = min(0.0, _median(g_lows)) if g_lows else 0.0
    d_bull = max(0.0, _median(g_highs)) if g_highs else 0.0
    gs = list(market_growths)
    if gs:  # 1 + g + Δ > 0 for every market
        d_bear = max(d_bear, -0.99 * (1 + min(gs)))
    return [
        {"name": "bear", "probability": SCENARIO_PROBABILITIES["bear"], "market_growth_delta": _round(d_bear),
         "share_growth_multiplier": _round(m_bear)},
        {"name": "base", "probability": SCENARIO_PROBABILITIES["base"], "market_growth_delta": 0.0,
         "share_growth_multiplier": 1.0},
        {"name": "bull", "probability": SCENARIO_PROBABILITIES["bull"], "market_growth_delta": _round(d_bull),
         "share_growth_multiplier": _round(m_bull)},
    ]


def _is_growth_option(o: Any) -> bool:
    return isinstance(o, dict) and o.get("cash_flows") is None


def scenario_fragment(scenario: dict[str, Any], report: FitReport) -> tuple[dict[str, Any], list[DataIssue]]:
    """The fitted ``initial_share``/``share_growth`` per growth-model option, and the growth scenarios.

    ``scenario``: plain scenario data (as read from its file); it supplies ``start_year``, the
    markets and their options. Returns the fragment and the notes found on the way. Raises
    :class:`MarketDataError` when a market of the scenario has data but no fit.
    """
    start_year = int(scenario.get("start_year", 0) or 0)
    notes: list[DataIssue] = []
    markets = [m for m in scenario.get("markets", []) if isinstance(m, dict)]
    fatal = [i for key, i in report.unfitted.items() if any(m.get("id") == key[0] for m in markets)]
    if fatal:
        raise MarketDataError(report.issues, report.source)
    out_markets: list[dict[str, Any]] = []
    new_r: dict[tuple[str, str], float] = {}
    for m in markets:
        mid = str(m.get("id"))
        options = [o for o in m.get("options", []) if _is_growth_option(o)]
        fitted = [k for k in report.fits if k[0] == mid]
        if not fitted:
            continue
        out_opts = []
        for o in options:
            mode = str(o.get("mode", "")).lower()
            fit = report.fits.get((mid, mode if report.has_mode else None))
            if fit is None:
                continue
            s0 = _round(fit.share_at(start_year))
            out_opts.append({"mode": mode, "initial_share": s0, "share_growth": _round(fit.r)})
            new_r[(mid, mode)] = fit.r
            cap = o.get("max_share")
            if isinstance(cap, int | float) and s0 > cap:
                notes.append(DataIssue(None, None, f"{mid} {mode}: fitted initial share {s0:.4g} is above the option's max_share "
                                       f"{cap:g}: the cap binds from entry", mid))
        if report.has_mode:
            for key in fitted:
                if key[1] not in {str(o.get("mode", "")).lower() for o in options}:
                    notes.append(DataIssue(report.fits[key].rows[0], None, f"{mid}: mode {key[1]!r} is not a growth-model "
                                           "option of the market in the scenario; its fit is not used", mid))
        if not out_opts:
            if not report.has_mode:
                notes.append(DataIssue(None, None, f"{mid}: fitted, but the market has no growth-model option (only cash_flows)", mid))
            continue
        out_markets.append({"id": mid, "options": out_opts})
    share_growths = []
    for m in markets:
        for o in m.get("options", []):
            if _is_growth_option(o):
                key = (str(m.get("id")), str(o.get("mode", "")).lower())
                r = new_r.get(key, o.get("share_growth", 0.0))
                share_growths.append(float(r) if isinstance(r, int | float) else 0.0)
    market_growths = [float(m.get("market_growth", 0.0)) for m in markets if isinstance(m.get("market_growth", 0.0), int | float)]
    scen = growth_scenarios(report, share_growths, market_growths, notes)
    return {"markets": out_markets, "growth_scenarios": scen}, notes


def merge_fragment(scenario: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    """A new scenario dict: the fragment's option fields set, its growth scenarios replacing the scenario's."""
    import copy

    out = copy.deepcopy(scenario)
    by_id = {str(m.get("id")): m for m in out.get("markets", []) if isinstance(m, dict)}
    for fm in fragment.get("markets", []):
        m = by_id.get(str(fm["id"]))
        if m is None:
            raise KeyError(f"fragment market {fm['id']!r} is not in the scenario")
        opts = {str(o.get("mode", "")).lower(): o for o in m.get("options", []) if isinstance(o, dict)}
        for fo in fm.get("options", []):
            o = opts.get(str(fo["mode"]).lower())
            if o is None:
                raise KeyError(f"fragment option {fm['id']}/{fo['mode']} is not in the scenario")
            o.update({k: v for k, v in fo.items() if k != "mode"})
    if "growth_scenarios" in fragment:
        out["growth_scenarios"] = copy.deepcopy(fragment["growth_scenarios"])
    return out


# ----------------------------------------------------------------------------- plot


def plot_fits(report: FitReport, path: str | Path, start_year: int | None = None, title: str | None = None) -> Path:
    """PNG of every fitted market: share history (points), fitted curve, dashed extrapolation to start_year."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fits = list(report.fits.values())
    n = max(1, len(fits))
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.4 * ncols, 2.6 * nrows + 0.6), dpi=100)
    FigureCanvasAgg(fig)
    for k, f in enumerate(fits):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        years = np.asarray(f.years, dtype=float)
        ax.plot(years, 100 * np.asarray(f.shares), "o", ms=3.5, color="#1f4e79", label="history")
        hi = max(years.max(), start_year if start_year is not None else years.max())
        grid = np.linspace(years.min(), years.max(), 50)
        ax.plot(grid, [100 * f.share_at(y) for y in grid], "-", color="#c55a11", lw=1.5, label="fit")
        if hi > years.max():
            ext = np.linspace(years.max(), hi, 10)
            ax.plot(ext, [100 * f.share_at(y) for y in ext], "--", color="#c55a11", lw=1.2)
            ax.plot([hi], [100 * f.share_at(hi)], "s", ms=4, color="#c55a11")
        ri = f.r_interval
        band = f"[{100 * ri[0]:.1f}, {100 * ri[1]:.1f}]" if ri else "[n/a]"
        label = f.market + (f" {f.mode}" if f.mode else "")
        ax.set_title(f"{label}: r = {100 * f.r:.1f}% {band}", fontsize=8.5)
        ax.tick_params(labelsize=7)
        ax.set_ylabel("share, %", fontsize=7)
        ax.grid(alpha=0.3)
    conf = f"{100 * report.confidence:.0f} %"
    fig.suptitle(title or f"Market share history and fitted growth (interval on r: {conf})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out = Path(path)
    fig.savefig(out, format="png")
    return out
