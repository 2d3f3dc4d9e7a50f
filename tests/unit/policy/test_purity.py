"""The policy room stays pure: no database, files, clock, network or processes in commons/policy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import commons.policy

ROOM = Path(commons.policy.__file__).parent
MODULES = sorted(ROOM.rglob("*.py"))

# Pure standard-library modules, YAML, and the room itself. Nothing that reaches a disk, a socket,
# a process, a clock or a database.
ALLOWED = {
    "__future__",
    "abc",
    "collections",
    "collections.abc",
    "dataclasses",
    "enum",
    "functools",
    "hashlib",
    "itertools",
    "json",
    "math",
    "operator",
    "re",
    "string",
    "textwrap",
    "types",
    "typing",
    "yaml",
}
# Reading the packaged data is the one allowed read, and only in the loaders.
LOADERS = {"load_knowledge_base", "load_mof_rules"}
FORBIDDEN_CALLS = {"open", "exec", "eval", "compile", "__import__", "input", "breakpoint"}
FORBIDDEN_ATTRS = {
    "read_text",
    "read_bytes",
    "write_text",
    "write_bytes",
    "open",
    "urlopen",
    "connect",
    "execute",
    "system",
}


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            out.append((base, node.lineno))
            if base == "importlib":
                out += [(f"importlib.{alias.name}", node.lineno) for alias in node.names]
    return out


def test_the_room_has_modules() -> None:
    names = {p.stem for p in MODULES}
    assert {"facts", "licenses", "lineage", "propagation", "notices", "openness"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_imports_are_pure(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for name, line in _imports(tree):
        if name == "importlib":
            continue  # checked through its imported names
        if name.startswith("commons."):
            assert name == "commons.policy" or name.startswith("commons.policy."), f"{path.name}:{line} imports {name}"
        elif name == "importlib.resources":
            assert path.name in ("licenses.py", "openness.py"), f"{path.name}:{line} reads package data"
        else:
            assert name in ALLOWED, f"{path.name}:{line} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_file_process_or_network_calls(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    loaders = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in LOADERS]
    allowed_nodes = {id(n) for loader in loaders for n in ast.walk(loader)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name):
            assert func.id not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {func.id}()"
        elif isinstance(func, ast.Attribute) and func.attr in FORBIDDEN_ATTRS:
            assert id(node) in allowed_nodes and func.attr == "read_text", (
                f"{path.name}:{node.lineno} calls .{func.attr}()"
            )


def test_importing_the_room_loads_no_io_libraries() -> None:
    heavy = (
        "sqlalchemy",
        "httpx",
        "requests",
        "socket",
        "subprocess",
        "pygit2",
        "fastapi",
        "torch",
        "sqlite3",
        "urllib.request",
    )
    code = (
        "import sys\n"
        "import commons.policy\n"
        "from commons.policy import load_knowledge_base\n"
        "load_knowledge_base()\n"
        f"print([m for m in {heavy!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
