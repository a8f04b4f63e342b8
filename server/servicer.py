"""gRPC servicer of ``lepton.allocation.v1.AllocationService``.

Transport only: requests are converted with :mod:`.convert`, work is delegated to the
:class:`~.jobs.JobManager` and the store, and every failure becomes a canonical status code
(``INVALID_ARGUMENT`` with one ``google.rpc.BadRequest`` listing every field violation,
``NOT_FOUND``, ``ALREADY_EXISTS``, ``RESOURCE_EXHAUSTED``, ``UNAVAILABLE``, ``CANCELLED``).
Infeasible or time-limited solves are successful calls whose result says so.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from collections.abc import Iterator

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from lepton_alloc.models.result import result_from_dict
from lepton_alloc.models.scenario import ID_PATTERN, FieldViolation, Scenario, ScenarioError, parse_scenario
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2 as svc
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2_grpc as svc_grpc

from . import convert
from .jobs import Draining, JobManager, QueueFull, SolveOptions
from .store import AlreadyExists, IdempotencyConflict, NotFound, Store

log = logging.getLogger("lepton_alloc.rpc")


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, violations: list[FieldViolation] | None = None):
        super().__init__(message)
        self.code, self.message, self.violations = code, message, violations or []


def _abort(context: grpc.ServicerContext, err: _Abort) -> None:
    if err.violations:
        detail = any_pb2.Any()
        detail.Pack(convert.violations_to_bad_request(err.violations))
        status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=err.message, details=[detail])
        context.abort_with_status(rpc_status.to_status(status))
    context.abort(err.code, err.message)


def _invalid(violations: list[FieldViolation], what: str = "invalid scenario") -> _Abort:
    msg = f"{what}: " + "; ".join(str(v) for v in violations[:5]) + (" …" if len(violations) > 5 else "")
    return _Abort(grpc.StatusCode.INVALID_ARGUMENT, msg, violations)


def _rpc(method: Any) -> Any:
    """Map domain exceptions to status codes; never leak a traceback to the client."""
    name = method.__name__

    def wrapper(self: AllocationServicer, request: Any, context: grpc.ServicerContext) -> Any:
        code = "OK"
        try:
            return method(self, request, context)
        except _Abort as err:
            code = err.code.name
            _abort(context, err)
        except ScenarioError as err:
            code = "INVALID_ARGUMENT"
            _abort(context, _invalid(err.violations))
        except NotFound as err:
            code = "NOT_FOUND"
            _abort(context, _Abort(grpc.StatusCode.NOT_FOUND, str(err.args[0] if err.args else err)))
        except (AlreadyExists, IdempotencyConflict) as err:
            code = "ALREADY_EXISTS"
            _abort(context, _Abort(grpc.StatusCode.ALREADY_EXISTS, str(err)))
        except QueueFull as err:
            code = "RESOURCE_EXHAUSTED"
            _abort(context, _Abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err)))
        except Draining as err:
            code = "UNAVAILABLE"
            _abort(context, _Abort(grpc.StatusCode.UNAVAILABLE, str(err)))
        except Exception:  # noqa: BLE001
            if context.code() is not None:  # abort() already set a status
                raise
            code = "INTERNAL"
            log.exception("internal error in %s", name)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {name}; see the server log")
        finally:
            if self.metrics is not None:
                self.metrics.rpcs.labels(method=name, code=code).inc()

    wrapper.__name__ = name
    return wrapper


class AllocationServicer(svc_grpc.AllocationServiceServicer):
    def __init__(self, manager: JobManager, store: Store, metrics: Any = None, test_hooks: bool = False):
        self.manager = manager
        self.store = store
        self.metrics = metrics
        self.test_hooks = test_hooks

    # ------------------------------------------------------------------ helpers
    def _resolve(self, request: Any) -> tuple[Scenario, str, int]:
        which = request.WhichOneof("source")
        if which == "scenario":
            return convert.scenario_from_proto(request.scenario), "", 0
        if which == "scenario_ref":
            ref = request.scenario_ref
            if not ref.name:
                raise _invalid([FieldViolation("scenario_ref.name", "is required")], "invalid request")
            stored = self.store.get_scenario(ref.name, ref.revision if ref.HasField("revision") else None)
            return parse_scenario(json.loads(stored.scenario_json)), stored.name, stored.revision
        raise _invalid([FieldViolation("source", "set either scenario or scenario_ref")], "invalid request")

    def _options(self, request: Any) -> SolveOptions:
        o = request.options
        violations = []
        tl = o.time_limit_seconds if o.HasField("time_limit_seconds") else None
        gap = o.mip_rel_gap if o.HasField("mip_rel_gap") else None
        if tl is not None and not (tl > 0 and tl < 1e9):
            violations.append(FieldViolation("options.time_limit_seconds", "must be > 0"))
        if gap is not None and not (0 <= gap <= 1):
            violations.append(FieldViolation("options.mip_rel_gap", "must be between 0 and 1"))
        if violations:
            raise _invalid(violations, "invalid options")
        return SolveOptions(tl, gap)

    @staticmethod
    def _who(context: grpc.ServicerContext) -> str:
        md = dict(context.invocation_metadata() or ())
        return str(md.get("x-lepton-user") or context.peer() or "")

    def _debug_options(self, context: grpc.ServicerContext, options: SolveOptions) -> SolveOptions:
        if self.test_hooks:
            md = dict(context.invocation_metadata() or ())
            if "x-lepton-debug-ignore-cancel" in md:
                options.debug_ignore_cancel_seconds = float(md["x-lepton-debug-ignore-cancel"])
        return options

    def _job_proto(self, job_id: str) -> Any:
        job = self.store.get_job(job_id)
        return convert.job_to_proto(job, self.store.job_history(job_id))

    # ------------------------------------------------------------------ solves
    @_rpc
    def Solve(self, request: Any, context: grpc.ServicerContext) -> Any:
        sc, name, rev = self._resolve(request)
        options = self._debug_options(context, self._options(request))
        job, _ = self.manager.submit(sc, options=options, scenario_name=name, scenario_revision=rev,
                                     who=self._who(context))
        job_id = job.job_id
        # a client cancel or an expired deadline ends the RPC: stop its solve too
        context.add_callback(lambda: self.manager.cancel(job_id))
        while not self.manager.wait(job_id, 0.1):
            if not context.is_active():
                self.manager.cancel(job_id)
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:
                    raise _Abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline expired before the solve finished")
                raise _Abort(grpc.StatusCode.CANCELLED, "the call was cancelled")
        job = self.store.get_job(job_id)
        if job.state == "FAILED":
            raise _Abort(grpc.StatusCode.INTERNAL, f"the solve failed: {job.error}")
        if job.state == "CANCELLED" and not context.is_active():
            raise _Abort(grpc.StatusCode.CANCELLED, "the solve was cancelled")
        if job.result_json is None:
            raise _Abort(grpc.StatusCode.CANCELLED, f"the solve was cancelled: {job.error or ''}".strip())
        result = result_from_dict(json.loads(job.result_json))
        return svc.SolveResponse(result=convert.result_to_proto(result), job_id=job_id)

    @_rpc
    def SubmitSolve(self, request: Any, context: grpc.ServicerContext) -> Any:
        if len(request.request_id) > 128:
            raise _invalid([FieldViolation("request_id", "must be at most 128 characters")], "invalid request")
        sc, name, rev = self._resolve(request)
        options = self._debug_options(context, self._options(request))
        job, _ = self.manager.submit(sc, options=options, request_id=request.request_id, scenario_name=name,
                                     scenario_revision=rev, who=self._who(context))
        return svc.SubmitSolveResponse(job=self._job_proto(job.job_id))

    @_rpc
    def GetJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        return svc.GetJobResponse(job=self._job_proto(self._job_id(request)))

    @staticmethod
    def _job_id(request: Any) -> str:
        if not request.job_id:
            raise _invalid([FieldViolation("job_id", "is required")], "invalid request")
        return str(request.job_id)

    @_rpc
    def ListJobs(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            state = convert.job_state_from_proto(request.state)
        except ValueError:
            raise _invalid([FieldViolation("state", f"unknown job state {request.state}")], "invalid request") from None
        page_size = request.page_size or 50
        if page_size < 0 or page_size > 1000:
            raise _invalid([FieldViolation("page_size", "must be between 0 and 1000")], "invalid request")
        try:
            jobs, token = self.store.list_jobs(state=state, page_size=page_size, page_token=request.page_token)
        except ValueError:
            raise _invalid([FieldViolation("page_token", "is not a token this server issued")], "invalid request") from None
        return svc.ListJobsResponse(jobs=[convert.job_to_proto(j, []) for j in jobs], next_page_token=token)

    @_rpc
    def CancelJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        job_id = self._job_id(request)
        self.manager.cancel(job_id)
        return svc.CancelJobResponse(job=self._job_proto(job_id))

    def WatchJob(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        if not request.job_id:
            _abort(context, _invalid([FieldViolation("job_id", "is required")], "invalid request"))
        try:
            self.store.get_job(request.job_id)
        except NotFound as err:
            _abort(context, _Abort(grpc.StatusCode.NOT_FOUND, str(err.args[0] if err.args else err)))
        stop = threading.Event()
        context.add_callback(stop.set)
        for msg in self.manager.watch(request.job_id, stop):
            if msg.kind == "state":
                assert msg.job is not None
                yield svc.WatchJobResponse(event=convert.state_event_to_proto(msg.job))
            elif msg.kind == "progress":
                yield svc.WatchJobResponse(event=convert.progress_event_to_proto(msg.progress or {}))
            else:
                assert msg.job is not None
                yield svc.WatchJobResponse(event=convert.final_event_to_proto(
                    msg.job, self.store.job_history(msg.job.job_id)))

    # ------------------------------------------------------------------ stored scenarios
    @staticmethod
    def _check_name(name: str) -> None:
        if not ID_PATTERN.fullmatch(name or ""):
            raise _invalid([FieldViolation("name", "must be 1..64 characters of [A-Za-z0-9_.-]")], "invalid request")

    @_rpc
    def CreateScenario(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._check_name(request.name)
        sc = convert.scenario_from_proto(request.scenario)
        stored = self.store.create_scenario(request.name, convert.scenario_json(sc), sc.sha256(), request.description)
        return svc.CreateScenarioResponse(stored_scenario=convert.stored_to_proto(stored))

    @_rpc
    def GetScenario(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._check_name(request.name)
        stored = self.store.get_scenario(request.name, request.revision if request.HasField("revision") else None)
        return svc.GetScenarioResponse(stored_scenario=convert.stored_to_proto(stored))

    @_rpc
    def ListScenarios(self, request: Any, context: grpc.ServicerContext) -> Any:
        page_size = request.page_size or 50
        if page_size < 0 or page_size > 1000:
            raise _invalid([FieldViolation("page_size", "must be between 0 and 1000")], "invalid request")
        try:
            items, token = self.store.list_scenarios(page_size=page_size, page_token=request.page_token)
        except ValueError:
            raise _invalid([FieldViolation("page_token", "is not a token this server issued")], "invalid request") from None
        return svc.ListScenariosResponse(stored_scenarios=[convert.stored_to_proto(s) for s in items],
                                         next_page_token=token)

    @_rpc
    def UpdateScenario(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._check_name(request.name)
        sc = convert.scenario_from_proto(request.scenario)
        stored = self.store.update_scenario(request.name, convert.scenario_json(sc), sc.sha256(), request.description)
        return svc.UpdateScenarioResponse(stored_scenario=convert.stored_to_proto(stored))

    @_rpc
    def DeleteScenario(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._check_name(request.name)
        self.store.delete_scenario(request.name)
        return svc.DeleteScenarioResponse()

