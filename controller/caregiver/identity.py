"""Which device a controller speaks for on MQTT when the settings do not say.

Two controllers left at a shared default id would publish on the same topics and create the same
Home Assistant unique ids, each overwriting the other's state. The default is therefore made once
per installation (a random id kept in the journal) and never changes afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from controller.settings.models import MqttSettings

__all__ = ["InstallationStore", "device_id_of", "with_device_id"]


class InstallationStore(Protocol):
    """What `device_id_of` needs of the journal: its installation id."""

    def installation_id(self) -> str:
        """The id made for this installation on first use, the same ever after."""


def device_id_of(settings: MqttSettings, store: InstallationStore) -> str:
    """``settings.device_id`` when set, else this installation's id (``sg-`` + 10 hex digits).

    Raises ``StoreError`` when the journal cannot be read or written.
    """
    return settings.device_id if settings.device_id is not None else store.installation_id()


def with_device_id(settings: MqttSettings, store: InstallationStore) -> MqttSettings:
    """The same settings with ``device_id`` resolved (see :func:`device_id_of`)."""
    if settings.device_id is not None:
        return settings
    return settings.model_copy(update={"device_id": store.installation_id()})
