"""Helpers for the courses tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _summaries_follow(summaries_follow):
    """Every test here leaves the completion dashboard summaries equal to a fresh aggregate
    (a session's cancellation or move to another fiscal year changes them)."""
