"""Hub settings: a care home's residents and radios, and every clash `config check` refuses."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from controller.errors import ConfigError
from controller.settings import effective_limits, load_settings

if TYPE_CHECKING:
    from pathlib import Path

    from controller.settings import Settings

RADIOS = """
[[hub.radios]]
id = "radio-1"
transport = "usb:0"

[[hub.radios]]
id = "radio-2"
transport = "tcp-client:127.0.0.1:9720"
"""


def resident(
    rid: str,
    massager: str,
    sensor: str,
    radio: str | None = "radio-1",
    extra: str = "",
) -> str:
    line = f'radio = "{radio}"\n' if radio is not None else ""
    return (
        f'\n[[hub.residents]]\nid = "{rid}"\nname = "Resident {rid}"\n'
        f'massager = "{massager}"\nsensor = "{sensor}"\n{line}{extra}'
    )


GOOD = (
    RADIOS
    + resident("room-1", "F0:00:00:00:01:01", "F0:00:00:00:01:02")
    + resident(
        "room-2",
        "F0:00:00:00:02:01",
        "F0:00:00:00:02:02",
        "radio-2",
        'profile = "diabetic"\nchecklist = "recorded-today"\n',
    )
)


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "soleguard.toml"
    path.write_text(text)
    return load_settings(path, environ={})


def problems(tmp_path: Path, text: str) -> list[str]:
    """The problem lines of the ConfigError that loading ``text`` must raise."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    header, *lines = str(caught.value).splitlines()
    assert header.endswith(f"{len(lines)} problem(s):")
    return [line.strip() for line in lines]


def test_a_hub_lists_its_residents_with_their_own_profile_and_checklist(tmp_path: Path) -> None:
    settings = load(tmp_path, GOOD)
    one, two = settings.hub.residents
    assert (one.id, one.radio, one.profile) == ("room-1", "radio-1", None)
    assert one.checklist == "at-start"
    assert (two.radio, two.profile, two.checklist) == ("radio-2", "diabetic", "recorded-today")
    assert [r.transport for r in settings.hub.radios] == ["usb:0", "tcp-client:127.0.0.1:9720"]
    # The resident's profile tightens only their own limits (diabetic: skin cut-off 39 °C).
    base = effective_limits(settings)
    own = effective_limits(settings, resident_profile=two.profile)
    assert (base.heater_cutoff_c, own.heater_cutoff_c) == (40.0, 39.0)
    assert own.stale_after_s < base.stale_after_s


def test_todays_single_pair_settings_stay_valid_without_a_hub(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[devices.massager]\naddress = "F0:00:00:00:00:01"\n'
        '[devices.sensor]\naddress = "F0:00:00:00:00:02"\n[ble]\ntransport = "usb:0"\n',
    )
    assert settings.hub.residents == []
    assert settings.devices.massager.address == "F0:00:00:00:00:01"


def test_a_repeated_resident_id_is_refused(tmp_path: Path) -> None:
    text = GOOD + resident("room-1", "F0:00:00:00:03:01", "F0:00:00:00:03:02")
    assert problems(tmp_path, text) == [
        "hub.residents.2.id: 'room-1' is already hub.residents.0.id; "
        "each resident needs their own id"
    ]


def test_a_device_under_two_residents_is_refused_whatever_its_case(tmp_path: Path) -> None:
    # The second resident's sensor is the first one's massager, spelt in lower case.
    text = GOOD + resident("room-3", "F0:00:00:00:03:01", "f0:00:00:00:01:01")
    assert problems(tmp_path, text) == [
        "hub.residents.2.sensor: 'f0:00:00:00:01:01' is already hub.residents.0.massager; "
        "each device belongs to exactly one resident"
    ]


def test_one_device_as_both_of_a_residents_devices_is_refused(tmp_path: Path) -> None:
    text = RADIOS + resident("room-1", "F0:00:00:00:01:01", "F0:00:00:00:01:01")
    (line,) = problems(tmp_path, text)
    assert line.startswith("hub.residents.0.sensor: 'F0:00:00:00:01:01' is already")


def test_a_resident_on_no_radio_or_an_unknown_one_is_refused(tmp_path: Path) -> None:
    text = (
        GOOD
        + resident("room-3", "F0:00:00:00:03:01", "F0:00:00:00:03:02", radio=None)
        + resident("room-4", "F0:00:00:00:04:01", "F0:00:00:00:04:02", radio="radio-9")
    )
    assert problems(tmp_path, text) == [
        "hub.residents.2.radio: resident 'room-3' is on no radio; "
        "name one of: 'radio-1', 'radio-2'",
        "hub.residents.3.radio: 'radio-9' is not a radio of this hub; "
        "name one of: 'radio-1', 'radio-2'",
    ]


def test_residents_without_any_radio_are_told_to_add_one(tmp_path: Path) -> None:
    text = resident("room-1", "F0:00:00:00:01:01", "F0:00:00:00:01:02")
    assert problems(tmp_path, text) == [
        "hub.residents.0.radio: 'radio-1' is not a radio of this hub; "
        "name one of: none: add a [[hub.radios]] entry"
    ]


def test_radios_need_their_own_id_and_their_own_transport(tmp_path: Path) -> None:
    text = RADIOS + '\n[[hub.radios]]\nid = "radio-1"\ntransport = "usb:0"\n'
    assert problems(tmp_path, text) == [
        "hub.radios.2.id: 'radio-1' is already hub.radios.0.id; each radio needs its own id",
        "hub.radios.2.transport: 'usb:0' is already hub.radios.0.transport; "
        "one transport serves one radio",
    ]


def test_a_hub_keeps_single_pair_devices_out(tmp_path: Path) -> None:
    text = '[devices.massager]\naddress = "F0:00:00:00:00:AA"\n' + GOOD
    assert problems(tmp_path, text) == [
        "devices.massager.address: a hub lists its devices per resident in [[hub.residents]]; "
        "remove it from [devices]"
    ]


def test_each_bad_field_is_one_line_naming_it_and_what_is_allowed(tmp_path: Path) -> None:
    text = (
        '\n[[hub.radios]]\nid = "radio 1"\ntransport = "tcp-client:nowhere"\n'
        '\n[[hub.residents]]\nid = "room/1"\nname = "A"\nmassager = "F0:00:00:00:01"\n'
        'sensor = "F0:00:00:00:01:02"\nradio = "radio-1"\nprofile = "sporty"\n'
        'checklist = "never"\ncolour = "red"\n'
        '\n[[hub.residents]]\nname = "B"\nsensor = "F0:00:00:00:02:02"\n'
    )
    lines = problems(tmp_path, text)
    fields = [line.split(": ", 1)[0] for line in lines]
    assert fields == [
        "hub.radios.0.id",
        "hub.radios.0.transport",
        "hub.residents.0.id",
        "hub.residents.0.massager",
        "hub.residents.0.profile",
        "hub.residents.0.checklist",
        "hub.residents.0.colour",
        "hub.residents.1.id",
        "hub.residents.1.massager",
    ]
    assert "1-64 letters, digits, '_' or '-'" in lines[0]
    assert "PORT 1-65535" in lines[1]
    assert "six hex pairs such as" in lines[3]
    assert "'allodynia', 'reduced-heat-sensation' or 'diabetic'" in lines[4]
    assert "'at-start' or 'recorded-today'" in lines[5]
    assert lines[6].endswith(
        "unknown key (allowed here: id, name, massager, sensor, profile, checklist, radio)"
    )
    assert lines[7].startswith("hub.residents.1.id: missing;")


def test_residents_from_the_environment_are_checked_and_the_variable_named(
    tmp_path: Path,
) -> None:
    path = tmp_path / "soleguard.toml"
    path.write_text(RADIOS)
    residents = (
        '[{id = "room-1", name = "A", massager = "F0:00:00:00:01:01", '
        'sensor = "F0:00:00:00:01:02", radio = "radio-1"}, '
        '{id = "room-1", name = "B", massager = "F0:00:00:00:02:01", '
        'sensor = "F0:00:00:00:02:02", radio = "radio-2"}]'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"SOLEGUARD__HUB__RESIDENTS": residents})
    header, line = str(caught.value).splitlines()
    assert header == f"{path}, SOLEGUARD__HUB__RESIDENTS: 1 problem(s):"
    assert line.strip().startswith("hub.residents.1.id: 'room-1' is already hub.residents.0.id")
    fixed = residents.replace('id = "room-1", name = "B"', 'id = "room-2", name = "B"')
    settings = load_settings(path, environ={"SOLEGUARD__HUB__RESIDENTS": fixed})
    assert [r.id for r in settings.hub.residents] == ["room-1", "room-2"]
