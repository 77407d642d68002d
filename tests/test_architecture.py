"""The code's shape, checked: what import-linter cannot see.

- no module imports another package's private (``_name``) functions, classes or modules;
- an import of another lms package inside a function carries a one-line reason (a comment
  on the line or the line above); everything else is imported at module top;
- nothing in lms/ touches the private internals of a dependency that earlier code used.
The layers themselves are import-linter's contracts in pyproject.toml (run by the test
command, as is mypy).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

LMS = Path(__file__).resolve().parent.parent / "lms"


def _modules():
    for path in sorted(LMS.rglob("*.py")):
        rel = path.relative_to(LMS.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield path, ".".join(parts)


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _lms_module_names() -> set[str]:
    return {name for _p, name in _modules()}


def test_no_module_imports_another_packages_private_names():
    modules = _lms_module_names()
    offences = []
    for path, module in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}  # local name -> lms module it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _absolute(module, path, node)
                if not target.startswith("lms"):
                    continue
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    if full in modules:
                        aliases[alias.asname or alias.name] = full
                        if alias.name.startswith("_") and _package(full) != _package(module):
                            offences.append(f"{module}: imports private module {full}")
                    elif alias.name.startswith("_") and _package(target) != _package(module):
                        offences.append(f"{module}: imports {target}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("lms") and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and _package(aliases[node.value.id]) != _package(module)):
                offences.append(f"{module}:{node.lineno}: uses {aliases[node.value.id]}.{node.attr}")
    assert offences == []


def test_function_level_imports_of_other_packages_say_why():
    offences = []
    for path, module in _modules():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        tree = ast.parse(source)
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom):
                    targets = [_absolute(module, path, node)]
                elif isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                else:
                    continue
                for target in targets:
                    if not target.startswith("lms") or _package(target) == _package(module):
                        continue
                    here = lines[node.lineno - 1]
                    above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                    if "#" not in here and not above.startswith("#"):
                        offences.append(f"{module}:{node.lineno}: imports {target} inside a function without a reason")
    assert offences == []


# Private internals of dependencies that earlier code used; each can break on a minor
# upgrade of the dependency. Speed and behaviour come from public APIs only.
PRIVATE_INTERNALS = [
    r"_handle_dbapi_exception", r"_bind_processors", r"_result_columns", r"_cached_result_processor",
    r"take_buffered", r"LengthReader", r"SHA256_(Init|Update|Final|CTX)", r"_get_translations",
    r"_last_successful_fetch", r"g\._login_user", r"_query_args", r"_query_offset", r"\bctypes\b",
    r"\._get_current_object\(\)\._", r"\bunreader\b",
]


@pytest.mark.parametrize("pattern", PRIVATE_INTERNALS)
def test_no_dependency_internals(pattern):
    hits = []
    for path, module in _modules():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(pattern, line):
                hits.append(f"{module}:{number}: {line.strip()}")
    assert hits == []


def test_no_private_attribute_of_another_object_is_touched():
    """No ``obj._name`` anywhere in lms/ except on ``self``/``cls``: a leading underscore is
    a library's (or another class's) private business, free to change in any release."""
    hits = []
    for path, module in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    continue
                hits.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr")
                    and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
                    and str(node.args[1].value).startswith("_") and not str(node.args[1].value).startswith("__")):
                hits.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
    assert hits == []
