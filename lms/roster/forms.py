from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional, Regexp

from lms.common.forms import Form, IdField, JapaneseDateField, Required
from lms.common.ids import coerce_id


class StaffForm(Form):
    employee_number = StringField(_l("職員番号"), validators=[Required(_l("職員番号を入力してください。")), Length(max=20)])
    full_name = StringField(_l("氏名"), validators=[Required(_l("氏名を入力してください。")), Length(max=100)])
    full_name_kana = StringField(_l("氏名カナ"), validators=[Optional(), Length(max=200)])
    department = StringField(_l("所属"), validators=[Optional(), Length(max=200)])
    job_title = StringField(_l("職名"), validators=[Optional(), Length(max=100)])
    job_grade = StringField(_l("職層"), validators=[Optional(), Length(max=50)])
    sign_in_name = StringField(_l("サインイン名（Microsoft 365）"), validators=[Optional(), Length(max=320)])
    email = StringField(_l("メール"), validators=[Optional(), Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message=_l("メールアドレスの形式で入力してください。")), Length(max=320)])
    hired_on = JapaneseDateField(_l("採用日"), validators=[Optional()])
    department_head = BooleanField(_l("所属長（所属の職員の受講申込を承認する）"))
    deputy_head = BooleanField(_l("所属長の代理（所属長に代わって承認する）"))


class TransferForm(Form):
    department = StringField(_l("異動後の所属"), validators=[Optional(), Length(max=200)])
    job_title = StringField(_l("異動後の職名"), validators=[Optional(), Length(max=100)])
    effective_on = JapaneseDateField(_l("発令日"), validators=[Required(_l("発令日を入力してください。"))])


class DepartureForm(Form):
    left_on = JapaneseDateField(_l("退職・転出日"), validators=[Required(_l("退職・転出日を入力してください。"))])


class RosterImportForm(Form):
    file = FileField(_l("名簿のファイル（CSV または Excel）"), validators=[FileRequired(_l("ファイルを選んでください。"))])
    effective_on = JapaneseDateField(_l("異動・退職の発令日"), validators=[Optional()])
    mark_missing_left = BooleanField(_l("ファイルにない在職中の職員を退職・転出として記録する"))


class NominationUploadForm(Form):
    file = FileField(_l("推薦者のファイル（CSV または Excel）"), validators=[FileRequired(_l("ファイルを選んでください。"))])


class NominateForm(Form):
    staff_member_id = IdField(validators=[Required()])


class RejectForm(Form):
    reason = TextAreaField(_l("承認しない理由"), validators=[Required(_l("承認しない理由を入力してください。")),
                                                       Length(max=1000, message=_l("理由は1000文字以内で入力してください。"))])


class SwapForm(Form):
    """The new nominee: chosen from a search of the municipality's roster (staff_member_id),
    or — for a CSV-minded office — by 職員番号. The route checks that one of them is given."""

    staff_member_id = IdField(_l("差し替え先の職員"), validators=[Optional()])
    employee_number = StringField(_l("差し替え先の職員番号"), validators=[Optional(), Length(max=20)])
    swap_q = StringField(validators=[Optional(), Length(max=100)])  # the search, kept for the page
    reason = StringField(_l("差し替えの理由"), validators=[Optional(), Length(max=500)])


class MunicipalityChoiceForm(Form):
    class Meta:
        csrf = False

    m = SelectField(_l("区市町村"), coerce=coerce_id)
