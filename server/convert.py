"""Proto ⇄ domain conversion: the only module that maps ``lepton.allocation.v1`` messages to the
domain types of :mod:`lepton_alloc.models` and back.

Scenarios enter the domain through :func:`scenario_from_proto`, which rebuilds the plain data a
scenario file would hold and hands it to :func:`~lepton_alloc.models.scenario.parse_scenario`,
so a proto request gets exactly the validation of a file, and every violation names the same
field path (``markets[3].options[0].margin``): the proto messages use the file's field names
and list order. Absence is carried by proto presence (``optional`` fields, sub-messages, empty
per-year lists); a plain scalar's zero is the model's default for that field anyway.

Results leave through :func:`result_to_proto` and come back through :func:`result_from_proto`
as the dict of ``Result.to_dict()`` (same keys, same order, same float values), so a client
prints the same JSON as a local solve. Jobs and stored scenarios are built from the store's
records (plain types, JSON payloads, float epoch seconds).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2

from lepton_alloc.models.result import MarketYear, ModelSize, Result, ShadowPrice, Timings, YearTotal
from lepton_alloc.models.scenario import (
    MODES,
    OBJECTIVE_KINDS,
    FieldViolation,
    Market,
    Option,
    Scenario,
    canonical_json,
    parse_scenario,
)
from lepton_alloc.models.solve import STATUSES
from lepton_alloc.proto.lepton.allocation.v1 import job_pb2, result_pb2, scenario_pb2, stored_scenario_pb2

if TYPE_CHECKING:  # store records are only read here; the client side never needs the store
    from .store import JobEvent, JobRecord, StoredScenario

__all__ = [
    "final_event_to_proto", "job_state_from_proto", "job_state_to_proto", "job_to_proto",
    "progress_event_to_proto", "progress_from_proto", "progress_to_proto", "result_from_proto",
    "result_to_proto", "scenario_from_proto", "scenario_json", "scenario_proto_to_data",
    "scenario_to_proto", "state_event_to_proto", "stored_to_proto", "violations_to_bad_request",
]

# Domain names <-> enum numbers. Built by name, so a domain value without a proto enum value
# fails at import time rather than on some request.
_MODE_TO_PB: dict[str, scenario_pb2.Mode.ValueType] = {
    m: scenario_pb2.Mode.Value(f"MODE_{m.upper()}") for m in MODES
}
_PB_TO_MODE: dict[int, str] = {v: k for k, v in _MODE_TO_PB.items()}
_KIND_TO_PB: dict[str, scenario_pb2.ObjectiveKind.ValueType] = {
    k: scenario_pb2.ObjectiveKind.Value(f"OBJECTIVE_KIND_{k.upper()}") for k in OBJECTIVE_KINDS
}
_PB_TO_KIND: dict[int, str] = {v: k for k, v in _KIND_TO_PB.items()}
_STATUS_TO_PB: dict[str, result_pb2.SolveStatus.ValueType] = {
    s: result_pb2.SolveStatus.Value(f"SOLVE_STATUS_{s.upper()}") for s in STATUSES
}
_PB_TO_STATUS: dict[int, str] = {v: k for k, v in _STATUS_TO_PB.items()}
# kinds of the solver's progress events (models/solve.py) <-> ProgressKind
_PROGRESS_KIND_TO_PB: dict[str, job_pb2.ProgressKind.ValueType] = {
    "progress": job_pb2.PROGRESS_KIND_HEARTBEAT,
    "incumbent": job_pb2.PROGRESS_KIND_INCUMBENT,
}
_PB_TO_PROGRESS_KIND: dict[int, str] = {v: k for k, v in _PROGRESS_KIND_TO_PB.items()}


# ============================================================================ scenario: domain -> proto


def scenario_to_proto(scenario: Scenario) -> scenario_pb2.Scenario:
    """The proto form of a validated scenario; ``scenario_from_proto`` of it equals ``scenario``."""
    s = scenario
    msg = scenario_pb2.Scenario(
        name=s.name,
        start_year=s.start_year,
        horizon_years=s.horizon_years,
        discount_rate=s.discount_rate,
        markets=[_market_to_proto(m) for m in s.markets],
        budget=scenario_pb2.Budget(limit=s.budget.limit or (), carry_over=s.budget.carry_over),
        headcount=scenario_pb2.Headcount(
            cap=s.headcount.cap or (),
            max_net_hires=s.headcount.max_net_hires or (),
            initial=s.headcount.initial,
        ),
        growth_scenarios=[
            scenario_pb2.GrowthScenario(
                name=g.name, probability=g.probability, market_growth_delta=g.market_growth_delta,
                share_growth_multiplier=g.share_growth_multiplier,
            )
            for g in s.growth_scenarios
        ],
        commitments=[
            scenario_pb2.Commitment(market_id=c.market_id, mode=_MODE_TO_PB[c.mode], entry_year=c.entry_year)
            for c in s.commitments
        ],
        objective=scenario_pb2.Objective(
            kind=_KIND_TO_PB[s.objective.kind],
            risk_aversion=s.objective.risk_aversion,
            cvar_alpha=s.objective.cvar_alpha,
            min_expected_npv=s.objective.min_expected_npv,
            min_cvar=s.objective.min_cvar,
        ),
        solver=scenario_pb2.SolverSettings(
            time_limit_seconds=s.solver.time_limit_seconds, mip_rel_gap=s.solver.mip_rel_gap,
        ),
    )
    if s.terminal_growth is not None:
        msg.terminal_growth = s.terminal_growth
    for r in s.regions:
        msg.regions.add(
            name=r.name, min_markets=r.min_markets, max_markets=r.max_markets,
            max_budget_share=r.max_budget_share, talent_cap=r.talent_cap or (),
        )
    if s.risk_max_average is not None:
        msg.risk.max_average_risk = s.risk_max_average
    if s.previous_plan is not None:
        msg.previous_plan.change_penalty = s.previous_plan.change_penalty
        msg.previous_plan.SetInParent()  # present even with no decisions and a zero penalty
        for d in s.previous_plan.decisions:
            msg.previous_plan.decisions.add(
                market_id=d.market_id, entered=d.entered,
                mode=_MODE_TO_PB[d.mode] if d.mode is not None else scenario_pb2.MODE_UNSPECIFIED,
                entry_year=d.entry_year,
            )
    return msg


def _market_to_proto(m: Market) -> scenario_pb2.Market:
    msg = scenario_pb2.Market(
        id=m.id,
        name=m.name,
        region=m.region,  # None leaves an optional field unset
        market_size=m.market_size,
        market_growth=m.market_growth,
        risk_score=m.risk_score,
        compliance=scenario_pb2.Compliance(
            lead_time_years=m.compliance.lead_time_years,
            cost=m.compliance.cost,
            banned_modes=[_MODE_TO_PB[b] for b in m.compliance.banned_modes],
        ),
        earliest_entry_year=m.earliest_entry_year,
        latest_entry_year=m.latest_entry_year,
        must_enter=m.must_enter,
        requires=m.requires,
        salary_per_head=m.salary_per_head,
        options=[_option_to_proto(o) for o in m.options],
    )
    if m.growth_investment:
        for seg in m.growth_investment:
            msg.growth_investment.segments.add(up_to=seg.up_to, return_rate=seg.return_rate)
    if m.growth_hiring is not None:
        msg.growth_hiring.max_heads = m.growth_hiring.max_heads
        msg.growth_hiring.contribution_per_head = m.growth_hiring.contribution_per_head
        msg.growth_hiring.SetInParent()
    return msg


def _option_to_proto(o: Option) -> scenario_pb2.Option:
    if o.cash_flows is not None:
        return scenario_pb2.Option(
            mode=_MODE_TO_PB[o.mode],
            cash_flows=scenario_pb2.CashFlows(
                contribution=o.cash_flows.contribution, cost=o.cash_flows.cost,
                headcount=o.cash_flows.headcount,
            ),
        )
    return scenario_pb2.Option(
        mode=_MODE_TO_PB[o.mode],
        initial_share=o.initial_share,
        share_growth=o.share_growth,
        max_share=o.max_share,
        margin=o.margin,
        entry_cost=o.entry_cost,
        annual_cost=o.annual_cost,
        headcount=o.headcount,
        prehire_years=o.prehire_years,
    )


# ============================================================================ scenario: proto -> domain


def scenario_from_proto(msg: scenario_pb2.Scenario) -> Scenario:
    """Validate a proto scenario exactly as a file and return the domain :class:`Scenario`.

    Raises :class:`~lepton_alloc.models.scenario.ScenarioError` with every violation, each
    named by its path in the scenario (``markets[3].options[0].margin``).
    """
    return parse_scenario(scenario_proto_to_data(msg))


def scenario_proto_to_data(msg: scenario_pb2.Scenario) -> dict[str, Any]:
    """The plain data a scenario file with the same content would parse to (not yet validated).

    Keys are left out where the proto field is absent, so the file defaults and the file's
    "is required" rules apply unchanged.
    """
    raw: dict[str, Any] = {
        "start_year": msg.start_year,
        "discount_rate": msg.discount_rate,
        "markets": [_market_data(m) for m in msg.markets],
    }
    if msg.name:
        raw["name"] = msg.name
    if msg.horizon_years:  # 0 = absent: "horizon_years is required"
        raw["horizon_years"] = msg.horizon_years
    if msg.HasField("terminal_growth"):
        raw["terminal_growth"] = msg.terminal_growth
    if msg.HasField("budget"):
        raw["budget"] = {"carry_over": msg.budget.carry_over}
        _put_per_year(raw["budget"], "limit", msg.budget.limit)
    if msg.HasField("headcount"):
        h = msg.headcount
        raw["headcount"] = {"initial": h.initial}
        _put_per_year(raw["headcount"], "cap", h.cap)
        _put_per_year(raw["headcount"], "max_net_hires", h.max_net_hires)
    if msg.regions:
        raw["regions"] = [_region_data(r) for r in msg.regions]
    if msg.growth_scenarios:
        raw["growth_scenarios"] = [_growth_scenario_data(g) for g in msg.growth_scenarios]
    if msg.HasField("risk"):
        raw["risk"] = _present(msg.risk, "max_average_risk")
    if msg.commitments:
        raw["commitments"] = [
            {"market_id": c.market_id, **_mode_data(c.mode), **_present(c, "entry_year")}
            for c in msg.commitments
        ]
    if msg.HasField("previous_plan"):
        raw["previous_plan"] = {
            "change_penalty": msg.previous_plan.change_penalty,
            "decisions": [
                {"market_id": d.market_id, **_present(d, "entered"), **_mode_data(d.mode),
                 **_present(d, "entry_year")}
                for d in msg.previous_plan.decisions
            ],
        }
    if msg.HasField("objective"):
        o = msg.objective
        raw["objective"] = {
            "risk_aversion": o.risk_aversion,
            **_present(o, "cvar_alpha", "min_expected_npv", "min_cvar"),
        }
        if o.kind != scenario_pb2.OBJECTIVE_KIND_UNSPECIFIED:
            raw["objective"]["kind"] = _PB_TO_KIND.get(o.kind, _unknown_enum(o.kind))
    if msg.HasField("solver"):
        raw["solver"] = _present(msg.solver, "time_limit_seconds", "mip_rel_gap")
    return raw


def _market_data(m: scenario_pb2.Market) -> dict[str, Any]:
    d: dict[str, Any] = {
        "market_size": m.market_size,
        "market_growth": m.market_growth,
        "risk_score": m.risk_score,
        "must_enter": m.must_enter,
        "requires": list(m.requires),
        "salary_per_head": m.salary_per_head,
        "options": [_option_data(o) for o in m.options],
        **_present(m, "region", "earliest_entry_year", "latest_entry_year"),
    }
    if m.id:  # empty = absent: "id is required"
        d["id"] = m.id
    if m.name:
        d["name"] = m.name
    if m.HasField("compliance"):
        c = m.compliance
        d["compliance"] = {
            "lead_time_years": c.lead_time_years,
            "cost": c.cost,
            "banned_modes": [_mode_data(b).get("mode") for b in c.banned_modes],
        }
    if m.HasField("growth_investment"):
        d["growth_investment"] = {
            "segments": [{"up_to": s.up_to, "return_rate": s.return_rate} for s in m.growth_investment.segments]
        }
    if m.HasField("growth_hiring"):
        d["growth_hiring"] = {
            "max_heads": m.growth_hiring.max_heads,
            "contribution_per_head": m.growth_hiring.contribution_per_head,
        }
    return d


_OPTION_ZERO_DEFAULT_FIELDS = ("share_growth", "entry_cost", "annual_cost", "headcount", "prehire_years")


def _option_data(o: scenario_pb2.Option) -> dict[str, Any]:
    d: dict[str, Any] = {**_mode_data(o.mode), **_present(o, "initial_share", "max_share", "margin")}
    explicit = o.HasField("cash_flows")
    for key in _OPTION_ZERO_DEFAULT_FIELDS:
        value = getattr(o, key)
        # With cash_flows a growth-model field is only "given" when non-zero, so that the file
        # rule "cannot be combined with cash_flows" fires for a real conflict, not for a default.
        if not explicit or value != 0:
            d[key] = value
    if explicit:
        cf = o.cash_flows
        d["cash_flows"] = {
            "contribution": list(cf.contribution), "cost": list(cf.cost), "headcount": list(cf.headcount),
        }
    return d


def _region_data(r: scenario_pb2.Region) -> dict[str, Any]:
    d: dict[str, Any] = {"min_markets": r.min_markets, **_present(r, "max_markets", "max_budget_share")}
    if r.name:  # empty = absent: "name is required"
        d["name"] = r.name
    _put_per_year(d, "talent_cap", r.talent_cap)
    return d


def _growth_scenario_data(g: scenario_pb2.GrowthScenario) -> dict[str, Any]:
    d: dict[str, Any] = {
        "market_growth_delta": g.market_growth_delta,
        **_present(g, "probability", "share_growth_multiplier"),
    }
    if g.name:  # empty = absent: "name is required"
        d["name"] = g.name
    return d


def _present(msg: Message, *names: str) -> dict[str, Any]:
    """The explicit-presence fields among ``names`` that are set, as {name: value}."""
    return {n: getattr(msg, n) for n in names if msg.HasField(n)}


def _put_per_year(d: dict[str, Any], key: str, values: Sequence[float]) -> None:
    """A per-year limit: an empty list means "unconstrained", i.e. the key is left out."""
    if values:
        d[key] = list(values)


def _mode_data(value: int) -> dict[str, Any]:
    """{"mode": name} for a set mode; {} for MODE_UNSPECIFIED, so "mode is required" applies."""
    if value == scenario_pb2.MODE_UNSPECIFIED:
        return {}
    return {"mode": _PB_TO_MODE.get(value, _unknown_enum(value))}


def _unknown_enum(value: int) -> str:
    # A number this server does not know (a newer client): validation reports it by its path.
    return f"<unknown enum value {value}>"


# ============================================================================ errors


def violations_to_bad_request(
    violations: Iterable[FieldViolation], field_prefix: str = ""
) -> error_details_pb2.BadRequest:
    """One ``google.rpc.BadRequest`` listing every violation, in order.

    ``field_prefix`` is the request field holding the scenario (``"scenario"`` for
    SolveRequest), so paths are relative to the request as AIP-193 asks:
    ``scenario.markets[3].options[0].margin``. Without it the paths are those of the file.
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


# ============================================================================ result


def result_to_proto(result: Result | Mapping[str, Any]) -> result_pb2.Result:
    """The proto form of a result, given as :class:`Result` or as its ``to_dict()`` form (the
    form a job store keeps as JSON)."""
    d: Mapping[str, Any] = result.to_dict() if isinstance(result, Result) else result
    msg = result_pb2.Result(
        scenario_name=d["scenario_name"],
        scenario_sha256=d["scenario_sha256"],
        status=_STATUS_TO_PB[d["status"]],
        objective_value=d["objective_value"],
        best_bound=d["best_bound"],
        gap=d["gap"],
        message=d["message"],
        timings=_record_to_proto(d["timings"], result_pb2.Timings()),
        model_size=_record_to_proto(d["model_size"], result_pb2.ModelSize()),
        solver=[result_pb2.SolverProperty(key=k, value=v) for k, v in d["solver"].items()],
        shadow_prices=[_record_to_proto(p, result_pb2.ShadowPrice()) for p in d["shadow_prices"]],
        conflict=d["conflict"],
        years=[_record_to_proto(y, result_pb2.YearTotal()) for y in d["years"]],
    )
    for m in d["markets"]:
        msg.markets.add(
            id=m["id"], name=m["name"], region=m["region"], entered=m["entered"],
            mode=_MODE_TO_PB[m["mode"]] if m["mode"] is not None else scenario_pb2.MODE_UNSPECIFIED,
            entry_year=m["entry_year"], expected_npv=m["expected_npv"],
            years=[_record_to_proto(y, result_pb2.MarketYear()) for y in m["years"]],
        )
    k = d["kpis"]
    if k is not None:
        msg.kpis.CopyFrom(result_pb2.Kpis(
            expected_npv=k["expected_npv"],
            npv_by_scenario=[result_pb2.ScenarioNpv(scenario=s, npv=v) for s, v in k["npv_by_scenario"].items()],
            cvar=k["cvar"],
            cvar_alpha=k["cvar_alpha"],
            payback_year=k["payback_year"],
            change_penalty=k["change_penalty"],
            markets_entered=k["markets_entered"],
            final_year_contribution=k["final_year_contribution"],
        ))
    return msg


def result_from_proto(msg: result_pb2.Result) -> dict[str, Any]:
    """The ``Result.to_dict()`` form of a proto result: same keys in the same order, same values."""
    kpis: dict[str, Any] | None = None
    if msg.HasField("kpis"):
        k = msg.kpis
        kpis = {
            "expected_npv": k.expected_npv,
            "npv_by_scenario": {e.scenario: e.npv for e in k.npv_by_scenario},
            "cvar": k.cvar,
            "cvar_alpha": k.cvar_alpha,
            "payback_year": k.payback_year if k.HasField("payback_year") else None,
            "change_penalty": k.change_penalty,
            "markets_entered": k.markets_entered,
            "final_year_contribution": k.final_year_contribution,
        }
    return {
        "scenario_name": msg.scenario_name,
        "scenario_sha256": msg.scenario_sha256,
        "status": _PB_TO_STATUS.get(msg.status, "unspecified"),
        "objective_value": msg.objective_value if msg.HasField("objective_value") else None,
        "best_bound": msg.best_bound if msg.HasField("best_bound") else None,
        "gap": msg.gap if msg.HasField("gap") else None,
        "message": msg.message,
        "markets": [
            {
                "id": m.id,
                "name": m.name,
                "region": m.region if m.HasField("region") else None,
                "entered": m.entered,
                "mode": _PB_TO_MODE.get(m.mode),
                "entry_year": m.entry_year if m.HasField("entry_year") else None,
                "expected_npv": m.expected_npv,
                "years": [_record_from_proto(y, MarketYear) for y in m.years],
            }
            for m in msg.markets
        ],
        "years": [_record_from_proto(y, YearTotal) for y in msg.years],
        "kpis": kpis,
        "timings": _record_from_proto(msg.timings, Timings),
        "model_size": _record_from_proto(msg.model_size, ModelSize),
        "solver": {p.key: p.value for p in msg.solver},
        "shadow_prices": [_record_from_proto(p, ShadowPrice) for p in msg.shadow_prices],
        "conflict": list(msg.conflict),
    }


# Flat result records (MarketYear, YearTotal, Timings, ModelSize, ShadowPrice) have proto
# messages with the same field names; None is an unset `optional` field.


def _record_to_proto(values: Mapping[str, Any], msg: Message) -> Any:
    for key, value in values.items():
        if value is not None:
            setattr(msg, key, value)
    return msg


def _record_from_proto(msg: Message, record_type: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record_type):
        descriptor = msg.DESCRIPTOR.fields_by_name[f.name]
        out[f.name] = None if descriptor.has_presence and not msg.HasField(f.name) else getattr(msg, f.name)
    return out


# ============================================================================ progress


def progress_to_proto(event: Mapping[str, Any]) -> job_pb2.JobProgress:
    """A solver progress event (the dict ``solve_scenario(on_progress=...)`` emits: kind,
    objective, best_bound, gap, elapsed_seconds, nodes) as a JobProgress. A non-finite
    objective, bound or gap (HiGHS reports infinities before it knows them) is left unset."""

    def finite(key: str) -> float | None:
        value = event.get(key)
        return float(value) if value is not None and math.isfinite(value) else None

    return job_pb2.JobProgress(
        kind=_PROGRESS_KIND_TO_PB.get(str(event.get("kind")), job_pb2.PROGRESS_KIND_UNSPECIFIED),
        objective=finite("objective"),
        best_bound=finite("best_bound"),
        gap=finite("gap"),
        elapsed_seconds=float(event.get("elapsed_seconds") or 0.0),
        nodes=int(event.get("nodes") or 0),
    )


def progress_from_proto(msg: job_pb2.JobProgress) -> dict[str, Any]:
    """The progress-event dict of a JobProgress; unknown values are None."""
    return {
        "kind": _PB_TO_PROGRESS_KIND.get(msg.kind),
        "objective": msg.objective if msg.HasField("objective") else None,
        "best_bound": msg.best_bound if msg.HasField("best_bound") else None,
        "gap": msg.gap if msg.HasField("gap") else None,
        "elapsed_seconds": msg.elapsed_seconds,
        "nodes": msg.nodes,
    }


# ============================================================================ jobs and stored scenarios


def scenario_json(scenario: Scenario) -> str:
    """The JSON a store keeps for a scenario: its canonical form (defaults filled, keys sorted)."""
    return canonical_json(scenario)


def stored_to_proto(stored: StoredScenario) -> stored_scenario_pb2.StoredScenario:
    """A store revision as a StoredScenario; its JSON is the canonical form of a valid scenario."""
    return stored_scenario_pb2.StoredScenario(
        name=stored.name,
        revision=stored.revision,
        scenario=scenario_to_proto(parse_scenario(json.loads(stored.scenario_json))),
        create_time=_timestamp(stored.created_at),
        sha256=stored.sha256,
        description=stored.description,
    )


def job_state_to_proto(state: str) -> job_pb2.JobState.ValueType:
    """A store job state (``QUEUED`` ... ``CANCELLED``) as a JobState."""
    return job_pb2.JobState.Value(f"JOB_STATE_{state.upper()}")


def job_state_from_proto(state: int) -> str | None:
    """A JobState as a store state name; None for JOB_STATE_UNSPECIFIED (as a filter: any).

    Raises ValueError for a number this server does not know."""
    if state == job_pb2.JOB_STATE_UNSPECIFIED:
        return None
    try:
        return job_pb2.JobState.Name(state).removeprefix("JOB_STATE_")  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(f"unknown job state {state}") from None


def job_to_proto(job: JobRecord, history: Sequence[JobEvent] = ()) -> job_pb2.Job:
    """A store job as a Job: result and last progress from their JSON, history from its events."""
    msg = job_pb2.Job(
        job_id=job.job_id,
        state=job_state_to_proto(job.state),
        request_id=job.request_id,
        scenario_name=job.scenario_name,
        scenario_revision=job.scenario_revision if job.scenario_revision > 0 else None,
        scenario_sha256=job.scenario_sha256,
        create_time=_timestamp(job.created_at),
        start_time=_timestamp(job.started_at),
        end_time=_timestamp(job.finished_at),
        error_message=job.error or "",
        history=[
            job_pb2.JobStateChange(state=job_state_to_proto(e.state), change_time=_timestamp(e.at), message=e.detail)
            for e in history
        ],
    )
    if job.result_json is not None:
        msg.result.CopyFrom(result_to_proto(json.loads(job.result_json)))
    if job.progress_json is not None:
        msg.last_progress.CopyFrom(progress_to_proto(json.loads(job.progress_json)))
    return msg


def state_event_to_proto(job: JobRecord) -> job_pb2.JobEvent:
    """A watch event announcing the job's current state, stamped with when it was entered."""
    entered = {"QUEUED": job.created_at, "RUNNING": job.started_at}.get(job.state, job.finished_at)
    when = _timestamp(entered if entered else time.time())
    return job_pb2.JobEvent(
        event_time=when,
        state_change=job_pb2.JobStateChange(state=job_state_to_proto(job.state), change_time=when,
                                            message=job.error or ""),
    )


def progress_event_to_proto(event: Mapping[str, Any]) -> job_pb2.JobEvent:
    """A watch event carrying one solver progress report (see :func:`progress_to_proto`)."""
    at = event.get("at")
    return job_pb2.JobEvent(event_time=_timestamp(float(at) if at else time.time()), progress=progress_to_proto(event))


def final_event_to_proto(job: JobRecord, history: Sequence[JobEvent] = ()) -> job_pb2.JobEvent:
    """The last watch event: the job in its terminal state, result or error included."""
    return job_pb2.JobEvent(
        event_time=_timestamp(job.finished_at or time.time()), job=job_to_proto(job, history)
    )


def _timestamp(epoch_seconds: float | None) -> Timestamp | None:
    """A Timestamp of float epoch seconds (microsecond precision); None stays unset."""
    if epoch_seconds is None:
        return None
    ts = Timestamp()
    ts.FromMicroseconds(round(epoch_seconds * 1_000_000))
    return ts
