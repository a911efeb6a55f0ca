"""The start button's press counter (docs/protocol.md, "Start button"): frame lengths, and
`StartPressTracker` counting each press once whatever the radio does with the notifications
(dropped, duplicated, replayed: FAULTS.md class 6) and whatever the bytes are (class 7)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.errors import ProtocolError
from controller.protocol import (
    STATUS_LENGTH,
    STATUS_LENGTH_WITHOUT_START_PRESSES,
    FaultCode,
    FrameLengthError,
    MassagerStatus,
    StartPressTracker,
    StatusFlags,
    decode_status,
)

# No deadline: the machine is shared and noisy, and speed is measured in bench/, not here.
PROPERTY = settings(deadline=None, max_examples=300)

# docs/protocol.md, "Status", packed here independently of the codec.
STATUS_FORMAT = "<BBHHHhBHB"


def _frame(start_presses: int | None) -> bytes:
    """An idle massager's Status frame with this counter (None: the 14-byte frame)."""
    frame = struct.pack(STATUS_FORMAT, 1, 0, 0, 0, 0, 2450, 100, 0, 0)
    return frame if start_presses is None else frame + bytes((start_presses,))


def _status(start_presses: int | None) -> MassagerStatus:
    return MassagerStatus(
        flags=StatusFlags(0),
        last_sequence=0,
        pressure_mmhg=0.0,
        pressure_target_mmhg=0.0,
        pad_temperature_c=24.5,
        battery_percent=100,
        lease_remaining_ms=0,
        fault=FaultCode.NONE,
        start_presses=start_presses,
    )


# -- the frame ------------------------------------------------------------------------------------


def test_both_frame_lengths_decode_and_only_the_longer_carries_the_counter() -> None:
    assert STATUS_LENGTH_WITHOUT_START_PRESSES == 14
    assert STATUS_LENGTH == 15  # still inside the default ATT MTU's 20-byte payload
    assert decode_status(_frame(None)) == _status(None)
    assert decode_status(_frame(9)) == _status(9)
    assert _status(9).encode() == _frame(9)
    assert _status(None).encode() == _frame(None)


def test_a_counter_out_of_range_is_refused_naming_the_field_and_its_range() -> None:
    for bad in (256, -1, True, 1.0):
        with pytest.raises(ProtocolError, match=r"MassagerStatus\.start_presses: .* 0\.\.255"):
            _status(bad)  # type: ignore[arg-type]


@PROPERTY
@given(st.integers(0, 0xFF))
def test_the_counter_round_trips(start_presses: int) -> None:
    status = _status(start_presses)
    assert decode_status(status.encode()) == status
    assert MassagerStatus.decode(_frame(start_presses)).start_presses == start_presses


@PROPERTY
@given(
    st.integers(0, 40).filter(lambda n: n not in {14, 15}),
    st.binary(min_size=40, max_size=40),
)
def test_a_status_of_any_other_length_is_refused_as_a_length_error(
    length: int, body: bytes
) -> None:
    frame = (b"\x01" + body)[:length]
    with pytest.raises(FrameLengthError, match=r"expected (at least )?14"):
        decode_status(frame)


@PROPERTY
@given(st.binary(min_size=15, max_size=15))
def test_any_15_byte_version_1_frame_keeps_its_counter_whatever_the_rest_says(
    body: bytes,
) -> None:
    frame = b"\x01" + body[1:]
    # A bad measurement beside it gives a PartialStatus; the counter survives either way.
    assert decode_status(frame).start_presses == frame[14]


# -- the tracker ----------------------------------------------------------------------------------


def _observe(tracker: StartPressTracker, start_presses: int | None) -> int:
    """Through the wire: what the controller's tracker sees is the decoded frame."""
    return tracker.observe(decode_status(_frame(start_presses)))


def test_the_first_frame_only_sets_the_baseline_then_each_press_counts_once() -> None:
    tracker = StartPressTracker()
    assert _observe(tracker, 7) == 0  # pressed 7 times before we connected: not a request
    assert _observe(tracker, 7) == 0  # a periodic or duplicated status
    assert _observe(tracker, 8) == 1
    assert _observe(tracker, 8) == 0
    assert _observe(tracker, 10) == 2  # two presses between frames: the controller acts once
    assert tracker.baseline == 10


def test_the_counter_wraps_from_255_to_0() -> None:
    tracker = StartPressTracker()
    assert _observe(tracker, 254) == 0
    assert _observe(tracker, 255) == 1
    assert _observe(tracker, 0) == 1
    assert _observe(tracker, 1) == 1


def test_a_replayed_older_frame_counts_nothing_and_changes_nothing() -> None:
    tracker = StartPressTracker()
    assert _observe(tracker, 3) == 0
    assert _observe(tracker, 4) == 1
    assert _observe(tracker, 3) == 0  # 255 "ahead" modulo 256: an older frame, not 255 presses
    assert _observe(tracker, 4) == 0  # so the newer frame after it is not counted again
    assert _observe(tracker, 5) == 1


def test_a_reconnection_resets_the_baseline() -> None:
    tracker = StartPressTracker()
    assert _observe(tracker, 3) == 0
    tracker.reset()
    # Pressed while the link was down, or a firmware restart (counter back at 0): not a request.
    assert _observe(tracker, 5) == 0
    tracker.reset()
    assert _observe(tracker, 0) == 0
    assert _observe(tracker, 1) == 1


def test_a_firmware_without_the_button_never_presses_it() -> None:
    tracker = StartPressTracker()
    assert _observe(tracker, None) == 0
    assert _observe(tracker, None) == 0
    assert tracker.baseline is None
    assert _observe(tracker, 2) == 0  # the first counter seen is a baseline, not 2 presses


def test_a_partial_status_counts_like_a_whole_one() -> None:
    tracker = StartPressTracker()
    bad_pressure = bytearray(_frame(1))
    bad_pressure[4:6] = b"\xff\xff"
    assert _observe(tracker, 0) == 0
    assert tracker.observe(decode_status(bytes(bad_pressure))) == 1


# One radio event: the button pressed, or a status notified and delivered `copies` times
# (0: dropped, 2: duplicated), optionally followed by a replay of an earlier delivered frame.
_events = st.lists(
    st.one_of(
        st.just(("press", 0, None)),
        st.tuples(st.just("notify"), st.integers(0, 2), st.none() | st.integers(0, 1000)),
    ),
    max_size=60,
)


@PROPERTY
@given(st.integers(0, 0xFF), _events)
def test_each_press_counts_once_whatever_the_radio_drops_duplicates_or_replays(
    first_count: int, events: list[tuple[str, int, int | None]]
) -> None:
    """Counted presses == presses between the first and the last fresh frame delivered.

    At most 127 presses in all (the window in which "ahead" is unambiguous; the firmware notifies
    on every press, docs/protocol.md); the counter starts anywhere, so it wraps in many runs.
    """
    tracker = StartPressTracker()
    pressed = 0  # unwrapped, from first_count
    delivered: list[int] = []  # unwrapped counter of every fresh frame delivered, in order
    counted = 0
    for kind, copies, replay in events:
        if kind == "press":
            pressed = min(pressed + 1, 127)
            continue
        for _ in range(copies):
            delivered.append(pressed)
            counted += _observe(tracker, (first_count + pressed) % 256)
        if replay is not None and delivered:
            old = delivered[replay % len(delivered)]
            counted += _observe(tracker, (first_count + old) % 256)
    expected = delivered[-1] - delivered[0] if delivered else 0
    assert counted == expected
