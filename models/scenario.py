"""Scenario types and validation (MODEL.md section 1).

A scenario arrives as plain data (a dict parsed from JSON or YAML, or converted from a proto
message) and leaves as a frozen, fully defaulted :class:`Scenario`. Every rule of MODEL.md
section 1 is checked here, before any model is built, and *all* violations are reported at
once in one :class:`ScenarioError`, each with the field path a user wrote
(``markets[3].options[0].margin``).

Years stay calendar years in these types (as written in the file); the conversion to indices
t = year - start_year happens in :mod:`lepton_alloc.models.cashflows`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterable

MODES: tuple[str, ...] = ("acquire", "partner", "build")
OBJECTIVE_KINDS: tuple[str, ...] = ("expected_npv", "risk_adjusted_npv", "final_year_contribution")

# Sane sizes: a scenario beyond these is a mistake or an attack, not a plan.
MAX_HORIZON = 50
MAX_MARKETS = 20_000
MAX_LIST = 1_000  # cash-flow lists, segments, requires, growth scenarios
MAX_TEXT = 256
MAX_GROWTH_SCENARIOS = 100
# entry columns x years x growth scenarios: the size of the per-column cash-flow arrays
# (several float64 arrays of this many cells are built); beyond it a worker would run out of memory
MAX_MODEL_CELLS = 30_000_000
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class FieldViolation:
    """One broken rule: where (the path as written in the scenario file) and why."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"


class ScenarioError(ValueError):
    """Invalid scenario input; carries every violation found, each with its field path."""

    def __init__(self, violations: Iterable[FieldViolation]):
        self.violations: list[FieldViolation] = list(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(f"invalid scenario ({len(self.violations)} problem(s)):\n{lines}")


# ----------------------------------------------------------------------------- domain types


@dataclass(frozen=True)
class CashFlows:
    """Explicit per-year-since-entry flows of an option (MODEL.md 2.2); index 0 = entry year."""

    contribution: tuple[float, ...] = ()
    cost: tuple[float, ...] = ()
    headcount: tuple[int, ...] = ()


@dataclass(frozen=True)
class Option:
    """One way to enter a market (acquire, partner or build)."""

    mode: str
    initial_share: float | None = None
    share_growth: float = 0.0
    max_share: float = 1.0
    margin: float | None = None
    entry_cost: float = 0.0
    annual_cost: float = 0.0
    headcount: int = 0
    prehire_years: int = 0
    cash_flows: CashFlows | None = None


@dataclass(frozen=True)
class Compliance:
    lead_time_years: int = 0
    cost: float = 0.0
    banned_modes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Segment:
    """A piece of the concave growth-investment response (MODEL.md 2.3)."""

    up_to: float
    return_rate: float


@dataclass(frozen=True)
class GrowthHiring:
    max_heads: int
    contribution_per_head: float


@dataclass(frozen=True)
class Market:
    id: str
    name: str
    region: str | None = None
    market_size: float = 0.0
    market_growth: float = 0.0
    risk_score: float = 0.0
    compliance: Compliance = field(default_factory=Compliance)
    earliest_entry_year: int | None = None  # calendar year; None = start_year
    latest_entry_year: int | None = None  # calendar year; None = last year
    must_enter: bool = False
    requires: tuple[str, ...] = ()
    salary_per_head: float = 0.0
    growth_investment: tuple[Segment, ...] = ()
    growth_hiring: GrowthHiring | None = None
    options: tuple[Option, ...] = ()

    @property
    def segments(self) -> tuple[Segment, ...]:
        """The growth-investment segments (MODEL.md 2.3); empty when there is none."""
        return self.growth_investment


@dataclass(frozen=True)
class Budget:
    limit: tuple[float, ...] | None = None  # B_t, one per year, None = unconstrained
    carry_over: bool = False


@dataclass(frozen=True)
class Headcount:
    cap: tuple[float, ...] | None = None
    max_net_hires: tuple[float, ...] | None = None
    initial: int = 0


@dataclass(frozen=True)
class Region:
    name: str
    min_markets: int = 0
    max_markets: int | None = None
    max_budget_share: float | None = None
    talent_cap: tuple[float, ...] | None = None


@dataclass(frozen=True)
class GrowthScenario:
    name: str
    probability: float
    market_growth_delta: float = 0.0
    share_growth_multiplier: float = 1.0


@dataclass(frozen=True)
class Commitment:
    market_id: str
    mode: str
    entry_year: int  # calendar year


@dataclass(frozen=True)
class PreviousDecision:
    market_id: str
    entered: bool
    mode: str | None = None
    entry_year: int | None = None  # calendar year


@dataclass(frozen=True)
class PreviousPlan:
    change_penalty: float = 0.0
    decisions: tuple[PreviousDecision, ...] = ()


@dataclass(frozen=True)
class Objective:
    kind: str = "expected_npv"
    risk_aversion: float = 0.0
    cvar_alpha: float = 0.9
    min_expected_npv: float | None = None
    min_cvar: float | None = None


@dataclass(frozen=True)
class SolverSettings:
    time_limit_seconds: float = 60.0
    mip_rel_gap: float = 1e-4


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: every default filled, per-year limits expanded to T values."""

    name: str
    start_year: int
    horizon_years: int
    discount_rate: float = 0.0
    terminal_growth: float | None = None
    markets: tuple[Market, ...] = ()
    budget: Budget = field(default_factory=Budget)
    headcount: Headcount = field(default_factory=Headcount)
    regions: tuple[Region, ...] = ()
    growth_scenarios: tuple[GrowthScenario, ...] = (GrowthScenario("base", 1.0),)
    risk_max_average: float | None = None
    commitments: tuple[Commitment, ...] = ()
    previous_plan: PreviousPlan | None = None
    objective: Objective = field(default_factory=Objective)
    solver: SolverSettings = field(default_factory=SolverSettings)

    @property
    def years(self) -> list[int]:
        """Calendar labels of t = 0..T-1."""
        return [self.start_year + t for t in range(self.horizon_years)]

    def to_dict(self) -> dict[str, Any]:
        return scenario_to_dict(self)

    def sha256(self) -> str:
        """SHA-256 of the canonical JSON form (defaults filled, keys sorted)."""
        return canonical_sha256(self)


# ----------------------------------------------------------------------------- validation


class _Checker:
    """Collects violations while reading a raw mapping; never raises mid-way."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []
        # ids and region labels of every market that names one, valid or not: a reference to a
        # market with errors of its own is not reported a second time
        self.market_ids: set[str] = set()
        self.region_labels: set[str] = set()

    def add(self, path: str, message: str) -> None:
        self.violations.append(FieldViolation(path, message))

    # -- primitive readers: return a clean value, or None after recording a violation

    def mapping(self, value: Any, path: str, allowed: Iterable[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.add(path or "<root>", f"must be a mapping, got {_kind(value)}")
            return None
        allowed_set = set(allowed)
        for key in value:
            if not isinstance(key, str) or key not in allowed_set:
                self.add(_join(path, str(key)), "unknown field")
        return value

    def number(
        self,
        value: Any,
        path: str,
        *,
        ge: float | None = None,
        gt: float | None = None,
        le: float | None = None,
        lt: float | None = None,
    ) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(path, f"must be a number, got {_kind(value)}")
            return None
        try:
            v = float(value)
        except OverflowError:
            v = math.inf
        if not math.isfinite(v):
            self.add(path, "must be a finite number")
            return None
        ok = True
        if ge is not None and v < ge:
            ok = False
            self.add(path, f"must be >= {_fmt(ge)}, got {_fmt(v)}")
        if gt is not None and v <= gt:
            ok = False
            self.add(path, f"must be > {_fmt(gt)}, got {_fmt(v)}")
        if le is not None and v > le:
            ok = False
            self.add(path, f"must be <= {_fmt(le)}, got {_fmt(v)}")
        if lt is not None and v >= lt:
            ok = False
            self.add(path, f"must be < {_fmt(lt)}, got {_fmt(v)}")
        return v if ok else None

    def integer(
        self, value: Any, path: str, *, ge: int | None = None, le: int | None = None
    ) -> int | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(path, f"must be an integer, got {_kind(value)}")
            return None
        if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
            self.add(path, f"must be a whole number, got {_fmt(value)}")
            return None
        v = int(value)
        if abs(v) > 10**9:
            self.add(path, "is out of range")
            return None
        if ge is not None and v < ge:
            self.add(path, f"must be >= {ge}, got {v}")
            return None
        if le is not None and v > le:
            self.add(path, f"must be <= {le}, got {v}")
            return None
        return v

    def boolean(self, value: Any, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.add(path, f"must be true or false, got {_kind(value)}")
            return None
        return value

    def text(self, value: Any, path: str, *, pattern: re.Pattern[str] | None = None) -> str | None:
        if not isinstance(value, str):
            self.add(path, f"must be a string, got {_kind(value)}")
            return None
        if len(value) > MAX_TEXT:
            self.add(path, f"must be at most {MAX_TEXT} characters")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.add(path, "must be 1..64 characters of [A-Za-z0-9_.-]")
            return None
        return value

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str | None:
        if not isinstance(value, str):
            self.add(path, f"must be one of {', '.join(choices)}, got {_kind(value)}")
            return None
        v = value.strip().lower()
        if v not in choices:
            self.add(path, f"must be one of {', '.join(choices)}, got {value!r}")
            return None
        return v

    def sequence(self, value: Any, path: str, *, max_len: int = MAX_LIST) -> list[Any] | None:
        if not isinstance(value, (list, tuple)):
            self.add(path, f"must be a list, got {_kind(value)}")
            return None
        if len(value) > max_len:
            self.add(path, f"must have at most {max_len} entries, got {len(value)}")
            return None
        return list(value)

    def per_year(self, value: Any, path: str, horizon: int | None) -> tuple[float, ...] | None:
        """A per-year limit: one number (every year) or a list of exactly T numbers >= 0."""
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            if horizon is not None and len(value) != horizon:
                self.add(path, f"must have exactly {horizon} values (one per year), got {len(value)}")
                return None
            items = [self.number(v, f"{path}[{k}]", ge=0) for k, v in enumerate(value)]
            if any(v is None for v in items):
                return None
            return tuple(float(v) for v in items)  # type: ignore[arg-type]
        v = self.number(value, path, ge=0)
        if v is None or horizon is None:
            return None
        return tuple([v] * horizon)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"text {value[:40]!r}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _fmt(v: float) -> str:
    return f"{v:g}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


TOP_FIELDS = (
    "name", "start_year", "horizon_years", "discount_rate", "terminal_growth", "markets",
    "budget", "headcount", "regions", "growth_scenarios", "risk", "commitments",
    "previous_plan", "objective", "solver",
)
MARKET_FIELDS = (
    "id", "name", "region", "market_size", "market_growth", "risk_score", "compliance",
    "earliest_entry_year", "latest_entry_year", "must_enter", "requires", "salary_per_head",
    "growth_investment", "growth_hiring", "options",
)
OPTION_GROWTH_FIELDS = (
    "initial_share", "share_growth", "max_share", "margin", "entry_cost", "annual_cost",
    "headcount", "prehire_years",
)
OPTION_FIELDS = ("mode", "cash_flows") + OPTION_GROWTH_FIELDS


def _get(raw: dict[str, Any], key: str, default: Any = None) -> Any:
    value = raw.get(key, default)
    return default if value is None else value


def parse_scenario(raw: Any) -> Scenario:
    """Validate raw scenario data (MODEL.md section 1) and return a :class:`Scenario`.

    Raises :class:`ScenarioError` listing every violation with its field path.
    """
    c = _Checker()
    top = c.mapping(raw, "", TOP_FIELDS)
    if top is None:
        raise ScenarioError(c.violations)

    name = c.text(_get(top, "name", "scenario"), "name") or "scenario"
    start_year = c.integer(_get(top, "start_year", 0), "start_year", ge=-10**6, le=10**6)
    start_year = 0 if start_year is None else start_year
    horizon: int | None
    if "horizon_years" not in top or top["horizon_years"] is None:
        c.add("horizon_years", "is required (the number of years T, 1..50)")
        horizon = None
    else:
        horizon = c.integer(top["horizon_years"], "horizon_years", ge=1, le=MAX_HORIZON)
    discount = c.number(_get(top, "discount_rate", 0.0), "discount_rate", ge=0, lt=1)
    terminal_growth = None
    if top.get("terminal_growth") is not None:
        terminal_growth = c.number(top["terminal_growth"], "terminal_growth", gt=-1)
        if terminal_growth is not None and discount is not None and terminal_growth >= discount:
            c.add("terminal_growth", f"must be < discount_rate ({_fmt(discount)}), got {_fmt(terminal_growth)}")
            terminal_growth = None

    scenarios = _parse_growth_scenarios(c, top.get("growth_scenarios"))
    markets = _parse_markets(c, top.get("markets"), start_year, horizon, scenarios)
    market_by_id = {m.id: m for m in markets}

    budget = Budget()
    if top.get("budget") is not None:
        b = c.mapping(top["budget"], "budget", ("limit", "carry_over"))
        if b is not None:
            carry = c.boolean(_get(b, "carry_over", False), "budget.carry_over")
            budget = Budget(c.per_year(b.get("limit"), "budget.limit", horizon), bool(carry))

    headcount = Headcount()
    if top.get("headcount") is not None:
        h = c.mapping(top["headcount"], "headcount", ("cap", "max_net_hires", "initial"))
        if h is not None:
            initial = c.integer(_get(h, "initial", 0), "headcount.initial", ge=0)
            headcount = Headcount(
                c.per_year(h.get("cap"), "headcount.cap", horizon),
                c.per_year(h.get("max_net_hires"), "headcount.max_net_hires", horizon),
                initial or 0,
            )

    regions = _parse_regions(c, top.get("regions"), horizon, c.region_labels)

    risk_max = None
    if top.get("risk") is not None:
        r = c.mapping(top["risk"], "risk", ("max_average_risk",))
        if r is not None and r.get("max_average_risk") is not None:
            risk_max = c.number(r["max_average_risk"], "risk.max_average_risk", ge=0, le=1)

    commitments = _parse_commitments(c, top.get("commitments"), market_by_id, start_year, horizon)
    previous_plan = _parse_previous_plan(c, top.get("previous_plan"), market_by_id)
    objective = _parse_objective(c, top.get("objective"))
    solver = _parse_solver(c, top.get("solver"))

    if not c.violations and horizon is not None:
        columns = 0
        for m in markets:
            lo, hi = entry_window(m, start_year, horizon)
            allowed = sum(1 for o in m.options if o.mode not in m.compliance.banned_modes)
            columns += allowed * max(0, hi - lo + 1)
        cells = columns * horizon * len(scenarios)
        if cells > MAX_MODEL_CELLS:
            c.add("markets", f"scenario too large: {columns} entry columns x {horizon} years x {len(scenarios)} growth "
                             f"scenarios = {cells:,} cells exceeds {MAX_MODEL_CELLS:,}; narrow entry windows, "
                             "use fewer growth scenarios or split the scenario")
    if c.violations:
        raise ScenarioError(c.violations)
    assert horizon is not None and discount is not None
    return Scenario(
        name=name,
        start_year=start_year,
        horizon_years=horizon,
        discount_rate=discount,
        terminal_growth=terminal_growth,
        markets=tuple(markets),
        budget=budget,
        headcount=headcount,
        regions=tuple(regions),
        growth_scenarios=tuple(scenarios),
        risk_max_average=risk_max,
        commitments=tuple(commitments),
        previous_plan=previous_plan,
        objective=objective,
        solver=solver,
    )


def _parse_growth_scenarios(c: _Checker, raw: Any) -> list[GrowthScenario]:
    if raw is None:
        return [GrowthScenario("base", 1.0)]
    items = c.sequence(raw, "growth_scenarios", max_len=MAX_GROWTH_SCENARIOS)
    if items is None:
        return [GrowthScenario("base", 1.0)]
    if not items:
        c.add("growth_scenarios", "must list at least one scenario (or be omitted)")
        return [GrowthScenario("base", 1.0)]
    out: list[GrowthScenario] = []
    seen: set[str] = set()
    total = 0.0
    ok = True
    for k, item in enumerate(items):
        p = f"growth_scenarios[{k}]"
        d = c.mapping(item, p, ("name", "probability", "market_growth_delta", "share_growth_multiplier"))
        if d is None:
            ok = False
            continue
        nm = c.text(d.get("name"), f"{p}.name") if d.get("name") is not None else None
        if d.get("name") is None:
            c.add(f"{p}.name", "is required")
        if nm is not None:
            if nm in seen:
                c.add(f"{p}.name", f"duplicate scenario name {nm!r}")
            seen.add(nm)
        if d.get("probability") is None:
            c.add(f"{p}.probability", "is required")
            prob = None
        else:
            prob = c.number(d["probability"], f"{p}.probability", gt=0, le=1)
        delta = c.number(_get(d, "market_growth_delta", 0.0), f"{p}.market_growth_delta")
        mult = c.number(_get(d, "share_growth_multiplier", 1.0), f"{p}.share_growth_multiplier", gt=0)
        if nm is None or prob is None or delta is None or mult is None:
            ok = False
            continue
        total += prob
        out.append(GrowthScenario(nm, prob, delta, mult))
    if ok and abs(total - 1.0) > 1e-6:
        c.add("growth_scenarios", f"probabilities must sum to 1 (within 1e-6), got {total:.9g}")
    return out if ok else [GrowthScenario("base", 1.0)]


def _parse_markets(
    c: _Checker,
    raw: Any,
    start_year: int,
    horizon: int | None,
    scenarios: list[GrowthScenario],
) -> list[Market]:
    if raw is None:
        c.add("markets", "is required (a list of markets)")
        return []
    items = c.sequence(raw, "markets", max_len=MAX_MARKETS)
    if items is None:
        return []
    markets: list[Market] = []
    seen: dict[str, int] = {}
    raw_requires: list[tuple[int, str, list[tuple[int, Any]]]] = []
    for k, item in enumerate(items):
        p = f"markets[{k}]"
        errors_before = len(c.violations)
        d = c.mapping(item, p, MARKET_FIELDS)
        if d is None:
            continue
        mid = None
        if d.get("id") is None:
            c.add(f"{p}.id", "is required")
        else:
            mid = c.text(d["id"], f"{p}.id", pattern=ID_PATTERN)
            if mid is not None:
                if mid in seen:
                    c.add(f"{p}.id", f"duplicate market id {mid!r} (also markets[{seen[mid]}])")
                seen[mid] = k
        name = c.text(_get(d, "name", mid or ""), f"{p}.name") or (mid or "")
        region = c.text(d["region"], f"{p}.region") if d.get("region") is not None else None
        size = c.number(_get(d, "market_size", 0.0), f"{p}.market_size", ge=0)
        growth = c.number(_get(d, "market_growth", 0.0), f"{p}.market_growth", gt=-1)
        if growth is not None:
            for sc in scenarios:
                if 1 + growth + sc.market_growth_delta <= 0:
                    c.add(
                        f"{p}.market_growth",
                        f"1 + market_growth + market_growth_delta of scenario {sc.name!r} must be > 0",
                    )
        risk = c.number(_get(d, "risk_score", 0.0), f"{p}.risk_score", ge=0, le=1)
        salary = c.number(_get(d, "salary_per_head", 0.0), f"{p}.salary_per_head", ge=0)
        compliance = Compliance()
        if d.get("compliance") is not None:
            cp = c.mapping(d["compliance"], f"{p}.compliance", ("lead_time_years", "cost", "banned_modes"))
            if cp is not None:
                lead = c.integer(_get(cp, "lead_time_years", 0), f"{p}.compliance.lead_time_years", ge=0, le=1000)
                ccost = c.number(_get(cp, "cost", 0.0), f"{p}.compliance.cost", ge=0)
                banned: list[str] = []
                bl = c.sequence(_get(cp, "banned_modes", []), f"{p}.compliance.banned_modes")
                for j, bm in enumerate(bl or []):
                    mode = c.choice(bm, f"{p}.compliance.banned_modes[{j}]", MODES)
                    if mode is not None and mode not in banned:
                        banned.append(mode)
                compliance = Compliance(lead or 0, ccost or 0.0, tuple(banned))
        earliest = latest = None
        if d.get("earliest_entry_year") is not None:
            earliest = c.integer(d["earliest_entry_year"], f"{p}.earliest_entry_year")
        if d.get("latest_entry_year") is not None:
            latest = c.integer(d["latest_entry_year"], f"{p}.latest_entry_year")
        if horizon is not None:
            # an omitted latest counts as the last year, an omitted earliest as the first
            effective_latest = latest if latest is not None else start_year + horizon - 1
            if earliest is not None and earliest > effective_latest:
                c.add(
                    f"{p}.earliest_entry_year",
                    f"must be <= latest_entry_year ({effective_latest}), got {earliest}",
                )
            elif earliest is None and latest is not None and latest < start_year:
                c.add(
                    f"{p}.latest_entry_year",
                    f"must be >= earliest_entry_year (default start_year {start_year}), got {latest}",
                )
        must_enter = c.boolean(_get(d, "must_enter", False), f"{p}.must_enter")
        req_list = c.sequence(_get(d, "requires", []), f"{p}.requires") or []
        raw_requires.append((k, mid or "", list(enumerate(req_list))))

        segments: list[Segment] = []
        if d.get("growth_investment") is not None:
            gi = c.mapping(d["growth_investment"], f"{p}.growth_investment", ("segments",))
            if gi is not None:
                segs = c.sequence(gi.get("segments"), f"{p}.growth_investment.segments", max_len=100)
                if segs is not None and not segs:
                    c.add(f"{p}.growth_investment.segments", "must list at least one segment")
                prev_up, prev_rate = 0.0, math.inf
                for j, sg in enumerate(segs or []):
                    sp = f"{p}.growth_investment.segments[{j}]"
                    sd = c.mapping(sg, sp, ("up_to", "return_rate"))
                    if sd is None:
                        continue
                    up = c.number(sd.get("up_to"), f"{sp}.up_to", gt=0)
                    rate = c.number(sd.get("return_rate"), f"{sp}.return_rate", ge=0)
                    if up is not None and up <= prev_up:
                        c.add(f"{sp}.up_to", f"must be strictly increasing (previous {_fmt(prev_up)}), got {_fmt(up)}")
                    if rate is not None and rate > prev_rate:
                        c.add(
                            f"{sp}.return_rate",
                            f"must be non-increasing (concave response; previous {_fmt(prev_rate)}), got {_fmt(rate)}",
                        )
                    if up is not None and rate is not None:
                        segments.append(Segment(up, rate))
                        prev_up, prev_rate = up, rate
        hiring = None
        if d.get("growth_hiring") is not None:
            gh = c.mapping(d["growth_hiring"], f"{p}.growth_hiring", ("max_heads", "contribution_per_head"))
            if gh is not None:
                mh = c.integer(gh.get("max_heads"), f"{p}.growth_hiring.max_heads", ge=0, le=10**7)
                cph = c.number(gh.get("contribution_per_head"), f"{p}.growth_hiring.contribution_per_head")
                if mh is not None and cph is not None:
                    hiring = GrowthHiring(mh, cph)

        options = _parse_options(c, d.get("options"), p, scenarios)
        if region is not None:
            c.region_labels.add(region)
        if mid is not None:
            c.market_ids.add(mid)
        if len(c.violations) > errors_before or mid is None:
            continue  # reported; references to this market are not judged against a half-read market
        markets.append(
            Market(
                id=mid, name=name, region=region, market_size=size, market_growth=growth,  # type: ignore[arg-type]
                risk_score=risk, compliance=compliance,  # type: ignore[arg-type]
                earliest_entry_year=earliest, latest_entry_year=latest,
                must_enter=bool(must_enter), requires=(), salary_per_head=salary,  # type: ignore[arg-type]
                growth_investment=tuple(segments), growth_hiring=hiring, options=tuple(options),
            )
        )

    # prerequisites (2.5): existing markets, not itself, no cycle
    ids = set(seen) | c.market_ids
    requires_of: dict[str, tuple[str, ...]] = {}
    for k, mid, reqs in raw_requires:
        clean: list[str] = []
        for j, r in reqs:
            rp = f"markets[{k}].requires[{j}]"
            rid = c.text(r, rp)
            if rid is None:
                continue
            if rid not in ids:
                c.add(rp, f"names unknown market {rid!r}")
            elif rid == mid:
                c.add(rp, "a market cannot require itself")
            elif rid not in clean:
                clean.append(rid)
        requires_of[mid] = tuple(clean)
    cycle = _find_cycle(requires_of)
    if cycle:
        k = seen[cycle[0]]
        c.add(f"markets[{k}].requires", "prerequisites form a cycle: " + " -> ".join(cycle + [cycle[0]]))
    return [_replace_requires(m, requires_of.get(m.id, ())) for m in markets]


def _replace_requires(m: Market, requires: tuple[str, ...]) -> Market:
    from dataclasses import replace

    return replace(m, requires=requires)


def _find_cycle(graph: dict[str, tuple[str, ...]]) -> list[str] | None:
    state: dict[str, int] = {}
    for root in graph:
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            node, idx = stack.pop()
            if idx == 0:
                if state.get(node) == 1:
                    return path[path.index(node):]
                if state.get(node) == 2:
                    continue
                state[node] = 1
                path.append(node)
            children = graph.get(node, ())
            if idx < len(children):
                stack.append((node, idx + 1))
                child = children[idx]
                if state.get(child) == 1:
                    return path[path.index(child):]
                if not state.get(child):
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()
    return None


def _parse_options(c: _Checker, raw: Any, mp: str, scenarios: list[GrowthScenario]) -> list[Option]:
    if raw is None:
        return []
    items = c.sequence(raw, f"{mp}.options", max_len=len(MODES))
    out: list[Option] = []
    seen: dict[str, int] = {}
    for k, item in enumerate(items or []):
        p = f"{mp}.options[{k}]"
        d = c.mapping(item, p, OPTION_FIELDS)
        if d is None:
            continue
        mode = None
        if d.get("mode") is None:
            c.add(f"{p}.mode", "is required (acquire, partner or build)")
        else:
            mode = c.choice(d["mode"], f"{p}.mode", MODES)
            if mode is not None:
                if mode in seen:
                    c.add(f"{p}.mode", f"at most one option per mode; {mode!r} also at options[{seen[mode]}]")
                seen[mode] = k
        if d.get("cash_flows") is not None:
            for key in OPTION_GROWTH_FIELDS:
                if d.get(key) is not None:
                    c.add(f"{p}.{key}", "cannot be combined with cash_flows (explicit flows replace the growth model)")
            cf = c.mapping(d["cash_flows"], f"{p}.cash_flows", ("contribution", "cost", "headcount"))
            if cf is None:
                continue
            contrib = [c.number(v, f"{p}.cash_flows.contribution[{j}]") for j, v in
                       enumerate(c.sequence(_get(cf, "contribution", []), f"{p}.cash_flows.contribution") or [])]
            cost = [c.number(v, f"{p}.cash_flows.cost[{j}]", ge=0) for j, v in
                    enumerate(c.sequence(_get(cf, "cost", []), f"{p}.cash_flows.cost") or [])]
            heads = [c.integer(v, f"{p}.cash_flows.headcount[{j}]", ge=0, le=10**7) for j, v in
                     enumerate(c.sequence(_get(cf, "headcount", []), f"{p}.cash_flows.headcount") or [])]
            if mode is None or None in contrib or None in cost or None in heads:
                continue
            out.append(Option(mode=mode, cash_flows=CashFlows(tuple(contrib), tuple(cost), tuple(heads))))  # type: ignore[arg-type]
            continue
        s0 = margin = None
        if d.get("initial_share") is None:
            c.add(f"{p}.initial_share", "is required for a growth-model option (or give cash_flows)")
        else:
            s0 = c.number(d["initial_share"], f"{p}.initial_share", ge=0, le=1)
        if d.get("margin") is None:
            c.add(f"{p}.margin", "is required for a growth-model option (or give cash_flows)")
        else:
            margin = c.number(d["margin"], f"{p}.margin", ge=0, le=1)
            if margin is None:
                # keep the message a finance user expects
                c.violations[-1] = FieldViolation(f"{p}.margin", "must be between 0 and 1")
        r = c.number(_get(d, "share_growth", 0.0), f"{p}.share_growth")
        if r is not None:
            for sc in scenarios:
                if 1 + r * sc.share_growth_multiplier <= 0:
                    c.add(f"{p}.share_growth", f"1 + share_growth x multiplier of scenario {sc.name!r} must be > 0")
        cap = c.number(_get(d, "max_share", 1.0), f"{p}.max_share", gt=0, le=1)
        entry_cost = c.number(_get(d, "entry_cost", 0.0), f"{p}.entry_cost", ge=0)
        annual_cost = c.number(_get(d, "annual_cost", 0.0), f"{p}.annual_cost", ge=0)
        heads_n = c.integer(_get(d, "headcount", 0), f"{p}.headcount", ge=0, le=10**7)
        prehire = c.integer(_get(d, "prehire_years", 0), f"{p}.prehire_years", ge=0, le=1000)
        vals = (mode, s0, margin, r, cap, entry_cost, annual_cost, heads_n, prehire)
        if any(v is None for v in vals):
            continue
        out.append(Option(mode, s0, r, cap, margin, entry_cost, annual_cost, heads_n, prehire))  # type: ignore[arg-type]
    return out


def _parse_regions(c: _Checker, raw: Any, horizon: int | None, labels: set[str]) -> list[Region]:
    if raw is None:
        return []
    out: list[Region] = []
    seen: set[str] = set()
    for k, item in enumerate(c.sequence(raw, "regions") or []):
        p = f"regions[{k}]"
        d = c.mapping(item, p, ("name", "min_markets", "max_markets", "max_budget_share", "talent_cap"))
        if d is None:
            continue
        nm = c.text(d.get("name"), f"{p}.name") if d.get("name") is not None else None
        if d.get("name") is None:
            c.add(f"{p}.name", "is required")
        if nm is not None:
            if nm in seen:
                c.add(f"{p}.name", f"duplicate region name {nm!r}")
            elif nm not in labels:
                c.add(f"{p}.name", f"no market carries region {nm!r}")
            seen.add(nm)
        lo = c.integer(_get(d, "min_markets", 0), f"{p}.min_markets", ge=0)
        hi = c.integer(d["max_markets"], f"{p}.max_markets", ge=0) if d.get("max_markets") is not None else None
        if lo is not None and hi is not None and lo > hi:
            c.add(f"{p}.min_markets", f"must be <= max_markets ({hi}), got {lo}")
        share = None
        if d.get("max_budget_share") is not None:
            share = c.number(d["max_budget_share"], f"{p}.max_budget_share", ge=0, le=1)
        talent = c.per_year(d.get("talent_cap"), f"{p}.talent_cap", horizon)
        if nm is not None and lo is not None:
            out.append(Region(nm, lo, hi, share, talent))
    return out


def _parse_commitments(
    c: _Checker, raw: Any, markets: dict[str, Market], start_year: int, horizon: int | None
) -> list[Commitment]:
    if raw is None:
        return []
    out: list[Commitment] = []
    seen: set[str] = set()
    for k, item in enumerate(c.sequence(raw, "commitments") or []):
        p = f"commitments[{k}]"
        d = c.mapping(item, p, ("market_id", "mode", "entry_year"))
        if d is None:
            continue
        mid = c.text(d.get("market_id"), f"{p}.market_id")
        mode = c.choice(d.get("mode"), f"{p}.mode", MODES)
        year = c.integer(d.get("entry_year"), f"{p}.entry_year")
        if mid is None:
            continue
        if mid not in markets and mid not in c.market_ids:
            c.add(f"{p}.market_id", f"names unknown market {mid!r}")
            continue
        if mid in seen:
            c.add(f"{p}.market_id", f"market {mid!r} is committed more than once")
        seen.add(mid)
        if mode is None or year is None or horizon is None or mid not in markets:
            continue
        m = markets[mid]
        if mode not in {o.mode for o in m.options}:
            c.add(f"{p}.mode", f"market {mid!r} has no {mode!r} option")
            continue
        if mode in m.compliance.banned_modes:
            c.add(f"{p}.mode", f"mode {mode!r} is banned in market {mid!r}")
            continue
        lo, hi = entry_window(m, start_year, horizon)
        if not (lo <= year - start_year <= hi):
            window = f"{start_year + lo}..{start_year + hi}" if lo <= hi else "empty"
            c.add(f"{p}.entry_year", f"{year} is outside the allowed entry years of {mid!r} ({window})")
            continue
        out.append(Commitment(mid, mode, year))
    return out


def _parse_previous_plan(c: _Checker, raw: Any, markets: dict[str, Market]) -> PreviousPlan | None:
    if raw is None:
        return None
    d = c.mapping(raw, "previous_plan", ("change_penalty", "decisions"))
    if d is None:
        return None
    penalty = c.number(_get(d, "change_penalty", 0.0), "previous_plan.change_penalty", ge=0)
    out: list[PreviousDecision] = []
    seen: set[str] = set()
    for k, item in enumerate(c.sequence(_get(d, "decisions", []), "previous_plan.decisions") or []):
        p = f"previous_plan.decisions[{k}]"
        e = c.mapping(item, p, ("market_id", "entered", "mode", "entry_year"))
        if e is None:
            continue
        mid = c.text(e.get("market_id"), f"{p}.market_id")
        if mid is not None:
            if mid not in markets and mid not in c.market_ids:
                c.add(f"{p}.market_id", f"names unknown market {mid!r}")
            elif mid in seen:
                c.add(f"{p}.market_id", f"market {mid!r} appears more than once")
            seen.add(mid)
        has_choice = e.get("mode") is not None or e.get("entry_year") is not None
        entered = c.boolean(_get(e, "entered", has_choice), f"{p}.entered")
        mode = year = None
        if entered:
            if e.get("mode") is None:
                c.add(f"{p}.mode", "is required for a market previously entered")
            else:
                mode = c.choice(e["mode"], f"{p}.mode", MODES)
            if e.get("entry_year") is None:
                c.add(f"{p}.entry_year", "is required for a market previously entered")
            else:
                year = c.integer(e["entry_year"], f"{p}.entry_year")
            if mid is None or mode is None or year is None:
                continue
        elif entered is False and has_choice:
            c.add(f"{p}.entered", "is false but mode/entry_year are given")
            continue
        if mid is None or entered is None:
            continue
        out.append(PreviousDecision(mid, bool(entered), mode, year))
    if penalty is None:
        return None
    return PreviousPlan(penalty, tuple(out))


def _parse_objective(c: _Checker, raw: Any) -> Objective:
    if raw is None:
        return Objective()
    d = c.mapping(raw, "objective", ("kind", "risk_aversion", "cvar_alpha", "min_expected_npv", "min_cvar"))
    if d is None:
        return Objective()
    kind = c.choice(_get(d, "kind", "expected_npv"), "objective.kind", OBJECTIVE_KINDS) or "expected_npv"
    lam = c.number(_get(d, "risk_aversion", 0.0), "objective.risk_aversion", ge=0, le=1)
    alpha = c.number(_get(d, "cvar_alpha", 0.9), "objective.cvar_alpha", gt=0, lt=1)
    floor_npv = c.number(d["min_expected_npv"], "objective.min_expected_npv") if d.get("min_expected_npv") is not None else None
    floor_cvar = c.number(d["min_cvar"], "objective.min_cvar") if d.get("min_cvar") is not None else None
    return Objective(kind, lam if lam is not None else 0.0, alpha if alpha is not None else 0.9, floor_npv, floor_cvar)


def _parse_solver(c: _Checker, raw: Any) -> SolverSettings:
    if raw is None:
        return SolverSettings()
    d = c.mapping(raw, "solver", ("time_limit_seconds", "mip_rel_gap"))
    if d is None:
        return SolverSettings()
    tl = c.number(_get(d, "time_limit_seconds", 60.0), "solver.time_limit_seconds", gt=0, le=7 * 24 * 3600)
    gap = c.number(_get(d, "mip_rel_gap", 1e-4), "solver.mip_rel_gap", ge=0)
    return SolverSettings(tl if tl is not None else 60.0, gap if gap is not None else 1e-4)


def entry_window(m: Market, start_year: int, horizon: int) -> tuple[int, int]:
    """E_o bounds as indices (MODEL.md 2.1): max(earliest, lead) .. min(latest, T-1).

    Empty when the first bound exceeds the second (e.g. a lead time past the horizon).
    """
    earliest = 0 if m.earliest_entry_year is None else m.earliest_entry_year - start_year
    latest = horizon - 1 if m.latest_entry_year is None else m.latest_entry_year - start_year
    return max(earliest, m.compliance.lead_time_years, 0), min(latest, horizon - 1)


# ----------------------------------------------------------------------------- canonical form


def scenario_to_dict(s: Scenario) -> dict[str, Any]:
    """The canonical plain-data form: every field present, per-year limits as lists.

    ``parse_scenario(scenario_to_dict(s)) == s`` holds for every valid scenario.
    """

    def opt(o: Option) -> dict[str, Any]:
        if o.cash_flows is not None:
            return {
                "mode": o.mode,
                "cash_flows": {
                    "contribution": list(o.cash_flows.contribution),
                    "cost": list(o.cash_flows.cost),
                    "headcount": list(o.cash_flows.headcount),
                },
            }
        return {
            "mode": o.mode, "initial_share": o.initial_share, "share_growth": o.share_growth,
            "max_share": o.max_share, "margin": o.margin, "entry_cost": o.entry_cost,
            "annual_cost": o.annual_cost, "headcount": o.headcount, "prehire_years": o.prehire_years,
        }

    def market(m: Market) -> dict[str, Any]:
        return {
            "id": m.id, "name": m.name, "region": m.region, "market_size": m.market_size,
            "market_growth": m.market_growth, "risk_score": m.risk_score,
            "compliance": {
                "lead_time_years": m.compliance.lead_time_years, "cost": m.compliance.cost,
                "banned_modes": list(m.compliance.banned_modes),
            },
            "earliest_entry_year": m.earliest_entry_year, "latest_entry_year": m.latest_entry_year,
            "must_enter": m.must_enter, "requires": list(m.requires),
            "salary_per_head": m.salary_per_head,
            "growth_investment": (
                {"segments": [{"up_to": g.up_to, "return_rate": g.return_rate} for g in m.growth_investment]}
                if m.growth_investment else None
            ),
            "growth_hiring": (
                {"max_heads": m.growth_hiring.max_heads, "contribution_per_head": m.growth_hiring.contribution_per_head}
                if m.growth_hiring else None
            ),
            "options": [opt(o) for o in m.options],
        }

    def lst(v: tuple[float, ...] | None) -> list[float] | None:
        return None if v is None else list(v)

    return {
        "name": s.name, "start_year": s.start_year, "horizon_years": s.horizon_years,
        "discount_rate": s.discount_rate, "terminal_growth": s.terminal_growth,
        "markets": [market(m) for m in s.markets],
        "budget": {"limit": lst(s.budget.limit), "carry_over": s.budget.carry_over},
        "headcount": {
            "cap": lst(s.headcount.cap), "max_net_hires": lst(s.headcount.max_net_hires),
            "initial": s.headcount.initial,
        },
        "regions": [
            {"name": r.name, "min_markets": r.min_markets, "max_markets": r.max_markets,
             "max_budget_share": r.max_budget_share, "talent_cap": lst(r.talent_cap)}
            for r in s.regions
        ],
        "growth_scenarios": [
            {"name": g.name, "probability": g.probability, "market_growth_delta": g.market_growth_delta,
             "share_growth_multiplier": g.share_growth_multiplier}
            for g in s.growth_scenarios
        ],
        "risk": {"max_average_risk": s.risk_max_average},
        "commitments": [
            {"market_id": k.market_id, "mode": k.mode, "entry_year": k.entry_year} for k in s.commitments
        ],
        "previous_plan": (
            None if s.previous_plan is None else {
                "change_penalty": s.previous_plan.change_penalty,
                "decisions": [
                    {"market_id": d.market_id, "entered": d.entered, "mode": d.mode, "entry_year": d.entry_year}
                    for d in s.previous_plan.decisions
                ],
            }
        ),
        "objective": {
            "kind": s.objective.kind, "risk_aversion": s.objective.risk_aversion,
            "cvar_alpha": s.objective.cvar_alpha, "min_expected_npv": s.objective.min_expected_npv,
            "min_cvar": s.objective.min_cvar,
        },
        "solver": {"time_limit_seconds": s.solver.time_limit_seconds, "mip_rel_gap": s.solver.mip_rel_gap},
    }


def canonical_json(s: Scenario) -> str:
    return json.dumps(scenario_to_dict(s), sort_keys=True, separators=(",", ":"), allow_nan=False)


def canonical_sha256(s: Scenario) -> str:
    return hashlib.sha256(canonical_json(s).encode("utf-8")).hexdigest()
