"""Helpers for the roster tests."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lms.municipalities.models import Municipality


@pytest.fixture(autouse=True)
def _summaries_follow(summaries_follow):
    """Every test here leaves the completion dashboard summaries equal to a fresh aggregate
    (attendance counts where a staff member is)."""


@pytest.fixture
def chiyoda(db):
    return db.session.scalar(select(Municipality).where(Municipality.code == "131016"))


@pytest.fixture
def admin(make_user):
    """千代田区's training office, with no roster entry of its own."""
    return make_user("municipal_admin", "131016", with_staff=False)
