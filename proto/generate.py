"""Regenerate the Python code of the service contract from ``proto/lepton/allocation/v1/*.proto``.

    python proto/generate.py           # write *_pb2.py, *_pb2.pyi, *_pb2_grpc.py(i) next to the protos
    python proto/generate.py --check   # regenerate into a temp dir; exit 1 if anything is stale

Runs ``grpc_tools.protoc`` (with its bundled well-known types and the google.rpc protos of
googleapis-common-protos on the include path) and the mypy-protobuf plugins. gRPC stubs are
generated only for files that declare a service. protoc writes absolute imports
(``from lepton.allocation.v1 import scenario_pb2``); the code is installed as
``lepton_alloc.proto.lepton.allocation.v1`` (see pyproject.toml), so those imports are
rewritten to ``from lepton_alloc.proto.lepton.allocation.v1 import scenario_pb2``.

The output depends only on the .proto files and the pinned grpcio-tools / mypy-protobuf
versions, so ``--check`` (run by tests/proto/test_generated.py) fails exactly when someone
edited a .proto without regenerating, edited generated code by hand, or left generated files
of a removed .proto behind.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent  # the buf module root and protoc include root
PACKAGE_DIR = Path("lepton") / "allocation" / "v1"
PROTO_PACKAGE = "lepton.allocation.v1"  # the proto package == the import path protoc writes
PYTHON_PACKAGE = "lepton_alloc.proto.lepton.allocation.v1"  # where the code is importable
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")

# `from lepton.allocation.v1 import x_pb2 ...` and `import lepton.allocation.v1.x_pb2 ...`
_FROM_IMPORT = re.compile(rf"^(\s*)from {re.escape(PROTO_PACKAGE)} import ", re.MULTILINE)
_PLAIN_IMPORT = re.compile(rf"^(\s*)import {re.escape(PROTO_PACKAGE)}\.(\w+)\b", re.MULTILINE)
# fully qualified uses left by a plain import (`lepton.allocation.v1.x_pb2.Name`)
_QUALIFIED_USE = re.compile(rf"(?<![\w.]){re.escape(PROTO_PACKAGE)}\.(\w+_pb2(?:_grpc)?)\b")


class GenerationError(RuntimeError):
    """protoc or a plugin failed; the message carries its output."""


def proto_files() -> list[Path]:
    """The contract's .proto files, relative to PROTO_ROOT, in a stable order."""
    return sorted(p.relative_to(PROTO_ROOT) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))


def _declares_service(path: Path) -> bool:
    text = (PROTO_ROOT / path).read_text(encoding="utf-8")
    return re.search(r"^\s*service\s+\w+\s*\{", text, re.MULTILINE) is not None


def _include_dirs() -> list[Path]:
    """protoc include path: our root, grpc_tools' well-known types, googleapis-common-protos."""
    import grpc_tools

    dirs = [PROTO_ROOT, Path(grpc_tools.__file__).resolve().parent / "_proto"]
    try:
        from google.rpc import status_pb2  # googleapis-common-protos

        # .../site-packages/google/rpc/status_pb2.py -> .../site-packages (holds google/rpc/*.proto)
        dirs.append(Path(status_pb2.__file__).resolve().parents[2])
    except ImportError:  # only needed once a .proto imports google/rpc/*
        pass
    return dirs


def _plugin(name: str) -> str:
    """Path of a protoc plugin installed with this interpreter (a venv's bin/), else on PATH."""
    exe = name + (".exe" if os.name == "nt" else "")
    beside = Path(sys.executable).parent / exe
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise GenerationError(f"{name} not found: install mypy-protobuf (pip install -e '.[dev]')")
    return found


def _protoc(out_dir: Path, files: list[Path], outputs: list[str]) -> None:
    args = [sys.executable, "-m", "grpc_tools.protoc"]
    args += [f"--proto_path={d}" for d in _include_dirs()]
    args += [f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
             f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}"]
    args += [f"--{kind}_out={out_dir}" for kind in outputs]
    args += [str(f) for f in files]
    run = subprocess.run(args, cwd=PROTO_ROOT, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise GenerationError(f"protoc failed ({run.returncode}):\n{run.stderr.strip()}")


def rewrite_imports(text: str) -> str:
    """Point protoc's absolute imports of our package at the installed namespace."""
    text = _FROM_IMPORT.sub(rf"\1from {PYTHON_PACKAGE} import ", text)
    if _PLAIN_IMPORT.search(text):
        text = _PLAIN_IMPORT.sub(rf"\1import {PYTHON_PACKAGE}.\2", text)
        text = _QUALIFIED_USE.sub(rf"{PYTHON_PACKAGE}.\1", text)
    return text


def generate(out_root: Path) -> dict[str, str]:
    """Generate into ``out_root`` (a scratch dir); return {file name: rewritten text}."""
    files = proto_files()
    if not files:
        raise GenerationError(f"no .proto files under {PROTO_ROOT / PACKAGE_DIR}")
    _protoc(out_root, files, ["python", "mypy"])
    services = [f for f in files if _declares_service(f)]
    if services:
        _protoc(out_root, services, ["grpc_python", "mypy_grpc"])
    generated: dict[str, str] = {}
    for path in sorted((out_root / PACKAGE_DIR).iterdir()):
        if path.name.endswith(GENERATED_SUFFIXES):
            generated[path.name] = rewrite_imports(path.read_text(encoding="utf-8"))
    return generated


def committed_files() -> dict[str, str]:
    """The generated files currently next to the protos."""
    target = PROTO_ROOT / PACKAGE_DIR
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted(target.iterdir())
        if p.is_file() and p.name.endswith(GENERATED_SUFFIXES)
    }


def write(generated: dict[str, str]) -> list[str]:
    """Write the generated files and delete stale ones; return the names written or removed."""
    target = PROTO_ROOT / PACKAGE_DIR
    current = committed_files()
    changed: list[str] = []
    for name, text in generated.items():
        if current.get(name) != text:
            with open(target / name, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            changed.append(name)
    for name in sorted(set(current) - set(generated)):
        (target / name).unlink()
        changed.append(f"{name} (removed)")
    return changed


def differences(generated: dict[str, str]) -> list[str]:
    """Human-readable differences between fresh output and the committed files."""
    current = committed_files()
    problems: list[str] = []
    for name in sorted(set(generated) | set(current)):
        if name not in current:
            problems.append(f"missing: {PACKAGE_DIR / name}")
        elif name not in generated:
            problems.append(f"stale (no .proto generates it): {PACKAGE_DIR / name}")
        elif current[name] != generated[name]:
            diff = difflib.unified_diff(
                current[name].splitlines(), generated[name].splitlines(),
                f"committed/{name}", f"generated/{name}", lineterm="", n=1,
            )
            lines = list(diff)
            shown = "\n".join(lines[:40]) + ("\n..." if len(lines) > 40 else "")
            problems.append(f"differs: {PACKAGE_DIR / name}\n{shown}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the committed generated code is stale")
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="lepton-proto-") as scratch:
            generated = generate(Path(scratch))
    except GenerationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems = differences(generated)
        if problems:
            print("generated code is stale; run `python proto/generate.py`:", file=sys.stderr)
            for p in problems:
                print(p, file=sys.stderr)
            return 1
        print(f"generated code is up to date ({len(generated)} files)", file=sys.stderr)
        return 0
    changed = write(generated)
    for name in changed:
        print(f"updated {PACKAGE_DIR / name}", file=sys.stderr)
    print(f"{len(generated)} generated files, {len(changed)} changed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
