"""Forms of the admin pages. The tenant mapping forms belong to lms.municipalities."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from lms.common.forms import Form, JapaneseDateField
from lms.common.ids import parse_id


class AuditFilterForm(Form):
    """Filters of the audit log page (a GET form: bookmarkable, no CSRF token in the URL)."""

    class Meta:
        csrf = False  # read-only filters in the query string

    action = SelectField(_l("操作"), choices=[], validators=[Optional()], validate_choice=False)
    actor = StringField(_l("操作者（名前または利用者ID）"), validators=[Optional(), Length(max=200)])
    municipality = SelectField(_l("区市町村"), choices=[], validators=[Optional()], validate_choice=False)
    date_from = JapaneseDateField(_l("開始日（日本時間）"), validators=[Optional()])
    date_to = JapaneseDateField(_l("終了日（日本時間）"), validators=[Optional()])
    target = StringField(_l("対象（種類または ID）"), validators=[Optional(), Length(max=100)])

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("終了日は開始日以降の日付を指定してください。"))

    def validate_municipality(self, field):
        if field.data and parse_id(field.data) is None:
            raise ValidationError(_l("区市町村を一覧から選んでください。"))


class SynonymForm(Form):
    words = StringField(_l("同じ意味の語（空白で区切る）"), validators=[Length(max=500)])
