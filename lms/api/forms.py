"""The form registering an API client application (platform admins)."""

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import Length, ValidationError

from lms.api.services import normalise_application_id
from lms.common.forms import Form, Required, stripped
from lms.common.ids import coerce_id
from lms.municipalities.services import is_tenant_id


class ApiClientForm(Form):
    # Checked as stored: without the spaces around a pasted value (a value of spaces only is missing).
    name = StringField(_l("名前"), filters=[stripped],
                       validators=[Required(_l("名前を入力してください。")), Length(max=200)])
    application_id = StringField(
        _l("アプリケーション（クライアント）ID"), filters=[normalise_application_id],
        validators=[Required(_l("アプリケーション ID を入力してください。")), Length(max=36)],
    )
    municipality_id = SelectField(_l("団体"), coerce=coerce_id)

    def validate_application_id(self, field):
        if not is_tenant_id(field.data):  # (a GUID, like a tenant id)
            raise ValidationError(_l("アプリケーション ID は GUID（例: 72f988bf-86f1-41af-91ab-2d7cd011db47）で入力してください。"))
