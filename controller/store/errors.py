"""Store errors: :class:`~controller.errors.StoreError` specialised for callers that react."""

from __future__ import annotations

from controller.errors import StoreError

__all__ = ["InvalidValueError", "RefusedError", "StoreError", "UnknownSessionError"]


class InvalidValueError(StoreError, ValueError):
    """A value given to the store is outside its range; the message names the field and range."""


class RefusedError(StoreError):
    """What the user asked of the journal cannot be done as given (a path that is not a journal
    or backup, a restore over a journal without ``--replace``); the message says what to give.
    A usage error (exit status 2), where a journal that is locked, damaged or on a full disk is a
    runtime failure (1)."""


class UnknownSessionError(StoreError, LookupError):
    """A session id that the journal does not hold."""

    def __init__(self, session_id: int) -> None:
        super().__init__(f"session {session_id}: no such session in the journal")
        self.session_id = session_id
