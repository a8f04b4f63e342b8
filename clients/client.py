"""Python client library for ``lepton.allocation.v1.AllocationService`` (sync and asyncio).

One implementation, two thin façades. Every call is described once, as a :class:`_Call`
(the RPC, its request, whether it may be retried, how to read the response), by the methods
of :class:`_Api`; :class:`AllocationClient` runs calls on a blocking channel and
:class:`AsyncAllocationClient` on a ``grpc.aio`` channel, with the same retry schedule and
the same error mapping. Only the streaming ``watch`` has a loop of its own per façade.

The stubs stay hidden: calls take domain objects (a validated ``Scenario``, or a scenario
file's text as ``document``) and return typed values (``Result``, :class:`JobInfo`,
:class:`StoredScenarioInfo`, :class:`WatchEvent`, :class:`JobHandle`). Every call has an
explicit deadline; ``UNAVAILABLE`` is retried (with backoff) only for idempotent calls (reads,
cancel, validate, and ``submit`` with a ``request_id``). Every failure is one exception type,
:class:`AllocationError`, carrying the status code and the parsed field violations.

Light: this module imports grpc, protobuf and the scenario/result types, never the solver
stack (Pyomo, HiGHS, numpy) and never the server.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from lepton_alloc.models.compare import Comparison
from lepton_alloc.models.result import Result
from lepton_alloc.models.scenario import FieldViolation, Scenario, parse_scenario
from lepton_alloc.models.status import JobState, Progress
from lepton_alloc.models.sweep import RobustCheck, SweepSpec, SweepSummary, VariantResult
from lepton_alloc.proto import adapter
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2 as svc
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2_grpc as svc_grpc
from lepton_alloc.proto.lepton.allocation.v1 import job_pb2

T = TypeVar("T")
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)  # seconds between attempts of an idempotent call
# reconnect quickly after a refused connection, so a retry can reach a server that just started
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class AllocationError(Exception):
    """A failed call: ``code`` (grpc.StatusCode), ``message``, ``violations`` for
    INVALID_ARGUMENT (field path + description, as in the scenario file), and ``retry_after``
    for RESOURCE_EXHAUSTED when the server said when to try again (seconds; its
    ``google.rpc.RetryInfo``), else None."""

    def __init__(self, code: grpc.StatusCode, message: str, violations: list[FieldViolation] | None = None,
                 retry_after: float | None = None):
        self.code = code
        self.message = message
        self.violations = violations or []
        self.retry_after = retry_after
        detail = "".join(f"\n  {v.field}: {v.description}" for v in self.violations)
        hint = f" (the server suggests retrying in {retry_after:.2g} s)" if retry_after is not None else ""
        super().__init__(f"{code.name}: {message}{hint}{detail}")

    @property
    def code_name(self) -> str:
        return self.code.name

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> AllocationError:
        code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
        message = err.details() if callable(getattr(err, "details", None)) else str(err)
        violations: list[FieldViolation] = []
        retry_after: float | None = None
        try:
            status = rpc_status.from_call(err)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - a malformed status still becomes our error
            status = None
        if status is not None:
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    violations.extend(adapter.bad_request_to_violations(bad))
                elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    retry_after = info.retry_delay.ToNanoseconds() / 1e9
        return cls(code, message or "", violations, retry_after)


# ----------------------------------------------------------------------------- typed values


@dataclass
class JobInfo:
    """A job as the server last described it."""

    job_id: str
    state: JobState
    request_id: str
    scenario_name: str
    scenario_revision: int | None
    scenario_sha256: str
    create_time: float | None
    start_time: float | None
    end_time: float | None
    result: Result | None  # without per-market/per-year breakdowns in a ListJobs summary
    error: str
    last_progress: Progress | None
    history: list[tuple[JobState, float, str]] = field(default_factory=list)  # (state, when, why)
    kind: str = "solve"  # "solve" | "sweep"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StoredScenarioInfo:
    """One revision of a stored scenario."""

    name: str
    revision: int
    scenario: Scenario
    sha256: str
    description: str
    create_time: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "revision": self.revision, "sha256": self.sha256,
                "description": self.description, "create_time": self.create_time,
                "scenario": self.scenario.to_dict()}


class EventKind(StrEnum):
    """What a watch event carries."""

    STATE = "state"  # the job changed state (the first event is the current state)
    PROGRESS = "progress"  # the running solve reported progress
    DONE = "done"  # the job in its terminal state: the last event


@dataclass
class WatchEvent:
    kind: EventKind
    state: JobState | None = None
    progress: Progress | None = None
    job: JobInfo | None = None
    event_time: float | None = None  # when it happened (epoch seconds; progress: the solver's clock)


@dataclass
class Validation:
    """The answer of ``validate``: violations, or the hash and size of the model it would build."""

    valid: bool
    violations: list[FieldViolation]
    scenario_sha256: str
    markets: int = 0
    years: int = 0
    growth_scenarios: int = 0
    entry_columns: int = 0


def job_from_proto(j: Any) -> JobInfo:
    ts = adapter.timestamp_seconds
    return JobInfo(
        job_id=j.job_id, state=adapter.job_state_from_proto(j.state) or JobState.QUEUED, request_id=j.request_id,
        scenario_name=j.scenario_name,
        scenario_revision=j.scenario_revision if j.HasField("scenario_revision") else None,
        scenario_sha256=j.scenario_sha256,
        create_time=ts(j.create_time, j.HasField("create_time")),
        start_time=ts(j.start_time, j.HasField("start_time")),
        end_time=ts(j.end_time, j.HasField("end_time")),
        result=adapter.result_from_proto(j.result) if j.HasField("result") else None,
        error=j.error_message,
        last_progress=adapter.progress_from_proto(j.last_progress) if j.HasField("last_progress") else None,
        history=[(adapter.job_state_from_proto(h.state) or JobState.QUEUED, ts(h.change_time) or 0.0, h.message)
                 for h in j.history],
        kind="sweep" if j.kind == job_pb2.JOB_KIND_SWEEP else "solve",
    )


@dataclass
class SweepEvent:
    """One event of a sweep stream: ``kind`` is state, variant, robust, summary or done."""

    kind: str
    done: int  # variants answered so far (the base included)
    total: int  # variants in the sweep (the base included)
    job_id: str = ""
    state: JobState | None = None
    variant: VariantResult | None = None
    check: RobustCheck | None = None
    summary: SweepSummary | None = None
    job: JobInfo | None = None


def sweep_event_from_proto(resp: Any) -> SweepEvent:
    ev = resp.event
    which = ev.WhichOneof("event")
    out = SweepEvent({"state_change": "state", "variant": "variant", "robust_check": "robust", "summary": "summary"}
                     .get(which or "", "done"), ev.variants_done, ev.variants_total, ev.job_id)
    if which == "state_change":
        out.state = adapter.job_state_from_proto(ev.state_change.state)
    elif which == "variant":
        out.variant = adapter.variant_from_proto(ev.variant)
    elif which == "robust_check":
        out.check = adapter.robust_check_from_proto(ev.robust_check)
    elif which == "summary":
        out.summary = adapter.summary_from_proto(ev.summary)
    else:
        out.job = job_from_proto(ev.job)
        out.state = out.job.state
    return out


@dataclass
class SweepInfo:
    """A sweep job and its answers: every variant (by index), the robust plan's evaluation and
    the summary (None until it ends)."""

    job: JobInfo
    spec: dict[str, Any]
    total: int
    done: int
    variants: list[VariantResult]
    summary: SweepSummary | None

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job.to_dict(), "sweep": self.spec, "variants_total": self.total, "variants_done": self.done,
                "variants": [v.to_dict() for v in self.variants],
                "summary": self.summary.to_dict() if self.summary else None}


def _sweep_page_from_proto(r: Any) -> tuple[SweepInfo, str]:
    checks = [adapter.robust_check_from_proto(c) for c in r.robust_checks]
    summary = adapter.summary_from_proto(r.summary, checks) if r.HasField("summary") else None
    from google.protobuf.json_format import MessageToDict

    spec = MessageToDict(r.sweep, preserving_proto_field_name=True)
    return SweepInfo(job_from_proto(r.job), spec, r.variants_total, r.variants_done,
                     [adapter.variant_from_proto(v) for v in r.variants], summary), r.next_page_token


def _sweep_source(req: Any, sweep: SweepSpec | dict[str, Any] | str) -> Any:
    """A sweep as a message (a validated SweepSpec) or as a document (a dict or a file's text),
    which the server validates against the base scenario, naming unknown keys."""
    import json

    if isinstance(sweep, SweepSpec):
        req.sweep.CopyFrom(adapter.sweep_to_proto(sweep))
    elif isinstance(sweep, dict):
        req.sweep_document = json.dumps(sweep)
    else:
        req.sweep_document = sweep
    return req


def stored_from_proto(s: Any) -> StoredScenarioInfo:
    # the server sends the canonical form of a scenario it validated; reading it back validates
    # it on this side of the wire (the client's edge)
    return StoredScenarioInfo(s.name, s.revision, adapter.scenario_from_proto(s.scenario), s.sha256,
                              s.description, adapter.timestamp_seconds(s.create_time, s.HasField("create_time")))


def event_from_proto(resp: Any) -> WatchEvent:
    ev = resp.event
    which = ev.WhichOneof("event")
    at = adapter.timestamp_seconds(ev.event_time, ev.HasField("event_time"))
    if which == "state_change":
        return WatchEvent(EventKind.STATE, state=adapter.job_state_from_proto(ev.state_change.state), event_time=at)
    if which == "progress":
        return WatchEvent(EventKind.PROGRESS, progress=adapter.progress_from_proto(ev.progress, at), event_time=at)
    job = job_from_proto(ev.job)
    return WatchEvent(EventKind.DONE, state=job.state, job=job, event_time=at)


def _validation_from_proto(r: Any) -> Validation:
    size = r.model_size
    return Validation(r.valid, adapter.bad_request_to_violations(r.violations), r.scenario_sha256,
                      size.markets, size.years, size.growth_scenarios, size.entry_columns)


# ----------------------------------------------------------------------------- requests, once


@dataclass
class _Call(Generic[T]):
    """One unary RPC: which method, the request, whether a retry is safe, how to read the answer."""

    method: str
    request: Any
    idempotent: bool
    parse: Callable[[Any], T]
    timeout: float | None = None
    metadata: list[tuple[str, str]] = field(default_factory=list)


def _options(time_limit_seconds: float | None, mip_rel_gap: float | None) -> Any:
    o = svc.SolveOptions()
    if time_limit_seconds is not None:
        o.time_limit_seconds = time_limit_seconds
    if mip_rel_gap is not None:
        o.mip_rel_gap = mip_rel_gap
    return o


def _source(req: Any, scenario: Scenario | dict[str, Any] | None, document: str | None,
            scenario_name: str | None, revision: int | None) -> Any:
    if sum(x is not None for x in (scenario, document, scenario_name)) != 1:
        raise ValueError("give exactly one of scenario, document or scenario_name")
    if scenario is not None:
        req.scenario.CopyFrom(adapter.scenario_to_proto(parse_scenario(scenario)))
    elif document is not None:
        req.scenario_document = document
    else:
        req.scenario_ref.name = scenario_name
        if revision is not None:
            req.scenario_ref.revision = revision
    return req


def _scenario_fields(scenario: Scenario | dict[str, Any] | None, document: str | None) -> dict[str, Any]:
    if (scenario is None) == (document is None):
        raise ValueError("give exactly one of scenario or document")
    if document is not None:
        return {"scenario_document": document}
    return {"scenario": adapter.scenario_to_proto(parse_scenario(scenario))}


_STATE_FILTER = {s.value.lower(): adapter.job_state_to_proto(s) for s in JobState}


class _Api:
    """Every RPC of the service, described once; a façade's ``_run`` executes the description.

    ``AllocationClient`` returns the values below; ``AsyncAllocationClient`` returns
    awaitables of the same values.
    """

    timeout: float

    def _run(self, call: _Call[Any]) -> Any:  # pragma: no cover - provided by each façade
        raise NotImplementedError

    def _job_handle(self, info: JobInfo) -> Any:  # pragma: no cover - provided by each façade
        raise NotImplementedError

    # -- solves

    def solve(self, scenario: Scenario | dict[str, Any] | None = None, *, document: str | None = None,
              scenario_name: str | None = None, revision: int | None = None,
              time_limit_seconds: float | None = None, mip_rel_gap: float | None = None,
              timeout: float | None = None) -> Result:
        """Solve and wait (unary ``Solve``). Give one of ``scenario`` (validated here first),
        ``document`` (a scenario file's text, validated by the server with the file's paths) or
        ``scenario_name`` (a stored scenario, with an optional ``revision``). ``timeout`` is the
        call's deadline; when it expires the server stops the solve."""
        req = _source(svc.SolveRequest(options=_options(time_limit_seconds, mip_rel_gap)),
                      scenario, document, scenario_name, revision)
        return self._run(_Call("Solve", req, False, lambda r: adapter.result_from_proto(r.result), timeout))

    def submit(self, scenario: Scenario | dict[str, Any] | None = None, *, document: str | None = None,
               scenario_name: str | None = None, revision: int | None = None, request_id: str = "",
               time_limit_seconds: float | None = None, mip_rel_gap: float | None = None,
               timeout: float | None = None, metadata: list[tuple[str, str]] | None = None) -> JobHandle:
        """Queue a solve as a job and return its handle at once. With a ``request_id`` the call
        is idempotent (and retried): the same id and request give the same job."""
        req = _source(svc.SubmitSolveRequest(options=_options(time_limit_seconds, mip_rel_gap), request_id=request_id),
                      scenario, document, scenario_name, revision)
        return self._run(_Call("SubmitSolve", req, bool(request_id),
                               lambda r: self._job_handle(job_from_proto(r.job)), timeout, list(metadata or [])))

    def submit_sweep(self, sweep: SweepSpec | dict[str, Any] | str, scenario: Scenario | dict[str, Any] | None = None, *,
                     document: str | None = None, scenario_name: str | None = None, revision: int | None = None,
                     request_id: str = "", timeout: float | None = None) -> JobInfo:
        """Queue a sweep (docs/model.md §7) of a base scenario (``scenario``, ``document`` or
        ``scenario_name``); ``sweep`` is a SweepSpec, a dict of its fields or a sweep file's text.
        Returns the sweep job; follow it with ``watch_sweep`` or read it with ``get_sweep``."""
        req = _sweep_source(_source(svc.SubmitSweepRequest(request_id=request_id), scenario, document, scenario_name,
                                    revision), sweep)
        return self._run(_Call("SubmitSweep", req, bool(request_id), lambda r: job_from_proto(r.job), timeout))

    def get_sweep_page(self, job_id: str, *, page_size: int = 1000, page_token: str = "",
                       timeout: float | None = None) -> tuple[SweepInfo, str]:
        """One page of a sweep's variants (by index) with its job, robust checks and summary;
        (sweep, next_page_token)."""
        req = svc.GetSweepRequest(job_id=job_id, page_size=page_size, page_token=page_token)
        return self._run(_Call("GetSweep", req, True, _sweep_page_from_proto, timeout))

    def get_job(self, job_id: str, *, timeout: float | None = None) -> JobInfo:
        """The job's current state, last progress and, once ended, its result."""
        return self._run(_Call("GetJob", svc.GetJobRequest(job_id=job_id), True, lambda r: job_from_proto(r.job), timeout))

    def list_jobs(self, *, state: JobState | str | None = None, page_size: int = 50, page_token: str = "",
                  full: bool = False, timeout: float | None = None) -> tuple[list[JobInfo], str]:
        """One page of jobs, newest first, optionally in one state; (jobs, next_page_token).
        Results come as summaries (no per-market breakdowns) unless ``full``."""
        req = svc.ListJobsRequest(page_size=page_size, page_token=page_token,
                                  state=_STATE_FILTER.get(str(state or "").lower(), 0),
                                  view=job_pb2.JOB_VIEW_FULL if full else job_pb2.JOB_VIEW_SUMMARY)
        return self._run(_Call("ListJobs", req, True, lambda r: ([job_from_proto(j) for j in r.jobs], r.next_page_token),
                               timeout))

    def cancel(self, job_id: str, *, timeout: float | None = None) -> JobInfo:
        """Ask for a job's cancellation; a running solve stops promptly and keeps its best plan."""
        return self._run(_Call("CancelJob", svc.CancelJobRequest(job_id=job_id), True, lambda r: job_from_proto(r.job),
                               timeout))

    def explain(self, job_id: str, *, relative_step: float | None = None, time_budget_seconds: float | None = None,
                step_values: bool = True, market_values: bool = True, timeout: float | None = None) -> Result:
        """The job's result explained further by re-solves on the server's workers: each limit
        moved down and up by ``relative_step`` (default 5 %) and each market forced out or in,
        within ``time_budget_seconds`` (default 60). Answers cut short by the budget are marked."""
        req = svc.ExplainJobRequest(job_id=job_id, skip_step_values=not step_values, skip_market_values=not market_values)
        if relative_step is not None:
            req.relative_step = relative_step
        if time_budget_seconds is not None:
            req.time_budget_seconds = time_budget_seconds
        deadline = timeout or (time_budget_seconds or 60.0) + 60.0
        return self._run(_Call("ExplainJob", req, True, lambda r: adapter.result_from_proto(r.result), deadline))

    def compare(self, base_job_id: str, other_job_id: str, *, timeout: float | None = None) -> Comparison:
        """Plans of two ended jobs side by side (deltas are other - base)."""
        req = svc.ComparePlansRequest(base_job_id=base_job_id, other_job_id=other_job_id)
        return self._run(_Call("ComparePlans", req, True, lambda r: adapter.comparison_from_proto(r.comparison), timeout))

    def validate(self, scenario: Scenario | dict[str, Any] | None = None, *, document: str | None = None,
                 timeout: float | None = None) -> Validation:
        """Validate on the server without storing or solving: violations, or the model size."""
        req = svc.ValidateScenarioRequest(**_scenario_fields(scenario, document))
        return self._run(_Call("ValidateScenario", req, True, _validation_from_proto, timeout))

    # -- stored scenarios

    def create_scenario(self, name: str, scenario: Scenario | dict[str, Any] | None = None, *,
                        document: str | None = None, description: str = "",
                        timeout: float | None = None) -> StoredScenarioInfo:
        """Store a new named scenario as revision 1 (ALREADY_EXISTS if the name is taken)."""
        req = svc.CreateScenarioRequest(name=name, description=description, **_scenario_fields(scenario, document))
        return self._run(_Call("CreateScenario", req, False, lambda r: stored_from_proto(r.stored_scenario), timeout))

    def update_scenario(self, name: str, scenario: Scenario | dict[str, Any] | None = None, *,
                        document: str | None = None, description: str = "",
                        timeout: float | None = None) -> StoredScenarioInfo:
        """Store a new revision of an existing scenario; earlier revisions are kept."""
        req = svc.UpdateScenarioRequest(name=name, description=description, **_scenario_fields(scenario, document))
        return self._run(_Call("UpdateScenario", req, False, lambda r: stored_from_proto(r.stored_scenario), timeout))

    def get_scenario(self, name: str, *, revision: int | None = None, timeout: float | None = None) -> StoredScenarioInfo:
        """The latest, or a given, revision of a stored scenario."""
        req = svc.GetScenarioRequest(name=name)
        if revision is not None:
            req.revision = revision
        return self._run(_Call("GetScenario", req, True, lambda r: stored_from_proto(r.stored_scenario), timeout))

    def list_scenarios(self, *, page_size: int = 50, page_token: str = "",
                       timeout: float | None = None) -> tuple[list[StoredScenarioInfo], str]:
        """One page of stored scenarios (latest revision of each), by name."""
        req = svc.ListScenariosRequest(page_size=page_size, page_token=page_token)
        return self._run(_Call("ListScenarios", req, True,
                               lambda r: ([stored_from_proto(s) for s in r.stored_scenarios], r.next_page_token), timeout))

    def delete_scenario(self, name: str, *, timeout: float | None = None) -> None:
        """Delete a stored scenario with all its revisions; jobs that used it are kept."""
        return self._run(_Call("DeleteScenario", svc.DeleteScenarioRequest(name=name), False, lambda r: None, timeout))


# ----------------------------------------------------------------------------- connection security

SECURITY_ENV = {"token": "LEPTON_TOKEN", "tls_ca": "LEPTON_TLS_CA", "tls_cert": "LEPTON_CLIENT_CERT",
                "tls_key": "LEPTON_CLIENT_KEY", "tls_server_name": "LEPTON_TLS_SERVER_NAME"}


@dataclass
class _Connection:
    """How a façade reaches the server: channel credentials (None = plaintext), channel options,
    and the metadata sent on every call (the API token)."""

    credentials: grpc.ChannelCredentials | None
    options: list[tuple[str, Any]]
    metadata: list[tuple[str, str]]


def _read_pem(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ValueError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def _connection(token: str | None, tls_ca: str | None, tls_cert: str | None, tls_key: str | None,
                tls_server_name: str | None, metadata: list[tuple[str, str]] | None) -> _Connection:
    """Each argument left None falls back to its environment variable (:data:`SECURITY_ENV`);
    "" turns it off. TLS when a CA (``tls_ca``) or a client certificate is given (without a CA,
    the system's roots verify the server); ``tls_cert`` and ``tls_key`` (mutual TLS) go together.
    The token rides on every call as ``authorization: Bearer <token>``."""
    given = {"token": token, "tls_ca": tls_ca, "tls_cert": tls_cert, "tls_key": tls_key,
             "tls_server_name": tls_server_name}
    v = {k: (os.environ.get(SECURITY_ENV[k], "") if x is None else x).strip() for k, x in given.items()}
    if bool(v["tls_cert"]) != bool(v["tls_key"]):
        raise ValueError("a client certificate needs both tls_cert and tls_key (LEPTON_CLIENT_CERT, LEPTON_CLIENT_KEY)")
    options: list[tuple[str, Any]] = list(CHANNEL_OPTIONS)
    credentials = None
    if v["tls_ca"] or v["tls_cert"]:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read_pem(v["tls_ca"], "TLS CA certificate") if v["tls_ca"] else None,
            private_key=_read_pem(v["tls_key"], "TLS key") if v["tls_key"] else None,
            certificate_chain=_read_pem(v["tls_cert"], "TLS certificate") if v["tls_cert"] else None)
        if v["tls_server_name"]:
            options.append(("grpc.ssl_target_name_override", v["tls_server_name"]))
    metadata = list(metadata or [])
    # authorization metadata given explicitly wins over the token (and LEPTON_TOKEN)
    explicit = any(k.lower() == "authorization" for k, _ in metadata)
    auth = [("authorization", f"Bearer {v['token']}")] if v["token"] and not explicit else []
    return _Connection(credentials, options, auth + metadata)


# ----------------------------------------------------------------------------- sync façade


class AllocationClient(_Api):
    """Blocking client. Use as a context manager, or call :meth:`close`.

    ``token``: the API token, sent on every call (env ``LEPTON_TOKEN``). ``tls_ca``: the CA
    certificate (PEM path) that signed the server's: the channel uses TLS (env ``LEPTON_TLS_CA``);
    ``tls_cert``/``tls_key``: this client's certificate and key for mutual TLS (env
    ``LEPTON_CLIENT_CERT``, ``LEPTON_CLIENT_KEY``); ``tls_server_name``: the name to expect in the server's
    certificate when it differs from the address's host. None reads the environment, "" is off."""

    def __init__(self, address: str, *, timeout: float = 60.0, metadata: list[tuple[str, str]] | None = None,
                 channel: grpc.Channel | None = None, token: str | None = None, tls_ca: str | None = None,
                 tls_cert: str | None = None, tls_key: str | None = None, tls_server_name: str | None = None):
        self.address = address
        self.timeout = timeout
        conn = _connection(token, tls_ca, tls_cert, tls_key, tls_server_name, metadata)
        self.metadata = conn.metadata
        if channel is None:
            channel = (grpc.insecure_channel(address, options=conn.options) if conn.credentials is None
                       else grpc.secure_channel(address, conn.credentials, options=conn.options))
        self._channel = channel
        self._stub = svc_grpc.AllocationServiceStub(self._channel)

    def __enter__(self) -> AllocationClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _run(self, call: _Call[T]) -> T:
        fn = getattr(self._stub, call.method)
        attempts = len(RETRY_DELAYS) + 1 if call.idempotent else 1
        for attempt in range(attempts):
            try:
                response = fn(call.request, timeout=call.timeout or self.timeout, metadata=self.metadata + call.metadata)
            except grpc.RpcError as err:
                if call.idempotent and err.code() == grpc.StatusCode.UNAVAILABLE and attempt < attempts - 1:
                    time.sleep(RETRY_DELAYS[attempt])
                    continue
                raise AllocationError.from_rpc_error(err) from None
            return call.parse(response)
        raise AssertionError("unreachable")

    def _job_handle(self, info: JobInfo) -> JobHandle:
        return JobHandle(self, info)

    def _stream(self, method: str, request: Any, parse: Callable[[Any], T], timeout: float | None) -> Iterator[T]:
        """A server stream, each message parsed; a failure as :class:`AllocationError`."""
        try:
            for resp in getattr(self._stub, method)(request, timeout=timeout, metadata=self.metadata):
                yield parse(resp)
        except grpc.RpcError as err:
            raise AllocationError.from_rpc_error(err) from None

    def watch(self, job_id: str, *, timeout: float | None = None) -> Iterator[WatchEvent]:
        """Live events: the current state, progress, then ``done`` with the final job."""
        yield from self._stream("WatchJob", svc.WatchJobRequest(job_id=job_id), event_from_proto, timeout)

    def sweep(self, sweep: SweepSpec | dict[str, Any] | str, scenario: Scenario | dict[str, Any] | None = None, *,
              document: str | None = None, scenario_name: str | None = None, revision: int | None = None,
              request_id: str = "", timeout: float | None = None) -> Iterator[SweepEvent]:
        """Queue a sweep and stream its events (``Sweep``): state, each variant's answer as it
        ends, the robust plan's evaluation, the summary, then ``done``. Every event carries the
        sweep's ``job_id``. The job outlives the stream: ``cancel(job_id)`` stops it,
        ``watch_sweep(job_id)`` re-attaches."""
        req = _sweep_source(_source(svc.SweepRequest(request_id=request_id), scenario, document, scenario_name,
                                    revision), sweep)
        yield from self._stream("Sweep", req, sweep_event_from_proto, timeout)

    def watch_sweep(self, job_id: str, *, timeout: float | None = None) -> Iterator[SweepEvent]:
        """A sweep's answers so far, then live ones, the summary and ``done``."""
        yield from self._stream("WatchSweep", svc.WatchSweepRequest(job_id=job_id), sweep_event_from_proto, timeout)

    def get_sweep(self, job_id: str, *, timeout: float | None = None) -> SweepInfo:
        """A sweep job with every variant's answer (all pages), the robust checks and the summary."""
        info, token = self.get_sweep_page(job_id, timeout=timeout)
        while token:
            more, token = self.get_sweep_page(job_id, page_token=token, timeout=timeout)
            info.variants += more.variants
        return info

    def job(self, job_id: str) -> JobHandle:
        """A handle of an existing job."""
        return JobHandle(self, self.get_job(job_id))

    def solve_many(self, items: list[tuple[str, Scenario | str]], *, concurrency: int = 4,
                   time_limit_seconds: float | None = None, mip_rel_gap: float | None = None,
                   on_done: Callable[[str, Result | AllocationError], None] | None = None,
                   max_wait_seconds: float = 600.0,
                   ) -> list[tuple[str, Result | AllocationError]]:
        """Solve many scenarios (``(name, Scenario or scenario-file text)``) with at most
        ``concurrency`` jobs in flight; answers in the given order, a failure as its
        :class:`AllocationError` rather than an exception. ``on_done`` is called as each ends.
        A submission the server refuses for lack of room (``RESOURCE_EXHAUSTED`` with a retry
        delay: its queue or the tenant's share of it is full) is made again after that delay,
        for at most ``max_wait_seconds`` per scenario; then the refusal is its answer."""
        from concurrent.futures import ThreadPoolExecutor

        def one(item: tuple[str, Scenario | str]) -> tuple[str, Result | AllocationError]:
            name, source = item
            try:
                kwargs: dict[str, Any] = {"document": source} if isinstance(source, str) else {"scenario": source}
                handle = self._submit_when_admitted(max_wait_seconds, time_limit_seconds=time_limit_seconds,
                                                    mip_rel_gap=mip_rel_gap, **kwargs)
                answer: Result | AllocationError = handle.result()
            except AllocationError as err:
                answer = err
            if on_done is not None:
                on_done(name, answer)
            return name, answer

        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="lepton-batch") as pool:
            return list(pool.map(one, items))

    def _submit_when_admitted(self, max_wait_seconds: float, **kwargs: Any) -> JobHandle:
        """:meth:`submit`, made again after the server's retry delay while it refuses for lack of
        room, for at most ``max_wait_seconds`` (one request id throughout: a submission that was
        accepted after all is not made twice)."""
        kwargs.setdefault("request_id", uuid.uuid4().hex)
        give_up = time.monotonic() + max_wait_seconds
        while True:
            try:
                return self.submit(**kwargs)
            except AllocationError as err:
                left = give_up - time.monotonic()
                if err.code != grpc.StatusCode.RESOURCE_EXHAUSTED or err.retry_after is None or left <= 0:
                    raise
                time.sleep(min(err.retry_after, left))


class JobHandle:
    """A submitted job: :meth:`result`, :meth:`watch`, :meth:`cancel`, :meth:`refresh`."""

    def __init__(self, client: AllocationClient, info: JobInfo):
        self._client = client
        self.info = info

    @property
    def job_id(self) -> str:
        return self.info.job_id

    @property
    def state(self) -> JobState:
        """The state when this handle was last refreshed (see :meth:`refresh`)."""
        return self.info.state

    def refresh(self) -> JobInfo:
        self.info = self._client.get_job(self.job_id)
        return self.info

    def watch(self, *, timeout: float | None = None) -> Iterator[WatchEvent]:
        for event in self._client.watch(self.job_id, timeout=timeout):
            if event.job is not None:
                self.info = event.job
            yield event

    def cancel(self) -> JobInfo:
        self.info = self._client.cancel(self.job_id)
        return self.info

    def result(self, *, timeout: float | None = None) -> Result:
        """Wait for the job to end and return its result; AllocationError if it failed or
        ended without a plan to report (cancelled before it started)."""
        if not self.info.state.terminal:
            for _ in self.watch(timeout=timeout):
                pass
        if not self.info.state.terminal or (self.info.result is None and self.info.end_time is not None):
            self.refresh()
        return _final_result(self.info)


def _final_result(info: JobInfo) -> Result:
    if info.result is not None:
        return info.result
    code = grpc.StatusCode.CANCELLED if info.state == JobState.CANCELLED else grpc.StatusCode.INTERNAL
    raise AllocationError(code, f"job {info.job_id} ended {info.state} without a result: {info.error}".strip())


# ----------------------------------------------------------------------------- asyncio façade


class AsyncAllocationClient(_Api):
    """The asyncio façade (grpc.aio): the same methods and connection arguments (token, TLS) as
    :class:`AllocationClient`, awaitable."""

    def __init__(self, address: str, *, timeout: float = 60.0, metadata: list[tuple[str, str]] | None = None,
                 token: str | None = None, tls_ca: str | None = None, tls_cert: str | None = None,
                 tls_key: str | None = None, tls_server_name: str | None = None):
        self.timeout = timeout
        conn = _connection(token, tls_ca, tls_cert, tls_key, tls_server_name, metadata)
        self.metadata = conn.metadata
        self._channel = (grpc.aio.insecure_channel(address, options=conn.options) if conn.credentials is None
                         else grpc.aio.secure_channel(address, conn.credentials, options=conn.options))
        self._stub = svc_grpc.AllocationServiceStub(self._channel)

    async def __aenter__(self) -> AsyncAllocationClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _run(self, call: _Call[T]) -> T:  # type: ignore[override]
        fn = getattr(self._stub, call.method)
        attempts = len(RETRY_DELAYS) + 1 if call.idempotent else 1
        for attempt in range(attempts):
            try:
                response = await fn(call.request, timeout=call.timeout or self.timeout,
                                    metadata=self.metadata + call.metadata)
            except grpc.aio.AioRpcError as err:
                if call.idempotent and err.code() == grpc.StatusCode.UNAVAILABLE and attempt < attempts - 1:
                    await asyncio.sleep(RETRY_DELAYS[attempt])
                    continue
                raise AllocationError.from_rpc_error(err) from None
            return call.parse(response)
        raise AssertionError("unreachable")

    def _job_handle(self, info: JobInfo) -> AsyncJobHandle:
        return AsyncJobHandle(self, info)

    async def _stream(self, method: str, request: Any, parse: Callable[[Any], T],
                      timeout: float | None) -> AsyncIterator[T]:
        """A server stream, each message parsed; a failure as :class:`AllocationError`."""
        try:
            async for resp in getattr(self._stub, method)(request, timeout=timeout, metadata=self.metadata):
                yield parse(resp)
        except grpc.aio.AioRpcError as err:
            raise AllocationError.from_rpc_error(err) from None

    async def watch(self, job_id: str, *, timeout: float | None = None) -> AsyncIterator[WatchEvent]:
        """Live events: the current state, progress, then ``done`` with the final job."""
        async for event in self._stream("WatchJob", svc.WatchJobRequest(job_id=job_id), event_from_proto, timeout):
            yield event

    async def sweep(self, sweep: SweepSpec | dict[str, Any] | str, scenario: Scenario | dict[str, Any] | None = None,
                    *, document: str | None = None, scenario_name: str | None = None, revision: int | None = None,
                    request_id: str = "", timeout: float | None = None) -> AsyncIterator[SweepEvent]:
        """As :meth:`AllocationClient.sweep`: queue a sweep and stream its events to ``done``."""
        req = _sweep_source(_source(svc.SweepRequest(request_id=request_id), scenario, document, scenario_name,
                                    revision), sweep)
        async for event in self._stream("Sweep", req, sweep_event_from_proto, timeout):
            yield event

    async def watch_sweep(self, job_id: str, *, timeout: float | None = None) -> AsyncIterator[SweepEvent]:
        """A sweep's answers so far, then live ones, the summary and ``done``."""
        async for event in self._stream("WatchSweep", svc.WatchSweepRequest(job_id=job_id), sweep_event_from_proto,
                                        timeout):
            yield event

    async def get_sweep(self, job_id: str, *, timeout: float | None = None) -> SweepInfo:
        """A sweep job with every variant's answer (all pages), the robust checks and the summary."""
        info, token = await self.get_sweep_page(job_id, timeout=timeout)  # type: ignore[misc]
        while token:
            more, token = await self.get_sweep_page(job_id, page_token=token, timeout=timeout)  # type: ignore[misc]
            info.variants += more.variants
        return info

    async def job(self, job_id: str) -> AsyncJobHandle:
        return AsyncJobHandle(self, await self.get_job(job_id))  # type: ignore[misc]


class AsyncJobHandle:
    """The asyncio twin of :class:`JobHandle`."""

    def __init__(self, client: AsyncAllocationClient, info: JobInfo):
        self._client = client
        self.info = info

    @property
    def job_id(self) -> str:
        return self.info.job_id

    @property
    def state(self) -> JobState:
        return self.info.state

    async def refresh(self) -> JobInfo:
        self.info = await self._client.get_job(self.job_id)  # type: ignore[misc]
        return self.info

    async def watch(self, *, timeout: float | None = None) -> AsyncIterator[WatchEvent]:
        async for event in self._client.watch(self.job_id, timeout=timeout):
            if event.job is not None:
                self.info = event.job
            yield event

    async def cancel(self) -> JobInfo:
        self.info = await self._client.cancel(self.job_id)  # type: ignore[misc]
        return self.info

    async def result(self, *, timeout: float | None = None) -> Result:
        if not self.info.state.terminal:
            async for _ in self.watch(timeout=timeout):
                pass
        if not self.info.state.terminal or (self.info.result is None and self.info.end_time is not None):
            await self.refresh()
        return _final_result(self.info)


__all__ = ["AllocationClient", "AllocationError", "AsyncAllocationClient", "AsyncJobHandle", "EventKind", "JobHandle",
           "JobInfo", "StoredScenarioInfo", "Validation", "WatchEvent"]
