"""Forms let the server speak: validation messages are Japanese, and forms with required
inputs carry ``novalidate`` so the browser's (English) bubbles never replace them."""

from __future__ import annotations

import re
from pathlib import Path

from wtforms import FieldList, FormField, IntegerField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from lms.common.forms import Between, Form, JapaneseDateField, Required, error_summary, within
from lms.courses.forms import WholeNumberField

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# The demo sign-in page (not served in production) keeps the browser's check on its radio list:
# its view shows no per-field message yet.
BROWSER_CHECKED = {"auth/demo.html"}


class _Sample(Form):
    class Meta:
        csrf = False

    a = StringField("a", validators=[InputRequired()])
    b = StringField("b", validators=[DataRequired()])
    c = StringField("c", validators=[Length(max=3)])
    d = IntegerField("d", validators=[NumberRange(min=1, max=5)])


def _has_japanese(text: str) -> bool:
    return re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text) is not None


def test_wtforms_messages_are_japanese(app):
    with app.test_request_context(method="POST", data={"c": "長すぎる文字", "d": "9"}):
        form = _Sample()
        assert not form.validate()
        assert set(form.errors) == {"a", "b", "c", "d"}
        for name, errors in form.errors.items():
            assert errors and all(_has_japanese(str(e)) for e in errors), (name, errors)


def test_wtforms_own_validators_say_what_to_do_in_plain_words(app):
    """WTForms' catalogue speaks of 「フィールド」 (「フィールドは 3 文字を超えることはできません」):
    its validators used as they are say what to enter instead, in the page's language."""
    from flask_babel import force_locale

    expected = {
        "ja": {"a": ["この項目を入力してください。"], "b": ["この項目を入力してください。"],
               "c": ["3文字以内で入力してください。"], "d": ["1から5までの数で入力してください。"]},
        "en": {"a": ["Fill in this item."], "b": ["Fill in this item."],
               "c": ["Enter no more than 3 characters."], "d": ["Enter a number from 1 to 5."]},
    }
    for language, wanted in expected.items():
        with app.test_request_context(method="POST", data={"c": "長すぎる文字", "d": "9"}), force_locale(language):
            form = _Sample()
            assert not form.validate()
            assert {name: [str(e) for e in errors] for name, errors in form.errors.items()} == wanted
            assert "フィールド" not in str(form.errors)
    with app.test_request_context(method="POST", data={"a": "x", "b": "x", "d": "三"}):
        form = _Sample()
        assert not form.validate()
        assert form.errors == {"d": ["整数で入力してください。", "1から5までの数で入力してください。"]}


def test_post_forms_with_required_inputs_have_novalidate():
    offenders = []
    for path in TEMPLATES.rglob("*.html"):
        if path.relative_to(TEMPLATES).as_posix() in BROWSER_CHECKED:
            continue
        for match in re.finditer(r"<form\b[^>]*>(.*?)</form>", path.read_text(encoding="utf-8"), re.S):
            tag = match.group(0).split(">", 1)[0]
            if 'method="post"' in tag and re.search(r"\srequired(?=[\s>{])", match.group(1)) and "novalidate" not in tag:
                offenders.append(f"{path.relative_to(TEMPLATES)}: {tag}")
    assert offenders == []


class _Plain(Form):
    class Meta:
        csrf = False

    title = StringField("title", validators=[within(5)])
    n = WholeNumberField("n", validators=[Optional(), Between(1, 100)])


def test_the_apps_own_length_and_range_messages_one_per_field(app):
    """Plain Japanese ("5文字以内", "1から100まで") rather than WTForms' generic wording, and a
    text that is no number gets only the field's own message, not the range's as well."""
    with app.test_request_context(method="POST", data={"title": "長すぎるタイトル", "n": "abc"}):
        form = _Plain()
        assert not form.validate()
        assert [str(e) for e in form.errors["title"]] == ["5文字以内で入力してください。"]
        assert len(form.errors["n"]) == 1 and "範囲" not in str(form.errors["n"][0])
    with app.test_request_context(method="POST", data={"title": "短い", "n": "101"}):
        form = _Plain()
        assert not form.validate()
        assert [str(e) for e in form.errors["n"]] == ["1から100までの数で入力してください。"]


class _Row(Form):
    class Meta:
        csrf = False

    seats = IntegerField("seats", validators=[NumberRange(min=0, max=9)])


class _Rows(Form):
    class Meta:
        csrf = False

    name = StringField("name", validators=[InputRequired()])
    rows = FieldList(FormField(_Row), min_entries=2)
    steps = FieldList(IntegerField("step", validators=[NumberRange(min=1, max=3)]), min_entries=2)


def test_error_summary_flattens_rows_to_their_fields_messages(app):
    with app.test_request_context(method="POST", data={"rows-0-seats": "5", "rows-1-seats": "12",
                                                       "steps-0": "2", "steps-1": "7"}):
        form = _Rows()
        assert not form.validate()
        form.form_errors.append("全体の誤り")
        summary = [(field.id if field is not None else None, message) for field, message in error_summary(form)]
    assert [name for name, _message in summary] == ["name", "rows-1-seats", "steps-1", None]
    assert summary[-1] == (None, "全体の誤り")
    assert all(isinstance(message, str) and not message.startswith(("{", "[")) for _name, message in summary)


def test_a_crafted_value_of_a_list_is_answered_in_the_users_terms(app):
    """A value that names no choice (only a crafted request sends one) gets "choose from the
    list", in the page's language, not WTForms' "could not coerce"."""
    from flask_babel import force_locale
    from wtforms import SelectField, SelectMultipleField
    from wtforms.fields.choices import SelectChoice

    from lms.common.ids import coerce_id

    class Picks(Form):
        class Meta:
            csrf = False

        one = SelectField("one", coerce=coerce_id, choices=[SelectChoice(1, "a")])
        many = SelectMultipleField("many", coerce=coerce_id, choices=[SelectChoice(1, "a")])

    for language, expected in (("ja", "一覧にある選択肢から選んでください。"), ("en", "Choose from the list.")):
        with app.test_request_context(method="POST", data={"one": "x<b>", "many": ["1", "zz"]}), force_locale(language):
            form = Picks()
            assert not form.validate()
            assert form.errors == {"one": [expected], "many": [expected]}
        # A number that is no choice (WTForms: "'99999' is not a valid choice for this field.").
        with app.test_request_context(method="POST", data={"one": "2", "many": ["1", "99999"]}), force_locale(language):
            form = Picks()
            assert not form.validate()
            assert form.errors == {"one": [expected], "many": [expected]}


class _Blank(Form):
    class Meta:
        csrf = False

    title = StringField("title", validators=[Required("件名を入力してください。")])
    day = JapaneseDateField("day", validators=[Required()])
    count = WholeNumberField("count", validators=[Required()])


def test_a_required_field_of_spaces_only_is_missing(app):
    """Spaces (half or full width), a tab, a pasted zero-width space or a control character
    alone are not an answer: WTForms' InputRequired let them through, and a date field then read
    " " as no date (a None deadline reached the services: 500s and a NOT NULL 409)."""
    for blank in (" ", "\u3000", "\t", "\u200b", "\x01", " \u3000 "):
        with app.test_request_context(method="POST", data={"title": blank, "day": blank, "count": blank}):
            form = _Blank()
            assert not form.validate()
            assert form.errors == {"title": ["件名を入力してください。"], "day": ["この項目を入力してください。"],
                                   "count": ["この項目を入力してください。"]}, repr(blank)
    with app.test_request_context(method="POST", data={"title": " 件名 ", "day": "2027-04-01", "count": "3"}):
        form = _Blank()
        assert form.validate(), form.errors
        assert form.title.flags.required and form.day.flags.required


def test_every_required_field_is_checked_by_the_one_rule():
    """lms' forms use ``lms.common.forms.Required``, never WTForms' InputRequired or DataRequired
    (each lets a value of spaces through)."""
    root = Path(__file__).resolve().parent.parent / "lms"
    found = [str(path.relative_to(root)) for path in root.rglob("*.py")
             if path.name != "forms.py" or path.parent.name != "common"
             if re.search(r"\b(InputRequired|DataRequired)\b", path.read_text(encoding="utf-8"))]
    assert found == []
