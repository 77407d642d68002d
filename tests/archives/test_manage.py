"""Trainers' management: create, edit, publish and withdraw (audited); who may manage what."""

from __future__ import annotations

from sqlalchemy import select

from lms.archives.models import Archive
from lms.audit.models import AuditLog
from tests import factories
from tests.archives.conftest import add_file, make_archive, video_bytes


def form(course, **kw):
    data = {"course_id": course.id, "session_id": 0, "title": "第1回 録画", "description": "研修の録画です。",
            "available_from": "2026-04-01T09:00", "available_until": "2027-03-31T17:00", "audience": "eligible"}
    data.update(kw)
    return data


def test_trainer_creates_edits_publishes_and_withdraws(db, client, login_as, owned_course):
    trainer, course = owned_course
    login_as(user=trainer)
    assert client.get("/archives/manage").status_code == 200
    response = client.post("/archives/manage/new", data=form(course))
    assert response.status_code == 302
    archive = db.session.scalar(select(Archive))
    assert archive.status == "draft" and archive.created_by_id == trainer.id
    # Tokyo wall-clock 09:00 is 00:00 UTC.
    assert archive.available_from.hour == 0 and archive.available_from.day == 1
    refused = client.post(f"/archives/manage/{archive.id}/publish")
    assert refused.status_code == 302
    assert "ファイルが1つ以上必要" in client.get(refused.headers["Location"]).get_data(as_text=True)
    db.session.refresh(archive)
    assert archive.status == "draft"
    add_file(archive, video_bytes("webm"))
    client.post(f"/archives/manage/{archive.id}/publish")
    db.session.refresh(archive)
    assert archive.status == "published" and archive.published_at is not None
    muni = factories.municipality("131032")
    client.post(f"/archives/manage/{archive.id}/edit",
                data=form(course, title="改題", audience="municipalities", municipality_ids=[muni.id]))
    db.session.refresh(archive)
    assert archive.title == "改題" and [m.municipality_id for m in archive.municipalities] == [muni.id]
    # Withdrawing asks on a page of its own, naming the archive, before anything changes.
    confirm = client.get(f"/archives/manage/{archive.id}/withdraw").get_data(as_text=True)
    assert "公開を終了する" in confirm and "改題" in confirm and "これまでに視聴した職員" in confirm
    db.session.refresh(archive)
    assert archive.status == "published"
    client.post(f"/archives/manage/{archive.id}/withdraw")
    db.session.refresh(archive)
    assert archive.status == "withdrawn"
    actions = db.session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert "archive.publish" in actions and "archive.withdraw" in actions and "archive.create" in actions


def test_form_errors_are_japanese_and_nothing_is_saved(db, client, login_as, owned_course):
    trainer, course = owned_course
    login_as(user=trainer)
    page = client.post("/archives/manage/new", data=form(course, title="", available_until="2026-03-01T09:00"))
    text = page.get_data(as_text=True)
    assert "タイトルを入力してください" in text
    page = client.post("/archives/manage/new", data=form(course, available_until="2026-03-01T09:00"))
    assert "公開終了は公開開始より後" in page.get_data(as_text=True)
    page = client.post("/archives/manage/new", data=form(course, audience="municipalities"))
    assert "区市町村を1つ以上選択" in page.get_data(as_text=True)
    assert db.session.scalar(select(Archive)) is None


def test_trainer_cannot_use_another_trainers_course_or_archive(db, client, login_as, owned_course):
    _trainer, course = owned_course
    archive = make_archive(course)
    login_as("trainer", "130001")
    # Another trainer's archive is answered as one that does not exist (and audited).
    assert client.get(f"/archives/manage/{archive.id}").status_code == 404
    assert client.get("/archives/manage/2147483647").status_code == 404
    assert client.post(f"/archives/manage/{archive.id}/withdraw").status_code == 404
    client.post("/archives/manage/new", data=form(course))
    assert db.session.scalar(select(Archive).where(Archive.title == "第1回 録画", Archive.id != archive.id)) is None
    db.session.refresh(archive)
    assert archive.status == "published"


def test_learners_and_municipal_admins_cannot_manage(client, login_as, owned_course):
    archive = make_archive(owned_course[1])
    for role in ("learner", "municipal_admin"):
        login_as(role, "131016")
        assert client.get("/archives/manage").status_code == 403
        assert client.post(f"/archives/manage/{archive.id}/withdraw").status_code == 403


def test_platform_admin_sees_all(client, login_as, owned_course):
    archive = make_archive(owned_course[1], title="管理者から見える録画")
    login_as("platform_admin", "130001")
    assert "管理者から見える録画" in client.get("/archives/manage").get_data(as_text=True)
    assert client.get(f"/archives/manage/{archive.id}").status_code == 200


def test_remove_file_deletes_bytes(db, client, login_as, owned_course):
    from lms.archives.storage import get_storage

    trainer, course = owned_course
    archive = make_archive(course, status="draft")
    archive_file = add_file(archive, video_bytes("webm"))
    login_as(user=trainer)
    confirm = client.get(f"/archives/manage/{archive.id}/files/{archive_file.id}/remove").get_data(as_text=True)
    assert archive_file.filename in confirm and "元に戻せません" in confirm
    assert get_storage().exists(archive_file.storage_key)
    client.post(f"/archives/manage/{archive.id}/files/{archive_file.id}/remove")
    db.session.refresh(archive_file)
    assert archive_file.status == "removed"
    assert not get_storage().exists(archive_file.storage_key)


def test_learner_list_shows_only_watchable_archives(client, login_as, owned_course):
    course = owned_course[1]
    make_archive(course, title="公開中の録画")
    make_archive(course, title="下書きの録画", status="draft")
    login_as("learner", "131016")
    page = client.get("/archives/").get_data(as_text=True)
    assert "公開中の録画" in page and "下書きの録画" not in page


def test_form_groups_municipalities_once_and_sessions_under_their_course(db, client, login_as, owned_course):
    import re

    trainer, course = owned_course
    other = factories.make_course(title="Excel 入門", owner_id=trainer.id)
    mine = factories.make_session(course, title="第1回")
    theirs = factories.make_session(other, title="第2回")
    login_as(user=trainer)
    page = client.get("/archives/manage/new").get_data(as_text=True)
    kinds = re.findall(r'<fieldset class="municipality-group">\s*<legend>([^<]+)</legend>', page)
    assert kinds == ["都道府県", "特別区", "市", "町", "村"]  # each kind once, in this order
    assert re.search(rf'<optgroup label="Teams 活用研修">\s*<option value="{mine.id}">', page)
    assert re.search(rf'<optgroup label="Excel 入門">\s*<option value="{theirs.id}">', page)
    # A session of another course is refused beside the field; nothing is saved, input kept.
    refused = client.post("/archives/manage/new", data=form(course, session_id=theirs.id, title="録画A"))
    text = refused.get_data(as_text=True)
    assert refused.status_code == 200 and "研修回は選択した研修のものを指定してください。" in text
    assert 'value="録画A"' in text and db.session.scalar(select(Archive)) is None
