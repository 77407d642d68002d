"""The results of the project's own accessibility test, shown on the accessibility page.

``data/accessibility_results.json`` is written by ``scripts/a11y_report.py``, which runs the
axe-core suite (tests/a11y/test_axe.py) in Chromium on every kind of page each role reaches,
in Japanese and English, and gathers what it tested. The page shows the file as it is; it is
committed with the code it describes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

RESULTS_FILE = Path(__file__).resolve().parents[2] / "data" / "accessibility_results.json"
ROLES = ("anonymous", "learner", "trainer", "municipal_admin", "platform_admin")
LANGUAGES = ("ja", "en")


@dataclass(frozen=True)
class CheckedPage:
    path: str
    roles: tuple[str, ...]
    languages: tuple[str, ...]
    with_errors: bool  # a form showing its validation errors
    violations: int


@dataclass(frozen=True)
class A11yResults:
    standard: str
    target_level: str
    tested_on: date
    tags: tuple[str, ...]
    tools: dict[str, str]
    pages: tuple[CheckedPage, ...]
    violations: int

    @property
    def passed(self) -> bool:
        return self.violations == 0


class MalformedResults(ValueError):
    pass


def parse_results(data: object) -> A11yResults:
    """The results from the file's JSON; MalformedResults names what is wrong."""
    if not isinstance(data, dict):
        raise MalformedResults("not a JSON object")
    try:
        pages = tuple(
            CheckedPage(
                path=str(p["path"]),
                roles=tuple(str(r) for r in p["roles"]),
                languages=tuple(str(lang) for lang in p["languages"]),
                with_errors=bool(p.get("with_errors", False)),
                violations=int(p["violations"]),
            )
            for p in data["pages"]
        )
        results = A11yResults(
            standard=str(data["standard"]),
            target_level=str(data["target_level"]),
            tested_on=date.fromisoformat(str(data["tested_on"])),
            tags=tuple(str(t) for t in data["tags"]),
            tools={str(k): str(v) for k, v in dict(data["tools"]).items()},
            pages=pages,
            violations=int(data["violations"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedResults(f"{type(exc).__name__}: {exc}") from exc
    for page in pages:
        if not page.path.startswith("/"):
            raise MalformedResults(f"page path {page.path!r} does not start with /")
        if not page.roles or set(page.roles) - set(ROLES):
            raise MalformedResults(f"{page.path}: roles {page.roles!r}")
        if not page.languages or set(page.languages) - set(LANGUAGES):
            raise MalformedResults(f"{page.path}: languages {page.languages!r}")
    if not pages:
        raise MalformedResults("no pages")
    if results.violations != sum(p.violations for p in pages):
        raise MalformedResults("the total of violations is not the sum of the pages'")
    return results


def load_results(path: Path | None = None) -> A11yResults | None:
    """The published results; None when the file is missing or unreadable (the page says so)."""
    try:
        return parse_results(json.loads((path or RESULTS_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
