"""Domain exceptions raised by services and mapped by routes to messages."""

from __future__ import annotations


class DomainError(Exception):
    """A rule refused the action. ``message`` is user-facing (already translated)."""

    def __init__(self, message: str = "", **context):
        super().__init__(message)
        self.message = message
        self.context = context


class NotAllowed(DomainError):
    pass


class NotFound(DomainError):
    pass


class InvalidInput(DomainError):
    pass


class Conflict(DomainError):
    """The action clashes with the current state (retry may help)."""
