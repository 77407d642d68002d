"""Run the accessibility test and publish its results on the accessibility page.

    .venv/bin/python scripts/a11y_report.py [--output data/accessibility_results.json]

Runs tests/a11y/test_axe.py (axe-core in Chromium on every kind of page each role reaches,
in Japanese and English, and the forms showing their errors) on SQLite, with
LMS_A11Y_REPORT_DIR set so that each run writes the pages it checked; then gathers the runs
into one file (pages, roles, languages, violations, the date, the versions of axe-core,
Chromium and Playwright), which /accessibility shows. Commit the file with the change that
made it. A run with violations is written too (the page then says so) and the script exits
with 1; a run that is missing (the test crashed) writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "data" / "accessibility_results.json"
ROLES = ("anonymous", "learner", "trainer", "municipal_admin", "platform_admin")
LANGUAGES = ("ja", "en")
# The runs the suite writes: one per role and language, and the forms showing errors.
EXPECTED_RUNS = {f"pages-{role}-{lang}" for role in ROLES for lang in LANGUAGES} | {f"forms-{lang}" for lang in LANGUAGES}


def merge_runs(runs: dict[str, dict], tested_on: date) -> dict:
    """One entry per kind of page: which roles reached it, in which languages, violations."""
    missing = EXPECTED_RUNS - set(runs)
    if missing:
        raise SystemExit(f"runs missing (did the test crash?): {sorted(missing)}")
    pages: dict[tuple[str, bool], dict] = {}
    tools: dict[str, str] = {}
    tags: list[str] = []
    for run in runs.values():
        tools.update(run["tools"])
        tags = tags or list(run["tags"])
        for entry in run["pages"]:
            key = (entry["path"], bool(entry["with_errors"]))
            page = pages.setdefault(key, {"path": key[0], "with_errors": key[1], "roles": set(), "languages": set(),
                                          "violations": 0})
            page["roles"].add(entry["role"])
            page["languages"].add(run["lang"])
            page["violations"] += int(entry["violations"])
    listed = []
    for key in sorted(pages):
        page = pages[key]
        page["roles"] = [role for role in ROLES if role in page["roles"]]
        page["languages"] = [lang for lang in LANGUAGES if lang in page["languages"]]
        listed.append(page)
    return {
        "standard": "JIS X 8341-3:2016",
        "target_level": "AA",
        "tested_on": tested_on.isoformat(),
        "tags": tags,
        "tools": dict(sorted(tools.items())),
        "violations": sum(page["violations"] for page in listed),
        "pages": listed,
    }


def write_results(path: Path, results: dict) -> None:
    """The results as JSON, one line per page (a new run's diff shows what changed)."""
    head = json.dumps({k: v for k, v in results.items() if k != "pages"}, ensure_ascii=False, indent=1)
    pages = ",\n".join("  " + json.dumps(page, ensure_ascii=False) for page in results["pages"])
    path.write_text(head[:-2] + ',\n "pages": [\n' + pages + "\n ]\n}\n", encoding="utf-8")


def read_runs(directory: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="a11y-report-") as directory:
        env = {**os.environ, "LMS_TEST_DB": "sqlite", "LMS_A11Y_REPORT_DIR": directory}
        test = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/a11y/test_axe.py"],
                              cwd=ROOT, env=env, check=False)
        results = merge_runs(read_runs(Path(directory)), datetime.now(ZoneInfo("Asia/Tokyo")).date())
    write_results(args.output, results)
    print(f"{args.output}: {len(results['pages'])} kinds of page, {results['violations']} violations")
    return 0 if test.returncode == 0 and results["violations"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
