"""Loading the municipality list and resolving Entra tenants to municipalities."""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from flask_babel import gettext as _
from sqlalchemy import select

from lms.audit.services import record_action
from lms.common.errors import Conflict, InvalidInput, NotFound
from lms.common.timeutil import utcnow
from lms.extensions import db
from lms.municipalities.models import KINDS, Municipality, TenantMapping

log = logging.getLogger(__name__)

DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "tokyo-municipalities.csv"

_WEIGHTS = (6, 5, 4, 3, 2)


def check_digit(first_five: str) -> int:
    """The check digit of a local government code (全国地方公共団体コード)."""
    total = sum(int(d) * w for d, w in zip(first_five, _WEIGHTS, strict=True))
    return (11 - total % 11) % 10


def is_valid_code(code: str) -> bool:
    return len(code) == 6 and code.isascii() and code.isdigit() and check_digit(code[:5]) == int(code[5])


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


def list_municipalities(*, active_only: bool = False) -> list[Municipality]:
    """Every municipality (or the active ones) in the list's order (the prefecture first)."""
    stmt = select(Municipality).order_by(Municipality.sort_order, Municipality.code)
    if active_only:
        stmt = stmt.where(Municipality.active.is_(True))
    return list(db.session.scalars(stmt))


def municipality_exists(municipality_id: int) -> bool:
    return db.session.get(Municipality, municipality_id) is not None


# ---------------------------------------------------------------- Entra tenants → municipalities

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True)
class TenantRule:
    """One entry of ENTRA_TENANTS: ``tid=code`` or, for a shared tenant, ``tid@domain=code``."""

    tenant_id: str
    mail_domain: str
    municipality_code: str


def normalise_tenant_id(value: str | None) -> str:
    return (value or "").strip().lower()


# The nil GUID names no directory; the tenant of personal Microsoft accounts (outlook.com,
# hotmail.com) is no organisation's: mapping either would let the wrong people in, or no one.
NIL_GUID = "00000000-0000-0000-0000-000000000000"
PERSONAL_ACCOUNTS_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


def is_tenant_id(value: str | None) -> bool:
    """A GUID that can name a directory (or an application): not the nil GUID."""
    normalised = normalise_tenant_id(value)
    return bool(_GUID.match(normalised)) and normalised != NIL_GUID


def is_mappable_tenant(value: str | None) -> bool:
    """A tenant id that can stand for a municipality's directory (see ``tenant_id_problem``)."""
    return is_tenant_id(value) and normalise_tenant_id(value) != PERSONAL_ACCOUNTS_TENANT


def tenant_id_problem(value: str | None) -> str | None:
    """Why ``value`` cannot be mapped to a municipality (a message for the platform admin), or None."""
    if not is_tenant_id(value):
        return _("テナント ID は GUID（例: 72f988bf-86f1-41af-91ab-2d7cd011db47）で入力してください。"
                 "すべて 0 の GUID は使えません。")
    if normalise_tenant_id(value) == PERSONAL_ACCOUNTS_TENANT:
        return _("これは個人用 Microsoft アカウント（outlook.com など）のテナント ID です。"
                 "区市町村の Microsoft 365 テナントの ID を入力してください（Entra 管理センターの「概要」に表示されます）。")
    return None


def normalise_mail_domain(value: str | None) -> str:
    """"City.Example.lg.jp", "@city.example.lg.jp" or "someone@city.example.lg.jp" → "city.example.lg.jp"."""
    return (value or "").strip().lower().rpartition("@")[2]


def is_mail_domain(value: str) -> bool:
    return bool(_DOMAIN.match(value))


def parse_tenant_setting(value: str | None, *, strict: bool = True) -> list[TenantRule]:
    """Parse ENTRA_TENANTS ("tid=131016,tid2@city.example.lg.jp=132012").

    ``strict``: raise InvalidInput naming the first bad entry; otherwise skip bad entries
    (sign-in must not fail because of one typo in the variable) and log them.
    """
    rules: list[TenantRule] = []
    for raw in (value or "").replace(";", ",").replace("\n", ",").split(","):
        entry = raw.strip()
        if not entry:
            continue
        left, sep, code = entry.partition("=")
        tenant, _, domain = left.partition("@")
        rule = TenantRule(normalise_tenant_id(tenant), normalise_mail_domain(domain), code.strip())
        problem = None
        if not sep:
            problem = "expected tid=municipality-code"
        elif not is_tenant_id(rule.tenant_id):
            problem = "the tenant id is not a GUID (or is the nil GUID)"
        elif rule.tenant_id == PERSONAL_ACCOUNTS_TENANT:
            problem = "the tenant id is the personal Microsoft accounts' tenant, no organisation's"
        elif rule.mail_domain and not is_mail_domain(rule.mail_domain):
            problem = "the mail domain is not valid"
        elif not is_valid_code(rule.municipality_code):
            problem = "the municipality code is not a valid local government code"
        if problem:
            if strict:
                raise InvalidInput(f"ENTRA_TENANTS: {entry!r}: {problem}")
            log.warning("ENTRA_TENANTS: ignoring %r: %s", entry, problem)
            continue
        rules.append(rule)
    return rules


def sync_env_tenants(value: str | None) -> tuple[int, int]:
    """Seed or update TenantMapping rows (source "env") from ENTRA_TENANTS. Returns (added, updated).

    Rows added by platform admins are never removed; an env row pointing elsewhere now is moved.
    """
    rules = parse_tenant_setting(value, strict=True)
    added = updated = 0
    for rule in rules:
        municipality = municipality_by_code(rule.municipality_code)
        if municipality is None:
            raise InvalidInput(f"ENTRA_TENANTS: unknown municipality code {rule.municipality_code!r}")
        row = db.session.scalar(
            select(TenantMapping).where(
                TenantMapping.tenant_id == rule.tenant_id, TenantMapping.mail_domain == rule.mail_domain
            )
        )
        if row is None:
            db.session.add(
                TenantMapping(
                    tenant_id=rule.tenant_id,
                    mail_domain=rule.mail_domain,
                    municipality_id=municipality.id,
                    source="env",
                )
            )
            added += 1
        elif row.municipality_id != municipality.id:
            row.municipality_id = municipality.id
            updated += 1
    db.session.flush()
    return added, updated


def municipality_for_tenant(tenant_id: str, mail_domain: str, env_setting: str | None = None) -> Municipality | None:
    """The municipality a user of ``tenant_id`` (signing in with ``mail_domain``) belongs to.

    Stored mappings and ENTRA_TENANTS are merged (read only: nothing is written here). A
    mapping for the user's mail domain wins over the tenant-wide one (mail domain empty).
    None: the tenant (or that mail domain in a shared tenant) is not allowed.
    """
    tenant_id = normalise_tenant_id(tenant_id)
    mail_domain = normalise_mail_domain(mail_domain)
    if not is_mappable_tenant(tenant_id):
        return None  # (a mapping stored before such ids were refused lets no one in)
    by_domain: dict[str, int | str] = {}
    for rule in parse_tenant_setting(env_setting, strict=False):
        if rule.tenant_id == tenant_id:
            by_domain[rule.mail_domain] = rule.municipality_code
    rows = db.session.scalars(select(TenantMapping).where(TenantMapping.tenant_id == tenant_id))
    for row in rows:
        by_domain[row.mail_domain] = row.municipality_id  # stored rows take precedence
    target = by_domain.get(mail_domain) if mail_domain else None
    if target is None:
        target = by_domain.get("")
    if target is None:
        return None
    municipality = db.session.get(Municipality, target) if isinstance(target, int) else municipality_by_code(target)
    return municipality if municipality is not None and municipality.active else None


def municipalities_of_tenant(tenant_id: str, env_setting: str | None = None) -> set[int]:
    """Ids of every active municipality ``tenant_id`` is mapped to (any mail domain; stored
    mappings and ENTRA_TENANTS merged). An application of the tenant may act for these."""
    tenant_id = normalise_tenant_id(tenant_id)
    if not is_mappable_tenant(tenant_id):
        return set()
    ids = set(db.session.scalars(select(TenantMapping.municipality_id).where(TenantMapping.tenant_id == tenant_id)))
    for rule in parse_tenant_setting(env_setting, strict=False):
        if rule.tenant_id == tenant_id:
            municipality = municipality_by_code(rule.municipality_code)
            if municipality is not None:
                ids.add(municipality.id)
    if not ids:
        return set()
    return set(db.session.scalars(select(Municipality.id).where(Municipality.id.in_(ids), Municipality.active.is_(True))))


def list_tenant_mappings() -> list[TenantMapping]:
    return list(
        db.session.scalars(
            select(TenantMapping)
            .join(TenantMapping.municipality)
            .order_by(Municipality.sort_order, TenantMapping.tenant_id, TenantMapping.mail_domain)
        )
    )


def add_tenant_mapping(actor, tenant_id: str, municipality_code: str, mail_domain: str = "") -> TenantMapping:
    """Allow sign-in from ``tenant_id`` (optionally only ``mail_domain``) into a municipality."""
    tenant_id = normalise_tenant_id(tenant_id)
    mail_domain = normalise_mail_domain(mail_domain)
    problem = tenant_id_problem(tenant_id)
    if problem:
        raise InvalidInput(problem)
    if mail_domain and not is_mail_domain(mail_domain):
        raise InvalidInput(_("メールドメインの形式が正しくありません（例: city.example.lg.jp）。"))
    municipality = municipality_by_code((municipality_code or "").strip())
    if municipality is None:
        raise InvalidInput(_("区市町村が見つかりません。"))
    existing = db.session.scalar(
        select(TenantMapping).where(TenantMapping.tenant_id == tenant_id, TenantMapping.mail_domain == mail_domain)
    )
    if existing is not None:
        raise Conflict(
            _("このテナント（とメールドメイン）はすでに %(name)s に対応付けられています。", name=existing.municipality.name)
        )
    row = TenantMapping(tenant_id=tenant_id, mail_domain=mail_domain, municipality_id=municipality.id, source="admin")
    db.session.add(row)
    db.session.flush()
    record_action(
        actor, "auth.tenant_added", "tenant_mapping", row.id, municipality.id,
        tenant_id=tenant_id, mail_domain=mail_domain, municipality_code=municipality.code,
    )
    return row


def remove_tenant_mapping(actor, mapping_id: int) -> TenantMapping:
    row = db.session.get(TenantMapping, mapping_id)
    if row is None:
        raise NotFound(_("対応付けが見つかりません。"))
    record_action(
        actor, "auth.tenant_removed", "tenant_mapping", row.id, row.municipality_id,
        tenant_id=row.tenant_id, mail_domain=row.mail_domain, municipality_code=row.municipality.code,
        source=row.source,
    )
    db.session.delete(row)
    db.session.flush()
    return row


def record_tenant_consent(tenant_id: str) -> int:
    """Mark every mapping of ``tenant_id`` as consented (the tenant's admin granted consent)."""
    rows = list(db.session.scalars(select(TenantMapping).where(TenantMapping.tenant_id == normalise_tenant_id(tenant_id))))
    now = utcnow()
    for row in rows:
        row.consented_at = now
    record_action(None, "auth.tenant_consented", "tenant", normalise_tenant_id(tenant_id), None, mappings=len(rows))
    db.session.flush()
    return len(rows)
