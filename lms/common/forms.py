"""The base of Manabi's forms: Flask-WTF's, with WTForms' own messages from a cached catalogue.

Flask-WTF reads and parses WTForms' message catalogue from disk again in every request that
translates one of its messages ("Not a valid choice", …). ``Form`` asks Flask-Babel for the
catalogue instead (a translation ``Domain`` of its own, cached per language for the life of
the process), through WTForms' public hook ``Meta.get_translations``.
"""

from __future__ import annotations

from flask_babel import Domain
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.i18n import messages_path

from lms.common.ids import parse_id

WTFORMS_MESSAGES = Domain(translation_directories=messages_path(), domain="wtforms")


class Form(FlaskForm):
    class Meta:
        def get_translations(self, form):
            return WTFORMS_MESSAGES.get_translations()


class ActionForm(Form):
    """A button that changes state (publish, delete, roll call…): CSRF only."""


class IdField(IntegerField):
    """An id a page posts (a hidden field, a chosen row): a whole number the database can hold;
    anything else is the field's error, never a query."""

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = parse_id(valuelist[0])
            if self.data is None:
                raise ValueError(_l("正しい ID ではありません。"))
