"""The Viva Learning settings of a tenant."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, StringField
from wtforms.validators import Length

from lms.common.forms import Form


class TenantSettingsForm(Form):
    registration_id = StringField(_l("学習プロバイダーの登録 ID（registrationId）"), validators=[Length(max=100)])
    enabled = BooleanField(_l("このテナントの Viva Learning に研修と受講状況を送る"))
