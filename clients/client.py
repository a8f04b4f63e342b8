"""Python client library for ``lepton.allocation.v1.AllocationService`` (sync and asyncio).

The stubs stay hidden: calls take domain objects (``Scenario``) and return typed values
(``Result``, :class:`JobInfo`, :class:`StoredScenarioInfo`, :class:`WatchEvent`). Every call has
an explicit timeout; ``UNAVAILABLE`` is retried (with backoff) only for idempotent calls
(reads, cancel, and ``submit`` with a ``request_id``). Every failure is one exception type,
:class:`AllocationError`, carrying the status code and the parsed field violations.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar
from collections.abc import AsyncIterator, Callable, Iterator

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from lepton_alloc.models.result import Result, result_from_dict
from lepton_alloc.models.scenario import FieldViolation, Scenario
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2 as svc
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2_grpc as svc_grpc
from lepton_alloc.proto.lepton.allocation.v1 import job_pb2
from lepton_alloc.server import convert

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
JOB_STATES = {v.number: v.name.removeprefix("JOB_STATE_") for v in job_pb2.JobState.DESCRIPTOR.values}


class AllocationError(Exception):
    """A failed call: ``code`` (grpc.StatusCode), ``message``, and ``violations`` for
    INVALID_ARGUMENT (field path + description, as in the scenario file)."""

    def __init__(self, code: grpc.StatusCode, message: str, violations: list[FieldViolation] | None = None):
        self.code = code
        self.message = message
        self.violations = violations or []
        detail = "".join(f"\n  {v.field}: {v.description}" for v in self.violations)
        super().__init__(f"{code.name}: {message}{detail}")

    @property
    def code_name(self) -> str:
        return self.code.name

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> AllocationError:
        code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
        message = err.details() if callable(getattr(err, "details", None)) else str(err)
        violations: list[FieldViolation] = []
        try:
            status = rpc_status.from_call(err)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - a malformed status still becomes our error
            status = None
        if status is not None:
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    br = error_details_pb2.BadRequest()
                    detail.Unpack(br)
                    violations.extend(FieldViolation(v.field, v.description) for v in br.field_violations)
        return cls(code, message or "", violations)


@dataclass
class Progress:
    kind: str  # "heartbeat" | "incumbent"
    objective: float | None
    best_bound: float | None
    gap: float | None
    elapsed_seconds: float
    nodes: int


@dataclass
class JobInfo:
    job_id: str
    state: str  # QUEUED RUNNING SUCCEEDED FAILED CANCELLED
    request_id: str
    scenario_name: str
    scenario_revision: int | None
    scenario_sha256: str
    create_time: float | None
    start_time: float | None
    end_time: float | None
    result: Result | None
    error: str
    last_progress: Progress | None
    history: list[tuple[str, float, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return d


@dataclass
class StoredScenarioInfo:
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


@dataclass
class WatchEvent:
    kind: str  # "state" | "progress" | "done"
    state: str | None = None
    progress: Progress | None = None
    job: JobInfo | None = None
    event_time: float | None = None  # when it happened (epoch seconds; progress: the HiGHS callback)


# ----------------------------------------------------------------------------- proto -> typed


def _ts(ts: Any, present: bool = True) -> float | None:
    if not present:
        return None
    return ts.seconds + ts.nanos / 1e9


def _progress(p: Any) -> Progress:
    return Progress(
        kind=job_pb2.ProgressKind.Name(p.kind).removeprefix("PROGRESS_KIND_").lower(),
        objective=p.objective if p.HasField("objective") else None,
        best_bound=p.best_bound if p.HasField("best_bound") else None,
        gap=p.gap if p.HasField("gap") else None,
        elapsed_seconds=p.elapsed_seconds, nodes=p.nodes,
    )


def job_from_proto(j: Any) -> JobInfo:
    return JobInfo(
        job_id=j.job_id, state=JOB_STATES.get(j.state, "UNSPECIFIED"), request_id=j.request_id,
        scenario_name=j.scenario_name,
        scenario_revision=j.scenario_revision if j.HasField("scenario_revision") else None,
        scenario_sha256=j.scenario_sha256,
        create_time=_ts(j.create_time, j.HasField("create_time")),
        start_time=_ts(j.start_time, j.HasField("start_time")),
        end_time=_ts(j.end_time, j.HasField("end_time")),
        result=result_from_dict(convert.result_from_proto(j.result)) if j.HasField("result") else None,
        error=j.error_message,
        last_progress=_progress(j.last_progress) if j.HasField("last_progress") else None,
        history=[(JOB_STATES.get(h.state, "?"), _ts(h.change_time) or 0.0, h.message) for h in j.history],
    )


def stored_from_proto(s: Any) -> StoredScenarioInfo:
    return StoredScenarioInfo(s.name, s.revision, convert.scenario_from_proto(s.scenario), s.sha256,
                              s.description, _ts(s.create_time, s.HasField("create_time")))


def event_from_proto(resp: Any) -> WatchEvent:
    ev = resp.event
    which = ev.WhichOneof("event")
    at = _ts(ev.event_time, ev.HasField("event_time"))
    if which == "state_change":
        return WatchEvent("state", state=JOB_STATES.get(ev.state_change.state, "?"), event_time=at)
    if which == "progress":
        return WatchEvent("progress", progress=_progress(ev.progress), event_time=at)
    job = job_from_proto(ev.job)
    return WatchEvent("done", state=job.state, job=job, event_time=at)


# ----------------------------------------------------------------------------- requests


def _options(time_limit_seconds: float | None, mip_rel_gap: float | None) -> Any:
    o = svc.SolveOptions()
    if time_limit_seconds is not None:
        o.time_limit_seconds = time_limit_seconds
    if mip_rel_gap is not None:
        o.mip_rel_gap = mip_rel_gap
    return o


def _source(req: Any, scenario: Scenario | None, scenario_name: str | None, revision: int | None) -> Any:
    if scenario is not None:
        req.scenario.CopyFrom(convert.scenario_to_proto(scenario))
    elif scenario_name:
        req.scenario_ref.name = scenario_name
        if revision is not None:
            req.scenario_ref.revision = revision
    else:
        raise ValueError("give a scenario or a scenario_name")
    return req


_STATE_FILTER = {name.lower(): num for num, name in JOB_STATES.items()}


# ----------------------------------------------------------------------------- sync client


class AllocationClient:
    """Synchronous client. Use as a context manager, or call :meth:`close`."""

    def __init__(self, address: str, *, timeout: float = 60.0, metadata: list[tuple[str, str]] | None = None,
                 channel: grpc.Channel | None = None):
        self.address = address
        self.timeout = timeout
        self.metadata = list(metadata or [])
        self._channel = channel or grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = svc_grpc.AllocationServiceStub(self._channel)

    def __enter__(self) -> AllocationClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, fn: Callable[..., T], request: Any, *, timeout: float | None, idempotent: bool,
              metadata: list[tuple[str, str]] | None = None) -> T:
        attempts = len(RETRY_DELAYS) + 1 if idempotent else 1
        for attempt in range(attempts):
            try:
                return fn(request, timeout=timeout or self.timeout, metadata=self.metadata + list(metadata or []))
            except grpc.RpcError as err:
                if idempotent and err.code() == grpc.StatusCode.UNAVAILABLE and attempt < attempts - 1:
                    time.sleep(RETRY_DELAYS[attempt])
                    continue
                raise AllocationError.from_rpc_error(err) from None
        raise AssertionError("unreachable")

    # solves
    def solve(self, scenario: Scenario | None = None, *, scenario_name: str | None = None,
              revision: int | None = None, time_limit_seconds: float | None = None,
              mip_rel_gap: float | None = None, timeout: float | None = None) -> Result:
        """Solve and wait (unary ``Solve``); the call's deadline is ``timeout``."""
        req = _source(svc.SolveRequest(options=_options(time_limit_seconds, mip_rel_gap)), scenario, scenario_name, revision)
        resp = self._call(self._stub.Solve, req, timeout=timeout, idempotent=False)
        return result_from_dict(convert.result_from_proto(resp.result))

    def submit(self, scenario: Scenario | None = None, *, scenario_name: str | None = None,
               revision: int | None = None, request_id: str = "", time_limit_seconds: float | None = None,
               mip_rel_gap: float | None = None, timeout: float | None = None,
               metadata: list[tuple[str, str]] | None = None) -> JobInfo:
        req = _source(svc.SubmitSolveRequest(options=_options(time_limit_seconds, mip_rel_gap), request_id=request_id),
                      scenario, scenario_name, revision)
        resp = self._call(self._stub.SubmitSolve, req, timeout=timeout, idempotent=bool(request_id), metadata=metadata)
        return job_from_proto(resp.job)

    def get_job(self, job_id: str, *, timeout: float | None = None) -> JobInfo:
        resp = self._call(self._stub.GetJob, svc.GetJobRequest(job_id=job_id), timeout=timeout, idempotent=True)
        return job_from_proto(resp.job)

    def list_jobs(self, *, state: str | None = None, page_size: int = 50, page_token: str = "",
                  timeout: float | None = None) -> tuple[list[JobInfo], str]:
        req = svc.ListJobsRequest(page_size=page_size, page_token=page_token, state=_STATE_FILTER.get((state or "").lower(), 0))
        resp = self._call(self._stub.ListJobs, req, timeout=timeout, idempotent=True)
        return [job_from_proto(j) for j in resp.jobs], resp.next_page_token

    def cancel(self, job_id: str, *, timeout: float | None = None) -> JobInfo:
        resp = self._call(self._stub.CancelJob, svc.CancelJobRequest(job_id=job_id), timeout=timeout, idempotent=True)
        return job_from_proto(resp.job)

    def watch(self, job_id: str, *, timeout: float | None = None) -> Iterator[WatchEvent]:
        """Live events: the current state, progress, then ``done`` with the final job."""
        try:
            for resp in self._stub.WatchJob(svc.WatchJobRequest(job_id=job_id), timeout=timeout,
                                            metadata=self.metadata):
                yield event_from_proto(resp)
        except grpc.RpcError as err:
            raise AllocationError.from_rpc_error(err) from None

    # stored scenarios
    def create_scenario(self, name: str, scenario: Scenario, *, description: str = "",
                        timeout: float | None = None) -> StoredScenarioInfo:
        req = svc.CreateScenarioRequest(name=name, scenario=convert.scenario_to_proto(scenario), description=description)
        return stored_from_proto(self._call(self._stub.CreateScenario, req, timeout=timeout, idempotent=False).stored_scenario)

    def update_scenario(self, name: str, scenario: Scenario, *, description: str = "",
                        timeout: float | None = None) -> StoredScenarioInfo:
        req = svc.UpdateScenarioRequest(name=name, scenario=convert.scenario_to_proto(scenario), description=description)
        return stored_from_proto(self._call(self._stub.UpdateScenario, req, timeout=timeout, idempotent=False).stored_scenario)

    def get_scenario(self, name: str, *, revision: int | None = None, timeout: float | None = None) -> StoredScenarioInfo:
        req = svc.GetScenarioRequest(name=name)
        if revision is not None:
            req.revision = revision
        return stored_from_proto(self._call(self._stub.GetScenario, req, timeout=timeout, idempotent=True).stored_scenario)

    def list_scenarios(self, *, page_size: int = 50, page_token: str = "",
                       timeout: float | None = None) -> tuple[list[StoredScenarioInfo], str]:
        resp = self._call(self._stub.ListScenarios, svc.ListScenariosRequest(page_size=page_size, page_token=page_token),
                          timeout=timeout, idempotent=True)
        return [stored_from_proto(s) for s in resp.stored_scenarios], resp.next_page_token

    def delete_scenario(self, name: str, *, timeout: float | None = None) -> None:
        self._call(self._stub.DeleteScenario, svc.DeleteScenarioRequest(name=name), timeout=timeout, idempotent=False)


# ----------------------------------------------------------------------------- asyncio client


class AsyncAllocationClient:
    """The asyncio twin of :class:`AllocationClient` (grpc.aio), same methods, awaitable."""

    def __init__(self, address: str, *, timeout: float = 60.0, metadata: list[tuple[str, str]] | None = None):
        self.timeout = timeout
        self.metadata = list(metadata or [])
        self._channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = svc_grpc.AllocationServiceStub(self._channel)

    async def __aenter__(self) -> AsyncAllocationClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, fn: Any, request: Any, *, timeout: float | None, idempotent: bool) -> Any:
        attempts = len(RETRY_DELAYS) + 1 if idempotent else 1
        for attempt in range(attempts):
            try:
                return await fn(request, timeout=timeout or self.timeout, metadata=self.metadata)
            except grpc.aio.AioRpcError as err:
                if idempotent and err.code() == grpc.StatusCode.UNAVAILABLE and attempt < attempts - 1:
                    await asyncio.sleep(RETRY_DELAYS[attempt])
                    continue
                raise AllocationError.from_rpc_error(err) from None
        raise AssertionError("unreachable")

    async def solve(self, scenario: Scenario | None = None, *, scenario_name: str | None = None,
                    revision: int | None = None, time_limit_seconds: float | None = None,
                    mip_rel_gap: float | None = None, timeout: float | None = None) -> Result:
        req = _source(svc.SolveRequest(options=_options(time_limit_seconds, mip_rel_gap)), scenario, scenario_name, revision)
        resp = await self._call(self._stub.Solve, req, timeout=timeout, idempotent=False)
        return result_from_dict(convert.result_from_proto(resp.result))

    async def submit(self, scenario: Scenario | None = None, *, scenario_name: str | None = None,
                     revision: int | None = None, request_id: str = "", time_limit_seconds: float | None = None,
                     mip_rel_gap: float | None = None, timeout: float | None = None) -> JobInfo:
        req = _source(svc.SubmitSolveRequest(options=_options(time_limit_seconds, mip_rel_gap), request_id=request_id),
                      scenario, scenario_name, revision)
        return job_from_proto((await self._call(self._stub.SubmitSolve, req, timeout=timeout, idempotent=bool(request_id))).job)

    async def get_job(self, job_id: str, *, timeout: float | None = None) -> JobInfo:
        return job_from_proto((await self._call(self._stub.GetJob, svc.GetJobRequest(job_id=job_id), timeout=timeout, idempotent=True)).job)

    async def list_jobs(self, *, state: str | None = None, page_size: int = 50, page_token: str = "",
                        timeout: float | None = None) -> tuple[list[JobInfo], str]:
        req = svc.ListJobsRequest(page_size=page_size, page_token=page_token, state=_STATE_FILTER.get((state or "").lower(), 0))
        resp = await self._call(self._stub.ListJobs, req, timeout=timeout, idempotent=True)
        return [job_from_proto(j) for j in resp.jobs], resp.next_page_token

    async def cancel(self, job_id: str, *, timeout: float | None = None) -> JobInfo:
        return job_from_proto((await self._call(self._stub.CancelJob, svc.CancelJobRequest(job_id=job_id), timeout=timeout, idempotent=True)).job)

    async def watch(self, job_id: str, *, timeout: float | None = None) -> AsyncIterator[WatchEvent]:
        try:
            async for resp in self._stub.WatchJob(svc.WatchJobRequest(job_id=job_id), timeout=timeout, metadata=self.metadata):
                yield event_from_proto(resp)
        except grpc.aio.AioRpcError as err:
            raise AllocationError.from_rpc_error(err) from None

    async def create_scenario(self, name: str, scenario: Scenario, *, description: str = "") -> StoredScenarioInfo:
        req = svc.CreateScenarioRequest(name=name, scenario=convert.scenario_to_proto(scenario), description=description)
        return stored_from_proto((await self._call(self._stub.CreateScenario, req, timeout=None, idempotent=False)).stored_scenario)

    async def update_scenario(self, name: str, scenario: Scenario, *, description: str = "") -> StoredScenarioInfo:
        req = svc.UpdateScenarioRequest(name=name, scenario=convert.scenario_to_proto(scenario), description=description)
        return stored_from_proto((await self._call(self._stub.UpdateScenario, req, timeout=None, idempotent=False)).stored_scenario)

    async def get_scenario(self, name: str, *, revision: int | None = None) -> StoredScenarioInfo:
        req = svc.GetScenarioRequest(name=name)
        if revision is not None:
            req.revision = revision
        return stored_from_proto((await self._call(self._stub.GetScenario, req, timeout=None, idempotent=True)).stored_scenario)

    async def list_scenarios(self, *, page_size: int = 50, page_token: str = "") -> tuple[list[StoredScenarioInfo], str]:
        resp = await self._call(self._stub.ListScenarios, svc.ListScenariosRequest(page_size=page_size, page_token=page_token),
                                timeout=None, idempotent=True)
        return [stored_from_proto(s) for s in resp.stored_scenarios], resp.next_page_token

    async def delete_scenario(self, name: str) -> None:
        await self._call(self._stub.DeleteScenario, svc.DeleteScenarioRequest(name=name), timeout=None, idempotent=False)


__all__ = ["AllocationClient", "AllocationError", "AsyncAllocationClient", "JobInfo", "Progress",
           "StoredScenarioInfo", "WatchEvent"]
