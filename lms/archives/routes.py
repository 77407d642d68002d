"""Archives: the blueprint with its pages, playback and tus routes, and its CLI commands."""

from __future__ import annotations

from lms.archives import cli, pages, playback, tus  # noqa: F401  (each adds its routes to bp)
from lms.archives.blueprint import bp

__all__ = ["bp"]
