"""Forms of the completion area."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from lms.common.forms import Form, JapaneseDateField
from lms.common.ids import coerce_id


class ManualCompletionForm(Form):
    employee_number = StringField(_l("職員番号"), validators=[
        DataRequired(_l("職員番号を入力してください。")), Length(max=20, message=_l("職員番号は20文字以内で入力してください。"))])
    municipality_id = SelectField(_l("区市町村"), coerce=coerce_id, validators=[InputRequired(_l("区市町村を選んでください。"))])
    fiscal_year = IntegerField(_l("年度"), validators=[
        InputRequired(_l("年度を入力してください。")),
        NumberRange(min=2000, max=2100, message=_l("年度は2000から2100までの数で入力してください。"))])
    reason = TextAreaField(_l("理由"), validators=[
        DataRequired(_l("理由を入力してください。")), Length(max=1000, message=_l("理由は1000文字以内で入力してください。"))])


class RevokeForm(Form):
    reason = TextAreaField(_l("取消の理由"), validators=[DataRequired(), Length(max=1000)])


class AssignmentForm(Form):
    course_id = SelectField(_l("研修"), coerce=coerce_id, validators=[InputRequired()])
    fiscal_year = IntegerField(_l("年度"), validators=[InputRequired(), NumberRange(min=2000, max=2100)])
    # "" = all municipalities (platform admins only); otherwise a municipality id.
    municipality_id = SelectField(_l("対象の区市町村"), validators=[Optional()])
    department = StringField(_l("所属（空欄はすべて）"), validators=[Optional(), Length(max=200)])
    job_title = StringField(_l("職名（空欄はすべて）"), validators=[Optional(), Length(max=100)])
    new_staff_fiscal_year = IntegerField(
        _l("新規採用者のみ（採用年度）"), validators=[Optional(), NumberRange(min=1950, max=2100)]
    )
    due_on = JapaneseDateField(_l("期限"), validators=[InputRequired()])
    note = TextAreaField(_l("メモ"), validators=[Optional(), Length(max=1000)])
