"""The one error the organisation's rules raise: a refusal to show to a person."""

from __future__ import annotations


class AdminError(Exception):
    """A refusal shown to a person; ``field`` names the form input at fault (or None)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
