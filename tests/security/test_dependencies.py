"""Every dependency is pinned to an exact version (so that pip-audit's findings apply to what
runs), and vendored browser code is self-hosted."""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT

PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[0-9][A-Za-z0-9.!+_-]*(\s*;.*)?$")


def _requirements(name: str) -> list[str]:
    lines = []
    for raw in (ROOT / name).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-r "):
            lines.append(line)
    return lines


def test_python_requirements_are_pinned_exactly():
    for name in ("requirements.txt", "requirements-dev.txt"):
        lines = _requirements(name)
        assert lines, name
        loose = [line for line in lines if not PIN.match(line)]
        assert not loose, f"{name}: not pinned with ==: {loose}"


def test_pip_audit_is_available_to_operators():
    assert any(line.lower().startswith("pip-audit==") for line in _requirements("requirements-dev.txt"))
    assert ".venv/bin/pip-audit -r requirements.txt" in (ROOT / "docs" / "operations.md").read_text()


def test_npm_test_peers_are_pinned_with_a_lockfile():
    package = json.loads((ROOT / "tests" / "node" / "package.json").read_text())
    for name, version in package.get("dependencies", {}).items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}: {version} is not an exact version"
    assert (ROOT / "tests" / "node" / "package-lock.json").exists()


def test_pages_load_no_third_party_code():
    templates = list((ROOT / "templates").rglob("*.html"))
    assert templates
    for path in templates:
        text = path.read_text()
        for match in re.finditer(r"<(?:script|link)[^>]+(?:src|href)=\"(https?:)?//", text):
            raise AssertionError(f"{path.relative_to(ROOT)}: loads code from another site: {match.group(0)}")
