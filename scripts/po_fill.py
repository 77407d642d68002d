"""Fill English translations into the catalogue from TSV lines "日本語<TAB>English" on stdin;
a plural message (ngettext) takes "日本語<TAB>one<TAB>other" ("%(num)d 人", "%(num)d person",
"%(num)d people").

Used with scripts/i18n.sh: extract, then fill what is missing, then compile.
Run with --missing to list message ids that still lack an English translation.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent.parent / "lms" / "translations" / "en" / "LC_MESSAGES" / "messages.po"


def _translated(message) -> bool:
    """A translation for every form (a plural message's ``string`` is a tuple of them)."""
    return all(message.string) if isinstance(message.string, tuple) else bool(message.string)


def main() -> int:
    with open(PO, "rb") as fh:
        catalog = read_po(fh)
    if "--missing" in sys.argv:
        missing = [m.id for m in catalog if m.id and not _translated(m)]
        for mid in missing:
            print(mid[0] + "\t(plural: one\tother)" if isinstance(mid, tuple) else mid)
        return 1 if missing else 0
    pairs = {}
    for line in sys.stdin.read().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        ja, *en = (part.replace("\\n", "\n") for part in line.split("\t"))
        pairs[ja] = tuple(en) if len(en) > 1 else en[0]
    filled = 0
    for message in catalog:
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        if key and key in pairs and isinstance(pairs[key], tuple) == isinstance(message.id, tuple):
            message.string = pairs[key]
            message.flags.discard("fuzzy")
            filled += 1
    with open(PO, "wb") as fh:
        write_po(fh, catalog, width=0, sort_output=True, omit_header=False)
    print(f"filled {filled} of {len(pairs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
