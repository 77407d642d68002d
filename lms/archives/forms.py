from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import RadioField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from lms.archives.models import AUDIENCE_ELIGIBLE, AUDIENCE_ENROLLEES, AUDIENCE_MUNICIPALITIES
from lms.common.forms import ActionForm as ActionForm  # noqa: PLC0414 - one CSRF-only form for the area's buttons
from lms.common.forms import Form, JapaneseDateTimeField, Required
from lms.common.ids import coerce_id

AUDIENCE_CHOICES = [
    SelectChoice(AUDIENCE_ELIGIBLE, _l("研修の対象区市町村の職員全員")),
    SelectChoice(AUDIENCE_ENROLLEES, _l("この研修の受講が確定した職員のみ")),
    SelectChoice(AUDIENCE_MUNICIPALITIES, _l("指定した区市町村の職員")),
]


class ArchiveForm(Form):
    course_id = SelectField(_l("研修"), coerce=coerce_id, validators=[Required(_l("研修を選択してください。"))])
    session_id = SelectField(_l("研修回（任意）"), coerce=coerce_id, default=0)
    title = StringField(
        _l("タイトル"),
        validators=[Required(_l("タイトルを入力してください。")), Length(max=200, message=_l("200文字以内で入力してください。"))],
    )
    description = TextAreaField(
        _l("説明"), validators=[Optional(), Length(max=5000, message=_l("5000文字以内で入力してください。"))]
    )
    available_from = JapaneseDateTimeField(_l("公開開始（日本時間）"), validators=[Optional()])
    available_until = JapaneseDateTimeField(_l("公開終了（日本時間）"), validators=[Optional()])
    audience = RadioField(_l("視聴対象"), choices=AUDIENCE_CHOICES, default=AUDIENCE_ELIGIBLE)
    municipality_ids = SelectMultipleField(_l("視聴を許可する区市町村"), coerce=coerce_id, validators=[Optional()])


