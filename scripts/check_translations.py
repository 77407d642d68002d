"""Fail when a translatable string lacks an English translation or the compiled catalogue is stale."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "lms" / "translations"


def _key(value):
    """A plural message's ids and forms as the .po reader gives them (a tuple; the .mo reader: a list)."""
    return tuple(value) if isinstance(value, list) else value


def _translated(string) -> bool:
    """A translation for every form (a plural message's is a tuple of them, one per form)."""
    return all(string) if isinstance(string, tuple) else bool(string)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        subprocess.run(
            [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "_l", "-k", "said",
             "-k", "lazy_gettext", "--no-location", "-o", str(pot), "."],
            cwd=ROOT, check=True, capture_output=True,
        )
        with open(pot, "rb") as fh:
            wanted = {m.id for m in read_po(fh) if m.id}
    with open(TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po", "rb") as fh:
        po = {m.id: m for m in read_po(fh) if m.id}
    problems = [f"untranslated: {mid!r}" for mid in sorted(wanted, key=str)
                if mid not in po or not _translated(po[mid].string) or "fuzzy" in po[mid].flags]
    with open(TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.mo", "rb") as fh:
        mo = {_key(m.id): _key(m.string) for m in read_mo(fh) if m.id}
    problems += [f"stale messages.mo (run scripts/i18n.sh): {mid!r}" for mid in sorted(wanted, key=str)
                 if mid in po and po[mid].string and mo.get(mid) != po[mid].string]
    for line in problems:
        print(line)
    print(f"translations: {len(wanted)} messages, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
