"""Every dependency is pinned to an exact version (so that pip-audit's findings apply to what
runs), every installed package is locked with its hashes, and vendored browser code is
self-hosted."""

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
    assert ".venv/bin/pip-audit --require-hashes -r requirements.lock" in (ROOT / "docs" / "operations.md").read_text()


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked(name: str) -> dict[str, tuple[str, list[str]]]:
    """``{package: (version, [hashes])}`` of a lock file written by ``uv pip compile --generate-hashes``."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = None
    for raw in (ROOT / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[A-Za-z0-9,._-]+\])?==([^\s;]+)", line)  # (an extra: name[extra]==…)
        if match:
            current = _normalise(match.group(1))
            entries[current] = (match.group(2), [])
            continue
        hashed = re.match(r"^--hash=sha256:([0-9a-f]{64})", line)
        assert hashed and current, f"{name}: unexpected line {raw!r}"
        entries[current][1].append(hashed.group(1))
    return entries


def test_every_installed_package_is_locked_with_hashes():
    for lock, source in (("requirements.lock", "requirements.txt"), ("requirements-dev.lock", "requirements-dev.txt")):
        locked = _locked(lock)
        assert locked, lock
        unhashed = [name for name, (_version, hashes) in locked.items() if not hashes]
        assert not unhashed, f"{lock}: without hashes: {unhashed}"
        # The lock holds exactly the versions the requirements pin (refresh it after a change).
        files = [source] + (["requirements.txt"] if source == "requirements-dev.txt" else [])
        for line in (line for f in files for line in _requirements(f)):
            name, version = re.split(r"==", line.split(";")[0])
            name = _normalise(name.split("[")[0])
            assert name in locked, f"{lock} lacks {name}: refresh it (docs/operations.md)"
            assert locked[name][0] == version.strip(), f"{lock}: {name} {locked[name][0]} != {version} pinned"
    runtime, dev = _locked("requirements.lock"), _locked("requirements-dev.lock")
    # The tests run what production runs: the same version of every runtime package.
    assert {n: v for n, (v, _h) in runtime.items()} == {n: dev[n][0] for n in runtime}


def test_both_readme_commands_install_with_hash_checking():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "--require-hashes" in setup and "REQ=${REQ:-requirements.lock}" in setup
    assert "REQ=requirements-dev.lock" in (ROOT / "scripts" / "test.sh").read_text()
    dev = (ROOT / "scripts" / "dev.sh").read_text()
    assert '/setup.sh"' in dev and "REQ=" not in dev  # the runtime lock


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
