"""A course description that starts with its own 「内容」/「概要」 heading shows it once."""

from __future__ import annotations

import pytest

from lms.common.markdown import split_section_heading
from tests.factories import make_course


@pytest.mark.parametrize(("text", "heading", "rest"), [
    ("## 内容\n\n本文", "内容", "\n本文"),
    ("# 概要 #\n本文", "概要", "本文"),
    ("\n### Overview:\ntext", "Overview:", "text"),
    ("## 講師\n本文", None, "## 講師\n本文"),
    ("本文だけ", None, "本文だけ"),
    ("", None, ""),
])
def test_split_section_heading(text, heading, rest):
    assert split_section_heading(text) == (heading, rest)


def test_course_page_shows_the_description_heading_once(db, client, login_as):
    login_as("learner")
    course = make_course(description_md="## 内容\n\n- Excel の基本\n\n## 持ち物\n\nPC")
    html = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert html.count(">内容</h2>") == 1
    assert "持ち物</h2>" in html and "Excel の基本" in html


def test_course_page_keeps_its_heading_for_a_plain_description(db, client, login_as):
    login_as("learner")
    course = make_course(description_md="Excel の基本")
    html = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert html.count(">内容</h2>") == 1
