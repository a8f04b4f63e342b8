"""The service from a generic gRPC tool in another language: `buf curl` (Go) through server reflection.

No proto file is given to buf: it learns every request and response type from the server's
reflection service, encodes the JSON request itself and prints the response as JSON. buf comes
from the npm package @bufbuild/buf@1.75.0, installed into .tools/ by `.ci/ensure-buf`; `make test`
passes its path in LEPTON_BUF. Run directly with pytest (LEPTON_BUF unset), the test calls
`.ci/ensure-buf` itself; it is skipped only when buf cannot be installed (no npm, no registry).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.json_format import MessageToDict
from google.rpc import error_details_pb2

from lepton_alloc.models import load_builtin_example, solve_scenario
from lepton_alloc.models.loader import builtin_example_path
from lepton_alloc.models.status import SolveStatus
from lepton_alloc.proto.adapter import scenario_to_proto
from lepton_alloc.server.app import RunningServer

REPO = Path(__file__).resolve().parents[2]
SERVICE = "lepton.allocation.v1.AllocationService"
INVALID_ARGUMENT_EXIT = 3 << 3  # buf curl exits with the gRPC code shifted three bits left

BAD_DOCUMENT = """\
name: bad
start_year: 2027
horizon_years: 3
markets:
  - id: A
    market_size: 100
    options:
      - mode: build
        initial_share: 0.1
        margin: 2
        entry_cost: 3
budget:
  limit: 10
solver:
  time_limit_sconds: 5
"""


@pytest.fixture(scope="module")
def buf() -> str:
    path = os.environ.get("LEPTON_BUF")
    if path is None:  # not started by `make test`: find or install it the same way
        proc = subprocess.run([str(REPO / ".ci" / "ensure-buf")], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            pytest.skip(f"buf curl unavailable: {proc.stderr.strip()}")
        path = proc.stdout.strip().splitlines()[-1]
    if not path:
        pytest.skip("buf curl unavailable: .ci/ensure-buf could not install @bufbuild/buf@1.75.0 (its reason is printed above the test output)")
    if not os.access(path, os.X_OK):
        pytest.fail(f"LEPTON_BUF={path!r} is not an executable")
    return path


def buf_curl(buf: str, port: int, method: str, body: dict[str, Any], service: str = SERVICE) -> subprocess.CompletedProcess[str]:
    """One call through reflection over plain-text HTTP/2 with the gRPC protocol; the body on stdin."""
    cmd = [buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--data", "@-",
           f"http://127.0.0.1:{port}/{service}/{method}"]
    return subprocess.run(cmd, input=json.dumps(body), capture_output=True, text=True, timeout=180)


def ok_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, f"buf curl failed (exit {proc.returncode}): {proc.stderr}"
    return json.loads(proc.stdout)


def error_json(proc: subprocess.CompletedProcess[str], exit_code: int) -> dict[str, Any]:
    """buf curl's error report (stderr): {"code": "invalid_argument", "message": ..., "details": [...]}."""
    assert proc.returncode == exit_code, f"exit {proc.returncode}, stdout {proc.stdout!r}, stderr {proc.stderr!r}"
    assert proc.stdout == ""
    return json.loads(proc.stderr)


def bad_request_violations(error: dict[str, Any]) -> dict[str, str]:
    """field -> description of the one google.rpc.BadRequest detail of a buf curl error report.

    buf curl prints a detail as {"type", "value" (base64 of the message, unpadded), "debug" (the
    decoded message as JSON)}; it fills "debug" only for message types compiled into the buf
    binary (connect-go's ErrorWriter uses the Go global type registry, not the server's
    reflection). buf 1.75.0 links google.protobuf.Duration, for example, but not google.rpc
    error_details, so for google.rpc.BadRequest it prints type and value only. The test decodes
    "value" itself, and reads "debug" too when a future buf supplies it.
    """
    details = [d for d in error["details"] if d["type"] == "google.rpc.BadRequest"]
    assert len(details) == 1, error
    value = details[0]["value"]
    decoded = error_details_pb2.BadRequest.FromString(base64.b64decode(value + "=" * (-len(value) % 4)))
    violations = {v.field: v.description for v in decoded.field_violations}
    if "debug" in details[0]:
        debug = details[0]["debug"]
        assert {v["field"]: v["description"] for v in debug["fieldViolations"]} == violations
    return violations


def test_solve_document_matches_local_solve(buf: str, server: RunningServer) -> None:
    document = builtin_example_path().read_text(encoding="utf-8")
    reply = ok_json(buf_curl(buf, server.port, "Solve", {"scenario_document": document, "options": {"mip_rel_gap": 0}}))
    result = reply["result"]
    assert result["status"] == "SOLVE_STATUS_OPTIMAL", result.get("message")
    assert reply["jobId"]

    scenario = load_builtin_example()
    local = solve_scenario(scenario, mip_rel_gap=0)
    assert local.status is SolveStatus.OPTIMAL
    assert result["objectiveValue"] == pytest.approx(local.objective_value, rel=1e-6)
    assert result["scenarioSha256"] == scenario.sha256()


def test_inline_scenario_without_objective_kind_is_invalid_argument(buf: str, server: RunningServer) -> None:
    scenario = MessageToDict(scenario_to_proto(load_builtin_example()))
    scenario["objective"] = {}  # kind unset: OBJECTIVE_KIND_UNSPECIFIED on the wire
    error = error_json(buf_curl(buf, server.port, "Solve", {"scenario": scenario}), INVALID_ARGUMENT_EXIT)
    assert error["code"] == "invalid_argument"
    assert "objective.kind" in error["message"]
    violations = bad_request_violations(error)
    assert list(violations) == ["objective.kind"]
    assert "required" in violations["objective.kind"]


def test_invalid_document_reports_every_violation_including_misspelled_key(buf: str, server: RunningServer) -> None:
    error = error_json(buf_curl(buf, server.port, "Solve", {"scenario_document": BAD_DOCUMENT}), INVALID_ARGUMENT_EXIT)
    assert error["code"] == "invalid_argument"
    violations = bad_request_violations(error)
    assert set(violations) == {"markets[0].options[0].margin", "solver.time_limit_sconds"}
    assert violations["markets[0].options[0].margin"] == "must be between 0 and 1, got 2"
    assert violations["solver.time_limit_sconds"] == "unknown field"

    # The same violations as a response field of ValidateScenario: here buf decodes them itself.
    reply = ok_json(buf_curl(buf, server.port, "ValidateScenario", {"scenario_document": BAD_DOCUMENT}))
    assert reply.get("valid", False) is False
    assert {v["field"]: v["description"] for v in reply["violations"]["fieldViolations"]} == violations
    assert "scenarioSha256" not in reply and "modelSize" not in reply


def test_validate_document(buf: str, server: RunningServer) -> None:
    document = builtin_example_path().read_text(encoding="utf-8")
    reply = ok_json(buf_curl(buf, server.port, "ValidateScenario", {"scenario_document": document}))
    assert reply["valid"] is True
    assert reply["scenarioSha256"] == load_builtin_example().sha256()
    size = reply["modelSize"]
    assert int(size["entryColumns"]) > 0  # int64: a JSON string
    assert size["markets"] == 20 and size["years"] == 10 and size["growthScenarios"] == 3
    assert "violations" not in reply


def test_reflection_serves_bad_request_type(buf: str, server: RunningServer) -> None:
    """The schema a generic tool needs to read the error details is on the wire (v1alpha reflection)."""
    proc = buf_curl(buf, server.port, "ServerReflectionInfo", {"file_containing_symbol": "google.rpc.BadRequest"},
                    service="grpc.reflection.v1alpha.ServerReflection")
    reply = ok_json(proc)
    files = [descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(b))
             for b in reply["fileDescriptorResponse"]["fileDescriptorProto"]]
    error_details = [f for f in files if f.name == "google/rpc/error_details.proto"]
    assert error_details, [f.name for f in files]
    bad_request = next(m for m in error_details[0].message_type if m.name == "BadRequest")
    assert "FieldViolation" in [n.name for n in bad_request.nested_type]
