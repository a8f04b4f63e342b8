"""The scenario schema, declared once (docs/model.md section 1).

Every field of a scenario file is declared here, once, with its type, bounds, default and a
description; validation, the JSON Schema (``lepton-alloc schema``), the proto adapter
(:mod:`lepton_alloc.proto.adapter`, which walks these declarations by name) and the canonical
form all derive from it. A scenario arrives as plain data (a dict parsed from JSON or YAML, or
rebuilt from a proto message) and leaves :func:`parse_scenario` as a frozen, fully defaulted
:class:`Scenario`, or as one :class:`ScenarioError` carrying *every* violation with the field
path a user wrote (``markets[3].options[0].margin``).

Rules that involve one field live on that field (types, bounds); rules across the fields of
one object live on that object (an option's growth model vs. its cash flows); rules across the
scenario (references between markets, entry windows, commitments) run once every part is
valid, so a market with errors of its own is never judged a second time through a reference.

Years stay calendar years in these types (as written in the file); the conversion to indices
t = year - start_year happens in :mod:`lepton_alloc.models.cashflows`. Light by design: this
module imports pydantic and the standard library only, so a client can import it without the
solver stack.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from .gctools import paused_gc

# Sane sizes: a scenario beyond these is a mistake or an attack, not a plan.
MAX_HORIZON = 50
MAX_MARKETS = 20_000
MAX_LIST = 1_000  # cash-flow lists, requires, regions, commitments, decisions
MAX_SEGMENTS = 100
MAX_TEXT = 256
MAX_GROWTH_SCENARIOS = 100
MAX_INTEGER = 10**9
# entry columns x years x growth scenarios: the size of the per-column cash-flow arrays
# (several float64 arrays of this many cells are built); beyond it a worker would run out of memory
MAX_MODEL_CELLS = 30_000_000
ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
# terminal control characters (C0, DEL, C1): refused in every text of a scenario, which is one line
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Plausible ranges (docs/model.md "Plausible ranges"): every number of a scenario has a finite range,
# far beyond any real plan yet small enough that nothing the model forms from it (money x market
# growth over 50 years, a terminal value, a penalty per market) can overflow before it reaches HiGHS.
MONEY_MAX = 1e12  # one money amount (per year, per person-year, one-off), in the scenario's money unit
NPV_MAX = 1e15  # an NPV floor: a total over the horizon and the terminal value
PEOPLE_MAX = 10**7  # people in one limit or one requirement
GROWTH_MAX = 2.0  # an annual growth rate (fraction): at most tripling a year
RETURN_MAX = 100.0  # contribution per unit of growth-investment spend
MULTIPLIER_MAX = 10.0  # a growth scenario's share-growth multiplier
YEAR_MAX = 9999  # calendar years: -9999..9999
GAP_MAX = 10.0  # relative MIP gap; from 1 on any plan is accepted
TIME_LIMIT_MAX = 7 * 24 * 3600  # seconds
TERMINAL_SPREAD = 0.001  # discount_rate - terminal_growth at least this: the terminal multiplier stays below ~2,000
GROWN_MARKET_MAX = 1e14  # market_size grown over the horizon, in any growth scenario: 100 x MONEY_MAX


# ----------------------------------------------------------------------------- errors


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


def _error(message: str, **ctx: Any) -> PydanticCustomError:
    # pydantic fills a {name} placeholder from ctx only; without ctx the text stays as written
    return PydanticCustomError("scenario", message, ctx or None)


def _violation(loc: tuple[str | int, ...], message: str, value: Any = None) -> InitErrorDetails:
    return InitErrorDetails(type=_error(message), loc=loc, input=value)


def _raise(title: str, errors: list[InitErrorDetails]) -> None:
    if errors:
        raise ValidationError.from_exception_data(title, errors)


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


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    try:
        return f"{v:g}"
    except OverflowError:  # an integer literal too large for a float
        return "a number out of range"


# ----------------------------------------------------------------------------- enums


class Mode(StrEnum):
    """How a market is entered (case-insensitive in a file)."""

    ACQUIRE = "acquire"
    PARTNER = "partner"
    BUILD = "build"


class ObjectiveKind(StrEnum):
    """What a solve maximizes (docs/model.md §2.6)."""

    EXPECTED_NPV = "expected_npv"
    RISK_ADJUSTED_NPV = "risk_adjusted_npv"
    FINAL_YEAR_CONTRIBUTION = "final_year_contribution"


class MoneyUnit(StrEnum):
    """The unit every money field of a scenario is written in (a label: nothing is converted)."""

    UNITS = "units"
    THOUSANDS = "thousands"
    MILLIONS = "millions"
    BILLIONS = "billions"


MODES: tuple[str, ...] = tuple(m.value for m in Mode)
OBJECTIVE_KINDS: tuple[str, ...] = tuple(k.value for k in ObjectiveKind)


# ----------------------------------------------------------------------------- field types
# Strict readers run before pydantic's own checks: a number is never text or a boolean, an
# integer accepts a whole number written 25.0, a choice is case-insensitive.


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _error("must be a number, got {kind}", kind=_kind(value))
    try:
        v = float(value)
    except OverflowError:
        v = math.inf
    if not math.isfinite(v):
        raise _error("must be a finite number")
    return v


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _error("must be an integer, got {kind}", kind=_kind(value))
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise _error("must be a whole number, got {value}", value=_fmt(value))
    return int(value)


def _integer(value: Any) -> int:
    v = _whole(value)
    if abs(v) > MAX_INTEGER:
        raise _error("is out of range")
    return v


def _show(v: float) -> str:
    """A bound or a value in a message: integers as written, other numbers short (1e+12)."""
    return str(v) if isinstance(v, int) and abs(v) < 10**15 else _fmt(v)


@dataclass(frozen=True)
class Range:
    """The plausible range of one kind of number (docs/model.md "Plausible ranges"): ``lo`` to
    ``hi``, either end excluded when open. Its :meth:`read` is the field's reader (a finite number,
    or a whole one, inside the range; the message names the range); :meth:`bounds` puts the same
    bounds in the JSON Schema; the object itself rides along in the field's metadata (tests walk it)."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False

    def __contains__(self, v: float) -> bool:
        above = self.lo < v if self.lo_open else self.lo <= v
        return above and (v < self.hi if self.hi_open else v <= self.hi)

    def words(self) -> str:
        """``between 0 and 1e+12``, or ``> 0 and <= 1`` when an end is open."""
        if not (self.lo_open or self.hi_open):
            return f"between {_show(self.lo)} and {_show(self.hi)}"
        return (f"{'>' if self.lo_open else '>='} {_show(self.lo)} and "
                f"{'<' if self.hi_open else '<='} {_show(self.hi)}")

    def read(self, value: Any) -> Any:
        kind = type(value)
        if (kind is float or kind is int) and self.lo <= value <= self.hi \
                and not (self.lo_open and value == self.lo) and not (self.hi_open and value == self.hi):
            # the common case first, quickly (20,000 markets have 10^6 numbers); NaN is never inside
            if not self.integer:
                return float(value)
            if kind is int or value.is_integer():
                return int(value)
        return self._read(value)

    def _read(self, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):  # NaN and infinities are in no range
            raise _error("must be a finite number " + self.words() + ", got {value}", value=_fmt(value))
        try:
            v = _whole(value) if self.integer else _number(value)
        except PydanticCustomError:
            if isinstance(value, int) and not isinstance(value, bool):  # an integer too large for a float
                raise _error("must be a finite number " + self.words()) from None
            raise
        if v not in self:
            raise _error("must be " + self.words() + ", got {value}", value=_show(v))
        return v

    def bounds(self) -> Any:
        lo, hi = self.lo, self.hi
        return Field(gt=lo if self.lo_open else None, ge=None if self.lo_open else lo,
                     lt=hi if self.hi_open else None, le=None if self.hi_open else hi)


MONEY = Range(0.0, MONEY_MAX)
SIGNED_MONEY = Range(-MONEY_MAX, MONEY_MAX)  # a contribution may be negative
SPEND_STEP = Range(0.0, MONEY_MAX, lo_open=True)  # a growth-investment segment's upper end
NPV_FLOOR = Range(-NPV_MAX, NPV_MAX)
FRACTION = Range(0.0, 1.0)
SHARE_CAP = Range(0.0, 1.0, lo_open=True)  # max_share, a probability
CONFIDENCE = Range(0.0, 1.0, lo_open=True, hi_open=True)  # cvar_alpha
DISCOUNT = Range(0.0, 1.0, hi_open=True)
GROWTH = Range(-1.0, GROWTH_MAX, lo_open=True)  # market and share growth: 1 + g > 0
GROWTH_DELTA = Range(-(GROWTH_MAX + 1.0), GROWTH_MAX + 1.0)  # moves any allowed growth rate to any other
TERMINAL_GROWTH = Range(-1.0, 1.0, lo_open=True, hi_open=True)  # and < discount_rate - TERMINAL_SPREAD
MULTIPLIER = Range(0.0, MULTIPLIER_MAX, lo_open=True)
RETURN = Range(0.0, RETURN_MAX)
PEOPLE = Range(0, PEOPLE_MAX, integer=True)
HEADS = Range(0.0, float(PEOPLE_MAX))  # a per-year people limit (may be fractional)
MARKET_COUNT = Range(0, MAX_MARKETS, integer=True)
YEAR = Range(-YEAR_MAX, YEAR_MAX, integer=True)
YEAR_SPAN = Range(0, MAX_HORIZON, integer=True)  # lead times, pre-hiring years
HORIZON = Range(1, MAX_HORIZON, integer=True)
TIME_LIMIT = Range(0.0, float(TIME_LIMIT_MAX), lo_open=True)
GAP = Range(0.0, GAP_MAX)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _error("must be true or false, got {kind}", kind=_kind(value))
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _error("must be a string, got {kind}", kind=_kind(value))
    if len(value) > MAX_TEXT:
        raise _error(f"must be at most {MAX_TEXT} characters")
    control = None if value.isprintable() else CONTROL_CHARACTERS.search(value)
    if control:  # a name printed on a terminal must not drive it (colours, cursor, title)
        raise _error("must not contain control characters, found {char} at character {at}",
                     char=_escaped(control.group()), at=control.start() + 1)
    return value


def _escaped(text: str) -> str:
    """Control characters as visible escapes (``\\x1b``), for messages and field paths."""
    return CONTROL_CHARACTERS.sub(lambda m: repr(m.group())[1:-1], text)


def _identifier(value: Any) -> str:
    text = _text(value)
    if not ID_PATTERN.fullmatch(text):
        raise _error("must be 1..64 characters of [A-Za-z0-9_.-]")
    return text


def _choice(choices: tuple[str, ...], what: str) -> Any:
    def read(value: Any) -> str:
        if not isinstance(value, str):
            raise _error("must be one of {choices}, got {kind}", choices=", ".join(choices), kind=_kind(value))
        v = value.strip().lower()
        if v.endswith("_unspecified"):
            # an enum left at 0 by a proto caller (or turned into 0 by its library): never a default
            raise _error(f"is required: {value} is not {what} (one of {', '.join(choices)})")
        if v.startswith("<unknown"):
            raise _error(f"{value} is not {what} this server knows (one of {', '.join(choices)})")
        if v not in choices:
            raise _error("must be one of {choices}, got {value}", choices=", ".join(choices), value=repr(value))
        return v

    return read


def _per_year_in(limits: Range) -> Any:
    """The reader of a per-year limit: one number (every year) or a list of exactly T numbers."""

    def _per_year(value: Any, info: ValidationInfo) -> Any:  # the name marks a per-year field (clients.xlsx)
        horizon = (info.context or {}).get("horizon")
        if isinstance(value, (list, tuple)):
            if horizon is not None and len(value) != horizon:
                raise _error(f"must have exactly {horizon} values (one per year), got {len(value)}")
            return value  # each value is read by the element type
        return [limits.read(value)] * (horizon or 1)

    return _per_year


# Every number below is read by its Range (bounds in the JSON Schema too); the Range object itself
# is the last piece of metadata, so tests find every bounded field and its range by walking the schema.
Money = Annotated[float, MONEY.bounds(), BeforeValidator(MONEY.read), MONEY]
SignedMoney = Annotated[float, SIGNED_MONEY.bounds(), BeforeValidator(SIGNED_MONEY.read), SIGNED_MONEY]
SpendStep = Annotated[float, SPEND_STEP.bounds(), BeforeValidator(SPEND_STEP.read), SPEND_STEP]
NpvFloor = Annotated[float, NPV_FLOOR.bounds(), BeforeValidator(NPV_FLOOR.read), NPV_FLOOR]
Fraction = Annotated[float, FRACTION.bounds(), BeforeValidator(FRACTION.read), FRACTION]
ShareCap = Annotated[float, SHARE_CAP.bounds(), BeforeValidator(SHARE_CAP.read), SHARE_CAP]
Confidence = Annotated[float, CONFIDENCE.bounds(), BeforeValidator(CONFIDENCE.read), CONFIDENCE]
DiscountRate = Annotated[float, DISCOUNT.bounds(), BeforeValidator(DISCOUNT.read), DISCOUNT]
GrowthRate = Annotated[float, GROWTH.bounds(), BeforeValidator(GROWTH.read), GROWTH]
GrowthDelta = Annotated[float, GROWTH_DELTA.bounds(), BeforeValidator(GROWTH_DELTA.read), GROWTH_DELTA]
TerminalGrowth = Annotated[float, TERMINAL_GROWTH.bounds(), BeforeValidator(TERMINAL_GROWTH.read), TERMINAL_GROWTH]
Multiplier = Annotated[float, MULTIPLIER.bounds(), BeforeValidator(MULTIPLIER.read), MULTIPLIER]
ReturnRate = Annotated[float, RETURN.bounds(), BeforeValidator(RETURN.read), RETURN]
People = Annotated[int, PEOPLE.bounds(), BeforeValidator(PEOPLE.read), PEOPLE]
Heads = Annotated[float, HEADS.bounds(), BeforeValidator(HEADS.read), HEADS]
MarketCount = Annotated[int, MARKET_COUNT.bounds(), BeforeValidator(MARKET_COUNT.read), MARKET_COUNT]
Year = Annotated[int, YEAR.bounds(), BeforeValidator(YEAR.read), YEAR]
YearSpan = Annotated[int, YEAR_SPAN.bounds(), BeforeValidator(YEAR_SPAN.read), YEAR_SPAN]
Horizon = Annotated[int, HORIZON.bounds(), BeforeValidator(HORIZON.read), HORIZON]
TimeLimit = Annotated[float, TIME_LIMIT.bounds(), BeforeValidator(TIME_LIMIT.read), TIME_LIMIT]
MipGap = Annotated[float, GAP.bounds(), BeforeValidator(GAP.read), GAP]
Flag = Annotated[bool, BeforeValidator(_boolean)]
Text = Annotated[str, BeforeValidator(_text)]
Identifier = Annotated[str, BeforeValidator(_identifier)]
ModeName = Annotated[Mode, BeforeValidator(_choice(MODES, "a mode"))]
MoneyPerYear = Annotated[
    tuple[Money, ...] | None,
    BeforeValidator(_per_year_in(MONEY), json_schema_input_type=Annotated[float, MONEY.bounds()]
                    | list[Annotated[float, MONEY.bounds()]] | None),
]
HeadsPerYear = Annotated[
    tuple[Heads, ...] | None,
    BeforeValidator(_per_year_in(HEADS), json_schema_input_type=Annotated[float, HEADS.bounds()]
                    | list[Annotated[float, HEADS.bounds()]] | None),
]


class _Schema(BaseModel):
    """Base of every scenario part: frozen, unknown fields refused, ``null`` means "absent"."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


# ----------------------------------------------------------------------------- markets


class CashFlows(_Schema):
    """Explicit flows of an option per year since entry; index 0 is the entry year (§2.2)."""

    contribution: tuple[SignedMoney, ...] = Field((), max_length=MAX_LIST, description=(
        "Contribution per year since entry, money per year; no growth-scenario adjustment."))
    cost: tuple[Money, ...] = Field((), max_length=MAX_LIST, description=(
        "Cost per year since entry, money per year, >= 0; all of it counts as recurring."))
    headcount: tuple[People, ...] = Field((), max_length=MAX_LIST, description=(
        "People needed per year since entry, integers >= 0."))


_GROWTH_MODEL_FIELDS = (
    "initial_share", "share_growth", "max_share", "margin", "entry_cost", "annual_cost",
    "headcount", "prehire_years",
)


class Option(_Schema):
    """One way to enter a market (§2.2): the growth model, or explicit ``cash_flows``."""

    mode: ModeName = Field(description="Entry mode: acquire, partner or build (case-insensitive).")
    initial_share: Fraction | None = Field(None, description=(
        "Market share S0 in the entry year, fraction in [0, 1]; required for the growth model."))
    share_growth: GrowthRate = Field(0.0, description=(
        "Annual growth r of the share after entry, fraction: S(t) = S0 (1 + r)^(t - entry)."))
    max_share: ShareCap = Field(1.0, description=(
        "Cap on the market share, fraction in (0, 1]."))
    margin: Fraction | None = Field(None, description=(
        "Contribution per unit of revenue, fraction in [0, 1]; required for the growth model."))
    entry_cost: Money = Field(0.0, description="One-off cost in the entry year, money, >= 0.")
    annual_cost: Money = Field(0.0, description=(
        "Cost in every active year, entry year included, money per year, >= 0."))
    headcount: People = Field(0, description="People needed in every active year, integer >= 0.")
    prehire_years: YearSpan = Field(0, description=(
        "Years before entry in which `headcount` people are already needed, integer >= 0."))
    cash_flows: CashFlows | None = Field(None, description=(
        "Explicit per-year flows replacing the growth model; excludes every growth-model field."))

    @model_validator(mode="after")
    def _growth_model_or_cash_flows(self) -> Option:
        errors: list[InitErrorDetails] = []
        if self.cash_flows is not None:
            for key in _GROWTH_MODEL_FIELDS:
                if key in self.model_fields_set:
                    errors.append(_violation((key,), "cannot be combined with cash_flows (explicit flows replace the growth model)"))
        else:
            for key in ("initial_share", "margin"):
                if getattr(self, key) is None:
                    errors.append(_violation((key,), "is required for a growth-model option (or give cash_flows)"))
        _raise("Option", errors)
        return self

    @model_serializer(mode="wrap")
    def _canonical(self, handler: Any) -> dict[str, Any]:
        # an option with cash flows has no growth model: its canonical form carries none of it
        data: dict[str, Any] = handler(self)
        if self.cash_flows is not None:
            return {"mode": data["mode"], "cash_flows": data["cash_flows"]}
        return data


class Compliance(_Schema):
    """Regulatory conditions of entering a market (§2.1, §2.2)."""

    lead_time_years: YearSpan = Field(0, description=(
        "Years of regulatory lead time: no entry before this model year, integer >= 0."))
    cost: Money = Field(0.0, description="One-off compliance cost, money, paid lead_time_years before entry.")
    banned_modes: tuple[ModeName, ...] = Field((), max_length=MAX_LIST, description="Modes not allowed in this market.")

    @field_validator("banned_modes")
    @classmethod
    def _distinct(cls, modes: tuple[Mode, ...]) -> tuple[Mode, ...]:
        return tuple(dict.fromkeys(modes))


class Segment(_Schema):
    """A piece of the concave growth-investment response (§2.3)."""

    up_to: SpendStep = Field(description=(
        "Upper end of this segment's spend, money per year, > 0, strictly increasing."))
    return_rate: ReturnRate = Field(description=(
        "Contribution per unit of spend in this segment, >= 0, non-increasing (concave)."))


class GrowthInvestment(_Schema):
    """Discretionary spend with a concave return in an entered market (§2.3)."""

    segments: tuple[Segment, ...] = Field(max_length=MAX_SEGMENTS, description=(
        "Segments in order of increasing up_to, with non-increasing return_rate; at least one."))

    @field_validator("segments")
    @classmethod
    def _concave(cls, segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
        if not segments:
            raise _error("must list at least one segment")
        errors: list[InitErrorDetails] = []
        for j in range(1, len(segments)):
            prev, seg = segments[j - 1], segments[j]
            if seg.up_to <= prev.up_to:
                errors.append(_violation((j, "up_to"), f"must be strictly increasing (previous {_fmt(prev.up_to)}), got {_fmt(seg.up_to)}"))
            if seg.return_rate > prev.return_rate:
                errors.append(_violation((j, "return_rate"), "must be non-increasing (concave response; "
                                         f"previous {_fmt(prev.return_rate)}), got {_fmt(seg.return_rate)}"))
        _raise("GrowthInvestment", errors)
        return segments


class GrowthHiring(_Schema):
    """Discretionary hiring in an entered market (§2.3)."""

    max_heads: People = Field(description="Maximum growth hires per active year, integer >= 0.")
    contribution_per_head: SignedMoney = Field(description=(
        "Contribution of one growth hire, money per person-year; the salary is paid separately."))


class Market(_Schema):
    """A market that may be entered at most once, with one of its options (§2.1)."""

    id: Identifier = Field(description="Unique market id, 1..64 characters of [A-Za-z0-9_.-].")
    name: Text = Field("", description="Display name; default the id.")
    region: Text | None = Field(None, description="Region label used by `regions`; default none.")
    market_size: Money = Field(0.0, description="Addressable market size M in year 0, money per year, >= 0.")
    market_growth: GrowthRate = Field(0.0, description=(
        "Annual growth g of the market size, fraction, > -1."))
    risk_score: Fraction = Field(0.0, description="Risk score rho in [0, 1], used by risk.max_average_risk.")
    compliance: Compliance = Field(default_factory=Compliance, description="Lead time, cost and banned modes.")
    earliest_entry_year: Year | None = Field(None, description=(
        "First calendar year an entry may happen; default start_year; may precede it."))
    latest_entry_year: Year | None = Field(None, description=(
        "Last calendar year an entry may happen; default the last year; a later year is clipped."))
    must_enter: Flag = Field(False, description="True: the market must be entered.")
    requires: tuple[Text, ...] = Field((), max_length=MAX_LIST, description=(
        "Ids of prerequisite markets that must be active whenever this one is (§2.5)."))
    salary_per_head: Money = Field(0.0, description="Loaded annual cost s of one person, money per person-year.")
    growth_investment: GrowthInvestment | None = Field(None, description="Optional growth investment (§2.3).")
    growth_hiring: GrowthHiring | None = Field(None, description="Optional growth hiring (§2.3).")
    options: tuple[Option, ...] = Field((), max_length=len(MODES), description="Ways to enter, at most one per mode.")

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_id(cls, data: Any) -> Any:
        # only a valid id: a broken one is reported once, on id, not again on the name it would give
        if isinstance(data, dict) and data.get("name") is None and isinstance(data.get("id"), str) \
                and ID_PATTERN.fullmatch(data["id"]):
            return {**data, "name": data["id"]}
        return data

    @field_validator("options")
    @classmethod
    def _one_option_per_mode(cls, options: tuple[Option, ...]) -> tuple[Option, ...]:
        seen: dict[Mode, int] = {}
        errors = []
        for k, o in enumerate(options):
            if o.mode in seen:
                errors.append(_violation((k, "mode"), f"at most one option per mode; {o.mode.value!r} also at options[{seen[o.mode]}]"))
            seen.setdefault(o.mode, k)
        _raise("Market", errors)
        return options

    @property
    def segments(self) -> tuple[Segment, ...]:
        """The growth-investment segments (§2.3); empty when there is none."""
        return self.growth_investment.segments if self.growth_investment is not None else ()


# ----------------------------------------------------------------------------- limits and policies


class Budget(_Schema):
    """Limits on total spend (§2.4)."""

    limit: MoneyPerYear = Field(None, description=(
        "Limit B_t on spend per year, money per year, >= 0: one number for every year or exactly "
        "horizon_years values; absent: no budget limit."))
    carry_over: Flag = Field(False, description="True: unspent budget rolls forward (cumulative limits).")


class Headcount(_Schema):
    """Limits on people (§2.4)."""

    cap: HeadsPerYear = Field(None, description="Cap on total heads per year, people: a number or horizon_years values.")
    max_net_hires: HeadsPerYear = Field(None, description="Cap on net hires H_t - H_{t-1} per year, people.")
    initial: People = Field(0, description=(
        "People already on staff before year 0: only the start of the net-hires ramp, integer >= 0."))


class Region(_Schema):
    """Limits on the markets carrying one region label (§2.5)."""

    name: Text = Field(description="Region label, as in markets[].region; unique.")
    min_markets: MarketCount = Field(0, description="Minimum number of the region's markets entered, integer >= 0.")
    max_markets: MarketCount | None = Field(None, description="Maximum number entered, integer >= min_markets; default none.")
    max_budget_share: Fraction | None = Field(None, description=(
        "Maximum share of the region in total undiscounted spend over the horizon, fraction."))
    talent_cap: HeadsPerYear = Field(None, description="Cap on the region's heads per year, people.")

    @model_validator(mode="after")
    def _min_below_max(self) -> Region:
        if self.max_markets is not None and self.min_markets > self.max_markets:
            _raise("Region", [_violation(("min_markets",), f"must be <= max_markets ({self.max_markets}), got {self.min_markets}")])
        return self


class GrowthScenario(_Schema):
    """A probability-weighted variant of market and share growth (§2.2)."""

    name: Text = Field(description="Unique scenario name.")
    probability: ShareCap = Field(description=(
        "Probability p_s in (0, 1]; the probabilities sum to 1 within 1e-6."))
    market_growth_delta: GrowthDelta = Field(0.0, description="Added to every market's growth rate, fraction.")
    share_growth_multiplier: Multiplier = Field(1.0, description=(
        "Multiplies every option's share growth, > 0."))


class Risk(_Schema):
    """Portfolio risk limit (§2.5)."""

    max_average_risk: Fraction | None = Field(None, description=(
        "Maximum average risk score of the entered markets, in [0, 1]; absent: no limit."))


class Commitment(_Schema):
    """An entry decision already taken: fixed in the model (§2.5)."""

    market_id: Text = Field(description="Id of the committed market; at most one commitment per market.")
    mode: ModeName = Field(description="Committed entry mode; one of the market's allowed options.")
    entry_year: Year = Field(description="Committed entry calendar year, inside the market's allowed entry years.")


class PreviousDecision(_Schema):
    """The previous decision on one market (§2.5)."""

    market_id: Text = Field(description="Id of the market.")
    entered: Flag = Field(False, description=(
        "Whether the market was previously entered; default: true exactly when mode or entry_year is given."))
    mode: ModeName | None = Field(None, description="Previous entry mode; required when entered.")
    entry_year: Year | None = Field(None, description="Previous entry calendar year; required when entered.")

    @model_validator(mode="before")
    @classmethod
    def _entered_by_default_when_a_choice_is_given(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("entered") is None:
            has_choice = data.get("mode") is not None or data.get("entry_year") is not None
            return {**data, "entered": has_choice}
        return data

    @model_validator(mode="after")
    def _choice_matches_entered(self) -> PreviousDecision:
        errors = []
        if self.entered:
            for key in ("mode", "entry_year"):
                if getattr(self, key) is None:
                    errors.append(_violation((key,), "is required for a market previously entered"))
        elif self.mode is not None or self.entry_year is not None:
            errors.append(_violation(("entered",), "is false but mode/entry_year are given"))
        _raise("PreviousDecision", errors)
        return self


class PreviousPlan(_Schema):
    """The previous plan and the penalty for departing from it (§2.5)."""

    change_penalty: Money = Field(0.0, description="Penalty per market whose decision changes, money (objective units).")
    decisions: tuple[PreviousDecision, ...] = Field((), max_length=MAX_MARKETS, description=(
        "Previous decisions, at most one per market; markets not listed carry no penalty."))


class Objective(_Schema):
    """What a solve maximizes, and optional floors (§2.6)."""

    kind: Annotated[ObjectiveKind, BeforeValidator(_choice(OBJECTIVE_KINDS, "an objective kind"))] = Field(
        ObjectiveKind.EXPECTED_NPV, description="expected_npv | risk_adjusted_npv | final_year_contribution.")
    risk_aversion: Fraction = Field(0.0, description="Weight lambda of CVaR in risk_adjusted_npv, in [0, 1].")
    cvar_alpha: Confidence = Field(0.9, description=(
        "CVaR confidence level alpha in (0, 1): CVaR is the mean NPV of the worst 1 - alpha probability."))
    min_expected_npv: NpvFloor | None = Field(None, description="Floor on expected NPV, money; absent: none.")
    min_cvar: NpvFloor | None = Field(None, description="Floor on CVaR of NPV, money; absent: none.")


class SolverSettings(_Schema):
    """Solver limits stored with the scenario; a request may override them."""

    time_limit_seconds: TimeLimit = Field(
        60.0, description="Wall-clock time limit of the solve, seconds, > 0.")
    mip_rel_gap: MipGap = Field(1e-4, description="Relative MIP gap at which the solve stops, >= 0 (0 proves optimality).")


# ----------------------------------------------------------------------------- the scenario


def _base_scenario() -> tuple[GrowthScenario, ...]:
    return (GrowthScenario(name="base", probability=1.0),)


class Scenario(_Schema):
    """A validated scenario: every default filled, per-year limits expanded to T values."""

    model_config = ConfigDict(title="Lepton Allocator scenario")
    SCHEMA_ID: ClassVar[str] = "https://lepton.ai/schemas/allocation/v1/scenario.json"

    name: Text = Field("scenario", description="Free-text scenario name.")
    currency: Annotated[str, Field(pattern=CURRENCY_PATTERN.pattern), BeforeValidator(_text)] = Field(
        "USD", description="ISO 4217 code of the currency every money field is in (a label: no conversion).")
    money_unit: Annotated[MoneyUnit, BeforeValidator(_choice(tuple(u.value for u in MoneyUnit), "a money unit"))] = Field(
        MoneyUnit.MILLIONS, description="Unit of every money field: units, thousands, millions or billions (a label).")
    start_year: Year = Field(0, description=(
        "Calendar year of model year t = 0."))
    horizon_years: Horizon = Field(description=(
        "Planning horizon T in years, 1..50."))
    discount_rate: DiscountRate = Field(0.0, description=(
        "Annual discount rate d, fraction, 0 <= d < 1."))
    terminal_growth: TerminalGrowth | None = Field(None, description=(
        "Perpetual growth g of the terminal value, -1 < g < discount_rate; absent: no terminal value (§2.6)."))
    markets: tuple[Market, ...] = Field(max_length=MAX_MARKETS, description="The markets that may be entered; ids unique.")
    budget: Budget = Field(default_factory=Budget, description="Budget limits; absent: none.")
    headcount: Headcount = Field(default_factory=Headcount, description="Headcount limits; absent: none.")
    regions: tuple[Region, ...] = Field((), max_length=MAX_LIST, description="Limits per region label.")
    growth_scenarios: tuple[GrowthScenario, ...] = Field(
        default_factory=_base_scenario, max_length=MAX_GROWTH_SCENARIOS,
        description="Growth scenarios with probabilities summing to 1; default one scenario `base`.")
    risk: Risk | None = Field(None, description="Portfolio risk limit; absent: none.")
    commitments: tuple[Commitment, ...] = Field((), max_length=MAX_MARKETS, description="Entry decisions already taken.")
    previous_plan: PreviousPlan | None = Field(None, description="The previous plan and its change penalty.")
    objective: Objective = Field(default_factory=Objective, description="What to maximize; default expected NPV.")
    solver: SolverSettings = Field(default_factory=SolverSettings, description="Solver limits.")

    _canonical_json: str | None = PrivateAttr(None)  # caches: computed once per scenario
    _sha256: str | None = PrivateAttr(None)

    def __eq__(self, other: object) -> bool:
        # the fields decide; a cache filled on one side and not on the other does not
        return type(other) is Scenario and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(self.sha256())

    def __getstate__(self) -> dict[Any, Any]:
        # a scenario sent to a worker keeps its hash but not its canonical text (half the bytes)
        state = super().__getstate__()
        private = dict(state.get("__pydantic_private__") or {})
        private["_canonical_json"] = None
        state["__pydantic_private__"] = private
        return state

    # -- rules within one list

    @field_validator("markets", mode="wrap")
    @classmethod
    def _unique_market_ids(cls, markets: Any, handler: Any) -> tuple[Market, ...]:
        # checked on the raw list too, so a duplicate id is reported beside other market errors
        errors: list[InitErrorDetails] = []
        try:
            valid: tuple[Market, ...] = handler(markets)
        except ValidationError as exc:
            errors.extend(_as_init_errors(exc))
            valid = ()
        if isinstance(markets, (list, tuple)):
            seen: dict[str, int] = {}
            for k, m in enumerate(markets):
                mid = m.get("id") if isinstance(m, dict) else getattr(m, "id", None)
                if isinstance(mid, str):
                    if mid in seen:
                        errors.append(_violation((k, "id"), f"duplicate market id {mid!r} (also markets[{seen[mid]}])"))
                    seen.setdefault(mid, k)
        _raise("Scenario", errors)
        return valid

    @field_validator("growth_scenarios")
    @classmethod
    def _probabilities(cls, scenarios: tuple[GrowthScenario, ...]) -> tuple[GrowthScenario, ...]:
        if not scenarios:
            raise _error("must list at least one scenario (or be omitted)")
        errors = []
        seen: set[str] = set()
        for k, g in enumerate(scenarios):
            if g.name in seen:
                errors.append(_violation((k, "name"), f"duplicate scenario name {g.name!r}"))
            seen.add(g.name)
        _raise("Scenario", errors)
        total = math.fsum(g.probability for g in scenarios)
        if abs(total - 1.0) > 1e-6:
            raise _error(f"probabilities must sum to 1 (within 1e-6), got {total:.9g}")
        return scenarios

    @field_validator("regions")
    @classmethod
    def _unique_regions(cls, regions: tuple[Region, ...]) -> tuple[Region, ...]:
        seen: set[str] = set()
        errors = []
        for k, r in enumerate(regions):
            if r.name in seen:
                errors.append(_violation((k, "name"), f"duplicate region name {r.name!r}"))
            seen.add(r.name)
        _raise("Scenario", errors)
        return regions

    # -- rules across the scenario (run once every part is valid)

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Scenario:
        errors: list[InitErrorDetails] = []
        for check in (_check_terminal_growth, _check_growth_rates, _check_entry_windows, _check_requires,
                      _check_regions, _check_commitments, _check_previous_plan, _check_size):
            errors.extend(check(self))
        _raise("Scenario", errors)
        return self

    # -- derived values

    @property
    def years(self) -> list[int]:
        """Calendar labels of t = 0..T-1."""
        return [self.start_year + t for t in range(self.horizon_years)]

    @property
    def risk_max_average(self) -> float | None:
        return self.risk.max_average_risk if self.risk is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The canonical plain-data form: every field present, per-year limits as lists."""
        with paused_gc():  # tens of thousands of new dicts: a collection now would rescan them all (10,000 markets)
            return self.model_dump(mode="json")

    def canonical_json(self) -> str:
        """The canonical JSON text (defaults filled, keys sorted): what a store keeps."""
        if self._canonical_json is None:
            with paused_gc():
                self._canonical_json = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"),
                                                  allow_nan=False)
        return self._canonical_json

    def sha256(self) -> str:
        """SHA-256 of the canonical JSON form (defaults filled, keys sorted); computed once."""
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()
        return self._sha256


def _as_init_errors(exc: ValidationError) -> list[InitErrorDetails]:
    """Errors of a nested validation, re-raisable as they are (messages kept word for word)."""
    return [InitErrorDetails(type=_error(_message(e)), loc=tuple(e["loc"]), input=e.get("input")) for e in exc.errors()]


def entry_window(m: Market, start_year: int, horizon: int) -> tuple[int, int]:
    """E_o bounds as indices (§2.1): max(earliest, lead) .. min(latest, T-1).

    Empty when the first bound exceeds the second (e.g. a lead time past the horizon).
    """
    earliest = 0 if m.earliest_entry_year is None else m.earliest_entry_year - start_year
    latest = horizon - 1 if m.latest_entry_year is None else m.latest_entry_year - start_year
    return max(earliest, m.compliance.lead_time_years, 0), min(latest, horizon - 1)


def _check_terminal_growth(s: Scenario) -> list[InitErrorDetails]:
    # the terminal multiplier (1 + g) / (d - g) must stay finite and plausible: d - g >= TERMINAL_SPREAD
    if s.terminal_growth is not None and s.terminal_growth >= s.discount_rate:
        return [_violation(("terminal_growth",), f"must be < discount_rate ({_fmt(s.discount_rate)}), got {_fmt(s.terminal_growth)}")]
    if s.terminal_growth is not None and s.discount_rate - s.terminal_growth < TERMINAL_SPREAD:
        return [_violation(("terminal_growth",), f"must be at most discount_rate - {_fmt(TERMINAL_SPREAD)} "
                                                 f"({_fmt(s.discount_rate - TERMINAL_SPREAD)}), got {_fmt(s.terminal_growth)}")]
    return []


def _check_growth_rates(s: Scenario) -> list[InitErrorDetails]:
    """1 + g_i + Δg_s > 0 and 1 + r_o m_s > 0 in every growth scenario (§1), and no market grows
    beyond GROWN_MARKET_MAX within the horizon (docs/model.md "Plausible ranges")."""
    errors = []
    fastest = max(s.growth_scenarios, key=lambda g: g.market_growth_delta)
    for k, m in enumerate(s.markets):
        for g in s.growth_scenarios:
            if 1 + m.market_growth + g.market_growth_delta <= 0:
                errors.append(_violation(("markets", k, "market_growth"),
                                         f"1 + market_growth + market_growth_delta of scenario {g.name!r} must be > 0"))
        growth = m.market_growth + fastest.market_growth_delta
        if growth > 0 and m.market_size * (1 + growth) ** (s.horizon_years - 1) > GROWN_MARKET_MAX:
            grown = m.market_size * (1 + growth) ** (s.horizon_years - 1)
            errors.append(_violation(("markets", k, "market_growth"), (
                f"grows market_size {_fmt(m.market_size)} to {_fmt(grown)} by {s.start_year + s.horizon_years - 1} "
                f"in scenario {fastest.name!r}; the market size may reach at most {_fmt(GROWN_MARKET_MAX)}")))
        for j, o in enumerate(m.options):
            for g in s.growth_scenarios:
                if o.cash_flows is None and 1 + o.share_growth * g.share_growth_multiplier <= 0:
                    errors.append(_violation(("markets", k, "options", j, "share_growth"),
                                             f"1 + share_growth x multiplier of scenario {g.name!r} must be > 0"))
    return errors


def _check_entry_windows(s: Scenario) -> list[InitErrorDetails]:
    # an omitted latest counts as the last year, an omitted earliest as the first (§1)
    errors = []
    last = s.start_year + s.horizon_years - 1
    for k, m in enumerate(s.markets):
        latest = m.latest_entry_year if m.latest_entry_year is not None else last
        if m.earliest_entry_year is not None and m.earliest_entry_year > latest:
            errors.append(_violation(("markets", k, "earliest_entry_year"),
                                     f"must be <= latest_entry_year ({latest}), got {m.earliest_entry_year}"))
        elif m.earliest_entry_year is None and m.latest_entry_year is not None and m.latest_entry_year < s.start_year:
            errors.append(_violation(("markets", k, "latest_entry_year"),
                                     f"must be >= earliest_entry_year (default start_year {s.start_year}), got {m.latest_entry_year}"))
    return errors


def _check_requires(s: Scenario) -> list[InitErrorDetails]:
    """Prerequisites (§2.5) name existing markets, not the market itself, and form no cycle."""
    errors = []
    ids = {m.id: k for k, m in enumerate(s.markets)}
    graph: dict[str, tuple[str, ...]] = {}
    for k, m in enumerate(s.markets):
        for j, rid in enumerate(m.requires):
            if rid not in ids:
                errors.append(_violation(("markets", k, "requires", j), f"names unknown market {rid!r}"))
            elif rid == m.id:
                errors.append(_violation(("markets", k, "requires", j), "a market cannot require itself"))
        graph[m.id] = tuple(r for r in m.requires if r in ids and r != m.id)
    cycle = _find_cycle(graph) if not errors else None
    if cycle:
        errors.append(_violation(("markets", ids[cycle[0]], "requires"),
                                 "prerequisites form a cycle: " + " -> ".join(cycle + [cycle[0]])))
    return errors


def _find_cycle(graph: dict[str, tuple[str, ...]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in graph:
        if state.get(root):
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, idx = stack.pop()
            if idx == 0:
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


def _check_regions(s: Scenario) -> list[InitErrorDetails]:
    labels = {m.region for m in s.markets if m.region is not None}
    return [_violation(("regions", k, "name"), f"no market carries region {r.name!r}")
            for k, r in enumerate(s.regions) if r.name not in labels]


def _check_commitments(s: Scenario) -> list[InitErrorDetails]:
    """A commitment names a market once, one of its allowed options, a year inside E_o (§2.5)."""
    errors = []
    markets = {m.id: m for m in s.markets}
    seen: set[str] = set()
    for k, c in enumerate(s.commitments):
        m = markets.get(c.market_id)
        if m is None:
            errors.append(_violation(("commitments", k, "market_id"), f"names unknown market {c.market_id!r}"))
            continue
        if c.market_id in seen:
            errors.append(_violation(("commitments", k, "market_id"), f"market {c.market_id!r} is committed more than once"))
        seen.add(c.market_id)
        if c.mode not in {o.mode for o in m.options}:
            errors.append(_violation(("commitments", k, "mode"), f"market {c.market_id!r} has no {c.mode.value!r} option"))
            continue
        if c.mode in m.compliance.banned_modes:
            errors.append(_violation(("commitments", k, "mode"), f"mode {c.mode.value!r} is banned in market {c.market_id!r}"))
            continue
        lo, hi = entry_window(m, s.start_year, s.horizon_years)
        if not lo <= c.entry_year - s.start_year <= hi:
            window = f"{s.start_year + lo}..{s.start_year + hi}" if lo <= hi else "empty"
            errors.append(_violation(("commitments", k, "entry_year"),
                                     f"{c.entry_year} is outside the allowed entry years of {c.market_id!r} ({window})"))
    return errors


def _check_previous_plan(s: Scenario) -> list[InitErrorDetails]:
    # a previous (mode, year) outside E_o is valid: its penalty is a constant (§2.5)
    if s.previous_plan is None:
        return []
    errors = []
    ids = {m.id for m in s.markets}
    seen: set[str] = set()
    for k, d in enumerate(s.previous_plan.decisions):
        loc = ("previous_plan", "decisions", k, "market_id")
        if d.market_id not in ids:
            errors.append(_violation(loc, f"names unknown market {d.market_id!r}"))
        elif d.market_id in seen:
            errors.append(_violation(loc, f"market {d.market_id!r} appears more than once"))
        seen.add(d.market_id)
    return errors


def _check_size(s: Scenario) -> list[InitErrorDetails]:
    cells = entry_columns(s) * s.horizon_years * len(s.growth_scenarios)
    if cells > MAX_MODEL_CELLS:
        return [_violation(("markets",), f"scenario too large: {entry_columns(s)} entry columns x {s.horizon_years} years x "
                                         f"{len(s.growth_scenarios)} growth scenarios = {cells:,} cells exceeds {MAX_MODEL_CELLS:,}; "
                                         "narrow entry windows, use fewer growth scenarios or split the scenario")]
    return []


def entry_columns(s: Scenario) -> int:
    """The number of binary entry columns x[o, τ] the model will have (§2.1)."""
    columns = 0
    for m in s.markets:
        lo, hi = entry_window(m, s.start_year, s.horizon_years)
        allowed = sum(1 for o in m.options if o.mode not in m.compliance.banned_modes)
        columns += allowed * max(0, hi - lo + 1)
    return columns


# ----------------------------------------------------------------------------- entry point


def parse_scenario(raw: Any) -> Scenario:
    """Validate raw scenario data (docs/model.md §1) and return a :class:`Scenario`.

    Raises :class:`ScenarioError` listing every violation with its field path.
    """
    if isinstance(raw, Scenario):
        return raw
    if not isinstance(raw, dict):
        raise ScenarioError([FieldViolation("<root>", f"must be a mapping, got {_kind(raw)}")])
    horizon = raw.get("horizon_years")
    context = {"horizon": _valid_horizon(horizon)}
    try:
        with paused_gc():  # nothing validated here is garbage yet: don't let the collector rescan it
            return Scenario.model_validate(raw, context=context)
    except ValidationError as exc:
        raise ScenarioError(_violations(exc)) from None


def _valid_horizon(value: Any) -> int | None:
    try:
        h = _integer(value)
    except PydanticCustomError:
        return None
    return h if 1 <= h <= MAX_HORIZON else None


def _violations(exc: ValidationError) -> list[FieldViolation]:
    return [FieldViolation(_path(e["loc"]), _message(e)) for e in exc.errors(include_url=False)]


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:  # a misspelled key is the user's text: its control characters are shown, not sent
            part = _escaped(str(part))
            out += f".{part}" if out else part
    return out or "<root>"


def _message(e: Any) -> str:
    """Pydantic's error in this project's words (field paths are added by the caller)."""
    kind, ctx, value = e["type"], e.get("ctx") or {}, e.get("input")
    got = f", got {_fmt(value)}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    bounds = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
              "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}
    if kind in bounds:
        op, key = bounds[kind]
        return f"must be {op} {_fmt(ctx.get(key))}{got}"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping, got {_kind(value)}"
    if kind in ("tuple_type", "list_type", "iterable_type"):
        return f"must be a list, got {_kind(value)}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} entries, got {ctx.get('actual_length')}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}, got {value!r}"
    return str(e["msg"])


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (for editors: completion and checks as you type)."""
    schema = Scenario.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": Scenario.SCHEMA_ID, **schema}
