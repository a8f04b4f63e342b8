"""Random bad input never yields INTERNAL, never stores anything invalid, and the server keeps serving."""

from __future__ import annotations

import math
import random
from typing import Any

import grpc

from lepton_alloc.clients.client import AllocationClient, AllocationError
from lepton_alloc.models.loader import load_builtin_example
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2 as svc
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2_grpc as svc_grpc
from lepton_alloc.proto import adapter as convert
from lepton_alloc.server.app import RunningServer

from .conftest import TINY_OPTIMUM, tiny_scenario

FD = Any
BAD_DOUBLES = [math.nan, math.inf, -math.inf, -1.0, 0.0, 1e300, -1e300, 2.5, 1e-12]
BAD_INTS = [-5, 0, 1, 10**9, -(10**9)]
BAD_TEXT = ["", "a b", "x" * 300, "DE", "US", "\n", "ACQUIRE"]


def _mutate(msg: Any, rng: random.Random, depth: int = 0) -> None:
    """Set one random scalar somewhere below ``msg`` to a hostile value (or clear a list)."""
    fields = list(msg.DESCRIPTOR.fields)
    rng.shuffle(fields)
    for f in fields:
        if f.message_type is not None:
            if f.is_repeated:
                items = getattr(msg, f.name)
                if not len(items):
                    continue
                if rng.random() < 0.15:
                    del items[rng.randrange(len(items))]
                    return
                _mutate(items[rng.randrange(len(items))], rng, depth + 1)
                return
            if depth < 6 and rng.random() < 0.7:
                _mutate(getattr(msg, f.name), rng, depth + 1)
                return
            continue
        if f.is_repeated:
            values = getattr(msg, f.name)
            if f.type in (f.TYPE_DOUBLE, f.TYPE_FLOAT):
                values.append(rng.choice(BAD_DOUBLES))
            elif f.type == f.TYPE_STRING:
                values.append(rng.choice(BAD_TEXT))
            elif f.type in (f.TYPE_INT32, f.TYPE_INT64):
                values.append(rng.choice(BAD_INTS))
            else:
                continue
            return
        if f.type in (f.TYPE_DOUBLE, f.TYPE_FLOAT):
            setattr(msg, f.name, rng.choice(BAD_DOUBLES))
        elif f.type in (f.TYPE_INT32, f.TYPE_INT64):
            setattr(msg, f.name, rng.choice(BAD_INTS))
        elif f.type == f.TYPE_STRING:
            setattr(msg, f.name, rng.choice(BAD_TEXT))
        elif f.type == f.TYPE_ENUM:
            setattr(msg, f.name, rng.choice([0, 1, 2, 3, 77]))
        elif f.type == f.TYPE_BOOL:
            setattr(msg, f.name, not getattr(msg, f.name))
        else:
            continue
        return


def test_random_bad_scenarios_are_invalid_argument_never_internal(server: RunningServer, client: AllocationClient) -> None:
    rng = random.Random(2027)
    base = convert.scenario_to_proto(load_builtin_example())
    stub = svc_grpc.AllocationServiceStub(grpc.insecure_channel(f"127.0.0.1:{server.port}"))
    codes: dict[str, int] = {}
    for k in range(150):
        msg = type(base)()
        msg.CopyFrom(base)
        for _ in range(rng.randint(1, 4)):
            _mutate(msg, rng)
        try:
            stub.CreateScenario(svc.CreateScenarioRequest(name=f"fuzz-{k}", scenario=msg), timeout=20)
            code = "OK"
        except grpc.RpcError as err:
            code = err.code().name
            assert code == "INVALID_ARGUMENT", (code, err.details())
            parsed = AllocationError.from_rpc_error(err)
            assert parsed.violations, "INVALID_ARGUMENT without field violations"
            assert all(v.field for v in parsed.violations)
            assert "Traceback" not in (err.details() or "")
        codes[code] = codes.get(code, 0) + 1
    assert codes.get("INVALID_ARGUMENT", 0) > 50  # the mutations really were bad, mostly
    # whatever was accepted round-trips as a valid scenario; the server still solves correctly
    stored, _ = client.list_scenarios(page_size=1000)
    assert len([s for s in stored if s.name.startswith("fuzz-")]) == codes.get("OK", 0)
    assert client.solve(tiny_scenario()).objective_value == TINY_OPTIMUM
