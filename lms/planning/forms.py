"""Forms of the 年間研修計画 pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, NumberRange, Optional

from lms.common import forms as base
from lms.common.ids import coerce_id
from lms.courses.forms import TokyoDateTimeField, WholeNumberField
from lms.planning.models import SURVEY_BY_COURSE, SURVEY_BY_SESSION


class PlanForm(base.Form):
    fiscal_year = WholeNumberField(_l("年度（西暦）"), validators=[base.Required(), NumberRange(2000, 2100)])
    guaranteed_minimum = WholeNumberField(_l("保障枠（希望した自治体に先に割り当てる人数）"), default=1,
                                          validators=[base.Required(), NumberRange(0, 50)])
    survey_unit = RadioField(_l("予定調査の回答の単位"), default=SURVEY_BY_COURSE, choices=[
        SelectChoice(SURVEY_BY_COURSE, _l("研修ごと（各回への配分は割当の計算で決めます）")),
        SelectChoice(SURVEY_BY_SESSION, _l("研修回ごと（自治体が回を選んで希望します）")),
    ], validators=[base.Required()])
    note = TextAreaField(_l("メモ"), validators=[Optional(), Length(max=2000)])


class PublishForm(base.Form):
    survey_deadline = TokyoDateTimeField(_l("予定調査の回答期限"), validators=[base.Required()])


class AdjustForm(base.Form):
    seats = WholeNumberField(_l("調整後の人数"), validators=[base.Required(), NumberRange(0, 9999)])
    reason = StringField(_l("理由"), validators=[base.Required(), Length(max=500)])


class ExemptionForm(base.Form):
    municipality_id = SelectField(_l("自治体"), coerce=coerce_id, default=0)
    course_id = SelectField(_l("研修"), coerce=coerce_id, default=0)
    percent = WholeNumberField(_l("減免の割合（%）"), validators=[base.Required(), NumberRange(1, 100)])
    reason = StringField(_l("理由"), validators=[base.Required(), Length(max=500)])
