from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, RadioField
from wtforms.validators import InputRequired

from lms.common.forms import Form


class DemoSignInForm(Form):
    user_id = RadioField(_l("サインインするデモ利用者"), coerce=int, validators=[InputRequired(_l("利用者を選んでください。"))])
    next = HiddenField()
