"""A calling service imports the client without the solver stack or the server."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pyomo", "pyomo.environ", "highspy", "numpy", "lepton_alloc.server", "lepton_alloc.models.formulation",
         "lepton_alloc.models.solve", "lepton_alloc.models.cashflows")


def _modules_after(statement: str) -> list[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_client_package_loads_no_solver_stack() -> None:
    loaded = set(_modules_after("import lepton_alloc.clients\nfrom lepton_alloc.clients import AllocationClient"))
    assert "lepton_alloc.clients.client" in loaded and "grpc" in loaded
    assert sorted(loaded & set(HEAVY)) == []


def test_types_and_adapter_load_no_solver_stack() -> None:
    loaded = set(_modules_after("import lepton_alloc.models\nimport lepton_alloc.models.result\n"
                                "import lepton_alloc.proto.adapter"))
    assert sorted(loaded & set(HEAVY)) == []


def test_solver_entry_points_still_load_on_demand() -> None:
    loaded = set(_modules_after("from lepton_alloc.models import solve_scenario, build_model"))
    assert "pyomo.environ" in loaded  # the lazy names resolve to the real solver code
