"""File ⇄ domain conversion: scenario files in JSON or YAML (docs/model.md section 1).

This is the only module that reads or writes scenario files. YAML is read with a loader that
treats ``1e-4`` as a number, as JSON and YAML 1.2 do (PyYAML's YAML 1.1 resolver reads it as
text).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from .scenario import FieldViolation, Scenario, ScenarioError, parse_scenario


class _Yaml12ishLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats (``1e-4`` is a number) and booleans (``NO`` is text)."""


class _Yaml12ishCLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The same, on libyaml's parser (about 4x faster; its syntax messages are terser): for big
    documents, whose reading would otherwise hold a server's interpreter for a minute."""


class _Yaml12ishDumper(yaml.SafeDumper):
    """SafeDumper that quotes every string the loader above would read as a number or bool."""


_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_BIG_YAML = 4096  # characters; bigger documents are read with libyaml (when installed): ~4x faster
_BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")

for _cls in (_Yaml12ishLoader, _Yaml12ishCLoader, _Yaml12ishDumper):
    # YAML 1.2 core schema for floats and booleans: `1e-4` is a number, `NO`/`yes`/`on` are text
    _cls.yaml_implicit_resolvers = {
        k: [r for r in v if r[0] not in ("tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _cls.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL_12, list("tTfF"))
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def parse_text(text: str, fmt: str = "yaml") -> Any:
    """Parse JSON or YAML text into plain data; syntax errors, nesting too deep for the parser,
    integers of thousands of digits and escapes of lone UTF-16 surrogates (``"\\ud800"``, text
    no UTF-8 encoder takes) become a ScenarioError."""
    try:
        if fmt == "json":
            data = json.loads(text)
        else:
            loader = _Yaml12ishCLoader if len(text) > _BIG_YAML else _Yaml12ishLoader
            data = yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except json.JSONDecodeError as exc:
        raise ScenarioError([FieldViolation("<file>", f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([FieldViolation("<file>", f"YAML syntax error{where}: {problem}")]) from None
    except RecursionError:
        raise ScenarioError([FieldViolation("<file>", "nested too deeply to read")]) from None
    except ValueError as exc:  # e.g. an integer beyond Python's 4300-digit conversion limit
        raise ScenarioError([FieldViolation("<file>", f"cannot read the document: {str(exc)[:200]}")]) from None
    if ("\\u" in text or "\\U" in text) and _has_surrogate(data):
        raise ScenarioError([FieldViolation("<file>", "contains an escaped lone UTF-16 surrogate (such as \\ud800), "
                                                      "which is not valid Unicode text")])
    return data


def _has_surrogate(node: Any) -> bool:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


_SURROGATE = re.compile("[\ud800-\udfff]")


def load_scenario_text(text: str, fmt: str = "yaml") -> Scenario:
    return parse_scenario(parse_text(text, fmt))


def load_scenario_document(text: str) -> Scenario:
    """A scenario file's text as sent over the wire: JSON when it starts with ``{``, else YAML."""
    return load_scenario_text(text, "json" if text.lstrip().startswith("{") else "yaml")


def load_scenario_file(path: str | Path) -> Scenario:
    """Read and validate a scenario file; the format follows the extension (.json, else YAML)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([FieldViolation("<file>", f"cannot read {p}: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise ScenarioError([FieldViolation("<file>", f"{p} is not UTF-8 text")]) from None
    return load_scenario_text(text, "json" if p.suffix.lower() == ".json" else "yaml")


def dump_scenario(s: Scenario, fmt: str = "yaml") -> str:
    """Write a scenario in its canonical form (every default explicit)."""
    data = s.to_dict()
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.dump(data, Dumper=_Yaml12ishDumper, sort_keys=False)


def builtin_example_path() -> Path:
    """The embedded example scenario (examples/global_expansion.yaml)."""
    return Path(__file__).resolve().parent / "data" / "global_expansion.yaml"


def load_builtin_example() -> Scenario:
    return load_scenario_file(builtin_example_path())
