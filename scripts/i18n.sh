#!/usr/bin/env bash
# Extract translatable strings, update the English catalogue, compile every catalogue.
# Message ids are the Japanese texts (Japanese is the primary language); English is the translation.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
$PYBABEL extract -F babel.cfg -k _l -k lazy_gettext -k said --no-location --sort-output -o lms/translations/messages.pot . >/dev/null 2>&1 || { $PYBABEL extract -F babel.cfg -k _l -k lazy_gettext -k said --no-location --sort-output -o lms/translations/messages.pot .; exit 1; }
if [ -f lms/translations/en/LC_MESSAGES/messages.po ]; then
  $PYBABEL update --no-fuzzy-matching -i lms/translations/messages.pot -d lms/translations -l en
else
  $PYBABEL init -i lms/translations/messages.pot -d lms/translations -l en
fi
$PYBABEL compile -d lms/translations >/dev/null 2>&1 || { $PYBABEL compile -d lms/translations; exit 1; }
