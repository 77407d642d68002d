"""Forms for the tenant ↔ municipality mapping (platform admins)."""

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from lms.common.forms import Form, stripped
from lms.municipalities.services import is_mail_domain, is_tenant_id, normalise_mail_domain


class TenantMappingForm(Form):
    tenant_id = StringField(
        _l("テナント ID（ディレクトリ ID）"), filters=[stripped],
        validators=[InputRequired(_l("テナント ID を入力してください。")), Length(max=36)],
    )
    municipality_code = SelectField(
        _l("区市町村"), validators=[InputRequired(_l("区市町村を選んでください。"))]
    )
    mail_domain = StringField(_l("メールドメイン（共有テナントの場合のみ）"), filters=[stripped], validators=[Optional(), Length(max=255)])

    def validate_tenant_id(self, field):
        if not is_tenant_id(field.data):
            raise ValidationError(_l("テナント ID は GUID（例: 72f988bf-86f1-41af-91ab-2d7cd011db47）で入力してください。"))

    def validate_mail_domain(self, field):
        value = normalise_mail_domain(field.data)
        if value and not is_mail_domain(value):
            raise ValidationError(_l("メールドメインの形式が正しくありません（例: city.example.lg.jp）。"))


class RemoveTenantMappingForm(Form):
    """CSRF only: the mapping is named in the URL."""
