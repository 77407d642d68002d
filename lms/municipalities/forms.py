"""Forms for the tenant ↔ municipality mapping (platform admins)."""

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from lms.common.forms import Form, Required, stripped
from lms.municipalities.services import is_mail_domain, normalise_mail_domain, tenant_id_problem


class TenantMappingForm(Form):
    tenant_id = StringField(
        _l("テナント ID（ディレクトリ ID）"), filters=[stripped],
        validators=[Required(_l("テナント ID を入力してください。")), Length(max=36)],
    )
    municipality_code = SelectField(
        _l("区市町村"), validators=[Required(_l("区市町村を選んでください。"))]
    )
    mail_domain = StringField(_l("メールドメイン（共有テナントの場合のみ）"), filters=[stripped], validators=[Optional(), Length(max=255)])

    def validate_tenant_id(self, field):
        problem = tenant_id_problem(field.data)
        if problem:
            raise ValidationError(problem)

    def validate_mail_domain(self, field):
        value = normalise_mail_domain(field.data)
        if value and not is_mail_domain(value):
            raise ValidationError(_l("メールドメインの形式が正しくありません（例: city.example.lg.jp）。"))


class RemoveTenantMappingForm(Form):
    """CSRF only: the mapping is named in the URL."""
