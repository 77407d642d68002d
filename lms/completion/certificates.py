"""修了証 (certificates of completion) as PDF, a ZIP of them per course, and verification.

The text is set in a font embedded in the PDF (a subset of LMS_CERTIFICATE_FONT, by default
Debian's IPAmj明朝, which covers the 人名 characters of the 戸籍 including those beyond the
Basic Multilingual Plane such as 𠮷): every viewer and printer shows the same glyphs. The text
stays real text (searchable, readable by pdftotext and screen readers); each line also carries
its text as /ActualText, because the font subset's ToUnicode map cannot name a character
beyond U+FFFF. Without the font file, reportlab's Japanese CID fonts are used (not embedded,
no characters beyond the BMP) and a warning is logged.

A certificate is in Japanese whatever language its holder reads the site in: it is the
issuer's official document (修了証, with 交付 date and serial), one wording for everyone who
holds one, as the issuer prints it; the public check page (``verify_certificate``) speaks the
reader's language. The drawing itself is in ``certificate_pdf``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote

from flask import current_app, has_app_context
from sqlalchemy import select

from lms.common.links import app_url
from lms.common.timeutil import format_wareki, to_tokyo, utcnow
from lms.common.zipstream import ZipStream
from lms.completion.models import COMPLETED, Completion
from lms.completion.services import normalise_serial
from lms.courses.models import Course
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster.models import StaffMember


def verification_base() -> str:
    """A certificate's public verification page with ``SERIAL`` for its serial, on
    ``LMS_BASE_URL`` (the deployment's public address): the printed QR code, the certificates
    ZIP, the API's and the webhooks' answers all name the same address, whatever host a
    request came in on (an internal name behind the proxy) or none (the worker)."""
    return app_url("completion.verify_certificate", "/certificates/verify/SERIAL", serial="SERIAL")


def verification_url(serial: str) -> str:
    return verification_base().replace("SERIAL", quote(serial))

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CertificateData:
    serial: str
    holder_name: str
    course_title: str
    municipality_name: str
    completed_at: datetime
    fiscal_year: int
    verify_url: str
    issuer: str = ""
    issued_on: date | None = None  # the date of issue printed (the day the PDF is made)
    revoked: bool = False
    wareki: bool = False  # dates and the fiscal year in the Japanese era (LMS_WAREKI)


def japanese_date(value: datetime | date, wareki: bool = False) -> str:
    """2026年12月3日, or 令和8年12月3日 with ``wareki``."""
    local = to_tokyo(value) if isinstance(value, datetime) else value
    assert local is not None  # given a datetime
    if wareki:
        return format_wareki(local)
    return f"{local.year}年{local.month}月{local.day}日"


def certificate_data(completion: Completion, verify_url: str, issuer: str = "") -> CertificateData:
    return CertificateData(
        serial=completion.certificate_serial or "",
        holder_name=completion.staff_member.full_name,
        course_title=completion.course.title,
        municipality_name=completion.staff_member.municipality.name,
        completed_at=completion.completed_at,
        fiscal_year=completion.fiscal_year,
        verify_url=verify_url,
        issuer=issuer,
        issued_on=to_tokyo(utcnow()).date(),
        revoked=completion.status != COMPLETED,
        wareki=bool(current_app.config.get("LMS_WAREKI")) if has_app_context() else False,
    )


def certificate_filename(completion: Completion) -> str:
    return f"certificate-{completion.certificate_serial}.pdf"


def course_zip_chunks(completions_query, url_for_serial, font_path: str, issuer: str = "") -> Iterator[bytes]:
    """A ZIP of the certificates matched by ``completions_query`` (a select of Completion),
    streamed as each PDF is added: the download starts with the first certificate."""
    from lms.completion.certificate_pdf import render_certificate_pdf  # (heavy: certificate_pdf says why)

    archive = ZipStream()
    result = db.session.scalars(completions_query.execution_options(yield_per=200))
    for completion in result:
        data = certificate_data(completion, url_for_serial(completion.certificate_serial), issuer)
        name = f"{completion.staff_member.employee_number}-{completion.certificate_serial}.pdf"
        archive.writestr(name, render_certificate_pdf(data, font_path))
        yield from archive.drain()
    yield from archive.close()


# ---------------------------------------------------------------- verification


@dataclass(frozen=True)
class Verification:
    """What the public page may show: nothing else."""

    genuine: bool
    revoked: bool = False
    course_title: str = ""
    completed_at: datetime | None = None  # (the page writes it in its language)
    holder_initial: str = ""


def holder_initial(full_name: str) -> str:
    name = (full_name or "").strip()
    return f"{name[0]}…" if name else ""


def verify_certificate(serial: str) -> Verification:
    """One query of the same shape whatever the serial, so that unknown serials answer
    like known ones (no enumeration help)."""
    serial = normalise_serial(serial)
    row = db.session.execute(
        select(Completion.status, Completion.completed_at, Course.title, StaffMember.full_name, Municipality.name)
        .join(Course, Course.id == Completion.course_id)
        .join(StaffMember, StaffMember.id == Completion.staff_member_id)
        .join(Municipality, Municipality.id == StaffMember.municipality_id)
        .where(Completion.certificate_serial == serial)
    ).first()
    if row is None:
        return Verification(genuine=False)
    status, completed_at, title, full_name, _municipality = row
    return Verification(
        genuine=True,
        revoked=status != COMPLETED,
        course_title=title,
        completed_at=completed_at,
        holder_initial=holder_initial(full_name),
    )
