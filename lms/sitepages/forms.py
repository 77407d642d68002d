"""The site page editor (platform admins)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import StringField, TextAreaField
from wtforms.validators import Length, Optional

from lms.common.forms import Form, Required, stripped

MAX_BODY = 50_000


class SitePageForm(Form):
    # Required: a title or text of spaces only is refused (stripped, it is nothing).
    title = StringField(_l("見出し"), filters=[stripped],
                        validators=[Required(_l("見出しを入力してください。")), Length(max=200)])
    body_md = TextAreaField(_l("本文（Markdown）"), filters=[stripped], validators=[
        Required(_l("本文を入力してください。")),
        Length(max=MAX_BODY, message=_l("本文は %(max)d 文字以内にしてください。")),
    ])
    title_en = StringField(_l("見出し（英語）"), filters=[stripped], validators=[Optional(), Length(max=200)])
    body_md_en = TextAreaField(_l("本文（英語、Markdown）"), filters=[stripped], validators=[
        Optional(), Length(max=MAX_BODY, message=_l("本文は %(max)d 文字以内にしてください。")),
    ])
