"""Fill English translations into the catalogue from TSV lines "日本語<TAB>English" on stdin.

Used with scripts/i18n.sh: extract, then fill what is missing, then compile.
Run with --missing to list message ids that still lack an English translation.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent.parent / "lms" / "translations" / "en" / "LC_MESSAGES" / "messages.po"


def main() -> int:
    with open(PO, "rb") as fh:
        catalog = read_po(fh)
    if "--missing" in sys.argv:
        missing = [m.id for m in catalog if m.id and not m.string]
        for mid in missing:
            print(mid)
        return 1 if missing else 0
    pairs = {}
    for line in sys.stdin.read().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        ja, en = line.split("\t", 1)
        pairs[ja.replace("\\n", "\n")] = en.replace("\\n", "\n")
    filled = 0
    for message in catalog:
        if message.id and message.id in pairs:
            message.string = pairs[message.id]
            message.flags.discard("fuzzy")
            filled += 1
    with open(PO, "wb") as fh:
        write_po(fh, catalog, width=0, sort_output=True, omit_header=False)
    print(f"filled {filled} of {len(pairs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
