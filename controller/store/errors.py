"""Store errors: :class:`~controller.errors.StoreError` specialised for callers that react."""

from __future__ import annotations

from controller.errors import StoreError

__all__ = ["InvalidValueError", "StoreError", "UnknownSessionError"]


class InvalidValueError(StoreError, ValueError):
    """A value given to the store is outside its range; the message names the field and range."""


class UnknownSessionError(StoreError, LookupError):
    """A session id that the journal does not hold."""

    def __init__(self, session_id: int) -> None:
        super().__init__(f"session {session_id}: no such session in the journal")
        self.session_id = session_id
