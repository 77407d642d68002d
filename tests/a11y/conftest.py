"""Accessibility suite: demo data plus an archive, the app served to real Chromium."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.conftest import ROOT, require

AXE = ROOT / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

ROLES = {
    "anonymous": None,
    "learner": ("131016", "learner0"),
    "trainer": ("130001", "trainer"),
    "municipal_admin": ("131016", "admin"),
    "platform_admin": ("130001", "platform"),
}


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True, "LMS_LOG_REQUESTS": False}


def demo_user(code, key):
    from lms.auth.models import User
    from lms.demo import demo_uuid
    from lms.extensions import db

    return db.session.scalar(select(User).where(User.object_id == demo_uuid("user", code, key)))


@pytest.fixture
def a11y_world(app, db):
    """The demo data set, plus a course open to everyone, owned by the demo trainer, with an
    open session and a published archive (video + captions)."""
    from lms.archives.models import Archive
    from lms.common.timeutil import utcnow
    from lms.demo import load_demo
    from tests.archives.conftest import VTT_TEXT, add_file, video_bytes
    from tests.factories import make_course, make_session, make_staff

    require(AXE.exists(), "axe-core in tests/node/node_modules (cd tests/node && npm install)")
    load_demo()
    db.session.commit()
    trainer = demo_user("130001", "trainer")
    course = make_course(title="Teams 会議の基本（アクセシビリティ確認）", owner_id=trainer.id,
                         description_md="## 内容\n\n- 会議の開始\n- [資料](https://example.lg.jp/)\n")
    session = make_session(course, capacity=30)
    archive = Archive(course_id=course.id, title="第1回 録画", description="会議の開始と終了", status="published",
                      audience="eligible", created_by_id=trainer.id, published_at=utcnow())
    db.session.add(archive)
    db.session.commit()
    add_file(archive, video_bytes("webm"), "video.webm")
    add_file(archive, VTT_TEXT.encode(), "captions.vtt")
    # A name outside Windows-31J: the Shift_JIS roster export shows its warning page.
    make_staff("131016", full_name="𠮷田 一", full_name_kana="ヨシダ ハジメ")
    return {"course": course, "session": session, "archive": archive}


def sign_in(page, base_url: str, user) -> None:
    page.goto(f"{base_url}/auth/demo")
    page.locator(f"#demo-user-{user.id}").check()
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    assert "/auth/demo" not in page.url, "demo sign-in did not complete"


def run_axe(page) -> list[dict]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "opts => axe.run(document, opts)", {"runOnly": {"type": "tag", "values": WCAG_TAGS}}
    )
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
    ]


def pattern(path: str) -> str:
    """/courses/12?q=x&page=2 -> /courses/N?page&q (one page per kind of page)."""
    base, _, query = path.partition("?")
    keys = sorted({part.split("=")[0] for part in query.split("&") if part})
    return re.sub(r"\d+", "N", base) + ("?" + "&".join(keys) if keys else "")
