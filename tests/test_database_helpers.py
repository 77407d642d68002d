"""Write-transaction helpers."""

from __future__ import annotations

import pytest

from lms.common.database import begin_write
from lms.municipalities.models import TenantMapping


def test_begin_write_refuses_to_drop_flushed_rows(db, municipality):
    db.session.add(TenantMapping(tenant_id="00000000-0000-0000-0000-000000000001", municipality=municipality()))
    db.session.flush()
    if db.engine.dialect.name == "sqlite":
        with pytest.raises(RuntimeError, match="before any change"):
            begin_write()
    else:
        begin_write()  # PostgreSQL: nothing to do, nothing dropped
    db.session.rollback()


def test_begin_write_after_a_read_only_transaction(db, municipality):
    municipality()  # a read opens the transaction
    begin_write()
    db.session.add(TenantMapping(tenant_id="00000000-0000-0000-0000-000000000002", municipality=municipality()))
    db.session.commit()
    assert db.session.query(TenantMapping).count() == 1
