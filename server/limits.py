"""Fair use: what one request may ask for, what one caller may hold open, and errors that keep
their meaning on the way back.

- :class:`Limits` – every size limit of a request (bytes, ids, description, scenario size) and
  of a reply, the caps on open streams and long calls, and the validation gate; the server
  settings of the same names (:class:`~.config.ServerConfig`) override the defaults.
- :func:`request_violations` / :func:`scenario_violations` – the checks at the edge, each
  refusal a field violation naming the field and the limit
  (``description: at most 10000 characters (got 67108864)``).
- :func:`error_status` – an ``INVALID_ARGUMENT`` whose ``google.rpc.BadRequest`` and message fit
  the trailer budget (gRPC's metadata limit is 16 KiB: beyond it the client sees
  ``RESOURCE_EXHAUSTED`` instead): the first violations, each cut to a sane length, then
  ``(truncated): and N more violations``.
- :class:`RequestGuard` – a server interceptor: request bytes are parsed on the call's own
  thread, a malformed message is ``INVALID_ARGUMENT`` (``request: not a valid SolveRequest
  message``) instead of gRPC's ``INTERNAL``, an oversized one names the limit; and streams and
  long calls are capped globally and per caller (``RESOURCE_EXHAUSTED``), so that threads are
  always left for unary calls and the health service.
- :class:`ValidationGate` – big scenarios are validated one at a time (the rest wait their turn,
  a bounded number of them), so that validation, which holds the interpreter's lock for
  seconds, cannot stall every other call.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from lepton_alloc.models.scenario import FieldViolation

from .auth import LOCAL, identity_of, rewrapped

MiB = 1024 * 1024
SERVICE_PREFIX = "/lepton.allocation.v1.AllocationService/"
# unary calls that hold their thread while a solve runs: capped like streams
LONG_UNARY = frozenset({SERVICE_PREFIX + "Solve", SERVICE_PREFIX + "ExplainJob"})


@dataclass(frozen=True)
class Limits:
    """Every limit one request, reply or caller is held to (defaults; the server settings of the
    same names override them)."""

    # ------------------------------------------------------------------ requests
    max_request_bytes: int = 32 * MiB  # one request message, serialized
    # gRPC's transport limit on messages either way: requests above max_request_bytes and up to
    # this are answered INVALID_ARGUMENT naming the limit (beyond it gRPC itself refuses them);
    # no reply may exceed it (a scenario is stored only if its reply fits; list pages stop early)
    max_message_bytes: int = 64 * MiB
    max_description_chars: int = 10_000  # CreateScenario/UpdateScenario description
    max_name_chars: int = 64  # stored scenario names (at most 64: the names' pattern)
    max_id_chars: int = 128  # job_id, base_job_id, other_job_id, request_id
    max_page_token_chars: int = 256
    # one scenario (inline, document or stored)
    max_markets: int = 20_000
    max_options: int = 4  # per market (one per mode)
    max_years: int = 50  # horizon_years
    max_growth_scenarios: int = 100
    max_entry_columns: int = 1_000_000  # estimated model size: binary entry columns x[o, τ]
    # values in a scenario document once parsed (YAML aliases expanded): a small document must not
    # become a huge scenario
    max_document_values: int = 4_000_000
    # ------------------------------------------------------------------ errors
    max_error_bytes: int = 8 * 1024  # status message + BadRequest as sent in the trailers
    # ------------------------------------------------------------------ streams and long calls
    max_streams: int = 128  # open streams (and Solve/ExplainJob calls) at once, all callers
    max_streams_per_caller: int = 32  # per tenant (per connection for anonymous local callers)
    # ------------------------------------------------------------------ validation of big scenarios
    large_request_bytes: int = 1 * MiB  # a scenario this big (serialized) is "large"
    large_validations: int = 1  # large scenarios validated at once (0 = no gate)
    large_waiting: int = 8  # large scenarios waiting their turn; more are RESOURCE_EXHAUSTED

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"configuration {f.name}: must be an integer >= 0, got {value!r}")
            if value == 0 and f.name not in ("large_validations", "large_waiting"):
                raise ValueError(f"configuration {f.name}: must be > 0")
        if self.max_name_chars > 64:
            raise ValueError("configuration max_name_chars: at most 64 (names are 1..64 characters of [A-Za-z0-9_.-])")
        if self.max_message_bytes < self.max_request_bytes:
            raise ValueError(f"configuration max_message_bytes ({self.max_message_bytes}) must be at least "
                             f"max_request_bytes ({self.max_request_bytes}): every reply must fit the limit that "
                             "admitted its request")
        if self.max_error_bytes < 1024 or self.max_error_bytes > 12 * 1024:
            raise ValueError("configuration max_error_bytes: between 1024 and 12288 (gRPC's trailer limit is 16 KiB)")
        if self.max_streams_per_caller > self.max_streams:
            raise ValueError("configuration max_streams_per_caller cannot exceed max_streams")

    @classmethod
    def from_config(cls, cfg: Any) -> Limits:
        """The limits of a :class:`~.config.ServerConfig` (its fields of the same names)."""
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls) if hasattr(cfg, f.name)})

    def rpc_threads(self, queue_size: int, workers: int) -> int:
        """Threads the gRPC server needs so that unary calls and health always find one: every
        capped stream or long call, every waiting large validation, the solves a queue holds,
        and room for the short calls."""
        return self.max_streams + self.large_waiting + self.large_validations + queue_size + workers + 64


# ============================================================================ checks at the edge


def too_long(field: str, limit: int, got: int, unit: str = "characters") -> FieldViolation:
    return FieldViolation(field, f"at most {limit} {unit} (got {got})")


def request_violations(request: Any, limits: Limits) -> list[FieldViolation]:
    """Length limits of a request's ids, names, page token and description (any request type:
    the fields it has are checked)."""
    caps = {"job_id": limits.max_id_chars, "base_job_id": limits.max_id_chars,
            "other_job_id": limits.max_id_chars, "request_id": limits.max_id_chars,
            "name": limits.max_name_chars, "page_token": limits.max_page_token_chars,
            "description": limits.max_description_chars}
    out = []
    names = request.DESCRIPTOR.fields_by_name
    for field, cap in caps.items():
        if field in names:
            value = getattr(request, field)
            if len(value) > cap:
                out.append(too_long(field, cap, len(value)))
            elif "\x00" in value:  # no database stores it (PostgreSQL text refuses NUL)
                out.append(FieldViolation(field, "must not contain the NUL character"))
    if "scenario_ref" in names and request.HasField("scenario_ref"):
        n = len(request.scenario_ref.name)
        if n > limits.max_name_chars:
            out.append(too_long("scenario_ref.name", limits.max_name_chars, n))
    return out


def _count(field: str, what: str, limit: int, got: int) -> FieldViolation:
    return FieldViolation(field, f"at most {limit} {what} per scenario on this server (got {got})")


def proto_scenario_violations(msg: Any, limits: Limits) -> list[FieldViolation]:
    """The size limits of a ``Scenario`` message, checked before it is converted (cheap)."""
    out = []
    if len(msg.markets) > limits.max_markets:
        out.append(_count("markets", "markets", limits.max_markets, len(msg.markets)))
    else:
        for k, m in enumerate(msg.markets):
            if len(m.options) > limits.max_options:
                out.append(FieldViolation(f"markets[{k}].options",
                                          f"at most {limits.max_options} options per market (got {len(m.options)})"))
                break
    if msg.horizon_years > limits.max_years:
        out.append(_count("horizon_years", "years", limits.max_years, msg.horizon_years))
    if len(msg.growth_scenarios) > limits.max_growth_scenarios:
        out.append(_count("growth_scenarios", "growth scenarios", limits.max_growth_scenarios, len(msg.growth_scenarios)))
    return out


def raw_scenario_violations(raw: Any, limits: Limits, text: str) -> list[FieldViolation]:
    """The size limits of a scenario document (``text``, parsed to ``raw``), before it is
    validated: values (YAML aliases expanded), markets, options per market, years, growth
    scenarios."""
    out: list[FieldViolation] = []
    # without YAML aliases (*name) repeating a part, the text bounds the values: JSON by its commas
    # and brackets, YAML by its length; only beyond that bound are the values counted
    if text.lstrip()[:1] == "{":
        bound = 1 + 2 * (text.count(",") + text.count("[") + text.count("{"))
    else:
        bound = len(text) if "*" not in text else limits.max_document_values + 1
    if bound > limits.max_document_values:
        n = document_values(raw, limits.max_document_values + 1)
        if n > limits.max_document_values:
            return [FieldViolation("<file>", f"at most {limits.max_document_values} values per scenario document, "
                                             "YAML aliases expanded (got more)")]
    if not isinstance(raw, dict):
        return out
    markets, years, scenarios = raw.get("markets"), raw.get("horizon_years"), raw.get("growth_scenarios")
    if isinstance(markets, list):
        if len(markets) > limits.max_markets:
            out.append(_count("markets", "markets", limits.max_markets, len(markets)))
        else:
            for k, m in enumerate(markets):
                options = m.get("options") if isinstance(m, dict) else None
                if isinstance(options, list) and len(options) > limits.max_options:
                    out.append(FieldViolation(f"markets[{k}].options",
                                              f"at most {limits.max_options} options per market (got {len(options)})"))
                    break
    if isinstance(years, int) and not isinstance(years, bool) and years > limits.max_years:
        out.append(_count("horizon_years", "years", limits.max_years, years))
    if isinstance(scenarios, list) and len(scenarios) > limits.max_growth_scenarios:
        out.append(_count("growth_scenarios", "growth scenarios", limits.max_growth_scenarios, len(scenarios)))
    return out


def document_values(raw: Any, stop: int) -> int:
    """Scalars, keys and containers in parsed document data, shared parts (YAML aliases) counted
    every time they appear (a cycle counts as ``stop``); at most ``stop``. Linear in the distinct
    parts, without recursion."""
    if not isinstance(raw, (dict, list)):
        return 1
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(raw, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = node.values() if isinstance(node, dict) else node
        if done:  # every child's size is known by now
            total = 1 + (len(node) if isinstance(node, dict) else 0)
            for child in children:
                total += sizes.get(id(child), stop) if isinstance(child, (dict, list)) else 1
            sizes[key] = min(total, stop)
        elif key not in sizes:
            sizes[key] = stop  # in progress: met again below itself, it is a cycle
            stack.append((node, True))
            stack.extend((c, False) for c in children if isinstance(c, (dict, list)) and id(c) not in sizes)
    return sizes[id(raw)]


def scenario_violations(entry_columns: int, limits: Limits) -> list[FieldViolation]:
    """The estimated model size of a validated scenario."""
    if entry_columns > limits.max_entry_columns:
        return [FieldViolation("markets", f"at most {limits.max_entry_columns} entry columns (estimated model size) "
                                          f"per scenario on this server (got {entry_columns})")]
    return []


# ============================================================================ errors that fit


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _trailer_cost(message: str, status: bytes) -> int:
    """Bytes the status takes in the trailers: base64 of the Status, the percent-encoded message."""
    encoded = message.encode("utf-8", "replace")
    return (4 * ((len(status) + 2) // 3) + sum(1 if 0x20 <= b < 0x7F and b != 0x25 else 3 for b in encoded)
            + len("grpc-status-details-bin") + len("grpc-message") + 16)


def error_status(code: grpc.StatusCode, message: str, violations: list[FieldViolation],
                 budget: int = 8 * 1024) -> grpc.Status:
    """A status with one BadRequest of ``violations`` whose trailers stay within ``budget``
    bytes: the message is cut (to 512 characters at most), each violation's field to 200 and
    description to 400 characters, and once the budget is used up the rest are counted in a last
    violation ``(truncated): and N more violations``."""
    message = _cut(message, min(512, budget // 8))
    header = _trailer_cost(message, status_pb2.Status(code=code.value[0], message=message).SerializeToString())
    room = budget - header - 160  # the Any wrapper and the last violation
    kept: list[tuple[str, str]] = []
    used = 0
    for v in violations:
        field, description = _cut(v.field, 200), _cut(v.description, 400)
        cost = 4 * (len(field.encode()) + len(description.encode()) + 8) // 3 + 2
        if used + cost > room:
            break
        kept.append((field, description))
        used += cost
    while True:  # the estimate above is close; the exact size decides
        bad = error_details_pb2.BadRequest()
        for field, description in kept:
            bad.field_violations.add(field=field, description=description)
        if len(kept) < len(violations):
            bad.field_violations.add(field="(truncated)", description=f"and {len(violations) - len(kept)} more violations")
        detail = any_pb2.Any()
        detail.Pack(bad)
        status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
        if not kept or _trailer_cost(message, status.SerializeToString()) <= budget:
            return rpc_status.to_status(status)
        kept.pop()


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str,
          violations: list[FieldViolation] | None = None, budget: int = 8 * 1024,
          retry_after: float | None = None) -> None:
    """End the call with ``code`` (and a BadRequest of ``violations``, or a RetryInfo of
    ``retry_after`` seconds), within the trailer budget; the message is cut to 512 characters (an
    id of 20,000 is never echoed whole)."""
    if violations:
        context.abort_with_status(error_status(code, message, violations, budget))
    if retry_after is not None:
        context.abort_with_status(retry_status(code, message, retry_after))
    context.abort(code, _cut(message, 512))


def retry_status(code: grpc.StatusCode, message: str, retry_after: float) -> grpc.Status:
    """A status with one ``google.rpc.RetryInfo``: when the caller may try again."""
    info = error_details_pb2.RetryInfo()
    info.retry_delay.FromNanoseconds(int(round(max(retry_after, 0.0) * 1e9)))
    detail = any_pb2.Any()
    detail.Pack(info)
    message = _cut(message, 512)
    return rpc_status.to_status(status_pb2.Status(code=code.value[0], message=message, details=[detail]))


# ============================================================================ the interceptor


class _Refused:
    """What the guard's deserializer returns for bytes that are no valid request."""

    __slots__ = ("violation",)

    def __init__(self, violation: FieldViolation):
        self.violation = violation


class _Raw:
    """A request's bytes, parsed later on the call's own thread (not gRPC's polling thread)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data


class StreamSlots:
    """Counts open streams and long calls, in total and per caller."""

    def __init__(self, total: int, per_caller: int):
        self.total, self.per_caller = total, per_caller
        self._lock = threading.Lock()
        self._open = 0
        self._by_caller: dict[str, int] = {}

    def take(self, caller: str) -> str | None:
        """None when a slot was taken; otherwise why not."""
        with self._lock:
            mine = self._by_caller.get(caller, 0)
            if mine >= self.per_caller:
                return f"for this caller (limit {self.per_caller})"
            if self._open >= self.total:
                return f"on this server (limit {self.total})"
            self._open += 1
            self._by_caller[caller] = mine + 1
            return None

    def give_back(self, caller: str) -> None:
        with self._lock:
            self._open -= 1
            left = self._by_caller.get(caller, 1) - 1
            if left > 0:
                self._by_caller[caller] = left
            else:
                self._by_caller.pop(caller, None)

    def open_count(self, caller: str | None = None) -> int:
        with self._lock:
            return self._open if caller is None else self._by_caller.get(caller, 0)


def caller_of(context: Any) -> str:
    """Whose budget a call counts against: the tenant of an authenticated caller; an anonymous
    local caller per connection (peer)."""
    identity = identity_of(context)
    if identity == LOCAL:
        return "peer " + str(context.peer() or "")
    return "tenant " + identity.tenant


class RequestGuard(grpc.ServerInterceptor):  # type: ignore[misc]
    """Malformed and oversized request bytes answer INVALID_ARGUMENT; streams and long calls
    are capped (module docstring). Compose it after the authentication interceptor, so that a
    caller is known (and refused without a token) before anything else."""

    def __init__(self, limits: Limits, retry_after: Callable[[], float] | None = None):
        self.limits = limits
        self.slots = StreamSlots(limits.max_streams, limits.max_streams_per_caller)
        # a refused Solve or ExplainJob (too many in progress) carries a RetryInfo of this many
        # seconds: when one of them is likely to end (JobManager.retry_after); a refused stream
        # carries none, since only closing one of the caller's streams frees its place
        self.retry_after = retry_after

    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method or ""
        parse = self._parser(handler.request_deserializer)
        long_call = handler.request_streaming or handler.response_streaming or method in LONG_UNARY
        slots, caller, retry_after = self.slots, caller_of, self.retry_after

        def request_of(item: Any, context: Any) -> Any:
            got = parse(item)
            if isinstance(got, _Refused):
                abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(got.violation), [got.violation])
            return got

        def requests_of(items: Iterator[Any], context: Any) -> Iterator[Any]:
            for item in items:
                yield request_of(item, context)

        @contextlib.contextmanager
        def slot(context: Any) -> Iterator[None]:
            if not long_call:
                yield
                return
            who = caller(context)
            refused = slots.take(who)
            if refused is not None:
                if method not in LONG_UNARY:
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"too many open streams {refused}; close some")
                abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED,
                      f"too many Solve and ExplainJob calls in progress {refused}; wait for some to finish",
                      retry_after=retry_after() if retry_after is not None else None)
            once = threading.Lock()
            done = [False]

            def release() -> None:
                with once:
                    if not done[0]:
                        done[0] = True
                        slots.give_back(who)

            context.add_callback(release)
            try:
                yield
            finally:
                release()

        def wrap(kind: str, inner: Any) -> Any:
            if kind == "unary_unary":
                def unary_unary(request: Any, context: Any) -> Any:
                    request = request_of(request, context)
                    with slot(context):
                        return inner(request, context)
                return unary_unary
            if kind == "unary_stream":
                def unary_stream(request: Any, context: Any) -> Iterator[Any]:
                    request = request_of(request, context)
                    with slot(context):
                        yield from inner(request, context)
                return unary_stream
            if kind == "stream_unary":
                def stream_unary(requests: Iterator[Any], context: Any) -> Any:
                    with slot(context):
                        return inner(requests_of(requests, context), context)
                return stream_unary

            def stream_stream(requests: Iterator[Any], context: Any) -> Iterator[Any]:
                with slot(context):
                    yield from inner(requests_of(requests, context), context)
            return stream_stream

        return rewrapped(handler, wrap, _raw)  # requests arrive raw: request_of parses them

    def _parser(self, deserializer: Callable[[bytes], Any] | None) -> Callable[[Any], Any]:
        limit = self.limits.max_request_bytes
        owner = getattr(deserializer, "__self__", None)
        descriptor = getattr(owner, "DESCRIPTOR", None)
        name = getattr(descriptor, "name", None) or "request"

        def parse(item: Any) -> Any:
            data = item.data if isinstance(item, _Raw) else item
            if not isinstance(data, (bytes, bytearray, memoryview)):
                return data
            if len(data) > limit:
                return _Refused(too_long("request", limit, len(data), "bytes"))
            if deserializer is None:
                return data
            try:
                return deserializer(bytes(data))
            except Exception:  # noqa: BLE001 - DecodeError and whatever a broken message raises
                return _Refused(FieldViolation("request", f"not a valid {name} message"))

        return parse


def _raw(data: bytes) -> _Raw:
    """The guard's deserializer: keep the bytes; they are parsed on the call's own thread."""
    return _Raw(data)


# ============================================================================ retry delays

RETRY_MIN_SECONDS, RETRY_MAX_SECONDS = 0.05, 30.0  # the delay a RetryInfo suggests stays within these


class TypicalSeconds:
    """How long a piece of work typically takes (an exponential mean, weight 0.2 for the newest,
    first guess 1 s), and the retry delay it suggests to a refused caller."""

    SMOOTHING = 0.2

    def __init__(self, first_guess: float = 1.0):
        self.mean = first_guess

    def learn(self, seconds: float) -> None:
        self.mean += self.SMOOTHING * (seconds - self.mean)

    def retry_delay(self, pieces_ahead: float) -> float:
        """``pieces_ahead`` pieces of work at the typical length, within RETRY_MIN/MAX_SECONDS."""
        return min(max(self.mean * pieces_ahead, RETRY_MIN_SECONDS), RETRY_MAX_SECONDS)


# ============================================================================ the validation gate


class GateBusy(Exception):
    """Too many large scenarios wait for validation (RESOURCE_EXHAUSTED, with ``retry_after``:
    the seconds until a place in the line is likely to free)."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class GateCancelled(Exception):
    """The call ended while its scenario waited for its turn."""


class ValidationGate:
    """At most ``slots`` large scenarios are validated at a time; at most ``waiting`` more wait.

    Validation holds the interpreter's lock in long stretches: several at once leave other calls
    (GetJob, health) waiting for it at every step. One at a time, with the lock's switch interval
    shortened while it runs, keeps them answering."""

    SWITCH_INTERVAL = 0.0005  # seconds; Python's default is 0.005

    def __init__(self, slots: int, waiting: int, threshold: int):
        self.slots, self.waiting, self.threshold = slots, waiting, threshold
        self._sem = threading.BoundedSemaphore(max(1, slots))
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0
        self._saved_interval: float | None = None
        self._local = threading.local()
        self._typical = TypicalSeconds()  # a large validation's wall time, for the retry delay

    @contextlib.contextmanager
    def turn(self, size: int, active: Callable[[], bool] = lambda: True) -> Iterator[None]:
        """Hold a turn while validating a scenario of ``size`` bytes (small ones need none; a
        thread already holding a turn keeps it)."""
        if self.slots <= 0 or size < self.threshold or getattr(self._local, "held", False):
            yield
            return
        if not self._sem.acquire(blocking=False):
            with self._lock:
                if self._waiting >= self.waiting:
                    raise GateBusy(f"too many large scenarios waiting for validation (limit {self.waiting}); "
                                   "retry later", self._retry_after())
                self._waiting += 1
            try:
                while not self._sem.acquire(timeout=0.1):
                    if not active():
                        raise GateCancelled("the call ended while its scenario waited for validation")
            finally:
                with self._lock:
                    self._waiting -= 1
        self._started()
        self._local.held = True
        began = time.monotonic()
        try:
            yield
        finally:
            self._local.held = False
            self._ended(time.monotonic() - began)
            self._sem.release()

    def _started(self) -> None:
        with self._lock:
            self._running += 1
            if self._running == 1:
                self._saved_interval = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved_interval, self.SWITCH_INTERVAL))

    def retry_after(self) -> float:
        """Seconds until a place in the line is likely to free: the validations running and
        waiting, at a typical validation's length each, over the slots; within 0.05-30 s."""
        with self._lock:
            return self._retry_after()

    def _retry_after(self) -> float:  # under the lock
        return self._typical.retry_delay(max(self._running + self._waiting, 1) / max(self.slots, 1))

    def _ended(self, seconds: float) -> None:
        with self._lock:
            self._typical.learn(seconds)
            self._running -= 1
            if self._running == 0 and self._saved_interval is not None:
                sys.setswitchinterval(self._saved_interval)
                self._saved_interval = None
