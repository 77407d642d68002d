from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import IntegerField, RadioField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, NumberRange, Optional

from lms.common.forms import ActionForm as ActionForm  # noqa: PLC0414 - one CSRF-only form for the area's buttons
from lms.common.forms import Form, Required
from lms.common.ids import coerce_id


class MatchForm(Form):
    staff_member_id = SelectField(_l("受講者"), coerce=coerce_id, validators=[Required()])


class CorrectionForm(Form):
    staff_member_id = SelectField(_l("受講者"), coerce=coerce_id, validators=[Required()])
    attended = RadioField(
        _l("判定"), choices=[SelectChoice("1", _l("出席")), SelectChoice("0", _l("欠席"))], validators=[Required()]
    )
    attended_pct = IntegerField(_l("出席率（%）"), validators=[Optional(), NumberRange(min=0, max=100)])
    reason = TextAreaField(_l("修正の理由"), validators=[Required(message=_l("修正の理由を入力してください。")),
                                                     Length(max=2000)])


class RollCallForm(Form):
    reason = TextAreaField(_l("理由"), validators=[Optional(), Length(max=2000)])


class ReportUploadForm(Form):
    file = FileField(_l("出席者レポートのファイル（.csv）"), validators=[FileRequired(_l("ファイルを選んでください。"))])


def staff_choices(rows, with_unmatch: bool = False) -> list[SelectChoice]:
    """Choices of confirmed enrollees (rows from attendance_rows)."""
    from flask_babel import gettext as _

    choices = [SelectChoice(0, _("（照合を解除）"))] if with_unmatch else []
    for row in rows:
        staff = row["staff"]
        choices.append(SelectChoice(staff.id, f"{staff.full_name}（{staff.municipality.name} {staff.department}）"))
    return choices
