"""The person's choice of how notices reach them."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import RadioField
from wtforms.fields.choices import SelectChoice

from lms.auth.models import NOTICE_BOTH, NOTICE_MAIL, NOTICE_TEAMS
from lms.common.forms import Form, Required


class NoticeChoiceForm(Form):
    notice_channel = RadioField(
        _l("お知らせの受け取り方"),
        choices=[
            SelectChoice(NOTICE_BOTH, _l("Teams のアクティビティとメールの両方")),
            SelectChoice(NOTICE_TEAMS, _l("Teams のアクティビティだけ（届けられないときはメール）")),
            SelectChoice(NOTICE_MAIL, _l("メールだけ")),
        ],
        validators=[Required(message=_l("受け取り方を選んでください。"))],
    )
