"""The scenario schema is declared once; the JSON Schema an editor reads is derived from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lepton_alloc.models.scenario import Scenario, json_schema

ROOT = Path(__file__).resolve().parents[2]


def test_committed_json_schema_is_current() -> None:
    committed = json.loads((ROOT / "docs" / "scenario.schema.json").read_text(encoding="utf-8"))
    assert committed == json_schema(), "run: lepton-alloc schema -o docs/scenario.schema.json"


def test_schema_carries_bounds_defaults_and_descriptions() -> None:
    schema = json_schema()
    top = schema["properties"]
    assert top["horizon_years"]["minimum"] == 1 and top["horizon_years"]["maximum"] == 50
    assert top["discount_rate"]["exclusiveMaximum"] == 1 and top["discount_rate"]["default"] == 0.0
    assert "horizon_years" in schema["required"] and "markets" in schema["required"]
    option = schema["$defs"]["Option"]["properties"]
    assert option["max_share"]["exclusiveMinimum"] == 0 and option["max_share"]["maximum"] == 1
    assert schema["$defs"]["Mode"]["enum"] == ["acquire", "partner", "build"]
    assert schema["additionalProperties"] is False  # a misspelled key is an editor error too

    def every_property(node: dict) -> list[tuple[str, dict]]:
        return list(node.get("properties", {}).items())

    undocumented = [f"{name}.{field}" for name, node in [("Scenario", schema), *schema["$defs"].items()]
                    for field, spec in every_property(node) if not spec.get("description")]
    assert undocumented == []
    assert set(schema["properties"]) == set(Scenario.model_fields)


def test_cli_schema_prints_it() -> None:
    out = subprocess.run([sys.executable, "-m", "lepton_alloc.clients.cli", "schema"], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == json_schema()


def test_example_points_editors_at_the_schema() -> None:
    first = (ROOT / "examples" / "global_expansion.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../docs/scenario.schema.json"
    assert (ROOT / "examples" / first.split("=", 1)[1]).resolve() == (ROOT / "docs" / "scenario.schema.json")


def test_an_editor_checking_against_the_schema_agrees_with_validation() -> None:
    """The published schema accepts the example and flags the mistakes validation flags."""
    import copy

    import jsonschema

    from lepton_alloc.models.loader import builtin_example_path, parse_text

    example = parse_text(builtin_example_path().read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(json_schema())
    assert list(validator.iter_errors(example)) == []
    broken = copy.deepcopy(example)
    broken["markets"][0]["options"][0]["margin"] = 2
    broken["solver"]["time_limit_sconds"] = 5
    broken["budget"]["limit"] = -1
    paths = sorted(".".join(str(p) for p in e.absolute_path) for e in validator.iter_errors(broken))
    assert paths == ["budget.limit", "markets.0.options.0.margin", "solver"]  # "solver": additionalProperties
