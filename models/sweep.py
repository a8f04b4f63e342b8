"""Sweeps and Monte Carlo: many variants of one scenario, solved warm (docs/model.md §7).

A :class:`SweepSpec` names *what varies*; the base scenario stays as it is. Two kinds:

* a **grid** over named fields (``budget.limit`` scaled by 0.8 … 1.2 × ``discount_rate`` set
  to 0.08 / 0.10): every combination of the axes' values is one variant;
* **Monte Carlo**: ``draws`` variants, each drawing the named fields from stated distributions
  (normal, uniform, triangular), reproducible from ``seed`` alone: draw k uses the random
  stream ``numpy.random.default_rng([seed, k])``, so any process can make variant k by itself.

Variant 0 is always the base scenario; variants 1 … n are the grid points (in row-major order,
the last axis fastest) or the draws. A variant's scenario is the base with its changes applied
and validated again (:func:`variant_scenario`): a draw that breaks a field's range (a growth
rate below −100 %) is reported as that variant's error, naming the field, and the sweep goes on.

**Paths** name numeric fields of the scenario: ``discount_rate``, ``budget.limit``,
``budget.limit[2027]`` (one calendar year of a per-year limit), ``headcount.cap``,
``markets[CN].market_growth``, ``markets[*].options[build].share_growth``,
``regions[EMEA].max_markets``, ``growth_scenarios[bear].market_growth_delta``. A list element is
named by its ``id`` (markets), ``name`` (regions, growth scenarios) or ``mode`` (options); ``*``
means every element. A per-year limit moves in every year unless a year is named. ``how``:
``set`` (the value itself), ``scale`` (multiply), ``add``.

**Warm solves** (:class:`WarmSolver`): one built model per process is re-targeted to the next
variant in place (:meth:`~.formulation.AllocationModel.update`: changed limits and coefficients
only), and the previous variant's plan, when it is a plan of the new variant, is HiGHS's
starting solution. A variant of another structure is built afresh.

**Summary** (:func:`summarize`): how often each market is entered and with which mode and entry
year, objective percentiles, the variants whose entry plan differs from the base's, and a
**robust plan**: the entry decisions (market, mode, year) made in at least ``robust_share`` of
the variants with a plan, then evaluated against every variant (:meth:`WarmSolver.evaluate`:
that plan's entries fixed, every other market left out, the levers re-optimised): its objective
and its regret (the variant's optimum minus the robust plan's objective) per variant.
"""

from __future__ import annotations

import copy
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from .scenario import (
    FieldViolation, MipGap, Scenario, ScenarioError, _error, _number, _Schema, _violations, parse_scenario,
)

if TYPE_CHECKING:
    import numpy as np

MAX_VARIANTS = 10_000  # variants of one sweep, the base not counted
MAX_AXES = 8
MAX_VALUES = 1_000
HOW = ("set", "scale", "add")
DISTRIBUTIONS = ("normal", "uniform", "triangular")

Finite = Annotated[float, BeforeValidator(_number)]
_KEYS = {"markets": "id", "regions": "name", "growth_scenarios": "name", "options": "mode"}
_SEGMENT = re.compile(r"^([a-z_]+)(?:\[([^\]]+)\])?$")


# ----------------------------------------------------------------------------- the request


class Axis(_Schema):
    """One axis of a grid: a field and the values it takes."""

    path: str = Field(min_length=1, max_length=256, description="The field, e.g. budget.limit or markets[CN].market_growth.")
    how: Literal["set", "scale", "add"] = Field(description="set: the value itself; scale: multiply; add: add to it.")
    values: tuple[Finite, ...] = Field(min_length=1, max_length=MAX_VALUES, description="The values of the axis.")


class Draw(_Schema):
    """One uncertain field of a Monte Carlo sweep and its distribution."""

    path: str = Field(min_length=1, max_length=256, description="The field; markets[*]... draws once per market.")
    how: Literal["set", "scale", "add"] = Field(description="set, scale (multiply) or add the drawn number.")
    distribution: Literal["normal", "uniform", "triangular"] = Field(description="normal(mean, sd), uniform(low, high), triangular(low, mode, high).")
    mean: Finite | None = None
    sd: Annotated[float, Field(ge=0), BeforeValidator(_number)] | None = None
    low: Finite | None = None
    mode: Finite | None = None
    high: Finite | None = None
    clip_low: Finite | None = Field(None, description="Draws below this are set to it (optional).")
    clip_high: Finite | None = Field(None, description="Draws above this are set to it (optional).")

    @model_validator(mode="after")
    def _parameters(self) -> Draw:
        need = {"normal": ("mean", "sd"), "uniform": ("low", "high"), "triangular": ("low", "mode", "high")}[self.distribution]
        missing = [p for p in need if getattr(self, p) is None]
        if missing:
            raise _error(f"a {self.distribution} distribution needs {', '.join(missing)}")
        extra = [p for p in ("mean", "sd", "low", "mode", "high") if p not in need and getattr(self, p) is not None]
        if extra:
            raise _error(f"a {self.distribution} distribution takes no {', '.join(extra)}")
        if self.distribution != "normal" and not (self.low <= (self.mode if self.mode is not None else self.low) <= self.high  # type: ignore[operator]
                                                  and self.low < self.high):  # type: ignore[operator]
            raise _error("needs low < high (and low <= mode <= high)")
        if self.clip_low is not None and self.clip_high is not None and self.clip_low > self.clip_high:
            raise _error("clip_low must be <= clip_high")
        return self

    def sample(self, rng: np.random.Generator) -> float:
        p = {k: float(v) for k, v in (("mean", self.mean), ("sd", self.sd), ("low", self.low), ("mode", self.mode),
                                      ("high", self.high)) if v is not None}
        if self.distribution == "normal":
            x = float(rng.normal(p["mean"], p["sd"]))
        elif self.distribution == "uniform":
            x = float(rng.uniform(p["low"], p["high"]))
        else:
            x = float(rng.triangular(p["low"], p["mode"], p["high"]))
        if self.clip_low is not None:
            x = max(x, self.clip_low)
        if self.clip_high is not None:
            x = min(x, self.clip_high)
        return x


class MonteCarlo(_Schema):
    draws: Annotated[int, Field(ge=1, le=MAX_VARIANTS)] = Field(description="How many variants to draw.")
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = Field(0, description="Seed of the draws: the same seed, the same variants.")
    vary: tuple[Draw, ...] = Field(min_length=1, max_length=64, description="The uncertain fields.")


class SweepSpec(_Schema):
    """What a sweep varies, and how it is summarised."""

    grid: tuple[Axis, ...] = Field((), max_length=MAX_AXES, description="Axes of a grid: every combination is a variant.")
    monte_carlo: MonteCarlo | None = Field(None, description="Monte Carlo draws instead of a grid.")
    robust_share: Annotated[float, Field(gt=0, le=1), BeforeValidator(_number)] = Field(0.8, description=(
        "An entry decision belongs to the robust plan when it is made in at least this share of the variants."))
    time_limit_seconds: Annotated[float, Field(gt=0, le=24 * 3600), BeforeValidator(_number)] | None = Field(
        None, description="Time limit of each variant's solve; default the scenario's.")
    mip_rel_gap: MipGap | None = Field(
        None, description="Gap of each variant's solve; default the scenario's.")

    @model_validator(mode="after")
    def _one_kind(self) -> SweepSpec:
        if bool(self.grid) == (self.monte_carlo is not None):
            raise _error("give either grid axes or monte_carlo, not both and not neither")
        if self.grid and math.prod(len(a.values) for a in self.grid) > MAX_VARIANTS:
            raise _error(f"the grid has {math.prod(len(a.values) for a in self.grid):,} combinations; at most {MAX_VARIANTS:,}")
        return self

    @property
    def variant_count(self) -> int:
        """Variants besides the base."""
        if self.monte_carlo is not None:
            return self.monte_carlo.draws
        return math.prod(len(a.values) for a in self.grid)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def parse_sweep(raw: Any, base: Scenario, prefix: str = "") -> SweepSpec:
    """Validate a sweep request against its base scenario; :class:`ScenarioError` names every field.

    Beyond the schema: every path must name numeric fields of ``base`` (``scale``/``add`` need a
    value there), and every grid value applied alone to ``base`` must give a valid scenario, so
    a scale of −1 on a budget is refused here, naming the axis, not found variant by variant.
    ``prefix`` goes before every field path (``sweep.`` for a request's field).
    """
    try:
        return _parse_sweep(raw, base)
    except ScenarioError as exc:
        if not prefix:
            raise
        raise ScenarioError([FieldViolation(prefix + v.field, v.description) for v in exc.violations]) from None


def parse_sweep_document(text: str, base: Scenario, prefix: str = "") -> SweepSpec:
    """A sweep file's text (YAML, or JSON when it starts with ``{``), validated as :func:`parse_sweep`."""
    from .loader import parse_text

    try:
        raw = parse_text(text, "json" if text.lstrip().startswith("{") else "yaml")
    except ScenarioError as exc:
        raise ScenarioError([FieldViolation(prefix + v.field, v.description) for v in exc.violations]) from None
    return parse_sweep(raw, base, prefix)


def _parse_sweep(raw: Any, base: Scenario) -> SweepSpec:
    if not isinstance(raw, dict):
        raise ScenarioError([FieldViolation("<root>", "a sweep is a mapping with grid or monte_carlo")])
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(_violations(exc)) from None
    base_data = base.to_dict()
    problems: list[FieldViolation] = []
    moves: list[tuple[str, Any, list[tuple[str, str, float]]]] = []
    if spec.grid:
        for a, axis in enumerate(spec.grid):
            where = f"grid[{a}]"
            if _check_path(base_data, axis.path, axis.how, f"{where}.path", problems):
                moves += [(f"{where}.values[{j}]", v, [(axis.path, axis.how, v)]) for j, v in enumerate(axis.values)]
    else:
        assert spec.monte_carlo is not None
        for d, draw in enumerate(spec.monte_carlo.vary):
            _check_path(base_data, draw.path, draw.how, f"monte_carlo.vary[{d}].path", problems)
    for where, value, changes in moves:
        data = copy.deepcopy(base_data)
        for path, how, v in changes:
            _apply(data, path, how, _constant(v), None)
        try:
            parse_scenario(data)
        except ScenarioError as exc:
            problems += [FieldViolation(where, f"{_fmt(value)} gives an invalid scenario: {v.field} {v.description}")
                         for v in exc.violations[:3]]
    if problems:
        raise ScenarioError(problems)
    return spec


# ----------------------------------------------------------------------------- paths


def _segments(path: str) -> list[tuple[str, str | None]]:
    out = []
    for part in path.split("."):
        m = _SEGMENT.match(part.strip())
        if not m:
            raise ValueError(f"{part!r} is not a field name (letters and _, optionally [key])")
        out.append((m.group(1), m.group(2)))
    return out


def _leaves(data: dict[str, Any], path: str) -> list[tuple[Any, Any, int | None, str]]:
    """Every (container, key, year index or None, display path) the path names in ``data``."""
    segs = _segments(path)
    found: list[tuple[Any, Any, int | None, str]] = []

    def walk(node: Any, k: int, shown: str) -> None:
        name, key = segs[k]
        if not isinstance(node, dict) or name not in node:
            raise ValueError(f"{shown + '.' if shown else ''}{name} is not a field of the scenario")
        value = node[name]
        last = k == len(segs) - 1
        here = f"{shown}.{name}" if shown else name
        if key is None:
            if last:
                found.append((node, name, None, here))
            else:
                walk(value, k + 1, here)
            return
        if isinstance(value, list) and name in _KEYS:
            attr = _KEYS[name]
            items = [it for it in value if key == "*" or str(it.get(attr)).lower() == key.lower()]
            if not items:
                raise ValueError(f"{here} has no element with {attr} {key!r}")
            for it in items:
                where = f"{here}[{it.get(attr)}]"
                if last:
                    raise ValueError(f"{where} is a whole element; name one of its numeric fields")
                walk(it, k + 1, where)
            return
        if isinstance(value, list) and last:  # a per-year limit: [calendar year]
            try:
                year = int(key)
            except ValueError:
                raise ValueError(f"{here}[{key}]: a per-year field is indexed by a calendar year") from None
            t = year - int(data.get("start_year", 0))
            if not 0 <= t < len(value):
                raise ValueError(f"{here}[{key}]: the year is outside the horizon")
            found.append((node, name, t, f"{here}[{year}]"))
            return
        raise ValueError(f"{here} takes no [key]")

    walk(data, 0, "")
    return found


def _check_path(data: dict[str, Any], path: str, how: str, where: str, problems: list[FieldViolation]) -> bool:
    try:
        leaves = _leaves(data, path)
    except ValueError as exc:
        problems.append(FieldViolation(where, str(exc)))
        return False
    for node, key, t, shown in leaves:
        value = node[key] if t is None else node[key][t]
        if isinstance(value, bool) or not (value is None or isinstance(value, (int, float, list))):
            problems.append(FieldViolation(where, f"{shown} is not a number"))
            return False
        if isinstance(value, list) and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            problems.append(FieldViolation(where, f"{shown} is not a list of numbers"))
            return False
        if value is None and how != "set":
            problems.append(FieldViolation(where, f"{shown} is not set in the base scenario, so it cannot be {how}d; use how: set"))
            return False
    return True


def _apply(data: dict[str, Any], path: str, how: str, draw: Callable[[Any], float], rng: Any) -> None:
    """Change every leaf the path names; ``draw(rng)`` gives the number (one per leaf)."""
    for node, key, t, _shown in _leaves(data, path):
        x = draw(rng)
        if t is not None:
            node[key][t] = _moved(node[key][t], how, x)
        elif isinstance(node[key], list):
            node[key] = [_moved(v, how, x) for v in node[key]]
        else:
            node[key] = _moved(node[key], how, x)


def _constant(v: float) -> Callable[[Any], float]:
    return lambda _rng: v


def _moved(old: Any, how: str, x: float) -> float:
    if how == "set" or old is None:
        return x
    return old * x if how == "scale" else old + x


def _fmt(x: float) -> str:
    return f"{x:g}"


# ----------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    index: int  # 0 = the base
    label: str  # e.g. "budget.limit ×0.9, discount_rate = 0.1" or "draw 17"


def variant_at(spec: SweepSpec, index: int) -> Variant:
    """Variant ``index`` of ``spec`` (0 = the base), its label made from the index alone."""
    if index == 0:
        return Variant(0, "base")
    if spec.monte_carlo is not None:
        return Variant(index, f"draw {index}")
    return Variant(index, ", ".join(_label(a.path, a.how, v) for a, v in zip(spec.grid, _grid_point(spec, index - 1))))


def variants(spec: SweepSpec) -> list[Variant]:
    """The base and every variant of ``spec``, in order (cheap: no scenario is built)."""
    return [variant_at(spec, k) for k in range(spec.variant_count + 1)]


def _label(path: str, how: str, v: float) -> str:
    return {"set": f"{path} = {_fmt(v)}", "scale": f"{path} ×{_fmt(v)}", "add": f"{path} {v:+g}"}[how]


def variant_scenario(base: Scenario, spec: SweepSpec, index: int, base_data: dict[str, Any] | None = None) -> Scenario:
    """Variant ``index`` of the sweep as a validated scenario (:class:`ScenarioError` if invalid)."""
    if index == 0:
        return _with_solver(base, spec)
    data = copy.deepcopy(base_data if base_data is not None else base.to_dict())
    if spec.monte_carlo is not None:
        import numpy as np

        rng = np.random.default_rng([spec.monte_carlo.seed, index])
        for d in spec.monte_carlo.vary:
            _apply(data, d.path, d.how, d.sample, rng)
    else:
        point = _grid_point(spec, index - 1)
        for axis, v in zip(spec.grid, point):
            _apply(data, axis.path, axis.how, _constant(v), None)
    return _with_solver(parse_scenario(data), spec)


def _grid_point(spec: SweepSpec, k: int) -> tuple[float, ...]:
    out = []
    for axis in reversed(spec.grid):
        k, j = divmod(k, len(axis.values))
        out.append(axis.values[j])
    return tuple(reversed(out))


def _with_solver(sc: Scenario, spec: SweepSpec) -> Scenario:
    changes = {}
    if spec.time_limit_seconds is not None:
        changes["time_limit_seconds"] = spec.time_limit_seconds
    if spec.mip_rel_gap is not None:
        changes["mip_rel_gap"] = spec.mip_rel_gap
    if not changes:
        return sc
    return sc.model_copy(update={"solver": sc.solver.model_copy(update=changes)})


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Entry:
    market_id: str
    mode: str
    year: int


@dataclass
class VariantResult:
    """One variant's answer, compact: its entry plan and headline figures."""

    index: int
    label: str
    status: str  # a SolveStatus value, or "invalid" (the variant's scenario failed validation)
    objective_value: float | None = None
    best_bound: float | None = None
    gap: float | None = None
    expected_npv: float | None = None
    cvar: float | None = None
    total_spend: float | None = None
    markets_entered: int = 0
    entries: list[Entry] = field(default_factory=list)
    warm: bool = False  # solved on a model re-targeted in place (not rebuilt)
    seconds: float = 0.0  # the whole variant: scenario, model, solve, extraction
    message: str = ""
    model_seconds: float = 0.0  # building (or re-targeting) the model and handing it to HiGHS
    solver_seconds: float = 0.0  # the head start (when no plan is offered) and HiGHS

    @property
    def has_plan(self) -> bool:
        return self.status in ("optimal", "feasible") and self.objective_value is not None

    def plan(self) -> frozenset[Entry]:
        return frozenset(self.entries)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VariantResult:
        return cls(**{**d, "entries": [Entry(**e) for e in d.get("entries", [])]})


@dataclass
class RobustCheck:
    """The robust plan on one variant: its objective there, or why it is not a plan of it."""

    index: int
    status: str
    objective_value: float | None = None
    regret: float | None = None  # the variant's own optimum minus this objective (>= 0 up to gaps)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MarketFrequency:
    market_id: str
    entered: int  # variants (with a plan) that enter it
    share: float
    modes: dict[str, int]
    years: dict[int, int]


@dataclass
class SweepSummary:
    variants: int  # with the base
    with_plan: int
    statuses: dict[str, int]
    objective_percentiles: dict[str, float]  # p5 p25 p50 p75 p95, min, max, mean (variants with a plan)
    markets: list[MarketFrequency]
    changed_variants: list[int]  # entry plan differs from the base's
    robust_share: float
    robust_plan: list[Entry]  # entries made in at least robust_share of the variants with a plan
    robust_out: list[str]  # markets left out in at least robust_share of them
    robust_open: list[str]  # the other markets: decided per variant when the robust plan is evaluated
    robust_checks: list[RobustCheck] = field(default_factory=list)
    robust_feasible: int = 0
    robust_mean_regret: float | None = None
    robust_worst_regret: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepSummary:
        d = dict(d)
        d["markets"] = [MarketFrequency(**{**m, "years": {int(k): v for k, v in m["years"].items()}}) for m in d["markets"]]
        d["robust_plan"] = [Entry(**e) for e in d["robust_plan"]]
        d["robust_out"] = list(d.get("robust_out", []))
        d["robust_open"] = list(d.get("robust_open", []))
        d["robust_checks"] = [RobustCheck(**c) for c in d.get("robust_checks", [])]
        return cls(**d)


PERCENTILES = (5, 25, 50, 75, 95)


def summarize(results: Iterable[VariantResult], robust_share: float, market_ids: list[str]) -> SweepSummary:
    """Frequencies, percentiles, changed variants and the robust plan (not yet evaluated)."""
    import numpy as np

    rs = sorted(results, key=lambda r: r.index)
    planned = [r for r in rs if r.has_plan]
    objs = np.array([r.objective_value for r in planned], dtype=float)
    pct: dict[str, float] = {}
    if objs.size:
        pct = {f"p{p}": float(np.percentile(objs, p)) for p in PERCENTILES}
        pct.update(min=float(objs.min()), max=float(objs.max()), mean=float(objs.mean()))
    counts: Counter[Entry] = Counter(e for r in planned for e in r.entries)
    markets = []
    for mid in market_ids:
        mine = [(e, c) for e, c in counts.items() if e.market_id == mid]
        entered = sum(c for _, c in mine)
        modes: Counter[str] = Counter()
        years: Counter[int] = Counter()
        for e, c in mine:
            modes[e.mode] += c
            years[e.year] += c
        markets.append(MarketFrequency(mid, entered, entered / len(planned) if planned else 0.0, dict(modes), dict(sorted(years.items()))))
    base = next((r for r in rs if r.index == 0), None)
    changed = [r.index for r in planned if base is not None and base.has_plan and r.index != 0 and r.plan() != base.plan()]
    robust: list[Entry] = []
    kept_out: list[str] = []
    need = robust_share * len(planned) - 1e-9
    for freq in markets:  # each market's most frequent decision (a mode and year, or out), if frequent enough
        ranked = sorted(((c, e) for e, c in counts.items() if e.market_id == freq.market_id),
                        key=lambda ce: (-ce[0], ce[1].mode, ce[1].year))
        out_count = len(planned) - freq.entered
        if not planned:
            break
        if ranked and ranked[0][0] >= need and ranked[0][0] >= out_count:
            robust.append(ranked[0][1])
        elif out_count >= need:
            kept_out.append(freq.market_id)
    return SweepSummary(
        variants=len(rs), with_plan=len(planned), statuses=dict(Counter(r.status for r in rs)),
        objective_percentiles=pct, markets=markets, changed_variants=changed, robust_share=robust_share,
        robust_plan=robust, robust_out=kept_out,
        robust_open=[m for m in market_ids if m not in kept_out and m not in {e.market_id for e in robust}])


def with_robust_checks(summary: SweepSummary, checks: Iterable[RobustCheck], results: Iterable[VariantResult]) -> SweepSummary:
    """The summary with the robust plan's evaluation on every variant, and its regret."""
    own = {r.index: r for r in results}
    done: list[RobustCheck] = []
    for c in sorted(checks, key=lambda c: c.index):
        r = own.get(c.index)
        if c.objective_value is not None and r is not None and r.has_plan:
            c.regret = float(r.objective_value) - c.objective_value  # type: ignore[arg-type]
        done.append(c)
    summary.robust_checks = done
    feasible = [c for c in done if c.objective_value is not None]
    summary.robust_feasible = len(feasible)
    regrets = [c.regret for c in feasible if c.regret is not None]
    summary.robust_mean_regret = sum(regrets) / len(regrets) if regrets else None
    summary.robust_worst_regret = float(max(regrets)) if regrets else None
    return summary


# ----------------------------------------------------------------------------- warm solving


class WarmSolver:
    """One built model, re-targeted from variant to variant (docs/model.md §7)."""

    def __init__(self, threads: int = 1, warm: bool = True):
        self.threads = threads
        self.warm = warm  # False: rebuild every variant (for measurements)
        self.am: Any = None
        self.values: np.ndarray | None = None  # the last plan (global variable vector)
        self.base_data: dict[str, Any] | None = None
        self.base_sha: str = ""

    def _scenario(self, base: Scenario, spec: SweepSpec, variant: Variant) -> Scenario:
        """The variant's validated scenario (:class:`ScenarioError` if invalid); the base's plain
        data is made once per base, not once per variant."""
        if self.base_sha != base.sha256():
            self.base_sha, self.base_data = base.sha256(), base.to_dict()
        return variant_scenario(base, spec, variant.index, self.base_data)

    def _model(self, sc: Scenario) -> tuple[Any, bool]:
        from .formulation import build_model

        if self.warm and self.am is not None and self.am.update(sc):
            return self.am, True
        self.am, self.values = build_model(sc, pyomo=False), None  # made by solve_model unless the model is huge
        return self.am, False

    def solve_variant(self, base: Scenario, spec: SweepSpec, variant: Variant,
                      should_stop: Callable[[], bool] | None = None) -> VariantResult:
        from .extract import extract_result
        from .rowset import RowSet
        from .solve import solve_model

        started = time.perf_counter()
        try:
            sc = self._scenario(base, spec, variant)
        except ScenarioError as exc:
            return VariantResult(variant.index, variant.label, "invalid", message=str(exc), seconds=time.perf_counter() - started)
        t_model = time.perf_counter()
        am, warm = self._model(sc)
        t_model = time.perf_counter() - t_model
        start = None
        if warm and self.values is not None and am.integer_count > 0:
            start = self.values if RowSet.of_model(am).feasible(self.values) else None
        out = solve_model(am, threads=self.threads, should_stop=should_stop, start=start)
        res = extract_result(am, out, started, explain_seconds=0.0, explain=False)
        self.values = out.values if out.values is not None else self.values
        entries = [Entry(m.id, m.mode.value, int(m.entry_year)) for m in res.markets if m.entered and m.mode and m.entry_year is not None]
        k = res.kpis
        return VariantResult(
            variant.index, variant.label, res.status.value, res.objective_value, res.best_bound, res.gap,
            k.expected_npv if k else None, k.cvar if k else None,
            float(sum(y.spend for y in res.years)) if res.years else None,
            len(entries), entries, warm, time.perf_counter() - started, res.message,
            t_model + out.transfer_seconds, out.solver_seconds)

    def evaluate(self, base: Scenario, spec: SweepSpec, variant: Variant, plan: list[Entry], kept_out: list[str],
                 should_stop: Callable[[], bool] | None = None) -> RobustCheck:
        """The robust plan on ``variant``: ``plan``'s entries fixed, the ``kept_out`` markets left
        out, every other market (and every lever) chosen at its best for this variant."""
        from .solve import solve_model

        try:
            sc = self._scenario(base, spec, variant)
        except ScenarioError as exc:
            return RobustCheck(variant.index, "invalid", message=str(exc))
        am, _warm = self._model(sc)
        data = am.formulation.data
        chosen: set[int] = set()
        for e in plan:
            if e.market_id not in data.index_of:
                return RobustCheck(variant.index, "infeasible", message=f"{e.market_id} is not a market of this variant")
            k = data.column_of(e.market_id, e.mode, e.year)
            if k.size != 1:
                return RobustCheck(variant.index, "infeasible", message=f"{e.market_id} cannot be entered by {e.mode} in {e.year} here")
            chosen.add(int(k[0]))
        fixed = set(chosen)
        for e in plan:
            fixed.update(int(k) for k in data.columns_of(data.index_of[e.market_id]))
        for mid in kept_out:
            if mid in data.index_of:
                fixed.update(int(k) for k in data.columns_of(data.index_of[mid]))
        xs = {k: am.variables[k] for k in sorted(fixed)}
        saved = {k: (v.lb, v.ub) for k, v in xs.items()}
        try:
            for k, v in xs.items():
                v.setlb(1.0 if k in chosen else 0.0)
                v.setub(1.0 if k in chosen else 0.0)
            out = solve_model(am, threads=self.threads, should_stop=should_stop, head_start=False)
        finally:
            for k, v in xs.items():
                v.setlb(saved[k][0])
                v.setub(saved[k][1])
        status = out.status.value if hasattr(out.status, "value") else str(out.status)
        if out.objective_value is None or out.values is None:
            return RobustCheck(variant.index, status, message="the robust plan breaks a limit of this variant"
                               if status == "infeasible" else "")
        return RobustCheck(variant.index, status, float(out.objective_value))


PhaseRunner = Callable[[str, list[int], "SweepSummary | None", Callable[[Any], None]], list[str]]
"""Runs one phase (``"variant"`` or ``"robust"``) over variant indices, calling back with each
answer (a :class:`VariantResult` or :class:`RobustCheck`) in any order; returns why any failed."""


def sweep_phases(base: Scenario, spec: SweepSpec, run_phase: PhaseRunner,
                 on_item: Callable[[str, Any], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> tuple[list[VariantResult], SweepSummary]:
    """The whole sweep on any executor: every variant, the summary, then the robust plan on
    every variant. A variant or check without an answer (a crashed chunk, a cancel) is reported
    with status ``error`` and the reason, never dropped."""
    results: dict[int, VariantResult] = {}
    checks: dict[int, RobustCheck] = {}
    every = list(range(spec.variant_count + 1))

    def collect(phase: str) -> Callable[[Any], None]:
        store: dict[int, Any] = results if phase == "variant" else checks

        def take(item: Any) -> None:
            store[item.index] = item
            if on_item is not None:
                on_item(phase, item)
        return take

    def reason(failures: list[str]) -> str:
        return "; ".join(sorted(set(failures))) or ("the sweep was cancelled" if should_stop and should_stop() else "no answer")

    failures = run_phase("variant", every, None, collect("variant"))
    for i in every:
        if i not in results:
            results[i] = VariantResult(i, variant_at(spec, i).label, "error", message=reason(failures))
    summary = summarize(results.values(), spec.robust_share, [m.id for m in base.markets])
    if summary.with_plan and not (should_stop and should_stop()):
        failures = run_phase("robust", every, summary, collect("robust"))
        for i in every:
            if i not in checks:
                checks[i] = RobustCheck(i, "error", message=reason(failures))
    ordered = [results[i] for i in every]
    return ordered, with_robust_checks(summary, checks.values(), ordered)


def in_process(base: Scenario, spec: SweepSpec, solver: WarmSolver,
               should_stop: Callable[[], bool] | None = None) -> PhaseRunner:
    """A phase runner that answers every index here, one after the other, on ``solver``."""
    def run_phase(phase: str, indices: list[int], summary: SweepSummary | None, take: Callable[[Any], None]) -> list[str]:
        for item in answer_chunk(solver, base, spec, phase, indices,
                                 summary.robust_plan if summary else None, summary.robust_out if summary else None,
                                 should_stop):
            take(item)
        return []
    return run_phase


def answer_chunk(solver: WarmSolver, base: Scenario, spec: SweepSpec, phase: str, indices: list[int],
                 plan: list[Entry] | None, kept_out: list[str] | None,
                 should_stop: Callable[[], bool] | None = None) -> Iterator[VariantResult | RobustCheck]:
    """Answer ``indices`` of one phase on one warm solver (a worker's or a Ray actor's chunk)."""
    for i in indices:
        if should_stop is not None and should_stop():
            return
        if phase == "robust":
            yield solver.evaluate(base, spec, variant_at(spec, i), plan or [], kept_out or [], should_stop)
        else:
            yield solver.solve_variant(base, spec, variant_at(spec, i), should_stop)


def run_sweep(base: Scenario, spec: SweepSpec, *, on_variant: Callable[[VariantResult], None] | None = None,
              should_stop: Callable[[], bool] | None = None, threads: int = 1,
              warm: bool = True) -> tuple[list[VariantResult], SweepSummary]:
    """The whole sweep in this process, one variant after the other on one warm model
    (``warm`` False: a fresh model per variant, for measurements)."""
    runner = in_process(base, spec, WarmSolver(threads, warm), should_stop)
    return sweep_phases(base, spec, runner, variants_to(on_variant), should_stop)


def variants_to(on_variant: Callable[[VariantResult], None] | None) -> Callable[[str, Any], None]:
    """An ``on_item`` for :func:`sweep_phases` that hands each variant's answer to ``on_variant``
    (a progress bar); the robust checks are not passed on."""
    def on_item(phase: str, item: Any) -> None:
        if phase == "variant" and on_variant is not None:
            on_variant(item)
    return on_item
