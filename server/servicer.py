"""gRPC servicer of ``lepton.allocation.v1.AllocationService``.

Transport only: requests are converted with the contract's adapter
(:mod:`lepton_alloc.proto.adapter`), work is delegated to the
:class:`~.jobs.JobManager` and the store, and every failure becomes a canonical status code
(``INVALID_ARGUMENT`` with one ``google.rpc.BadRequest`` listing every field violation,
``NOT_FOUND``, ``ALREADY_EXISTS``, ``RESOURCE_EXHAUSTED``, ``UNAVAILABLE``, ``CANCELLED``).
Infeasible or time-limited solves are successful calls whose result says so.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import grpc

from lepton_alloc.models.compare import compare
from lepton_alloc.models.loader import parse_text
from lepton_alloc.models.result import result_from_json
from lepton_alloc.models.scenario import (
    ID_PATTERN,
    FieldViolation,
    Scenario,
    ScenarioError,
    entry_columns,
    parse_scenario,
)
from lepton_alloc.models.status import JobState, Progress
from lepton_alloc.proto import adapter
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2 as svc
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2_grpc as svc_grpc
from lepton_alloc.proto.lepton.allocation.v1 import job_pb2, stored_scenario_pb2, sweep_pb2

from .jobs import Draining, EventKind, JobManager, QueueFull, SolveOptions
from .limits import (
    GateBusy,
    GateCancelled,
    Limits,
    ValidationGate,
    proto_scenario_violations,
    raw_scenario_violations,
    request_violations,
    scenario_violations,
)
from .limits import abort as abort_within_budget
from .sweeps import SweepEventKind, SweepEventMsg
from .auth import identity_of
from .store import AlreadyExists, AuditRecord, IdempotencyConflict, JobEvent, JobRecord, NotFound, Store, StoredScenario

log = logging.getLogger("lepton_alloc.rpc")


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, violations: list[FieldViolation] | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.code, self.message, self.violations, self.retry_after = code, message, violations or [], retry_after


def _abort(context: grpc.ServicerContext, err: _Abort, budget: int = Limits.max_error_bytes) -> None:
    # the message and the BadRequest fit the trailers (``budget`` bytes; gRPC's limit is 16 KiB,
    # beyond it the client would see RESOURCE_EXHAUSTED): violations beyond it are counted, not sent
    abort_within_budget(context, err.code, err.message, err.violations, budget, err.retry_after)


def _invalid(violations: list[FieldViolation], what: str = "invalid scenario") -> _Abort:
    msg = f"{what}: " + "; ".join(str(v) for v in violations[:5]) + (" …" if len(violations) > 5 else "")
    return _Abort(grpc.StatusCode.INVALID_ARGUMENT, msg, violations)


@contextmanager
def _mapped() -> Iterator[None]:
    """Domain exceptions as the status codes of the contract (an :class:`_Abort`)."""
    try:
        yield
    except ScenarioError as err:
        raise _invalid(err.violations) from None
    except NotFound as err:
        raise _Abort(grpc.StatusCode.NOT_FOUND, str(err.args[0] if err.args else err)) from None
    except (AlreadyExists, IdempotencyConflict) as err:
        raise _Abort(grpc.StatusCode.ALREADY_EXISTS, str(err)) from None
    except QueueFull as err:
        raise _Abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err), retry_after=err.retry_after) from None
    except Draining as err:
        raise _Abort(grpc.StatusCode.UNAVAILABLE, str(err)) from None
    except GateBusy as err:
        raise _Abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err), retry_after=err.retry_after) from None
    except GateCancelled as err:
        raise _Abort(grpc.StatusCode.CANCELLED, str(err)) from None


def _rpc(method: Any) -> Any:
    """Map domain exceptions to status codes; never leak a traceback to the client."""
    name = method.__name__

    def wrapper(self: AllocationServicer, request: Any, context: grpc.ServicerContext) -> Any:
        code = "OK"
        try:
            with _mapped():
                self._check_request(request)  # the limits of ids, names, tokens, description
                return self._fitting(method(self, request, context))
        except _Abort as err:
            code = err.code.name
            _abort(context, err, self.limits.max_error_bytes)
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
    def __init__(self, manager: JobManager, store: Store, metrics: Any = None, test_hooks: bool = False,
                 limits: Limits | None = None):
        self.manager = manager
        self.store = store
        self.metrics = metrics
        self.test_hooks = test_hooks
        self.limits = limits or Limits()
        self.gate = ValidationGate(self.limits.large_validations, self.limits.large_waiting,
                                   self.limits.large_request_bytes)

    # ------------------------------------------------------------------ fair use (server/limits.py)
    def _check_request(self, request: Any) -> None:
        """The one check of a request's ids, names, page token and description against the
        limits, applied to every request type (unary calls in ``_rpc``, streams first thing)."""
        violations = request_violations(request, self.limits)
        if violations:
            raise _invalid(violations, "invalid request")

    def _stream_checked(self, request: Any, context: grpc.ServicerContext) -> None:
        try:
            self._check_request(request)
        except _Abort as err:
            _abort(context, err, self.limits.max_error_bytes)

    def _fitting(self, reply: Any) -> Any:
        """A reply that fits the send limit; one that does not (an object stored before the limits
        existed) is FAILED_PRECONDITION instead of a transport error."""
        size = reply.ByteSize()
        if size > self.limits.max_message_bytes:
            raise _Abort(grpc.StatusCode.FAILED_PRECONDITION,
                         f"the reply would take {size} bytes, over this server's limit of "
                         f"{self.limits.max_message_bytes} bytes (max_message_bytes)")
        return reply

    def _inline_scenario(self, request: Any, field: str, context: grpc.ServicerContext) -> Scenario:
        """A request's scenario sent inline, validated once: the ``scenario`` message through the
        contract's adapter, or ``scenario_document`` (a scenario file's text) through the file
        loader; either way every violation names the file's field path. The size limits are
        checked first (cheaply, before validation) and the model size after; a large scenario
        waits for its turn at the validation gate."""
        if field == "scenario_document":
            text = request.scenario_document
            with self.gate.turn(len(text), context.is_active):
                raw = parse_text(text, "json" if text.lstrip()[:1] == "{" else "yaml")
                violations = raw_scenario_violations(raw, self.limits, text)
                if violations:
                    raise ScenarioError(violations)
                return self._sized(parse_scenario(raw))
        msg = request.scenario
        with self.gate.turn(msg.ByteSize(), context.is_active):
            violations = proto_scenario_violations(msg, self.limits)
            if violations:
                raise ScenarioError(violations)
            return self._sized(adapter.scenario_from_proto(msg))

    def _sized(self, sc: Scenario) -> Scenario:
        violations = scenario_violations(entry_columns(sc), self.limits)
        if violations:
            raise ScenarioError(violations)
        sc.sha256()  # the canonical form, computed here (within a large scenario's turn) and kept
        return sc

    def _stored_scenario(self, scenario_json: str, context: grpc.ServicerContext) -> Scenario:
        """A stored (already admitted) scenario, read back; a large one at the validation gate."""
        with self.gate.turn(len(scenario_json) // 2, context.is_active):
            return parse_scenario(json.loads(scenario_json))

    def _check_fits(self, sc: Scenario, description: str) -> None:
        """A scenario is stored only if the reply carrying it (GetScenario's) fits the send limit."""
        limit = self.limits.max_message_bytes
        approx = len(sc.canonical_json()) + len(description.encode()) + 1024
        if 5 * approx <= limit:  # the message form takes at most ~3x the canonical JSON's length
            return
        size = adapter.scenario_to_proto(sc).ByteSize() + len(description.encode()) + 1024
        if size > limit:
            raise _invalid([FieldViolation("scenario", f"its stored form would take {size} bytes; a reply holds at "
                                                       f"most {limit} bytes on this server (max_message_bytes)")])

    # ------------------------------------------------------------------ helpers
    def _resolve(self, request: Any, context: grpc.ServicerContext) -> tuple[Scenario, str, int]:
        """The request's scenario, validated once (inline, document) or read from the store."""
        which = request.WhichOneof("source")
        if which in ("scenario", "scenario_document"):
            return self._inline_scenario(request, which, context), "", 0
        if which == "scenario_ref":
            ref = request.scenario_ref
            if not ref.name:
                raise _invalid([FieldViolation("scenario_ref.name", "is required")], "invalid request")
            stored = self.store.get_scenario(ref.name, ref.revision if ref.HasField("revision") else None,
                                             tenant=self._tenant(context))
            return self._stored_scenario(stored.scenario_json, context), stored.name, stored.revision
        raise _invalid([FieldViolation("source", "set one of scenario, scenario_document or scenario_ref")],
                       "invalid request")

    def _scenario_of(self, request: Any, context: grpc.ServicerContext) -> Scenario:
        """Create/UpdateScenario: exactly one of ``scenario`` and ``scenario_document``; stored
        only if its reply will fit."""
        if request.scenario_document and request.HasField("scenario"):
            raise _invalid([FieldViolation("scenario_document", "set either scenario or scenario_document, not both")],
                           "invalid request")
        field = "scenario_document" if request.scenario_document else "scenario"
        size = len(request.scenario_document) if request.scenario_document else request.scenario.ByteSize()
        with self.gate.turn(size, context.is_active):
            sc = self._inline_scenario(request, field, context)
            self._check_fits(sc, request.description)
        return sc

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
        """The audit user: the authenticated identity ("tenant/user"), never a header the caller writes."""
        who = identity_of(context)
        return f"{who.tenant}/{who.user}"

    def _debug_options(self, context: grpc.ServicerContext, options: SolveOptions) -> SolveOptions:
        if self.test_hooks:
            md = dict(context.invocation_metadata() or ())
            if "x-lepton-debug-ignore-cancel" in md:
                options.debug_ignore_cancel_seconds = float(md["x-lepton-debug-ignore-cancel"])
        return options

    @staticmethod
    def _tenant(context: grpc.ServicerContext) -> str:
        """The caller's tenant (the authenticated identity's): every record it reads or writes is
        scoped to it; another tenant's ids answer NOT_FOUND."""
        return identity_of(context).tenant

    def _audit_record(self, context: grpc.ServicerContext, action: str, target: str = "", **fields: Any) -> AuditRecord:
        """The audit record of a state-changing call, by the authenticated caller."""
        return AuditRecord(who=self._who(context), tenant=self._tenant(context), action=action,
                           target=target, status=fields.pop("status", "ok"), **fields)

    def _audit(self, context: grpc.ServicerContext, action: str, target: str, **fields: Any) -> None:
        """Append the audit record of a state-changing call."""
        self.store.append_audit(self._audit_record(context, action, target, **fields))

    def _job_proto(self, job_id: str, context: grpc.ServicerContext) -> Any:
        job = self.store.get_job(job_id, tenant=self._tenant(context))
        return job_to_proto(job, self.store.job_history(job_id))

    # ------------------------------------------------------------------ solves
    @_rpc
    def Solve(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.manager.check_room(self._tenant(context))  # a full queue refuses before validation
        sc, name, rev = self._resolve(request, context)
        options = self._debug_options(context, self._options(request))
        job, _ = self.manager.submit(sc, options=options, scenario_name=name, scenario_revision=rev,
                                     who=self._who(context), tenant=self._tenant(context),
                                     audit=self._audit_record(context, "submit_solve"), keep_result=True)
        job_id = job.job_id
        answered = threading.Event()

        def ended() -> None:  # a client cancel or an expired deadline ends the RPC: stop its solve too
            if not answered.is_set():
                self.manager.cancel(job_id)

        context.add_callback(ended)
        while not self.manager.wait(job_id, 0.1):
            if not context.is_active():
                self.manager.cancel(job_id)
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:
                    raise _Abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline expired before the solve finished")
                raise _Abort(grpc.StatusCode.CANCELLED, "the call was cancelled")
        result = self.manager.take_result(job_id)  # typed, straight from the worker
        if result is None:
            job = self.store.get_job(job_id)
            if job.state == JobState.FAILED:
                raise _Abort(grpc.StatusCode.INTERNAL, f"the solve failed: {job.error}")
            if job.state == JobState.CANCELLED and not context.is_active():
                raise _Abort(grpc.StatusCode.CANCELLED, "the solve was cancelled")
            if job.result_json is None:
                raise _Abort(grpc.StatusCode.CANCELLED, f"the solve was cancelled: {job.error or ''}".strip())
            result = result_from_json(job.result_json)
        answered.set()  # the job has ended: the RPC's end has nothing to cancel
        return svc.SolveResponse(result=adapter.result_to_proto(result), job_id=job_id)

    @_rpc
    def SubmitSolve(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.request_id:  # a retry with a request_id gets its job back, full queue or not
            self.manager.check_room(self._tenant(context))
        sc, name, rev = self._resolve(request, context)
        options = self._debug_options(context, self._options(request))
        job, _ = self.manager.submit(sc, options=options, request_id=request.request_id, scenario_name=name,
                                     scenario_revision=rev, who=self._who(context), tenant=self._tenant(context),
                                     audit=self._audit_record(context, "submit_solve"))
        return svc.SubmitSolveResponse(job=self._job_proto(job.job_id, context))

    @_rpc
    def GetJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        return svc.GetJobResponse(job=self._job_proto(self._job_id(request), context))

    @staticmethod
    def _job_id(request: Any) -> str:
        if not request.job_id:
            raise _invalid([FieldViolation("job_id", "is required")], "invalid request")
        return str(request.job_id)

    @_rpc
    def ListJobs(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            state = adapter.job_state_from_proto(request.state)
        except ValueError:
            raise _invalid([FieldViolation("state", f"unknown job state {request.state}")], "invalid request") from None
        page_size = request.page_size or 50
        if page_size < 0 or page_size > 1000:
            raise _invalid([FieldViolation("page_size", "must be between 0 and 1000")], "invalid request")
        if request.view not in (job_pb2.JOB_VIEW_UNSPECIFIED, job_pb2.JOB_VIEW_SUMMARY, job_pb2.JOB_VIEW_FULL):
            raise _invalid([FieldViolation("view", f"unknown job view {request.view}")], "invalid request")
        summary = request.view != job_pb2.JOB_VIEW_FULL
        # the page ends before its reply would exceed the send limit: the store stops at half of
        # it (its estimate counts the stored JSON), and a page still too big is asked for again smaller
        while True:
            try:
                jobs, token = self.store.list_jobs(state=state, page_size=page_size, page_token=request.page_token,
                                                   tenant=self._tenant(context),
                                                   max_bytes=self.limits.max_message_bytes // 2)
            except ValueError:
                raise _invalid([FieldViolation("page_token", "is not a token this server issued")],
                               "invalid request") from None
            histories = self.store.job_histories([j.job_id for j in jobs])  # one query for the page
            reply = svc.ListJobsResponse(
                jobs=[job_to_proto(j, histories[j.job_id], summary=summary) for j in jobs],
                next_page_token=token)
            if len(jobs) <= 1 or reply.ByteSize() <= self.limits.max_message_bytes:
                return reply
            page_size = len(jobs) // 2

    @_rpc
    def CancelJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        job_id = self._job_id(request)
        job = self.manager.cancel(job_id, tenant=self._tenant(context))
        self._audit(context, "cancel_job", job_id, status=job.state.lower())
        return svc.CancelJobResponse(job=self._job_proto(job_id, context))

    def WatchJob(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        self._stream_checked(request, context)
        if not request.job_id:
            _abort(context, _invalid([FieldViolation("job_id", "is required")], "invalid request"))
        try:
            job = self.store.get_job(request.job_id, tenant=self._tenant(context))
        except NotFound as err:
            _abort(context, _Abort(grpc.StatusCode.NOT_FOUND, str(err.args[0] if err.args else err)))
        stop = threading.Event()
        context.add_callback(stop.set)
        if job.kind == "sweep":  # its state changes and its end (WatchSweep has the answers)
            for ev in self.manager.watch_sweep(request.job_id, stop):
                if ev.kind == SweepEventKind.STATE and ev.job is not None:
                    yield svc.WatchJobResponse(event=state_event_to_proto(ev.job))
                elif ev.kind == SweepEventKind.DONE and ev.job is not None:
                    yield svc.WatchJobResponse(event=final_event_to_proto(ev.job, self.store.job_history(ev.job.job_id)))
            return
        for msg in self.manager.watch(request.job_id, stop):
            if msg.kind == EventKind.STATE and msg.job is not None:
                yield svc.WatchJobResponse(event=state_event_to_proto(msg.job))
            elif msg.kind == EventKind.PROGRESS and msg.progress is not None:
                yield svc.WatchJobResponse(event=progress_event_to_proto(msg.progress))
            elif msg.job is not None:
                yield svc.WatchJobResponse(event=final_event_to_proto(msg.job, self.store.job_history(msg.job.job_id)))

    # ------------------------------------------------------------------ sweeps (docs/model.md §7)
    def _sweep_request(self, request: Any, context: grpc.ServicerContext) -> tuple[Scenario, Any, str, int]:
        """The base scenario and the sweep of a SubmitSweep/Sweep request, each validated once."""
        sc, name, rev = self._resolve(request, context)
        which = request.WhichOneof("sweep_source")
        try:
            if which == "sweep":
                spec = adapter.sweep_from_proto(request.sweep, sc)
            elif which == "sweep_document":
                from lepton_alloc.models.sweep import parse_sweep_document

                spec = parse_sweep_document(request.sweep_document, sc, prefix="sweep_document: ")
            else:
                raise _invalid([FieldViolation("sweep_source", "set sweep or sweep_document")], "invalid request")
        except ScenarioError as err:
            raise _invalid(err.violations, "invalid sweep") from None
        return sc, spec, name, rev

    def _submit_sweep(self, request: Any, context: grpc.ServicerContext) -> JobRecord:
        """SubmitSweep and Sweep: the sweep job (a new one audited), idempotent on request_id."""
        sc, spec, name, rev = self._sweep_request(request, context)
        job, created = self.manager.submit_sweep(sc, spec, request_id=request.request_id, scenario_name=name,
                                                 scenario_revision=rev, who=self._who(context),
                                                 tenant=self._tenant(context))
        if created:
            self._audit(context, "submit_sweep", job.job_id, scenario_sha256=job.scenario_sha256,
                        options_json=job.options_json)
        return job

    @_rpc
    def SubmitSweep(self, request: Any, context: grpc.ServicerContext) -> Any:
        job = self._submit_sweep(request, context)
        return svc.SubmitSweepResponse(job=self._job_proto(job.job_id, context))

    def Sweep(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            with _mapped():
                self._check_request(request)
                job = self._submit_sweep(request, context)
        except _Abort as err:
            _abort(context, err)
            return
        yield from self._sweep_stream(job.job_id, context, svc.SweepResponse)

    def WatchSweep(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        self._stream_checked(request, context)
        if not request.job_id:
            _abort(context, _invalid([FieldViolation("job_id", "is required")], "invalid request"))
        try:
            self.store.get_sweep(request.job_id, tenant=self._tenant(context))
        except NotFound:
            _abort(context, _Abort(grpc.StatusCode.NOT_FOUND, f"sweep {request.job_id!r} not found"))
        yield from self._sweep_stream(request.job_id, context, svc.WatchSweepResponse)

    def _sweep_stream(self, job_id: str, context: grpc.ServicerContext, response: Any) -> Iterator[Any]:
        stop = threading.Event()
        context.add_callback(stop.set)  # a dropped stream stops watching; the sweep goes on
        for msg in self.manager.watch_sweep(job_id, stop):
            yield response(event=self._sweep_event(job_id, msg))

    def _sweep_event(self, job_id: str, msg: SweepEventMsg) -> Any:
        ev = sweep_pb2.SweepEvent(variants_done=msg.done, variants_total=msg.total, job_id=job_id)
        if msg.kind == SweepEventKind.STATE and msg.job is not None:
            ev.state_change.CopyFrom(state_event_to_proto(msg.job).state_change)
        elif msg.kind == SweepEventKind.VARIANT and msg.variant is not None:
            ev.variant.CopyFrom(adapter.variant_to_proto(msg.variant))
        elif msg.kind == SweepEventKind.ROBUST and msg.check is not None:
            ev.robust_check.CopyFrom(adapter.robust_check_to_proto(msg.check))
        elif msg.kind == SweepEventKind.SUMMARY and msg.summary is not None:
            ev.summary.CopyFrom(adapter.summary_to_proto(msg.summary))
        elif msg.job is not None:
            ev.job.CopyFrom(job_to_proto(msg.job, self.store.job_history(msg.job.job_id)))
        return ev

    @_rpc
    def GetSweep(self, request: Any, context: grpc.ServicerContext) -> Any:
        from lepton_alloc.models.sweep import RobustCheck, SweepSummary, VariantResult

        job_id = self._job_id(request)
        page_size = request.page_size or 1000
        if not 0 < page_size <= 5000:
            raise _invalid([FieldViolation("page_size", "must be between 0 and 5000")], "invalid request")
        after = -1
        if request.page_token:
            token = request.page_token.removeprefix("after:")
            if not request.page_token.startswith("after:") or not (token.isascii() and token.isdigit()) or len(token) > 9:
                raise _invalid([FieldViolation("page_token", "is not a token this server issued")], "invalid request")
            after = int(token)
        record = self.store.get_sweep(job_id, tenant=self._tenant(context))  # NotFound: a solve job, an unknown id
        job = self._job_proto(job_id, context)
        items = self.store.sweep_items(job_id, "variant", after, page_size + 1)
        more = len(items) > page_size
        items = items[:page_size]
        out = svc.GetSweepResponse(
            job=job, sweep=adapter.sweep_dict_to_proto(json.loads(record.spec_json)),
            variants_total=record.total, variants_done=record.done,
            variants=[adapter.variant_to_proto(VariantResult.from_dict(json.loads(t))) for _, t in items],
            next_page_token=f"after:{items[-1][0]}" if more and items else "")
        if after < 0:
            out.robust_checks.extend(adapter.robust_check_to_proto(RobustCheck(**json.loads(t)))
                                     for _, t in self.store.sweep_items(job_id, "robust"))
        if record.summary_json is not None:
            out.summary.CopyFrom(adapter.summary_to_proto(SweepSummary.from_dict(json.loads(record.summary_json))))
        excess = out.ByteSize() - self.limits.max_message_bytes
        if excess > 0 and len(out.variants) > 1:  # the page ends before its reply would exceed the send limit
            keep = len(out.variants)
            while excess > 0 and keep > 1:
                keep -= 1
                excess -= out.variants[keep].ByteSize() + 6
            del out.variants[keep:]
            out.next_page_token = f"after:{items[keep - 1][0]}"
        return out

    # ------------------------------------------------------------------ stored scenarios
    @staticmethod
    def _check_name(name: str) -> None:
        if not ID_PATTERN.fullmatch(name or ""):
            raise _invalid([FieldViolation("name", "must be 1..64 characters of [A-Za-z0-9_.-]")], "invalid request")

    @_rpc
    def CreateScenario(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._check_name(request.name)
        sc = self._scenario_of(request, context)
        stored = self.store.create_scenario(request.name, sc.canonical_json(), sc.sha256(), request.description,
                                            tenant=self._tenant(context))
        self._audit(context, "create_scenario", f"{stored.name}@{stored.revision}", scenario_sha256=stored.sha256)
        return svc.CreateScenarioResponse(stored_scenario=stored_to_proto(stored))

    @_rpc
    def GetScenario(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._check_name(request.name)
        stored = self.store.get_scenario(request.name, request.revision if request.HasField("revision") else None,
                                         tenant=self._tenant(context))
        return svc.GetScenarioResponse(stored_scenario=stored_to_proto(stored))

    @_rpc
    def ListScenarios(self, request: Any, context: grpc.ServicerContext) -> Any:
        page_size = request.page_size or 50
        if page_size < 0 or page_size > 1000:
            raise _invalid([FieldViolation("page_size", "must be between 0 and 1000")], "invalid request")
        while True:  # a page ends before its reply would exceed the send limit (as in ListJobs)
            try:
                items, token = self.store.list_scenarios(page_size=page_size, page_token=request.page_token,
                                                         tenant=self._tenant(context),
                                                         max_bytes=self.limits.max_message_bytes // 2)
            except ValueError:
                raise _invalid([FieldViolation("page_token", "is not a token this server issued")],
                               "invalid request") from None
            reply = svc.ListScenariosResponse(stored_scenarios=[stored_to_proto(s) for s in items],
                                              next_page_token=token)
            if len(items) <= 1 or reply.ByteSize() <= self.limits.max_message_bytes:
                return reply
            page_size = len(items) // 2

    @_rpc
    def UpdateScenario(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._check_name(request.name)
        sc = self._scenario_of(request, context)
        stored = self.store.update_scenario(request.name, sc.canonical_json(), sc.sha256(), request.description,
                                            tenant=self._tenant(context))
        self._audit(context, "update_scenario", f"{stored.name}@{stored.revision}", scenario_sha256=stored.sha256)
        return svc.UpdateScenarioResponse(stored_scenario=stored_to_proto(stored))

    @_rpc
    def DeleteScenario(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._check_name(request.name)
        self.store.delete_scenario(request.name, tenant=self._tenant(context))
        self._audit(context, "delete_scenario", request.name)
        return svc.DeleteScenarioResponse()

    @_rpc
    def ExplainJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        job_id = self._job_id(request)
        violations = []
        step = request.relative_step if request.HasField("relative_step") else 0.05
        budget = request.time_budget_seconds if request.HasField("time_budget_seconds") else 60.0
        if not 0 < step < 1:
            violations.append(FieldViolation("relative_step", f"must be between 0 and 1 (exclusive), got {step:g}"))
        if not 0 < budget < 1e9:
            violations.append(FieldViolation("time_budget_seconds", f"must be > 0, got {budget:g}"))
        if request.skip_step_values and request.skip_market_values:
            violations.append(FieldViolation("skip_market_values", "skipping both step and market values leaves nothing to explain"))
        if violations:
            raise _invalid(violations, "invalid request")
        job = self.store.get_job(job_id, tenant=self._tenant(context))
        if job.result_json is None:
            raise _Abort(grpc.StatusCode.FAILED_PRECONDITION, f"job {job_id} has no result to explain ({job.state})")
        result = result_from_json(job.result_json)
        if result.objective_value is None:
            raise _Abort(grpc.StatusCode.FAILED_PRECONDITION,
                         f"job {job_id} ended {result.status} without a plan; its result already says why")
        scenario = self._stored_scenario(job.scenario_json, context)
        explained = self.manager.explain(job, scenario, result, relative_step=step, time_budget=budget,
                                         step_values=not request.skip_step_values,
                                         market_values=not request.skip_market_values,
                                         cancelled=lambda: not context.is_active())
        return svc.ExplainJobResponse(result=adapter.result_to_proto(explained))

    @_rpc
    def ComparePlans(self, request: Any, context: grpc.ServicerContext) -> Any:
        violations = [FieldViolation(f, "is required") for f in ("base_job_id", "other_job_id") if not getattr(request, f)]
        if violations:
            raise _invalid(violations, "invalid request")
        tenant = self._tenant(context)
        jobs = [self.store.get_job(request.base_job_id, tenant=tenant), self.store.get_job(request.other_job_id, tenant=tenant)]
        for field, job in zip(("base_job_id", "other_job_id"), jobs):
            if job.result_json is None:
                raise _Abort(grpc.StatusCode.FAILED_PRECONDITION, f"{field}: job {job.job_id} has no result ({job.state})")
        results = [result_from_json(j.result_json or "") for j in jobs]
        scenarios = [self._stored_scenario(j.scenario_json, context) for j in jobs]
        comparison = compare(results[0], results[1], scenarios[0], scenarios[1])
        return svc.ComparePlansResponse(comparison=adapter.comparison_to_proto(comparison))

    @_rpc
    def ValidateScenario(self, request: Any, context: grpc.ServicerContext) -> Any:
        which = request.WhichOneof("source")
        if which is None:
            raise _invalid([FieldViolation("source", "set scenario or scenario_document")], "invalid request")
        try:
            sc = self._inline_scenario(request, which, context)
        except ScenarioError as err:
            return svc.ValidateScenarioResponse(valid=False, violations=adapter.violations_to_bad_request(err.violations))
        return svc.ValidateScenarioResponse(
            valid=True, scenario_sha256=sc.sha256(),
            model_size=svc.ModelSizeEstimate(markets=len(sc.markets), years=sc.horizon_years,
                                             growth_scenarios=len(sc.growth_scenarios), entry_columns=entry_columns(sc)))


# ============================================================================ store records -> messages



def job_to_proto(job: JobRecord, history: Sequence[JobEvent] = (), *, summary: bool = False) -> job_pb2.Job:
    """A store job as a Job; ``summary`` leaves out the result's breakdowns (ListJobs)."""
    msg = job_pb2.Job(
        job_id=job.job_id,
        state=adapter.job_state_to_proto(job.state),
        request_id=job.request_id,
        scenario_name=job.scenario_name,
        scenario_revision=job.scenario_revision if job.scenario_revision > 0 else None,
        scenario_sha256=job.scenario_sha256,
        create_time=adapter.timestamp(job.created_at),
        start_time=adapter.timestamp(job.started_at),
        end_time=adapter.timestamp(job.finished_at),
        error_message=job.error or "",
        kind=job_pb2.JOB_KIND_SWEEP if job.kind == "sweep" else job_pb2.JOB_KIND_SOLVE,
        history=[job_pb2.JobStateChange(state=adapter.job_state_to_proto(e.state), change_time=adapter.timestamp(e.at),
                                        message=e.detail) for e in history],
    )
    if job.result_json is not None:
        msg.result.CopyFrom(adapter.result_to_proto(result_from_json(job.result_json), summary=summary))
    if job.progress_json is not None:
        msg.last_progress.CopyFrom(adapter.progress_to_proto(Progress.from_event(json.loads(job.progress_json))))
    return msg


def stored_to_proto(stored: StoredScenario) -> stored_scenario_pb2.StoredScenario:
    """A store revision as a StoredScenario (its JSON is the canonical form of a valid scenario,
    so it goes to the message as it is, without being validated again)."""
    return stored_scenario_pb2.StoredScenario(
        name=stored.name, revision=stored.revision,
        scenario=adapter.scenario_dict_to_proto(json.loads(stored.scenario_json)),
        create_time=adapter.timestamp(stored.created_at), sha256=stored.sha256, description=stored.description,
    )


def state_event_to_proto(job: JobRecord) -> job_pb2.JobEvent:
    """A watch event announcing the job's current state, stamped with when it was entered."""
    entered = {JobState.QUEUED: job.created_at, JobState.RUNNING: job.started_at}.get(job.state, job.finished_at)
    when = adapter.timestamp(entered if entered else time.time())
    return job_pb2.JobEvent(event_time=when, state_change=job_pb2.JobStateChange(
        state=adapter.job_state_to_proto(job.state), change_time=when, message=job.error or ""))


def progress_event_to_proto(progress: Progress) -> job_pb2.JobEvent:
    """A watch event carrying one solver progress report, stamped with the solver's clock."""
    return job_pb2.JobEvent(event_time=adapter.timestamp(progress.at or time.time()),
                            progress=adapter.progress_to_proto(progress))


def final_event_to_proto(job: JobRecord, history: Sequence[JobEvent] = ()) -> job_pb2.JobEvent:
    """The last watch event: the job in its terminal state, result or error included."""
    return job_pb2.JobEvent(event_time=adapter.timestamp(job.finished_at or time.time()), job=job_to_proto(job, history))
