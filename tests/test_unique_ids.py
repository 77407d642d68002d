"""Every id in a page is unique (HTML; labels and ARIA references point at one element):
pages with several small forms rendered each form's CSRF field as ``id="csrf_token"``."""

from __future__ import annotations

import re
from collections import Counter

_ID = re.compile(r'\sid="([^"]+)"')


def _duplicate_ids(html: str) -> list[str]:
    return sorted(name for name, n in Counter(_ID.findall(html)).items() if n > 1)


def test_the_trainers_pages_with_several_forms_have_unique_ids(app, client, login_as, make_course, make_session):
    trainer = login_as("trainer", "130001")
    course = make_course(owner_id=trainer.id)
    make_session(course)
    app.config["WTF_CSRF_ENABLED"] = True  # (the tests' default leaves the token fields out)
    try:
        for path in (f"/manage/courses/{course.id}", "/manage/courses", f"/courses/{course.id}"):
            response = client.get(path)
            assert response.status_code == 200, path
            html = response.get_data(as_text=True)
            assert html.count('name="csrf_token"') >= (2 if path == f"/manage/courses/{course.id}" else 0), path
            assert _duplicate_ids(html) == [], path
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
