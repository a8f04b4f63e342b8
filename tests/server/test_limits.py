"""Fair use at the edge of a real server (real workers, real SQLite file): each limit refused with
INVALID_ARGUMENT naming it, errors that keep their meaning (a BadRequest of 400 violations is cut
to fit the trailers, a 20,000-character id is never echoed, crafted page tokens and malformed
bytes are INVALID_ARGUMENT, never INTERNAL), every reply fits the limit that admitted its
request, and 100 open WatchJob streams from one client leave health and GetJob answering."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from lepton_alloc.clients.client import CHANNEL_OPTIONS, AllocationClient, AllocationError
from lepton_alloc.proto import adapter
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2 as svc
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2_grpc as svc_grpc
from lepton_alloc.proto.lepton.allocation.v1 import stored_scenario_pb2
from lepton_alloc.server.app import RunningServer
from lepton_alloc.server.limits import (
    GateBusy,
    Limits,
    StreamSlots,
    ValidationGate,
    document_values,
    error_status,
)
from lepton_alloc.models.scenario import FieldViolation

from .conftest import slow_scenario, start, tiny_scenario, wait_until

SERVICE = "/lepton.allocation.v1.AllocationService/"
HUGE = "x" * 20_000
TRAILER_LIMIT = 16 * 1024  # gRPC's default limit on received metadata


def _identity(b: bytes) -> bytes:
    return b


@pytest.fixture(scope="module")
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    ch = grpc.insecure_channel(f"127.0.0.1:{server.port}", options=CHANNEL_OPTIONS)
    yield ch
    ch.close()


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> svc_grpc.AllocationServiceStub:
    return svc_grpc.AllocationServiceStub(channel)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with every limit small enough to reach with small requests."""
    running = start(tmp_path_factory.mktemp("small"), workers=1, max_request_bytes=64 * 1024,
                    max_message_bytes=256 * 1024, max_description_chars=100, max_id_chars=40, max_name_chars=20,
                    max_page_token_chars=64, max_markets=5, max_options=2, max_years=6, max_growth_scenarios=2,
                    max_entry_columns=12, max_document_values=5000, max_streams=6, max_streams_per_caller=3)
    yield running
    running.stop(grace=1.0)


@pytest.fixture(scope="module")
def small_stub(small: RunningServer) -> Iterator[svc_grpc.AllocationServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{small.port}", options=CHANNEL_OPTIONS) as ch:
        yield svc_grpc.AllocationServiceStub(ch)


def refused(call: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=60, **kwargs)
    return info.value


def violations_of(err: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, f"no status details: {err.code()} {err.details()}"
    out = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        assert detail.Unpack(bad)
        out.extend((v.field, v.description) for v in bad.field_violations)
    return out


def trailer_bytes(err: grpc.RpcError) -> int:
    """Bytes of the error's trailers as sent: binary values base64-encoded, plus the message."""
    total = len((err.details() or "").encode()) + len("grpc-message") + len("grpc-status") + 4
    for key, value in err.trailing_metadata() or ():  # type: ignore[attr-defined]
        raw = value if isinstance(value, bytes) else value.encode()
        total += len(key) + (len(base64.b64encode(raw)) if key.endswith("-bin") else len(raw))
    return total


def assert_invalid(err: grpc.RpcError, field: str, *needles: str) -> None:
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    fields = dict(violations_of(err))
    assert field in fields, (field, fields)
    for needle in needles:
        assert needle in fields[field], (needle, fields[field])
        assert needle in (err.details() or "")


def bad_document(markets: int) -> str:
    """A scenario document with ``markets`` markets, each with two violations."""
    lines = ["name: many-wrongs", "start_year: 2027", "horizon_years: 3", "budget: {limit: 10}", "markets:"]
    for k in range(markets):
        lines.append(f"  - {{id: m{k}, market_size: -1, options: [{{mode: build, initial_share: 7, margin: 0.5, entry_cost: 1}}]}}")
    return "\n".join(lines) + "\n"


# ============================================================================ errors that keep their meaning


def test_400_violations_arrive_as_invalid_argument_with_a_truncated_bad_request(stub: Any) -> None:
    doc = bad_document(200)  # 2 violations per market: 400
    full = stub.ValidateScenario(svc.ValidateScenarioRequest(scenario_document=doc), timeout=60)
    assert not full.valid and len(full.violations.field_violations) == 400  # the body has room for all
    for call, request in [(stub.Solve, svc.SolveRequest(scenario_document=doc)),
                          (stub.CreateScenario, svc.CreateScenarioRequest(name="wrongs", scenario_document=doc)),
                          (stub.SubmitSolve, svc.SubmitSolveRequest(scenario_document=doc, request_id="r-400"))]:
        err = refused(call, request)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
        got = violations_of(err)
        assert 10 < len(got) < 400
        assert got[-1] == ("(truncated)", f"and {400 - (len(got) - 1)} more violations")
        assert got[:-1] == [(v.field, v.description) for v in full.violations.field_violations[:len(got) - 1]]
        assert trailer_bytes(err) <= Limits.max_error_bytes + 512 < TRAILER_LIMIT


def test_error_status_fits_any_budget_and_cuts_long_texts() -> None:
    many = [FieldViolation(f"markets[{k}].{'x' * 500}", "y" * 5000 + "\x1b[2J") for k in range(1000)]
    for budget in (1024, 4096, 8192, 12288):
        status = error_status(grpc.StatusCode.INVALID_ARGUMENT, "invalid: " + "z" * 30_000, many, budget)
        size = sum(len(k) + (len(base64.b64encode(v)) if k.endswith("-bin") else len(v))
                   for k, v in status.trailing_metadata) + len(status.details.encode())
        assert size <= budget, (budget, size)
        assert len(status.details) <= 512
        bad = error_details_pb2.BadRequest()
        decoded = status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
        decoded.details[0].Unpack(bad)
        assert bad.field_violations[-1].field == "(truncated)"
        kept = len(bad.field_violations) - 1
        assert bad.field_violations[-1].description == f"and {1000 - kept} more violations"
        assert all(len(v.description) <= 400 and len(v.field) <= 200 for v in bad.field_violations)


def test_20000_character_ids_are_invalid_argument_naming_the_field_never_echoed(stub: Any, channel: Any) -> None:
    cases = [
        (stub.GetJob, svc.GetJobRequest(job_id=HUGE), "job_id"),
        (stub.CancelJob, svc.CancelJobRequest(job_id=HUGE), "job_id"),
        (stub.ExplainJob, svc.ExplainJobRequest(job_id=HUGE), "job_id"),
        (stub.GetSweep, svc.GetSweepRequest(job_id=HUGE), "job_id"),
        (stub.ComparePlans, svc.ComparePlansRequest(base_job_id=HUGE, other_job_id="a"), "base_job_id"),
        (stub.ComparePlans, svc.ComparePlansRequest(base_job_id="a", other_job_id=HUGE), "other_job_id"),
        (stub.SubmitSolve, svc.SubmitSolveRequest(scenario=adapter.scenario_to_proto(tiny_scenario()), request_id=HUGE),
         "request_id"),
        (stub.SubmitSweep, svc.SubmitSweepRequest(scenario=adapter.scenario_to_proto(tiny_scenario()), request_id=HUGE,
                                                  sweep_document="grid: {}"), "request_id"),
        (stub.Solve, svc.SolveRequest(scenario_ref=stored_scenario_pb2.ScenarioRef(name=HUGE)), "scenario_ref.name"),
        (stub.GetScenario, svc.GetScenarioRequest(name=HUGE), "name"),
        (stub.DeleteScenario, svc.DeleteScenarioRequest(name=HUGE), "name"),
        (stub.CreateScenario, svc.CreateScenarioRequest(name=HUGE, scenario_document="{}"), "name"),
        (stub.UpdateScenario, svc.UpdateScenarioRequest(name=HUGE, scenario_document="{}"), "name"),
        (stub.ListJobs, svc.ListJobsRequest(page_token=HUGE), "page_token"),
        (stub.ListScenarios, svc.ListScenariosRequest(page_token=HUGE), "page_token"),
        (stub.GetSweep, svc.GetSweepRequest(job_id="a", page_token=HUGE), "page_token"),
    ]
    for call, request, field in cases:
        err = refused(call, request)
        assert_invalid(err, field, "at most", "(got 20000)")
        assert HUGE[:200] not in (err.details() or "") and trailer_bytes(err) < 4096
    for method, request, field in [("WatchJob", svc.WatchJobRequest(job_id=HUGE), "job_id"),
                                   ("WatchSweep", svc.WatchSweepRequest(job_id=HUGE), "job_id"),
                                   ("Sweep", svc.SweepRequest(scenario_ref=stored_scenario_pb2.ScenarioRef(name="a"), request_id=HUGE,
                                                              sweep_document="grid: {}"), "request_id")]:
        watch = getattr(stub, method)
        err = refused(lambda r, timeout, watch=watch: list(watch(r, timeout=timeout)), request)
        assert_invalid(err, field, "at most", "(got 20000)")


@pytest.mark.parametrize("token", [
    base64.urlsafe_b64encode(b"job:9223372036854775808").decode(),
    base64.urlsafe_b64encode(b"job:-1").decode(),
    base64.urlsafe_b64encode(b"job:12a").decode(),
    base64.urlsafe_b64encode("job:²³".encode()).decode(),
    base64.urlsafe_b64encode(b"job:99999999999999999999999999").decode(),
    base64.urlsafe_b64encode(b"scenario:\x00\xff").decode(),
    base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
    "not base64 at all!", "%%%", "after:-1", "after:²", "after:9223372036854775808", "after:1e3", "\x00", "é" * 100,
])
def test_crafted_page_tokens_are_invalid_argument(stub: Any, token: str) -> None:
    for call, request in [(stub.ListJobs, svc.ListJobsRequest(page_token=token)),
                          (stub.ListScenarios, svc.ListScenariosRequest(page_token=token)),
                          (stub.GetSweep, svc.GetSweepRequest(job_id="no-such-sweep", page_token=token))]:
        try:
            call(request, timeout=30)
        except grpc.RpcError as err:
            assert_invalid(err, "page_token")
        else:  # a token that happens to decode to a valid position (a ListScenarios name) pages from there
            assert call is stub.ListScenarios, (call, token)


def test_malformed_bytes_are_invalid_argument_naming_the_message(server: RunningServer, channel: Any) -> None:
    methods = svc.DESCRIPTOR.services_by_name["AllocationService"].methods
    for m in methods:
        if m.server_streaming:
            call: Any = channel.unary_stream(SERVICE + m.name, request_serializer=_identity, response_deserializer=_identity)
        else:
            call = channel.unary_unary(SERVICE + m.name, request_serializer=_identity, response_deserializer=_identity)
        for payload in (b"\xff\xff\xff", b"\x0a\x05ab", b"garbage bytes, not protobuf"):
            err = refused(lambda p, timeout, call=call, streaming=m.server_streaming:
                          list(call(p, timeout=timeout)) if streaming else call(p, timeout=timeout), payload)
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (m.name, err.code(), err.details())
            assert err.details() == f"request: not a valid {m.input_type.name} message"
            assert violations_of(err) == [("request", f"not a valid {m.input_type.name} message")]
    health = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=_identity,
                                 response_deserializer=health_pb2.HealthCheckResponse.FromString)
    assert refused(health, b"\xff\xff").code() == grpc.StatusCode.INVALID_ARGUMENT
    assert health(b"", timeout=10).status == health_pb2.HealthCheckResponse.SERVING


# ============================================================================ each limit, named


def test_an_oversized_description_is_refused_before_anything_is_stored(stub: Any) -> None:
    scenario = adapter.scenario_to_proto(tiny_scenario())
    for size in (10_001, 20 * 1024 * 1024):
        err = refused(stub.CreateScenario, svc.CreateScenarioRequest(name="described", scenario=scenario,
                                                                     description="d" * size))
        assert_invalid(err, "description", f"at most 10000 characters (got {size})")
        assert err.details() == f"invalid request: description: at most 10000 characters (got {size})"
    assert refused(stub.GetScenario, svc.GetScenarioRequest(name="described")).code() == grpc.StatusCode.NOT_FOUND
    names = [s.name for s in stub.ListScenarios(svc.ListScenariosRequest(page_size=1000), timeout=30).stored_scenarios]
    assert "described" not in names
    stub.CreateScenario(svc.CreateScenarioRequest(name="described", scenario=scenario, description="d" * 10_000),
                        timeout=30)
    err = refused(stub.UpdateScenario, svc.UpdateScenarioRequest(name="described", scenario=scenario,
                                                                 description="d" * 10_001))
    assert_invalid(err, "description", "at most 10000 characters (got 10001)")
    got = stub.GetScenario(svc.GetScenarioRequest(name="described"), timeout=30).stored_scenario
    assert got.revision == 1 and len(got.description) == 10_000


def small_doc(markets: int = 2, options: int = 1, years: int = 3, growth: int = 1) -> dict[str, Any]:
    modes = ["build", "partner", "acquire", "license"]
    doc: dict[str, Any] = {
        "name": "small", "start_year": 2027, "horizon_years": years, "budget": {"limit": 10},
        "markets": [{"id": f"m{k}", "market_size": 100, "options": [
            {"mode": modes[j], "initial_share": 0.1, "margin": 0.5, "entry_cost": 3} for j in range(options)]}
            for k in range(markets)],
    }
    if growth > 1:
        doc["growth_scenarios"] = [{"name": f"g{k}", "probability": 1 / growth} for k in range(growth)]
    return doc


def test_each_scenario_limit_is_refused_naming_it(small_stub: Any) -> None:
    cases = [
        (small_doc(markets=6), "markets", "at most 5 markets per scenario on this server (got 6)"),
        (small_doc(options=3), "markets[0].options", "at most 2 options per market (got 3)"),
        (small_doc(years=7), "horizon_years", "at most 6 years per scenario on this server (got 7)"),
        (small_doc(growth=3), "growth_scenarios", "at most 2 growth scenarios per scenario on this server (got 3)"),
        (small_doc(markets=5, options=2, years=6), "markets", "at most 12 entry columns (estimated model size)"),
    ]
    for doc, field, text in cases:
        for request in (svc.SolveRequest(scenario_document=json.dumps(doc)),
                        svc.SolveRequest(scenario=adapter.scenario_to_proto(_parsed(doc)))):
            assert_invalid(refused(small_stub.Solve, request), field, text)
        # ValidateScenario answers the same violation as a successful call
        got = small_stub.ValidateScenario(svc.ValidateScenarioRequest(scenario_document=json.dumps(doc)), timeout=30)
        assert not got.valid and any(v.field == field and text in v.description for v in got.violations.field_violations)
    ok = small_stub.ValidateScenario(svc.ValidateScenarioRequest(scenario_document=json.dumps(small_doc())), timeout=30)
    assert ok.valid


def _parsed(doc: dict[str, Any]) -> Any:
    from lepton_alloc.models.scenario import parse_scenario

    return parse_scenario(doc)


def test_request_bytes_ids_and_names_are_refused_naming_the_limit(small_stub: Any, small: RunningServer) -> None:
    big = svc.ValidateScenarioRequest(scenario_document="#" * (64 * 1024 + 1))
    err = refused(small_stub.ValidateScenario, big)
    assert_invalid(err, "request", f"at most 65536 bytes (got {big.ByteSize()})")
    assert_invalid(refused(small_stub.GetJob, svc.GetJobRequest(job_id="j" * 41)), "job_id", "at most 40 characters (got 41)")
    assert_invalid(refused(small_stub.GetScenario, svc.GetScenarioRequest(name="n" * 21)), "name",
                   "at most 20 characters (got 21)")
    assert_invalid(refused(small_stub.ListJobs, svc.ListJobsRequest(page_token="t" * 65)), "page_token",
                   "at most 64 characters (got 65)")
    assert_invalid(refused(small_stub.CreateScenario, svc.CreateScenarioRequest(
        name="d", scenario_document=json.dumps(small_doc()), description="x" * 101)), "description",
        "at most 100 characters (got 101)")


def test_a_yaml_alias_bomb_is_refused_before_validation(small_stub: Any) -> None:
    flows = "[" + ", ".join(["1"] * 1000) + "]"
    doc = "\n".join(["name: bomb", "start_year: 2027", "horizon_years: 3", "budget: {limit: 10}", "markets:",
                     f"  - {{id: m0, market_size: 100, options: [{{mode: build, cash_flows: {{contribution: &f {flows}, "
                     "cost: *f, headcount: *f}}]}"]
                    + [f"  - {{id: m{k}, market_size: 100, options: [{{mode: build, cash_flows: {{contribution: *f, "
                       "cost: *f, headcount: *f}}]}" for k in range(1, 5)])
    err = refused(small_stub.CreateScenario, svc.CreateScenarioRequest(name="bomb", scenario_document=doc))
    assert_invalid(err, "<file>", "at most 5000 values per scenario document, YAML aliases expanded")
    got = small_stub.ValidateScenario(svc.ValidateScenarioRequest(scenario_document=doc), timeout=30)
    assert not got.valid and [v.field for v in got.violations.field_violations] == ["<file>"]
    # the counter itself: shared parts count every time they appear; cycles are infinite
    shared = list(range(100))
    assert document_values({"a": shared, "b": [shared, shared]}, 10_000) == 1 + 2 + 101 + 1 + 2 * 101
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    assert document_values(cyclic, 50) == 50


def test_a_scenario_is_stored_only_if_its_reply_fits_and_list_pages_stop_before_the_send_limit(
        small_stub: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    # a small document whose stored form is bigger than a reply may be: refused, nothing stored
    running = start(tmp_path_factory.mktemp("fit"), workers=1, max_request_bytes=16 * 1024,
                    max_message_bytes=48 * 1024)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}", options=CHANNEL_OPTIONS) as ch:
            stub = svc_grpc.AllocationServiceStub(ch)
            flows = "[" + ", ".join(["1.5"] * 1000) + "]"
            doc = "\n".join(["name: fat", "start_year: 2027", "horizon_years: 3", "budget: {limit: 10}", "markets:"]
                            + [f"  - {{id: m{k}, market_size: 100, options: [{{mode: build, cash_flows: "
                               f"{{contribution: {'&f ' + flows if k == 0 else '*f'}, cost: *f}}}}]}}" for k in range(8)])
            doc = doc.replace("cost: *f}}]}", "cost: [1]}}]}", 1)
            assert len(doc) < 16 * 1024
            err = refused(stub.CreateScenario, svc.CreateScenarioRequest(name="fat", scenario_document=doc))
            assert_invalid(err, "scenario", "a reply holds at most 49152 bytes on this server")
            assert refused(stub.GetScenario, svc.GetScenarioRequest(name="fat")).code() == grpc.StatusCode.NOT_FOUND
            # scenarios of ~10 KB each: a default page of 50 would not fit 48 KiB; pages stop early
            medium = "\n".join(["name: medium", "start_year: 2027", "horizon_years: 3", "budget: {limit: 10}",
                                "markets:", "  - {id: m0, market_size: 100, options: [{mode: build, cash_flows: "
                                "{contribution: " + "[" + ", ".join(["2.5"] * 600) + "]}}]}"])
            for k in range(12):
                stub.CreateScenario(svc.CreateScenarioRequest(name=f"s{k:02d}", scenario_document=medium), timeout=30)
            names, token, pages = [], "", 0
            while True:
                page = stub.ListScenarios(svc.ListScenariosRequest(page_size=50, page_token=token), timeout=30)
                assert page.ByteSize() <= 48 * 1024
                names += [s.name for s in page.stored_scenarios]
                pages += 1
                token = page.next_page_token
                if not token:
                    break
            assert names == [f"s{k:02d}" for k in range(12)] and pages > 1
    finally:
        running.stop(grace=1.0)


def test_limits_are_checked_when_the_server_starts() -> None:
    with pytest.raises(ValueError, match="max_message_bytes .* must be at least max_request_bytes"):
        Limits(max_request_bytes=10 * 1024 * 1024, max_message_bytes=1024 * 1024)
    with pytest.raises(ValueError, match="max_name_chars: at most 64"):
        Limits(max_name_chars=65)
    with pytest.raises(ValueError, match="max_streams_per_caller cannot exceed max_streams"):
        Limits(max_streams=4, max_streams_per_caller=8)


# ============================================================================ streams and the validation gate


def test_100_open_watch_streams_from_one_client_leave_health_and_get_job_answering(server: RunningServer) -> None:
    address = f"127.0.0.1:{server.port}"
    with AllocationClient(address, timeout=60) as client, grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
        job = client.submit(slow_scenario(seed=11), time_limit_seconds=60)
        stub = svc_grpc.AllocationServiceStub(ch)
        calls = [stub.WatchJob(svc.WatchJobRequest(job_id=job.job_id), timeout=120) for _ in range(100)]
        try:
            assert wait_until(lambda: sum(c.done() for c in calls) >= 68, 30)
            time.sleep(0.5)
            done = [c for c in calls if c.done()]
            assert len(done) == 68
            for c in done:
                assert c.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (c.code(), c.details())
                assert c.details() == "too many open streams for this caller (limit 32); close some"
            opened = [c for c in calls if not c.done()]
            assert len(opened) == 32
            for c in opened[:3]:
                assert next(c).event.WhichOneof("event") is not None  # the open ones stream events
            health = health_pb2_grpc.HealthStub(ch)
            for _ in range(20):
                t = time.monotonic()
                assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == \
                    health_pb2.HealthCheckResponse.SERVING
                assert client.get_job(job.job_id, timeout=5).job_id == job.job_id
                assert time.monotonic() - t < 2.0
            # another caller (another connection) is not blocked by this one's streams
            with grpc.insecure_channel(address, options=CHANNEL_OPTIONS + [("grpc.use_local_subchannel_pool", 1)]) as own:
                other = svc_grpc.AllocationServiceStub(own).WatchJob(svc.WatchJobRequest(job_id=job.job_id), timeout=30)
                assert next(other).event.WhichOneof("event") is not None
                other.cancel()
        finally:
            for c in calls:
                c.cancel()
            client.cancel(job.job_id)
        # the slots are given back once the streams end: this client may open 32 streams again
        # (health Watch streams stay open as long as the client wants)
        health = health_pb2_grpc.HealthStub(ch)

        def reopened() -> bool:
            tries = [health.Watch(health_pb2.HealthCheckRequest(), timeout=30) for _ in range(32)]
            time.sleep(0.5)
            ok = not any(t.done() for t in tries)
            for t in tries:
                t.cancel()
            return ok

        assert wait_until(reopened, 20, step=0.5)


def test_the_global_stream_cap_leaves_the_server_answering(small: RunningServer, small_stub: Any) -> None:
    address = f"127.0.0.1:{small.port}"
    job = small_stub.SubmitSolve(svc.SubmitSolveRequest(scenario=adapter.scenario_to_proto(tiny_scenario())),
                                 timeout=30).job
    channels = [grpc.insecure_channel(address, options=CHANNEL_OPTIONS + [("grpc.use_local_subchannel_pool", 1)])
                for _ in range(3)]
    try:
        # three callers (connections), three streams each (health Watch streams stay open): the
        # global cap of 6 refuses the last three
        watches = []
        for ch in channels:
            health = health_pb2_grpc.HealthStub(ch)
            watches += [health.Watch(health_pb2.HealthCheckRequest(), timeout=60) for _ in range(3)]
            time.sleep(0.3)
        assert wait_until(lambda: sum(w.done() for w in watches) >= 3, 20)
        refusals = [w for w in watches if w.done()]
        assert len(refusals) == 3
        assert all(w.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for w in refusals)
        assert all(w.details() == "too many open streams on this server (limit 6); close some" for w in refusals)
        assert small_stub.GetJob(svc.GetJobRequest(job_id=job.job_id), timeout=5).job.job_id == job.job_id
        assert health_pb2_grpc.HealthStub(channels[0]).Check(health_pb2.HealthCheckRequest(), timeout=5).status == \
            health_pb2.HealthCheckResponse.SERVING
        for w in watches:
            w.cancel()
    finally:
        for ch in channels:
            ch.close()


def test_too_many_solve_calls_in_progress_are_refused_with_a_retry_delay(tmp_path: Any) -> None:
    # two long Solve calls fill the caller's places (max_streams_per_caller 2): a third Solve is
    # RESOURCE_EXHAUSTED with a google.rpc.RetryInfo, the job manager's estimate (no job has ended:
    # the first guess, one second over the one worker); a stream refused for the same reason has none
    running = start(tmp_path, workers=1, max_streams=4, max_streams_per_caller=2)
    address = f"127.0.0.1:{running.port}"
    try:
        with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as ch, \
                AllocationClient(address, timeout=60) as client:
            stub = svc_grpc.AllocationServiceStub(ch)
            slow = svc.SolveRequest(scenario=adapter.scenario_to_proto(slow_scenario(seed=3)))
            calls = [stub.Solve.future(slow, timeout=120) for _ in range(2)]
            assert wait_until(lambda: len(client.list_jobs()[0]) == 2, 20)  # both calls hold their places
            try:
                err = refused(stub.Solve, svc.SolveRequest(scenario=adapter.scenario_to_proto(tiny_scenario())))
                assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert err.details() == ("too many Solve and ExplainJob calls in progress for this caller (limit 2); "
                                         "wait for some to finish")
                details = rpc_status.from_call(err).details
                assert len(details) == 1 and details[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)
                info = error_details_pb2.RetryInfo()
                details[0].Unpack(info)
                assert info.retry_delay.ToNanoseconds() == 1_000_000_000
                # ... which the Python client reads as AllocationError.retry_after
                assert AllocationError.from_rpc_error(err).retry_after == pytest.approx(1.0)
            finally:
                for call in calls:
                    call.cancel()
    finally:
        running.stop(grace=0.5)


def test_the_validation_gate_lets_one_large_scenario_through_at_a_time() -> None:
    gate = ValidationGate(slots=1, waiting=1, threshold=100)
    inside, peak, errors, delays = [0], [0], [], []
    lock = threading.Lock()

    def validate(size: int) -> None:
        try:
            with gate.turn(size):
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.3)
                with lock:
                    inside[0] -= 1
        except GateBusy as exc:
            errors.append(str(exc))
            delays.append(exc.retry_after)

    threads = [threading.Thread(target=validate, args=(1000,)) for _ in range(3)]
    threads.append(threading.Thread(target=validate, args=(10,)))  # small: no turn needed
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert peak[0] == 2  # one large at a time, plus the small one beside it
    assert errors == ["too many large scenarios waiting for validation (limit 1); retry later"]
    # the refusal's retry delay: one validating and one waiting, at the first guess of a second
    # each, over the one slot; then the typical length follows the two 0.3 s validations that
    # ended (exponential mean, weight 0.2: 1 -> 0.86 -> 0.75)
    assert delays == [pytest.approx(2.0)]
    assert 0.74 <= gate.retry_after() <= 0.85


def test_stream_slots_count_per_caller_and_in_total() -> None:
    slots = StreamSlots(total=3, per_caller=2)
    assert slots.take("a") is None and slots.take("a") is None
    assert slots.take("a") == "for this caller (limit 2)"
    assert slots.take("b") is None
    assert slots.take("c") == "on this server (limit 3)"
    slots.give_back("a")
    assert slots.take("c") is None and slots.open_count() == 3 and slots.open_count("a") == 1
