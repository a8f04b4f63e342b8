"""Users' tools: the Python client library (:mod:`.client`), the CLI (:mod:`.cli`), reports.

Importing this package, or the client, loads grpc, protobuf and the light scenario/result types
only: never Pyomo, HiGHS or numpy, and nothing of the server. A calling service pays for the
contract, not for the solver stack.
"""

from .client import (
    AllocationClient,
    AllocationError,
    AsyncAllocationClient,
    AsyncJobHandle,
    JobHandle,
    JobInfo,
    StoredScenarioInfo,
    Validation,
    WatchEvent,
)

__all__ = ["AllocationClient", "AllocationError", "AsyncAllocationClient", "AsyncJobHandle", "JobHandle", "JobInfo",
           "StoredScenarioInfo", "Validation", "WatchEvent"]
