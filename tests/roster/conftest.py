"""Helpers for the roster tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _summaries_follow(summaries_follow):
    """Every test here leaves the completion dashboard summaries equal to a fresh aggregate
    (attendance counts where a staff member is)."""
