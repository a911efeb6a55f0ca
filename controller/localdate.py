"""The person's local calendar: today's date and the local date or time of an epoch stamp.

Diary entries, daily foot inspections and reports are kept by the local day the person lives
(the machine's time zone). Every such conversion goes through here, zone-aware on purpose: an
epoch stamp is turned into the local zone's wall clock by `datetime.astimezone`, never by a
naive call that only implies it.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["date_of", "time_of", "today", "wall_clock_of"]


def today() -> dt.date:
    """Today's date in the local time zone."""
    return dt.datetime.now().astimezone().date()


def time_of(epoch_s: float) -> dt.datetime:
    """The local, zone-aware date and time of ``epoch_s`` (seconds since the Unix epoch)."""
    return dt.datetime.fromtimestamp(epoch_s).astimezone()


def date_of(epoch_s: float) -> dt.date:
    """The local date of ``epoch_s`` (seconds since the Unix epoch)."""
    return time_of(epoch_s).date()


def wall_clock_of(epoch_s: float) -> dt.datetime:
    """The local wall-clock time of ``epoch_s``, naive: for a chart whose day axis is naive.

    Matplotlib places every datetime on one axis by its UTC instant (a naive one counts as UTC),
    so the charts' naive calendar days and these points line up as the local clock reads them.
    """
    return time_of(epoch_s).replace(tzinfo=None)
