"""The XSS corpus typed into forms (course form, its Markdown preview): what is saved comes
back escaped, Markdown links with javascript: are neutralised."""

from __future__ import annotations

from tests.factories import make_user, sign_in
from tests.security.htmlcheck import dom_problems
from tests.security.payloads import XSS_PAYLOADS


def _check(url, html, payload, problems):
    problems += [f"{url}: {p} (payload {payload[:30]!r})" for p in dom_problems(html)]
    if "<" in payload and payload in html:
        problems.append(f"{url}: payload verbatim {payload[:40]!r}")


def test_course_form_and_markdown_preview_escape_every_payload(app, client):
    trainer = make_user("trainer", "130001")
    sign_in(client, trainer)
    problems: list[str] = []
    saved = 0
    for payload in XSS_PAYLOADS:
        form = {
            "title": payload[:200], "summary": payload[:500], "description_md": payload,
            "target_audience": payload[:500], "eligibility": "all", "category_id": "0",
            "completion_mode": "either", "attendance_threshold_pct": "75", "viewing_threshold_pct": "90",
        }
        preview = client.post("/manage/courses/new", data={**form, "preview": "1"})
        assert preview.status_code == 200
        _check("preview", preview.get_data(as_text=True), payload, problems)
        response = client.post("/manage/courses/new", data={**form, "save": "1"})
        assert response.status_code in (200, 302), response.status_code
        if response.status_code == 200:  # refused by validation: the form shows the input again
            _check("form", response.get_data(as_text=True), payload, problems)
            continue
        saved += 1
        location = response.headers["Location"]
        for url in (location, location.rstrip("/") + "/edit"):
            page = client.get(url)
            if page.status_code == 200:
                _check(url, page.get_data(as_text=True), payload, problems)
    manage = client.get("/manage/courses").get_data(as_text=True)
    problems += [f"/manage/courses: {p}" for p in dom_problems(manage)]
    assert saved >= len(XSS_PAYLOADS) - 5, f"only {saved} courses saved"
    assert not problems, "\n".join(problems[:30])
