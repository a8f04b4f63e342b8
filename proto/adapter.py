"""The one proto ⇄ domain adapter of ``lepton.allocation.v1``, typed both ways.

Server and client both convert through this module, and nothing else maps messages to domain
types. It imports the light domain types only (:mod:`lepton_alloc.models.scenario`,
``.result``, ``.status``: pydantic and the standard library), never the solver stack.

Scenarios are not converted field by field by hand: the proto messages use the scenario file's
field names and nesting, so both directions walk the declarations.

* proto -> domain: :func:`scenario_data` turns a message into the plain data a scenario file
  with the same content would hold (``ListFields`` gives exactly the fields that are set: a
  plain scalar at zero is absent, as the file's defaults for those fields are zero), and
  :func:`scenario_from_proto` validates that data once with the file's own rules, so every
  violation names the file's path (``markets[3].options[0].margin``). An enum left at
  ``*_UNSPECIFIED`` inside a present message is passed on as its name, so validation reports
  the field instead of filling in a default; only a field whose absence has a meaning of its
  own in the file (``previous_plan.decisions[].mode``) reads 0 as absent.
* domain -> proto: :func:`scenario_to_proto` walks the scenario's canonical form.

Result records and their proto messages share field names; :func:`_check_same_fields` verifies
that at import time, so adding a field on one side only fails at once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2

from pydantic import BaseModel

from lepton_alloc.models import scenario as scenario_module
from lepton_alloc.models.compare import Comparison, LimitChange, MarketChange, ValueDelta, YearDelta
from lepton_alloc.models.gctools import paused_gc
from lepton_alloc.models.result import (
    Infeasibility,
    Kpis,
    LimitReport,
    MarketDecision,
    MarketTerms,
    MarketValue,
    MarketYear,
    ModelSize,
    ObjectiveTerm,
    Relaxation,
    Result,
    StepValue,
    Timings,
    YearTotal,
)
from lepton_alloc.models.scenario import (
    FieldViolation,
    Mode,
    Scenario,
    parse_scenario,
)
from lepton_alloc.models.status import JobState, Progress, ProgressKind, SolveStatus

from .lepton.allocation.v1 import job_pb2, result_pb2, scenario_pb2, sweep_pb2

__all__ = [
    "bad_request_to_violations", "job_state_from_proto", "job_state_to_proto", "progress_from_proto",
    "progress_to_proto", "result_from_proto", "result_to_proto", "scenario_data", "scenario_dict_to_proto", "scenario_from_proto",
    "scenario_to_proto", "timestamp", "timestamp_seconds", "violations_to_bad_request",
]

# Fields whose enum at 0 means "absent" in the file's sense (see the module docstring).
_ABSENT_WHEN_UNSPECIFIED = {("PreviousDecision", "mode")}  # models.scenario.PreviousDecision.mode: None


# ============================================================================ enums


def _prefix(enum: Any) -> str:
    """``ObjectiveKind`` -> ``OBJECTIVE_KIND_`` (buf's ENUM_VALUE_PREFIX rule)."""
    out = "".join(f"_{c}" if c.isupper() and k else c for k, c in enumerate(enum.name)).upper()
    return out + "_"


def _enum_name(enum: Any, number: int) -> str:
    """The file's word for an enum number (``MODE_BUILD`` -> ``build``); an unspecified or
    unknown number becomes a word validation rejects with the field's path."""
    value = enum.values_by_number.get(number)
    if value is None:
        return f"<unknown enum value {number}>"
    if number == 0:
        return value.name  # e.g. "OBJECTIVE_KIND_UNSPECIFIED": never silently a default
    return value.name.removeprefix(_prefix(enum)).lower()


def _enum_number(enum: Any, word: str) -> int:
    return enum.values_by_name[_prefix(enum) + word.upper()].number


def _check_enum_mapping(domain: Iterable[Any], proto: Any) -> dict[Any, Any]:
    """Domain enum member -> proto number, checked both ways (every member on each side)."""
    descriptor = proto.DESCRIPTOR
    mapping = {m: _enum_number(descriptor, m.value) for m in domain}
    names = {v.name for v in descriptor.values if v.number != 0}
    missing = names - {descriptor.values_by_number[n].name for n in mapping.values()}
    if missing:
        raise ImportError(f"proto enum {descriptor.name} has values without a domain member: {sorted(missing)}")
    return mapping


_STATUS_TO_PB = _check_enum_mapping(SolveStatus, result_pb2.SolveStatus)
_PB_TO_STATUS = {v: k for k, v in _STATUS_TO_PB.items()}
_JOB_STATE_TO_PB = _check_enum_mapping(JobState, job_pb2.JobState)
_PB_TO_JOB_STATE = {v: k for k, v in _JOB_STATE_TO_PB.items()}
_PROGRESS_TO_PB = _check_enum_mapping(ProgressKind, job_pb2.ProgressKind)
_PB_TO_PROGRESS = {v: k for k, v in _PROGRESS_TO_PB.items()}
_MODE_TO_PB = _check_enum_mapping(Mode, scenario_pb2.Mode)
_PB_TO_MODE = {v: k for k, v in _MODE_TO_PB.items()}


def job_state_to_proto(state: JobState) -> int:
    return _JOB_STATE_TO_PB[JobState(state)]


def job_state_from_proto(number: int) -> JobState | None:
    """None for JOB_STATE_UNSPECIFIED (as a filter: every state); ValueError for a number this
    server does not know."""
    if number == 0:
        return None
    try:
        return _PB_TO_JOB_STATE[number]
    except KeyError:
        raise ValueError(f"unknown job state {number}") from None


# ============================================================================ scenario


def _domain_types() -> dict[str, type[BaseModel]]:
    """Scenario message name -> the domain class of the same name, with the same field names
    (checked here, at import, for every message reachable from Scenario)."""
    types: dict[str, type[BaseModel]] = {}

    def visit(descriptor: Any) -> None:
        if descriptor.name in types:
            return
        domain = getattr(scenario_module, descriptor.name, None)
        proto_fields = {f.name for f in descriptor.fields}
        if domain is None or set(domain.model_fields) != proto_fields:
            raise ImportError(f"proto {descriptor.name} has no domain twin with the same fields "
                              f"({sorted(proto_fields ^ set(getattr(domain, 'model_fields', {})))})")
        types[descriptor.name] = domain
        for f in descriptor.fields:
            if f.message_type is not None:
                visit(f.message_type)

    visit(scenario_pb2.Scenario.DESCRIPTOR)
    return types


_DOMAIN = _domain_types()
# Required numbers without proto presence: their zero is a value the caller sent, not absence
# (a required text left empty stays absent, so "is required" names it).
_ZERO_IS_SENT = {
    name: tuple(f.name for f in scenario_pb2.DESCRIPTOR.message_types_by_name[name].fields
                if not f.has_presence and not f.is_repeated and f.message_type is None and f.enum_type is None
                and f.type != f.TYPE_STRING and domain.model_fields[f.name].is_required())
    for name, domain in _DOMAIN.items()
}


def scenario_data(msg: Message) -> dict[str, Any]:
    """The plain data a scenario file with the same content as ``msg`` would parse to."""
    out: dict[str, Any] = {}
    descriptor = msg.DESCRIPTOR
    for name in _ZERO_IS_SENT.get(descriptor.name, ()):
        out[name] = getattr(msg, name)
    for fd, value in msg.ListFields():
        repeated = fd.is_repeated
        if fd.message_type is not None:
            out[fd.name] = [scenario_data(v) for v in value] if repeated else scenario_data(value)
        elif fd.enum_type is not None:
            out[fd.name] = [_enum_name(fd.enum_type, v) for v in value] if repeated else _enum_name(fd.enum_type, value)
        else:
            out[fd.name] = list(value) if repeated else value
    # plain enum fields at 0 are not listed: name them, unless absence has its own meaning
    for plain in descriptor.fields:
        if (plain.enum_type is not None and not plain.is_repeated and plain.name not in out
                and (descriptor.name, plain.name) not in _ABSENT_WHEN_UNSPECIFIED):
            out[plain.name] = _enum_name(plain.enum_type, getattr(msg, plain.name))
    return out


def scenario_from_proto(msg: scenario_pb2.Scenario) -> Scenario:
    """Validate a proto scenario exactly as a file and return the domain :class:`Scenario`.

    Raises :class:`~lepton_alloc.models.scenario.ScenarioError` with every violation.
    """
    with paused_gc():
        return parse_scenario(scenario_data(msg))


def scenario_to_proto(scenario: Scenario) -> scenario_pb2.Scenario:
    """The proto form of a validated scenario; ``scenario_from_proto`` of it equals it."""
    return scenario_dict_to_proto(scenario.to_dict())


def scenario_dict_to_proto(canonical: Mapping[str, Any]) -> scenario_pb2.Scenario:
    """The proto form of a scenario's canonical dict (``Scenario.to_dict()``, as a store keeps
    it), without validating it again."""
    msg = scenario_pb2.Scenario()
    with paused_gc():
        _fill(msg, canonical)
    return msg


def _fill(msg: Message, data: Mapping[str, Any]) -> None:
    fields = msg.DESCRIPTOR.fields_by_name
    for name, value in data.items():
        if value is None:
            continue
        fd = fields[name]
        if fd.message_type is not None:
            if fd.is_repeated:
                container = getattr(msg, name)
                for item in value:
                    _fill(container.add(), item)
            else:
                sub = getattr(msg, name)
                sub.SetInParent()  # present even when every field inside is at its default
                _fill(sub, value)
        elif fd.enum_type is not None:
            if fd.is_repeated:
                getattr(msg, name).extend(_enum_number(fd.enum_type, v) for v in value)
            else:
                setattr(msg, name, _enum_number(fd.enum_type, value))
        elif fd.is_repeated:
            getattr(msg, name).extend(value)
        else:
            setattr(msg, name, value)


# ============================================================================ errors


def violations_to_bad_request(violations: Iterable[FieldViolation], field_prefix: str = "") -> error_details_pb2.BadRequest:
    """One ``google.rpc.BadRequest`` listing every violation, in order.

    ``field_prefix`` is the request field holding the scenario (``"scenario"``), so paths are
    relative to the request as AIP-193 asks: ``scenario.markets[3].options[0].margin``.
    """
    bad = error_details_pb2.BadRequest()
    for v in violations:
        if not field_prefix:
            path = v.field
        elif v.field.startswith("<"):  # "<root>", "<file>": the whole scenario
            path = field_prefix
        else:
            path = f"{field_prefix}.{v.field}"
        bad.field_violations.add(field=path, description=v.description)
    return bad


def bad_request_to_violations(bad: error_details_pb2.BadRequest) -> list[FieldViolation]:
    return [FieldViolation(v.field, v.description) for v in bad.field_violations]


# ============================================================================ result

# (record type, proto message, names of fields with presence) — checked at import
_RECORDS: dict[type, tuple[type[Message], tuple[str, ...]]] = {}


def _check_same_fields(record: type, message: type[Message], skip: Sequence[str] = ()) -> None:
    names = {f.name for f in dataclasses.fields(record)} - set(skip)
    proto_names = {f.name for f in message.DESCRIPTOR.fields} - set(skip)
    if names != proto_names:
        raise ImportError(f"{record.__name__} and proto {message.DESCRIPTOR.name} differ: "
                          f"{sorted(names ^ proto_names)}")
    optional = tuple(f.name for f in message.DESCRIPTOR.fields if f.has_presence and f.name in names)
    _RECORDS[record] = (message, optional)


for _record, _message in ((MarketYear, result_pb2.MarketYear), (YearTotal, result_pb2.YearTotal),
                          (Timings, result_pb2.Timings), (ModelSize, result_pb2.ModelSize),
                          (ObjectiveTerm, result_pb2.ObjectiveTerm), (MarketTerms, result_pb2.MarketTerms),
                          (Relaxation, result_pb2.Relaxation)):
    _check_same_fields(_record, _message)
_NESTED: tuple[tuple[type, Any], ...] = (
    (MarketDecision, result_pb2.MarketDecision), (Kpis, result_pb2.Kpis), (StepValue, result_pb2.StepValue),
    (LimitReport, result_pb2.LimitReport), (Infeasibility, result_pb2.Infeasibility),
    (MarketValue, result_pb2.MarketValue), (Result, result_pb2.Result))
for _nested, _nested_message in _NESTED:
    _check_same_fields(_nested, _nested_message)  # converted field by field below


def _record_to_proto(record: Any) -> Any:
    message, _ = _RECORDS[type(record)]
    return message(**vars(record))  # None leaves an optional field unset


def _record_from_proto(msg: Any, record: type) -> Any:
    _, optional = _RECORDS[record]
    values = {f.name: getattr(msg, f.name) for f in dataclasses.fields(record)}
    for name in optional:
        if not msg.HasField(name):
            values[name] = None
    return record(**values)


def result_to_proto(result: Result, *, summary: bool = False) -> result_pb2.Result:
    """The proto form of a result; ``summary`` leaves out the per-market and per-year
    breakdowns (ListJobs' summary view)."""
    with paused_gc():
        return _result_to_proto(result, summary)


def _result_to_proto(result: Result, summary: bool) -> result_pb2.Result:
    msg = result_pb2.Result(
        scenario_name=result.scenario_name,
        scenario_sha256=result.scenario_sha256,
        status=_STATUS_TO_PB[result.status],
        objective_value=result.objective_value,
        best_bound=result.best_bound,
        gap=result.gap,
        message=result.message,
        timings=_record_to_proto(result.timings),
        model_size=_record_to_proto(result.model_size),
        solver=[result_pb2.SolverProperty(key=k, value=v) for k, v in result.solver.items()],
        currency=result.currency,
        money_unit=result.money_unit,
        limits=[_limit_to_proto(lim) for lim in result.limits],
        objective_terms=[_record_to_proto(t) for t in result.objective_terms],
        market_terms=[_record_to_proto(t) for t in result.market_terms],
        market_values=[_market_value_to_proto(v) for v in result.market_values],
    )
    if result.infeasibility is not None:
        inf = result.infeasibility
        msg.infeasibility.CopyFrom(result_pb2.Infeasibility(
            method=inf.method, constraints=inf.constraints, explanation=inf.explanation,
            relaxations=[_record_to_proto(r) for r in inf.relaxations]))
    if not summary:
        msg.years.extend(_record_to_proto(y) for y in result.years)
        for m in result.markets:
            msg.markets.add(
                id=m.id, name=m.name, region=m.region, entered=m.entered,
                mode=_MODE_TO_PB[m.mode] if m.mode is not None else None,
                entry_year=m.entry_year, expected_npv=m.expected_npv,
                years=[_record_to_proto(y) for y in m.years],
            )
    k = result.kpis
    if k is not None:
        msg.kpis.CopyFrom(result_pb2.Kpis(
            expected_npv=k.expected_npv,
            npv_by_scenario=[result_pb2.ScenarioNpv(scenario=s, npv=v) for s, v in k.npv_by_scenario.items()],
            cvar=k.cvar, cvar_alpha=k.cvar_alpha, payback_year=k.payback_year, change_penalty=k.change_penalty,
            markets_entered=k.markets_entered, final_year_contribution=k.final_year_contribution,
        ))
    return msg


def result_from_proto(msg: result_pb2.Result) -> Result:
    """The domain :class:`Result` of a proto result (the inverse of :func:`result_to_proto`)."""
    with paused_gc():
        return _result_from_proto(msg)


def _result_from_proto(msg: result_pb2.Result) -> Result:
    kpis = None
    if msg.HasField("kpis"):
        k = msg.kpis
        kpis = Kpis(
            expected_npv=k.expected_npv, npv_by_scenario={e.scenario: e.npv for e in k.npv_by_scenario},
            cvar=k.cvar, cvar_alpha=k.cvar_alpha,
            payback_year=k.payback_year if k.HasField("payback_year") else None,
            change_penalty=k.change_penalty, markets_entered=k.markets_entered,
            final_year_contribution=k.final_year_contribution,
        )
    return Result(
        scenario_name=msg.scenario_name,
        scenario_sha256=msg.scenario_sha256,
        status=_PB_TO_STATUS[msg.status],
        objective_value=msg.objective_value if msg.HasField("objective_value") else None,
        best_bound=msg.best_bound if msg.HasField("best_bound") else None,
        gap=msg.gap if msg.HasField("gap") else None,
        message=msg.message,
        markets=[
            MarketDecision(
                id=m.id, name=m.name, region=m.region if m.HasField("region") else None, entered=m.entered,
                mode=_PB_TO_MODE[m.mode] if m.entered else None,
                entry_year=m.entry_year if m.HasField("entry_year") else None,
                expected_npv=m.expected_npv,
                years=[_record_from_proto(y, MarketYear) for y in m.years],
            )
            for m in msg.markets
        ],
        years=[_record_from_proto(y, YearTotal) for y in msg.years],
        kpis=kpis,
        timings=_record_from_proto(msg.timings, Timings),
        model_size=_record_from_proto(msg.model_size, ModelSize),
        solver={p.key: p.value for p in msg.solver},
        currency=msg.currency,
        money_unit=msg.money_unit,
        limits=[_limit_from_proto(lim) for lim in msg.limits],
        objective_terms=[_record_from_proto(t, ObjectiveTerm) for t in msg.objective_terms],
        market_terms=[_record_from_proto(t, MarketTerms) for t in msg.market_terms],
        infeasibility=Infeasibility(
            method=msg.infeasibility.method, constraints=list(msg.infeasibility.constraints),
            explanation=list(msg.infeasibility.explanation),
            relaxations=[_record_from_proto(r, Relaxation) for r in msg.infeasibility.relaxations],
        ) if msg.HasField("infeasibility") else None,
        market_values=[_market_value_from_proto(v) for v in msg.market_values],
    )


def _optional(msg: Any, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def _step_to_proto(st: StepValue) -> result_pb2.StepValue:
    return result_pb2.StepValue(
        direction=st.direction, relative_step=st.relative_step, limit=st.limit, objective=st.objective,
        objective_change=st.objective_change, plan_changes=st.plan_changes, status=_STATUS_TO_PB[st.status],
        cut_short=st.cut_short)


def _step_from_proto(m: result_pb2.StepValue) -> StepValue:
    return StepValue(direction=m.direction, relative_step=m.relative_step, limit=m.limit,
                     objective=_optional(m, "objective"), objective_change=_optional(m, "objective_change"),
                     plan_changes=_optional(m, "plan_changes"), status=_PB_TO_STATUS[m.status], cut_short=m.cut_short)


def _limit_to_proto(lim: LimitReport) -> result_pb2.LimitReport:
    return result_pb2.LimitReport(
        constraint=lim.constraint, use=lim.use, limit=lim.limit, slack=lim.slack, binds=lim.binds,
        local_price=lim.local_price, local_price_note=lim.local_price_note,
        steps=[_step_to_proto(st) for st in lim.steps])


def _limit_from_proto(m: result_pb2.LimitReport) -> LimitReport:
    return LimitReport(constraint=m.constraint, use=m.use, limit=m.limit, slack=m.slack, binds=m.binds,
                       local_price=_optional(m, "local_price"), local_price_note=m.local_price_note,
                       steps=[_step_from_proto(st) for st in m.steps])


def _market_value_to_proto(v: MarketValue) -> result_pb2.MarketValue:
    return result_pb2.MarketValue(
        market_id=v.market_id, entered=v.entered, objective=v.objective, objective_change=v.objective_change,
        mode=_MODE_TO_PB[v.mode] if v.mode is not None else None, entry_year=v.entry_year, blocking=v.blocking,
        status=_STATUS_TO_PB[v.status], cut_short=v.cut_short)


def _market_value_from_proto(m: result_pb2.MarketValue) -> MarketValue:
    return MarketValue(market_id=m.market_id, entered=m.entered, objective=_optional(m, "objective"),
                       objective_change=_optional(m, "objective_change"),
                       mode=_PB_TO_MODE.get(m.mode), entry_year=_optional(m, "entry_year"), blocking=list(m.blocking),
                       status=_PB_TO_STATUS[m.status], cut_short=m.cut_short)


# ============================================================================ progress and time


def progress_to_proto(progress: Progress) -> job_pb2.JobProgress:
    return job_pb2.JobProgress(
        kind=_PROGRESS_TO_PB[progress.kind], objective=progress.objective, best_bound=progress.best_bound,
        gap=progress.gap, elapsed_seconds=progress.elapsed_seconds, nodes=progress.nodes,
        head_start=progress.head_start,
    )


def progress_from_proto(msg: job_pb2.JobProgress, at: float | None = None) -> Progress:
    return Progress(
        kind=_PB_TO_PROGRESS.get(msg.kind, ProgressKind.HEARTBEAT),
        objective=msg.objective if msg.HasField("objective") else None,
        best_bound=msg.best_bound if msg.HasField("best_bound") else None,
        gap=msg.gap if msg.HasField("gap") else None,
        elapsed_seconds=msg.elapsed_seconds, nodes=msg.nodes, at=at, head_start=msg.head_start,
    )


def timestamp(epoch_seconds: float | None) -> Timestamp | None:
    """A Timestamp of float epoch seconds (microsecond precision); None stays unset."""
    if epoch_seconds is None:
        return None
    ts = Timestamp()
    ts.FromMicroseconds(round(epoch_seconds * 1_000_000))
    return ts


def timestamp_seconds(ts: Timestamp, present: bool = True) -> float | None:
    return ts.seconds + ts.nanos / 1e9 if present else None


# ============================================================================ comparison


def comparison_to_proto(c: Comparison) -> Any:
    """A :class:`~lepton_alloc.models.compare.Comparison` as the ComparePlans message."""
    from .lepton.allocation.v1 import allocation_service_pb2 as svc

    def mode(value: str | None) -> Any:
        return _MODE_TO_PB[Mode(value)] if value else None

    return svc.Comparison(
        currency=c.currency, money_unit=c.money_unit,
        status_a=_STATUS_TO_PB[SolveStatus(c.status_a)], status_b=_STATUS_TO_PB[SolveStatus(c.status_b)],
        markets=[svc.MarketChange(
            market_id=m.market_id, change=m.change, mode_a=mode(m.mode_a), entry_year_a=m.entry_year_a,
            mode_b=mode(m.mode_b), entry_year_b=m.entry_year_b, expected_npv_a=m.expected_npv_a,
            expected_npv_b=m.expected_npv_b) for m in c.markets],
        years=[svc.YearDelta(**vars(y)) for y in c.years],
        kpis=[svc.ValueDelta(**vars(k)) for k in c.kpis],
        limits=[svc.LimitChange(name=lim.name, a=json.dumps(lim.a), b=json.dumps(lim.b), delta=lim.delta)
                for lim in c.limits],
        notes=c.notes,
    )


def comparison_from_proto(msg: Any) -> Comparison:
    def mode(m: Any, name: str) -> str | None:
        member = _PB_TO_MODE.get(getattr(m, name))
        return member.value if member is not None else None

    return Comparison(
        currency=msg.currency, money_unit=msg.money_unit,
        status_a=_PB_TO_STATUS[msg.status_a].value, status_b=_PB_TO_STATUS[msg.status_b].value,
        markets=[MarketChange(m.market_id, m.change, mode(m, "mode_a"), _optional(m, "entry_year_a"), mode(m, "mode_b"),
                              _optional(m, "entry_year_b"), m.expected_npv_a, m.expected_npv_b) for m in msg.markets],
        years=[YearDelta(y.year, *(_optional(y, n) for n in ("spend_a", "spend_b", "spend_delta", "heads_a", "heads_b",
                                                               "heads_delta"))) for y in msg.years],
        kpis=[ValueDelta(k.name, _optional(k, "a"), _optional(k, "b"), _optional(k, "delta")) for k in msg.kpis],
        limits=[LimitChange(lim.name, json.loads(lim.a), json.loads(lim.b), _optional(lim, "delta")) for lim in msg.limits],
        notes=list(msg.notes),
    )


# ============================================================================ sweeps (docs/model.md §7)


def sweep_data(msg: sweep_pb2.SweepSpec) -> dict[str, Any]:
    """The plain data of a sweep request, as a sweep document with the same content would hold:
    enums as their words (``SWEEP_CHANGE_SCALE`` -> ``scale``), an enum left unspecified as its
    name, so validation names the field instead of taking a default."""
    return scenario_data(msg)


def sweep_from_proto(msg: sweep_pb2.SweepSpec, base: Scenario) -> Any:
    """Validate a SweepSpec against its base scenario; ``ScenarioError`` with ``sweep.``-prefixed
    field paths (the request's)."""
    from lepton_alloc.models.sweep import parse_sweep

    return parse_sweep(sweep_data(msg), base, prefix="sweep.")


def sweep_to_proto(spec: Any) -> sweep_pb2.SweepSpec:
    """The proto form of a validated SweepSpec."""
    return sweep_dict_to_proto(spec.to_dict())


def sweep_dict_to_proto(data: Mapping[str, Any]) -> sweep_pb2.SweepSpec:
    """The proto form of a SweepSpec's plain data (``SweepSpec.to_dict()``, as the store keeps
    it), without validating it again."""
    msg = sweep_pb2.SweepSpec()
    _fill(msg, data)
    return msg


def _entry_to_proto(e: Any) -> sweep_pb2.SweepEntry:
    return sweep_pb2.SweepEntry(market_id=e.market_id, mode=_MODE_TO_PB[Mode(e.mode)], year=e.year)


def _entry_from_proto(m: sweep_pb2.SweepEntry) -> Any:
    from lepton_alloc.models.sweep import Entry

    return Entry(m.market_id, _PB_TO_MODE[m.mode].value, m.year)


def _status_word_to_proto(word: str) -> int:
    """A variant's status word; ``invalid`` and ``error`` (no solve ran) are SOLVE_STATUS_UNSPECIFIED."""
    try:
        return _STATUS_TO_PB[SolveStatus(word)]
    except ValueError:
        return result_pb2.SOLVE_STATUS_UNSPECIFIED


def _status_word_from_proto(number: int, unspecified: str) -> str:
    """A status word back; SOLVE_STATUS_UNSPECIFIED is ``unspecified`` (``invalid`` or ``error``)."""
    member = _PB_TO_STATUS.get(number)
    return member.value if member is not None else unspecified


def variant_to_proto(r: Any) -> sweep_pb2.VariantResult:
    return sweep_pb2.VariantResult(
        index=r.index, label=r.label, status=_status_word_to_proto(r.status), invalid=r.status == "invalid",
        objective_value=r.objective_value, best_bound=r.best_bound, gap=r.gap, expected_npv=r.expected_npv,
        cvar=r.cvar, total_spend=r.total_spend, markets_entered=r.markets_entered,
        entries=[_entry_to_proto(e) for e in r.entries], warm=r.warm, seconds=r.seconds, message=r.message,
        model_seconds=r.model_seconds, solver_seconds=r.solver_seconds)


def variant_from_proto(m: sweep_pb2.VariantResult) -> Any:
    from lepton_alloc.models.sweep import VariantResult

    return VariantResult(
        m.index, m.label, _status_word_from_proto(m.status, "invalid" if m.invalid else "error"),
        *(_optional(m, n) for n in ("objective_value", "best_bound", "gap", "expected_npv", "cvar", "total_spend")),
        m.markets_entered, [_entry_from_proto(e) for e in m.entries], m.warm, m.seconds, m.message,
        m.model_seconds, m.solver_seconds)


def robust_check_to_proto(c: Any) -> sweep_pb2.RobustCheck:
    return sweep_pb2.RobustCheck(index=c.index, status=_status_word_to_proto(c.status), objective_value=c.objective_value,
                                 regret=c.regret, message=c.message)


def robust_check_from_proto(m: sweep_pb2.RobustCheck) -> Any:
    from lepton_alloc.models.sweep import RobustCheck

    return RobustCheck(m.index, _status_word_from_proto(m.status, "invalid"), _optional(m, "objective_value"),
                       _optional(m, "regret"), m.message)


def summary_to_proto(s: Any) -> sweep_pb2.SweepSummary:
    return sweep_pb2.SweepSummary(
        variants=s.variants, with_plan=s.with_plan, statuses=s.statuses, objective_percentiles=s.objective_percentiles,
        markets=[sweep_pb2.MarketFrequency(market_id=f.market_id, entered=f.entered, share=f.share, modes=f.modes,
                                           years={int(y): c for y, c in f.years.items()}) for f in s.markets],
        changed_variants=s.changed_variants, robust_share=s.robust_share,
        robust_plan=[_entry_to_proto(e) for e in s.robust_plan], robust_out=s.robust_out, robust_open=s.robust_open,
        robust_feasible=s.robust_feasible, robust_mean_regret=s.robust_mean_regret,
        robust_worst_regret=s.robust_worst_regret)


def summary_from_proto(m: sweep_pb2.SweepSummary, checks: Iterable[Any] = ()) -> Any:
    from lepton_alloc.models.sweep import MarketFrequency, SweepSummary

    return SweepSummary(
        variants=m.variants, with_plan=m.with_plan, statuses=dict(m.statuses),
        objective_percentiles=dict(m.objective_percentiles),
        markets=[MarketFrequency(f.market_id, f.entered, f.share, dict(f.modes), dict(sorted(f.years.items())))
                 for f in m.markets],
        changed_variants=list(m.changed_variants), robust_share=m.robust_share,
        robust_plan=[_entry_from_proto(e) for e in m.robust_plan], robust_out=list(m.robust_out),
        robust_open=list(m.robust_open), robust_checks=list(checks), robust_feasible=m.robust_feasible,
        robust_mean_regret=_optional(m, "robust_mean_regret"), robust_worst_regret=_optional(m, "robust_worst_regret"))
