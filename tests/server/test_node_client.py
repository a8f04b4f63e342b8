"""The service from a Node.js client (@grpc/grpc-js + protobufjs) that learns every type by reflection.

tests/server/node/call.mjs makes one unary call the way a Node.js service with @grpc/grpc-js and
protobufjs-based loading (@grpc/proto-loader) would, except that it is given no .proto file: it
fetches the FileDescriptorProtos from the server's reflection service, loads them with
`protoLoader.loadFileDescriptorSetFromBuffer`, sends the request object through protobufjs
`fromObject`, and on an error decodes the `grpc-status-details-bin` trailer (google.rpc.Status,
then the google.rpc.BadRequest in its details) with descriptors that reflection served too.

The packages are pinned in tests/server/node/package-lock.json and installed into the ignored
tests/server/node/node_modules by `.ci/ensure-node-deps`; `make test` passes the node to use in
LEPTON_NODE. Run directly with pytest (LEPTON_NODE unset), the test calls the script itself; it is
skipped only when node/npm are missing or the packages cannot be installed.

What protobufjs does with the mistakes a scenario file invites, and what the server makes of it:
an enum value written as the file's lowercase word (`kind: risk_adjusted_npv`) is not an enum
name, so `fromObject` leaves the field unset and 0 (OBJECTIVE_KIND_UNSPECIFIED) goes on the wire
without a word: the server answers INVALID_ARGUMENT naming `objective.kind` instead of solving
for a default objective. A misspelled key (`time_limit_sconds`) is dropped by `fromObject` just as
silently, and there the server cannot tell: the inline call succeeds with the time limit left
at its default. Sent as `scenario_document` (the file's text), the same key is reported.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict

from lepton_alloc.models import load_builtin_example, solve_scenario
from lepton_alloc.models.loader import builtin_example_path, parse_text
from lepton_alloc.models.scenario import parse_scenario
from lepton_alloc.models.status import SolveStatus
from lepton_alloc.proto.adapter import scenario_to_proto
from lepton_alloc.server.app import RunningServer

REPO = Path(__file__).resolve().parents[2]
CALL = REPO / "tests" / "server" / "node" / "call.mjs"
INVALID_ARGUMENT = 3


@pytest.fixture(scope="module")
def node() -> str:
    path = os.environ.get("LEPTON_NODE")
    if path is None:  # not started by `make test`: find node and install the packages the same way
        proc = subprocess.run([str(REPO / ".ci" / "ensure-node-deps")], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            pytest.skip(f"Node.js client unavailable: {proc.stderr.strip()}")
        path = proc.stdout.strip().splitlines()[-1]
    if not path:
        pytest.skip("Node.js client unavailable: .ci/ensure-node-deps found no node >= 18 or could not install "
                    "tests/server/node's packages (its reason is printed above the test output)")
    if not os.access(path, os.X_OK):
        pytest.fail(f"LEPTON_NODE={path!r} is not an executable")
    return path


def node_call(node: str, port: int, method: str, request: dict[str, Any]) -> dict[str, Any]:
    """One call through call.mjs; its JSON answer ({"ok": true, "response"} or {"ok": false, "code", ...})."""
    command = {"address": f"127.0.0.1:{port}", "method": method, "request": request, "timeout_seconds": 120}
    proc = subprocess.run([node, str(CALL)], input=json.dumps(command), capture_output=True, text=True,
                          timeout=180, cwd=CALL.parent)
    assert proc.returncode == 0, f"call.mjs failed (exit {proc.returncode}): {proc.stderr}"
    answer: dict[str, Any] = json.loads(proc.stdout)
    # Everything came from reflection, the error details' types included.
    assert "lepton/allocation/v1/allocation_service.proto" in answer["reflected_files"]
    return answer


def ok_response(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["ok"] is True, answer
    response: dict[str, Any] = answer["response"]
    return response


def bad_request(answer: dict[str, Any]) -> dict[str, str]:
    """field -> description of the google.rpc.BadRequest that call.mjs decoded from the trailer."""
    assert answer["ok"] is False, answer
    assert answer["code"] == INVALID_ARGUMENT and answer["code_name"] == "INVALID_ARGUMENT", answer
    assert [d["type"] for d in answer["status_details"]] == ["google.rpc.BadRequest"], answer
    assert answer["status_code"] == INVALID_ARGUMENT
    assert "google/rpc/error_details.proto" in answer["reflected_files"]
    violations = [(v["field"], v["description"]) for v in answer["bad_request"]]
    assert len(dict(violations)) == len(violations), violations
    return dict(violations)


def example_dict() -> dict[str, Any]:
    """The built-in example as its file reads (lowercase words for enums)."""
    data: dict[str, Any] = parse_text(builtin_example_path().read_text(encoding="utf-8"))
    return data


def inline_example() -> dict[str, Any]:
    """The built-in example as the proto JSON (proto field names) of an inline Scenario message."""
    return MessageToDict(scenario_to_proto(load_builtin_example()), preserving_proto_field_name=True)


def test_solve_document_matches_local_solve(node: str, server: RunningServer) -> None:
    document = builtin_example_path().read_text(encoding="utf-8")
    answer = node_call(node, server.port, "Solve", {"scenario_document": document, "options": {"mip_rel_gap": 0}})
    result = ok_response(answer)["result"]
    assert result["status"] == "SOLVE_STATUS_OPTIMAL", result.get("message")

    scenario = load_builtin_example()
    local = solve_scenario(scenario, mip_rel_gap=0.0)
    assert local.status is SolveStatus.OPTIMAL
    assert result["objective_value"] == pytest.approx(local.objective_value, rel=1e-6)
    assert result["scenario_sha256"] == scenario.sha256()


def test_lowercase_enum_word_becomes_unspecified_and_is_rejected(node: str, server: RunningServer) -> None:
    """protobufjs turns `kind: "risk_adjusted_npv"` into 0; the server names the field, solves nothing."""
    scenario = inline_example()
    assert scenario["objective"]["kind"] == "OBJECTIVE_KIND_RISK_ADJUSTED_NPV"
    scenario["objective"]["kind"] = "risk_adjusted_npv"  # the word as the scenario file has it
    answer = node_call(node, server.port, "Solve", {"scenario": scenario, "options": {"mip_rel_gap": 0}})
    violations = bad_request(answer)
    assert list(violations) == ["objective.kind"], violations
    assert "OBJECTIVE_KIND_UNSPECIFIED" in violations["objective.kind"]
    assert "objective.kind" in answer["details"]


def test_enum_name_solves_with_that_objective(node: str, server: RunningServer) -> None:
    scenario = inline_example()
    scenario["objective"]["kind"] = "OBJECTIVE_KIND_RISK_ADJUSTED_NPV"
    answer = node_call(node, server.port, "Solve", {"scenario": scenario, "options": {"mip_rel_gap": 0}})
    result = ok_response(answer)["result"]
    assert result["status"] == "SOLVE_STATUS_OPTIMAL", result.get("message")

    data = example_dict()
    data["objective"]["kind"] = "risk_adjusted_npv"
    risk_adjusted = solve_scenario(parse_scenario(data), mip_rel_gap=0.0)
    assert risk_adjusted.status is SolveStatus.OPTIMAL
    assert result["objective_value"] == pytest.approx(risk_adjusted.objective_value, rel=1e-6)

    # The check tells the kinds apart: a default of expected NPV would have given another value.
    expected = example_dict()
    expected["objective"]["kind"] = "expected_npv"
    expected_npv = solve_scenario(parse_scenario(expected), mip_rel_gap=0.0)
    assert expected_npv.objective_value != pytest.approx(risk_adjusted.objective_value, rel=1e-3)


def test_misspelled_key_dropped_inline_reported_in_document(node: str, server: RunningServer) -> None:
    """`solver.time_limit_sconds`: protobufjs drops it inline (the call succeeds, default time limit);
    in a scenario_document the server reports it, and call.mjs decodes the BadRequest saying so."""
    scenario = inline_example()
    scenario["solver"]["time_limit_sconds"] = scenario["solver"].pop("time_limit_seconds")
    answer = node_call(node, server.port, "Solve", {"scenario": scenario})
    result = ok_response(answer)["result"]
    assert result["status"] == "SOLVE_STATUS_OPTIMAL", result.get("message")

    document = builtin_example_path().read_text(encoding="utf-8")
    assert document.count("time_limit_seconds:") == 1
    misspelled = document.replace("time_limit_seconds:", "time_limit_sconds:")
    violations = bad_request(node_call(node, server.port, "Solve", {"scenario_document": misspelled}))
    assert violations == {"solver.time_limit_sconds": "unknown field"}
