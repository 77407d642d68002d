"""Loading the municipality list and resolving Entra tenants to municipalities."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import select

from lms.common.errors import InvalidInput
from lms.extensions import db
from lms.municipalities.models import KINDS, Municipality

DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "tokyo-municipalities.csv"

_WEIGHTS = (6, 5, 4, 3, 2)


def check_digit(first_five: str) -> int:
    """The check digit of a local government code (全国地方公共団体コード)."""
    total = sum(int(d) * w for d, w in zip(first_five, _WEIGHTS, strict=True))
    return (11 - total % 11) % 10


def is_valid_code(code: str) -> bool:
    return len(code) == 6 and code.isdigit() and check_digit(code[:5]) == int(code[5])


def load_municipalities(path: Path = DATA_FILE) -> tuple[int, int]:
    """Insert or update every row of the CSV (code,name,kana,kind). Returns (added, updated).

    Every code's check digit is verified before anything is written.
    """
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for lineno, row in enumerate(rows, start=2):
        code = (row.get("code") or "").strip()
        if not is_valid_code(code):
            raise InvalidInput(f"{path.name}:{lineno}: invalid local government code {code!r}")
        if row.get("kind") not in KINDS:
            raise InvalidInput(f"{path.name}:{lineno}: unknown kind {row.get('kind')!r}")
    existing = {m.code: m for m in db.session.scalars(select(Municipality))}
    added = updated = 0
    for order, row in enumerate(rows):
        values = {
            "name": row["name"].strip(),
            "kana": row["kana"].strip(),
            "kind": row["kind"].strip(),
            "sort_order": order,
        }
        current = existing.get(row["code"])
        if current is None:
            db.session.add(Municipality(code=row["code"], **values))
            added += 1
        elif any(getattr(current, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(current, k, v)
            updated += 1
    db.session.flush()
    return added, updated


def municipality_by_code(code: str) -> Municipality | None:
    return db.session.scalar(select(Municipality).where(Municipality.code == code))
