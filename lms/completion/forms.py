"""Forms of the completion area."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import Field, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from lms.common.forms import Form, JapaneseDateField, Required
from lms.common.ids import coerce_id
from lms.completion.services import fiscal_year_range, fiscal_year_range_message


class FiscalYearInRange:
    """A fiscal year the completion area shows (services.fiscal_year_range, read when the form
    is checked); ``future=False``: none after the current one."""

    def __init__(self, *, future: bool = True) -> None:
        self.future = future

    def __call__(self, form: Form, field: Field) -> None:
        if field.data is None:
            return
        first, last = fiscal_year_range(future=self.future)
        if not first <= field.data <= last:
            raise ValidationError(fiscal_year_range_message(future=self.future))


class ManualCompletionForm(Form):
    employee_number = StringField(_l("職員番号"), validators=[
        Required(_l("職員番号を入力してください。")), Length(max=20, message=_l("職員番号は20文字以内で入力してください。"))])
    municipality_id = SelectField(_l("区市町村"), coerce=coerce_id, validators=[Required(_l("区市町村を選んでください。"))])
    fiscal_year = IntegerField(_l("年度"), validators=[
        Required(_l("年度を入力してください。")), FiscalYearInRange(future=False)])
    reason = TextAreaField(_l("理由"), validators=[
        Required(_l("理由を入力してください。")), Length(max=1000, message=_l("理由は1000文字以内で入力してください。"))])


class RevokeForm(Form):
    reason = TextAreaField(_l("取消の理由"), validators=[Required(), Length(max=1000)])


class AssignmentForm(Form):
    course_id = SelectField(_l("研修"), coerce=coerce_id, validators=[Required()])
    fiscal_year = IntegerField(_l("年度"), validators=[Required(), FiscalYearInRange()])
    # "" = all municipalities (platform admins only); otherwise a municipality id.
    municipality_id = SelectField(_l("対象の区市町村"), validators=[Optional()])
    department = StringField(_l("所属（空欄はすべて）"), validators=[Optional(), Length(max=200)])
    job_title = StringField(_l("職名（空欄はすべて）"), validators=[Optional(), Length(max=100)])
    new_staff_fiscal_year = IntegerField(
        _l("新規採用者のみ（採用年度）"), validators=[Optional(), NumberRange(min=1950, max=2100)]
    )
    due_on = JapaneseDateField(_l("期限"), validators=[Required()])
    note = TextAreaField(_l("メモ"), validators=[Optional(), Length(max=1000)])
