"""Certificates: PDF text via pdftotext, ZIP per course, public verification."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile

from sqlalchemy import select

from lms.completion.certificates import holder_initial
from lms.completion.models import Completion
from tests.conftest import require


def pdf_text(data: bytes, tmp_path) -> str:
    require(shutil.which("pdftotext") is not None, "pdftotext (apt-get install poppler-utils)")
    path = tmp_path / "c.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_learner_downloads_own_certificate(known_data, client, login_as, db, tmp_path):
    d = known_data
    login_as(user=d["learner"])
    c = db.session.scalar(select(Completion).where(Completion.staff_member_id == d["staff"][0].id))
    response = client.get(f"/completion/certificates/{c.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = pdf_text(response.data, tmp_path)
    assert "佐藤 花子" in text and "Teams 会議の基本" in text
    assert c.certificate_serial in text and "千代田区" in text
    assert f"/certificates/verify/{c.certificate_serial}" in text


def test_learner_cannot_download_someone_elses(known_data, client, login_as, db):
    d = known_data
    login_as(user=d["learner"])
    other = db.session.scalar(select(Completion).where(Completion.staff_member_id == d["staff"][2].id))
    assert client.get(f"/completion/certificates/{other.id}.pdf").status_code == 404


def test_municipal_admin_zip_per_course(known_data, client, login_as, tmp_path):
    d = known_data
    login_as("municipal_admin", "131016")
    response = client.get(f"/completion/courses/{d['a'].id}/certificates.zip?fy={d['fy']}", buffered=True)
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = archive.namelist()
    assert len(names) == 1  # 中央区's completion is not included
    assert "佐藤 花子" in pdf_text(archive.read(names[0]), tmp_path)


def test_verification_shows_only_allowed_fields(known_data, client, db):
    d = known_data
    c = db.session.scalar(select(Completion).where(Completion.staff_member_id == d["staff"][0].id))
    html = client.get(f"/certificates/verify/{c.certificate_serial.lower()}").get_data(as_text=True)
    assert "正規のもの" in html and "Teams 会議の基本" in html and "佐… 様" in html
    # Typed with a Japanese input method: full-width letters, digits and hyphen.
    wide = c.certificate_serial.lower().translate({n: n + 0xFEE0 for n in range(0x21, 0x7F)})
    assert "正規のもの" in client.get(f"/certificates/verify/{wide}").get_data(as_text=True)
    # Only the page's own content: the header carries a random CSRF token that may contain "E0".
    main = html.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    assert "花子" not in main and "千代田区" not in main and "E0" not in main
    unknown = client.get("/certificates/verify/MNB-2026-AAAAAAAAAAAAAAAA")
    assert unknown.status_code == 200 and "確認できませんでした" in unknown.get_data(as_text=True)
    assert unknown.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert "最初の1文字のみ" not in unknown.get_data(as_text=True)  # (no name shown: nothing to explain)
    # In English the date is written as English pages write it.
    from lms.common.timeutil import to_tokyo

    day = to_tokyo(c.completed_at).date()
    client.post("/lang", data={"lang": "en", "next": "/"})
    english = client.get(f"/certificates/verify/{c.certificate_serial}").get_data(as_text=True)
    assert f"{day.day} {day:%b} {day.year}" in english and "年" not in english.split('<main id="main"', 1)[1]


def test_every_link_to_a_certificate_names_the_public_address(known_data, client, login_as, db, app, tmp_path):
    """The PDF's QR code and link, the ZIP's and the API's: LMS_BASE_URL (the deployment's public
    address), not whatever host the request came in on."""
    d = known_data
    app.config["LMS_BASE_URL"] = "https://manabi.example.lg.jp"
    login_as(user=d["learner"])
    c = db.session.scalar(select(Completion).where(Completion.staff_member_id == d["staff"][0].id))
    pdf = client.get(f"/completion/certificates/{c.id}.pdf")  # (the request's host: localhost)
    assert pdf.status_code == 200
    text = pdf_text(pdf.data, tmp_path)
    assert f"https://manabi.example.lg.jp/certificates/verify/{c.certificate_serial}" in text
    assert "localhost" not in text


def test_revoked_certificate_says_so(known_data, client, db, make_user):
    from lms.completion.services import revoke_completion

    d = known_data
    c = db.session.scalar(select(Completion).where(Completion.staff_member_id == d["staff"][0].id))
    revoke_completion(c.id, make_user("platform_admin"), "誤登録")
    db.session.commit()
    html = client.get(f"/certificates/verify/{c.certificate_serial}").get_data(as_text=True)
    assert "取り消されています" in html


def test_holder_initial():
    assert holder_initial("佐藤 様") == "佐…"
    assert holder_initial("") == ""


def test_rare_name_characters_print_in_an_embedded_font(known_data, client, login_as, db, tmp_path, app):
    """𠮷 (beyond the BMP), 髙 and 﨑 (IBM extensions): the glyphs come from the embedded font,
    and the text reads back as written."""
    from pathlib import Path

    require(Path(app.config["LMS_CERTIFICATE_FONT"]).is_file(), "fonts-ipamj-mincho (apt-get install fonts-ipamj-mincho)")
    require(shutil.which("pdffonts") is not None, "pdffonts (apt-get install poppler-utils)")
    d = known_data
    c = db.session.scalar(select(Completion).where(Completion.staff_member_id == d["staff"][0].id))
    c.staff_member.full_name = "𠮷田 髙橋 﨑山"
    db.session.commit()
    login_as(user=d["learner"])
    response = client.get(f"/completion/certificates/{c.id}.pdf")
    assert response.status_code == 200
    text = pdf_text(response.data, tmp_path)
    assert "𠮷田 髙橋 﨑山 様" in text and "修 了 証" in text and "Teams 会議の基本" in text
    path = tmp_path / "fonts.pdf"
    path.write_bytes(response.data)
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in fonts.splitlines()[2:] if line.strip()]
    assert rows, fonts
    # name type... emb sub uni: every font is an embedded subset (no viewer substitutes one).
    assert all(row[-5] == "yes" and row[-4] == "yes" for row in rows), fonts
    assert any(row[0].endswith("+IPAmjMincho") for row in rows), fonts  # a subset of the configured font


def test_certificate_names_the_issuing_body_and_the_date_of_issue(known_data, client, login_as, db, tmp_path, app):
    from lms.common.timeutil import to_tokyo, utcnow

    app.config["LMS_ISSUER_NAME"] = "東京都総務局人事部"
    d = known_data
    login_as(user=d["learner"])
    c = db.session.scalar(select(Completion).where(Completion.staff_member_id == d["staff"][0].id))
    text = pdf_text(client.get(f"/completion/certificates/{c.id}.pdf").data, tmp_path)
    today = to_tokyo(utcnow()).date()
    assert "東京都総務局人事部" in text and "Manabi 研修ポータル" not in text
    assert f"発行日 {today.year}年{today.month}月{today.day}日" in " ".join(text.split())


def test_certificate_dates_in_the_japanese_era_when_configured(known_data, client, login_as, db, tmp_path, app):
    from lms.common.timeutil import fiscal_year_label, format_wareki, to_tokyo, utcnow

    app.config["LMS_WAREKI"] = True
    d = known_data
    login_as(user=d["learner"])
    c = db.session.scalar(select(Completion).where(Completion.staff_member_id == d["staff"][0].id))
    text = " ".join(pdf_text(client.get(f"/completion/certificates/{c.id}.pdf").data, tmp_path).split())
    assert f"発行日 {format_wareki(to_tokyo(utcnow()).date())}" in text
    assert fiscal_year_label(c.fiscal_year, wareki=True) in text and "令和" in text
    assert f"修了日 {format_wareki(c.completed_at)}" in text
