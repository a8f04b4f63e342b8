"""Property-based tests (Hypothesis) against one real server (real workers, real SQLite file).

Thousands of random and mutated requests: the built-in example scenario with its fields mutated
(wrong types, out-of-range, nan/inf, huge and negative numbers, missing and unknown keys, unknown
ids, long strings, control characters), sent as a JSON or YAML ``scenario_document`` and as the
``scenario`` message; raw random (and corrupted valid) bytes to every method; random ids, tokens
and page sizes to the Get/Cancel/Watch/List calls. Every answer is OK, INVALID_ARGUMENT (with a
BadRequest), NOT_FOUND, ALREADY_EXISTS or FAILED_PRECONDITION – never INTERNAL or UNKNOWN, never
a traceback – and the server answers health afterwards. No solve is started (ValidateScenario,
CreateScenario, UpdateScenario and the reading calls), so the module stays well under 90 s on two
cores; it prints how many requests it made.

Reproducible: ``derandomize=True`` (the examples follow from the test's code, not the clock).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf.descriptor import FieldDescriptor
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lepton_alloc.clients.client import CHANNEL_OPTIONS
from lepton_alloc.models.loader import load_builtin_example
from lepton_alloc.proto import adapter
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2 as svc
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2_grpc as svc_grpc
from lepton_alloc.proto.lepton.allocation.v1 import stored_scenario_pb2
from lepton_alloc.server.app import RunningServer

SERVICE = "/lepton.allocation.v1.AllocationService/"
ALLOWED = {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION"}
EXAMPLE = load_builtin_example().to_dict()
EXAMPLE_PROTO = adapter.scenario_to_proto(load_builtin_example())
NAMES = [f"prop-{k}" for k in range(12)]  # few names: creates collide (ALREADY_EXISTS), updates find them
COUNTS: Counter[str] = Counter()  # answers by status code, over the module
STARTED = time.monotonic()


def _settings(n: int) -> Any:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example, HealthCheck.filter_too_much])


def _identity(b: bytes) -> bytes:
    return b


@pytest.fixture(scope="module")
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=CHANNEL_OPTIONS) as ch:
        yield ch


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> svc_grpc.AllocationServiceStub:
    return svc_grpc.AllocationServiceStub(channel)


def check(call: Any, request: Any, *, stream: bool = False, what: str = "") -> str:
    """Make the call; the answer's code must be allowed, an INVALID_ARGUMENT must carry a
    BadRequest, no message a traceback. Returns the code's name."""
    try:
        if stream:
            for _ in call(request, timeout=60):
                pass
        else:
            call(request, timeout=60)
        code = "OK"
    except grpc.RpcError as err:
        code = err.code().name
        details = err.details() or ""
        assert code in ALLOWED, f"{what}: {code} {details[:500]!r}"
        assert "Traceback" not in details and len(details) <= 1024, (what, details[:300])
        if code == "INVALID_ARGUMENT":
            status = rpc_status.from_call(err)  # type: ignore[arg-type]
            assert status is not None, f"{what}: INVALID_ARGUMENT without details: {details[:300]!r}"
            bad = error_details_pb2.BadRequest()
            assert any(d.Unpack(bad) for d in status.details), f"{what}: no BadRequest: {details[:300]!r}"
            assert bad.field_violations and all(v.field for v in bad.field_violations), what
    COUNTS[code] += 1
    return code


# ============================================================================ strategies

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)  # any valid UTF-8 text
CONTROL = st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=8)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 1e-320, 0.0, -0.0, -1.0, 1e9, 1e15, 2.5]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**9, 10**30]),
)
HOSTILE = st.one_of(
    NUMBERS,
    st.none(), st.booleans(), TEXT, CONTROL.map(lambda c: f"name{c}x"),
    st.sampled_from(["x" * 300, "y" * 20_000, "", " ", "NaN", "Infinity", "1e999", "build", "ACQUIRE", "no-such-market",
                     "\ud800", "a\udfffb"]),  # lone surrogates: JSON writes them as \ud800 escapes
    st.lists(st.integers(-3, 3), max_size=4), st.dictionaries(st.sampled_from(["a", "id", "mode", "x"]), st.integers(), max_size=2),
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*path, k))
    elif isinstance(node, list):
        for k, v in enumerate(node):
            yield from _paths(v, (*path, k))


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def mutate_document(data: st.DataObject, doc: dict[str, Any]) -> dict[str, Any]:
    """1–4 mutations somewhere in the scenario: a hostile value, a deleted key or element, an
    unknown key, a duplicated element (duplicate ids), an unknown id where ids are referenced."""
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        paths = [p for p in _paths(doc) if p]
        path = data.draw(st.sampled_from(paths), label="path")
        parent, key = _at(doc, path[:-1]), path[-1]
        kind = data.draw(st.sampled_from(["value", "value", "value", "delete", "unknown-key", "duplicate", "id"]),
                         label="kind")
        if kind == "value":
            parent[key] = data.draw(HOSTILE, label="value")
        elif kind == "delete":
            del parent[key]
        elif kind == "unknown-key" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["colour", "markets_", "Budget", "id ", ""]), label="key")] = 1
        elif kind == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        elif kind == "id" and isinstance(parent, dict):
            target = data.draw(st.sampled_from(["id", "market_id", "region", "name"]), label="id-field")
            parent[target] = data.draw(st.sampled_from(["ZZ", "US", "", "a b", "x" * 65, "US\x1b[2J"]), label="id")
    return doc


def as_text(data: st.DataObject, doc: Any) -> str:
    """The document as JSON or YAML text, sometimes with a few characters broken."""
    fmt = data.draw(st.sampled_from(["json", "yaml"]), label="format")
    try:
        text = json.dumps(doc) if fmt == "json" else yaml.dump(doc, Dumper=_DUMPER, allow_unicode=True)
    except (ValueError, yaml.YAMLError):
        text = json.dumps(doc, default=str)
    if data.draw(st.integers(0, 9), label="break") == 0 and text:
        at = data.draw(st.integers(0, len(text) - 1), label="at")
        text = text[:at] + data.draw(st.sampled_from(["", "{", "]", ":", "\t", "\x00", "&a", "*a", "'"]), label="junk") \
            + text[at + data.draw(st.integers(0, 3), label="cut"):]
    return text


_TYPE_NAMES = {getattr(FieldDescriptor, k): k for k in dir(FieldDescriptor) if k.startswith("TYPE_")}
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_INT_RANGES = {"TYPE_INT32": (-(2**31), 2**31 - 1), "TYPE_INT64": (-(2**63), 2**63 - 1),
               "TYPE_UINT32": (0, 2**32 - 1), "TYPE_UINT64": (0, 2**64 - 1)}


def mutate_message(data: st.DataObject, msg: Any, depth: int = 0) -> None:
    """Set one scalar somewhere below ``msg`` to a hostile value of its type, or drop, add or
    clear a repeated element."""
    fd = msg.DESCRIPTOR
    field = data.draw(st.sampled_from(list(fd.fields)), label=f"field@{depth}")
    ftype = _TYPE_NAMES.get(field.type, "")
    repeated = field.is_repeated
    if field.message_type is not None:
        if repeated:
            items = getattr(msg, field.name)
            choice = data.draw(st.integers(0, 9), label="repeated")
            if len(items) and choice < 7:
                mutate_message(data, items[data.draw(st.integers(0, len(items) - 1), label="index")], depth + 1)
            elif len(items) and choice < 9:
                del items[data.draw(st.integers(0, len(items) - 1), label="index")]
            else:
                items.add()
        elif depth < 8:
            mutate_message(data, getattr(msg, field.name), depth + 1)
        return
    if ftype in ("TYPE_DOUBLE", "TYPE_FLOAT"):
        value: Any = data.draw(st.floats(allow_nan=True, allow_infinity=True, width=64 if ftype == "TYPE_DOUBLE" else 32)
                               | st.sampled_from([1e308, -1e308, -1.0, 0.0]), label="float")
    elif ftype in _INT_RANGES:
        lo, hi = _INT_RANGES[ftype]
        value = data.draw(st.integers(lo, hi) | st.sampled_from([lo, hi, 0, -1 if lo < 0 else 0]), label="int")
    elif ftype == "TYPE_STRING":
        value = data.draw(TEXT | CONTROL | st.sampled_from(["x" * 300, "z" * 20_000, "", "build", "US"]), label="text")
    elif ftype == "TYPE_ENUM":
        value = data.draw(st.integers(-3, 40), label="enum")
    elif ftype == "TYPE_BOOL":
        value = data.draw(st.booleans(), label="bool")
    else:
        return
    if repeated:
        getattr(msg, field.name).append(value)
    else:
        setattr(msg, field.name, value)


# ============================================================================ scenarios


@_settings(1500)
@given(data=st.data())
def test_mutated_scenario_documents(stub: Any, data: st.DataObject) -> None:
    text = as_text(data, mutate_document(data, EXAMPLE))
    target = data.draw(st.sampled_from(["validate", "validate", "create", "update"]), label="call")
    name = data.draw(st.sampled_from(NAMES), label="name")
    if target == "validate":
        check(stub.ValidateScenario, svc.ValidateScenarioRequest(scenario_document=text), what="ValidateScenario doc")
    elif target == "create":
        check(stub.CreateScenario, svc.CreateScenarioRequest(name=name, scenario_document=text,
                                                             description=data.draw(TEXT | CONTROL, label="description")),
              what="CreateScenario doc")
    else:
        check(stub.UpdateScenario, svc.UpdateScenarioRequest(name=name, scenario_document=text), what="UpdateScenario doc")


@_settings(1000)
@given(data=st.data())
def test_mutated_scenario_messages(stub: Any, data: st.DataObject) -> None:
    msg = type(EXAMPLE_PROTO)()
    msg.CopyFrom(EXAMPLE_PROTO)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        mutate_message(data, msg)
    if data.draw(st.booleans(), label="validate"):
        check(stub.ValidateScenario, svc.ValidateScenarioRequest(scenario=msg), what="ValidateScenario message")
    else:
        check(stub.CreateScenario, svc.CreateScenarioRequest(name=data.draw(st.sampled_from(NAMES), label="name"),
                                                             scenario=msg), what="CreateScenario message")


EX_JSON = json.dumps(EXAMPLE)


@st.composite
def hostile_documents(draw: Any) -> str:
    """Whole documents no mutation of the example reaches: deep nesting, integers of thousands of
    digits, YAML aliases (also cyclic) and tags, escaped lone surrogates, several documents."""
    depth = draw(st.integers(10, 60_000))
    n = draw(st.integers(1, 6000))
    return draw(st.sampled_from([
        '{"a": ' * depth + "1" + "}" * depth,
        "[" * depth + "]" * depth,
        "a: " + "[" * depth + "]" * depth,
        "".join("  " * i + "a:\n" for i in range(min(depth, 3000))),
        EX_JSON.replace('"horizon_years": 8', f'"horizon_years": {"9" * n}'),
        EX_JSON.replace('"market_size": 9000.0', f'"market_size": 1{"0" * n}'),
        f"horizon_years: {'9' * n}\n",
        EX_JSON.replace('"name": "United States"', '"name": "\\ud800"'),
        EX_JSON.replace('"id": "US"', '"id": "\\udc00"'),
        "name: \"\\ud800\"\nhorizon_years: 3\n",
        "a: &a [*a]\nmarkets: *a\n",
        "base: &b {id: A, market_size: 1}\nmarkets: [{<<: *b, options: []}]\nhorizon_years: 2\nstart_year: 2027\n",
        "f: &f [" + ", ".join(["1"] * 1000) + "]\nmarkets: [" + ", ".join(["*f"] * 2000) + "]\n",
        "name: !!binary aGVsbG8=\n", "markets: !!set {a, b}\n", "start_year: 2027-01-01\n", "? [a, b]\n: 1\n",
        "a: !!python/object/apply:os.system ['true']\n", "a: 1\n---\nb: 2\n", "\ufeffname: x\n", "name: \x00\n",
        "", "# only a comment\n", "null", "[]", "7", '"text"', "{}", '{"markets": null}', "{" * n,
    ]))


@_settings(150)
@given(doc=hostile_documents())
def test_hostile_documents(stub: Any, doc: str) -> None:
    check(stub.ValidateScenario, svc.ValidateScenarioRequest(scenario_document=doc), what=f"ValidateScenario {doc[:60]!r}")
    check(stub.CreateScenario, svc.CreateScenarioRequest(name="hostile", scenario_document=doc),
          what=f"CreateScenario {doc[:60]!r}")


# ============================================================================ raw bytes

METHODS = svc.DESCRIPTOR.services_by_name["AllocationService"].methods
UNARY = [m for m in METHODS if not m.server_streaming]
# corrupted valid requests go only where no solve can start
NO_SOLVE = [m for m in UNARY if m.name not in ("Solve", "SubmitSolve", "SubmitSweep")]
SAMPLES: dict[str, bytes] = {
    "ValidateScenario": svc.ValidateScenarioRequest(scenario=EXAMPLE_PROTO).SerializeToString(),
    "CreateScenario": svc.CreateScenarioRequest(name="raw", scenario=EXAMPLE_PROTO, description="d").SerializeToString(),
    "UpdateScenario": svc.UpdateScenarioRequest(name="raw", scenario_document=json.dumps(EXAMPLE)).SerializeToString(),
    "GetJob": svc.GetJobRequest(job_id="0123456789abcdef").SerializeToString(),
    "CancelJob": svc.CancelJobRequest(job_id="0123456789abcdef").SerializeToString(),
    "ListJobs": svc.ListJobsRequest(page_size=5, page_token="am9iOjU=", state=1, view=2).SerializeToString(),
    "ListScenarios": svc.ListScenariosRequest(page_size=5, page_token="c2NlbmFyaW86YQ==").SerializeToString(),
    "GetScenario": svc.GetScenarioRequest(name="raw", revision=1).SerializeToString(),
    "DeleteScenario": svc.DeleteScenarioRequest(name="raw").SerializeToString(),
    "ExplainJob": svc.ExplainJobRequest(job_id="j", relative_step=0.1, time_budget_seconds=1).SerializeToString(),
    "ComparePlans": svc.ComparePlansRequest(base_job_id="a", other_job_id="b").SerializeToString(),
    "GetSweep": svc.GetSweepRequest(job_id="s", page_size=3, page_token="after:1").SerializeToString(),
}


@_settings(800)
@given(data=st.data())
def test_random_bytes_to_every_unary_method(channel: Any, data: st.DataObject) -> None:
    m = data.draw(st.sampled_from(UNARY), label="method")
    payload = data.draw(st.binary(max_size=400) | st.sampled_from([b"", b"\xff" * 64, b"\x0a\xff\xff\xff\xff\x0f"]),
                        label="bytes")
    call = channel.unary_unary(SERVICE + m.name, request_serializer=_identity, response_deserializer=_identity)
    check(call, payload, what=f"{m.name} random bytes {payload[:40]!r}")


@_settings(600)
@given(data=st.data())
def test_corrupted_valid_requests(channel: Any, data: st.DataObject) -> None:
    m = data.draw(st.sampled_from([m for m in NO_SOLVE if m.name in SAMPLES]), label="method")
    payload = bytearray(SAMPLES[m.name])
    for _ in range(data.draw(st.integers(1, 6), label="flips")):
        at = data.draw(st.integers(0, len(payload) - 1), label="at")
        how = data.draw(st.sampled_from(["set", "cut", "insert"]), label="how")
        if how == "set":
            payload[at] = data.draw(st.integers(0, 255), label="byte")
        elif how == "cut":
            del payload[at:at + data.draw(st.integers(1, 8), label="n")]
        else:
            payload[at:at] = data.draw(st.binary(min_size=1, max_size=8), label="inserted")
        if not payload:
            break
    call = channel.unary_unary(SERVICE + m.name, request_serializer=_identity, response_deserializer=_identity)
    check(call, bytes(payload), what=f"{m.name} corrupted")


@_settings(150)
@given(data=st.data())
def test_random_bytes_to_watch_streams(channel: Any, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["WatchJob", "WatchSweep"]), label="method")
    payload = data.draw(st.binary(max_size=200), label="bytes")
    call = channel.unary_stream(SERVICE + name, request_serializer=_identity, response_deserializer=_identity)
    check(call, payload, stream=True, what=f"{name} random bytes {payload[:40]!r}")


# ============================================================================ random ids, tokens, pages

IDS = TEXT | CONTROL | st.sampled_from(["", "x" * 129, "y" * 20_000, "0" * 32, "../etc/passwd", "%00", "'; DROP TABLE jobs;--"])
TOKENS = TEXT | st.sampled_from(["am9iOjkyMjMzNzIwMzY4NTQ3NzU4MDg=", "am9iOi0x", "am9iOmFiYw==", "c2NlbmFyaW86", "====",
                                 "after:-1", "after:99999999999", "after:²", "t" * 257])


@_settings(1000)
@given(data=st.data())
def test_random_ids_tokens_and_pages(stub: Any, data: st.DataObject) -> None:
    i32 = st.integers(-(2**31), 2**31 - 1)
    which = data.draw(st.sampled_from(["get", "cancel", "watch", "watch_sweep", "explain", "compare", "sweep_page",
                                       "list_jobs", "list_scenarios", "get_scenario", "delete_scenario", "solve_ref"]),
                      label="call")
    job_id = data.draw(IDS, label="id")
    if which == "get":
        check(stub.GetJob, svc.GetJobRequest(job_id=job_id), what="GetJob")
    elif which == "cancel":
        check(stub.CancelJob, svc.CancelJobRequest(job_id=job_id), what="CancelJob")
    elif which == "watch":
        check(stub.WatchJob, svc.WatchJobRequest(job_id=job_id), stream=True, what="WatchJob")
    elif which == "watch_sweep":
        check(stub.WatchSweep, svc.WatchSweepRequest(job_id=job_id), stream=True, what="WatchSweep")
    elif which == "explain":
        check(stub.ExplainJob, svc.ExplainJobRequest(job_id=job_id, relative_step=data.draw(NUMBERS.filter(
            lambda x: isinstance(x, float)), label="step")), what="ExplainJob")
    elif which == "compare":
        check(stub.ComparePlans, svc.ComparePlansRequest(base_job_id=job_id, other_job_id=data.draw(IDS, label="other")),
              what="ComparePlans")
    elif which == "sweep_page":
        check(stub.GetSweep, svc.GetSweepRequest(job_id=job_id, page_size=data.draw(i32, label="size"),
                                                 page_token=data.draw(TOKENS, label="token")), what="GetSweep")
    elif which == "list_jobs":
        check(stub.ListJobs, svc.ListJobsRequest(page_size=data.draw(i32, label="size"),
                                                 page_token=data.draw(TOKENS, label="token"),
                                                 state=data.draw(st.integers(-2, 12), label="state"),
                                                 view=data.draw(st.integers(-2, 5), label="view")), what="ListJobs")
    elif which == "list_scenarios":
        check(stub.ListScenarios, svc.ListScenariosRequest(page_size=data.draw(i32, label="size"),
                                                           page_token=data.draw(TOKENS, label="token")),
              what="ListScenarios")
    elif which == "get_scenario":
        req = svc.GetScenarioRequest(name=data.draw(IDS | st.sampled_from(NAMES), label="name"))
        if data.draw(st.booleans(), label="with revision"):
            req.revision = data.draw(st.integers(-(2**63), 2**63 - 1), label="revision")
        check(stub.GetScenario, req, what="GetScenario")
    elif which == "delete_scenario":
        check(stub.DeleteScenario, svc.DeleteScenarioRequest(name=data.draw(IDS, label="name")), what="DeleteScenario")
    else:  # a solve of a stored scenario that does not exist (random names; never one of NAMES)
        ref = stored_scenario_pb2.ScenarioRef(name="zz-" + job_id[:40])
        check(stub.Solve, svc.SolveRequest(scenario_ref=ref), what="Solve by unknown ref")


def test_the_server_answers_health_afterwards(server: RunningServer, channel: Any, stub: Any,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
    # the reading calls still work over everything that was stored
    names, token = [], ""
    while True:
        page = stub.ListScenarios(svc.ListScenariosRequest(page_size=1000, page_token=token), timeout=30)
        names += [s.name for s in page.stored_scenarios]
        token = page.next_page_token
        if not token:
            break
    for name in names:
        stub.GetScenario(svc.GetScenarioRequest(name=name), timeout=30)
    total = sum(COUNTS.values())
    with capsys.disabled():
        print(f"\n[test_properties] {total} requests in {time.monotonic() - STARTED:.1f} s; answers: "
              + ", ".join(f"{k} {v}" for k, v in COUNTS.most_common()))
    assert COUNTS["INTERNAL"] == 0 and COUNTS["UNKNOWN"] == 0
