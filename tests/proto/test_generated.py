"""The committed generated code matches proto/*.proto (`python proto/generate.py --check`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GENERATE = Path(__file__).resolve().parents[2] / "proto" / "generate.py"


def test_generated_code_is_up_to_date() -> None:
    run = subprocess.run(
        [sys.executable, str(GENERATE), "--check"], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, f"stale generated code; run `python proto/generate.py`:\n{run.stderr}"


def test_imports_point_into_the_installed_namespace() -> None:
    """Generated modules import each other as lepton_alloc.proto.lepton.allocation.v1.*."""
    sys.path.insert(0, str(GENERATE.parent))
    try:
        import generate
    finally:
        sys.path.remove(str(GENERATE.parent))
    text = (
        "from lepton.allocation.v1 import scenario_pb2 as lepton_dot_scenario__pb2\n"
        "import lepton.allocation.v1.result_pb2\n"
        "x: lepton.allocation.v1.result_pb2.Result\n"
        "from google.protobuf import timestamp_pb2\n"
    )
    assert generate.rewrite_imports(text) == (
        "from lepton_alloc.proto.lepton.allocation.v1 import scenario_pb2 as lepton_dot_scenario__pb2\n"
        "import lepton_alloc.proto.lepton.allocation.v1.result_pb2\n"
        "x: lepton_alloc.proto.lepton.allocation.v1.result_pb2.Result\n"
        "from google.protobuf import timestamp_pb2\n"
    )
    from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2, allocation_service_pb2_grpc

    assert allocation_service_pb2.SolveRequest.DESCRIPTOR.full_name == "lepton.allocation.v1.SolveRequest"
    assert hasattr(allocation_service_pb2_grpc, "AllocationServiceStub")
