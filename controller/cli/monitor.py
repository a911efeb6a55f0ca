"""``soleguard monitor``: the caregiver's live terminal view over MQTT.

Shows every device under the base topic (availability, state, the latest alerts as they arrive)
and sends ``stop`` on a key press: ``s`` (then the device's number when there are several), ``q``
or Ctrl-C to quit. aiomqtt and rich are imported inside the command so ``soleguard --help`` stays
fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controller.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["DeviceView", "MonitorModel", "monitor"]

_LOGGER = logging.getLogger(__name__)

# Why 8: a screenful per device; the full history is in each controller's journal.
ALERTS_SHOWN = 8
# Why 4 per second: smooth enough for a 1 Hz state, cheap on a Raspberry Pi terminal.
REFRESH_PER_S = 4
# Why 5 s: the monitor's own connect; a caregiver would rather see an error than a blank screen.
CONNECT_TIMEOUT_S = 5.0


@dataclass
class DeviceView:
    availability: str = "unknown"
    state: dict[str, Any] = field(default_factory=dict)
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=ALERTS_SHOWN))
    last_result: dict[str, Any] | None = None


class MonitorModel:
    """What the screen shows, fed message by message; pure, so it is tested without a terminal."""

    def __init__(self, base_topic: str) -> None:
        self.base_topic = base_topic
        self.devices: dict[str, DeviceView] = {}
        self.status = "connecting"
        self.prompt = "s: stop  q: quit"
        self.pending_stop: dict[str, str] = {}
        self.choosing = False

    def apply(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        base = self.base_topic.split("/")
        if parts[: len(base)] != base or len(parts) < len(base) + 2:
            return
        device_id, kind = parts[len(base)], "/".join(parts[len(base) + 1 :])
        view = self.devices.setdefault(device_id, DeviceView())
        if kind == "availability":
            view.availability = payload.decode(errors="replace")
            return
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(data, dict):
            return
        if kind == "state":
            view.state = data
        elif kind == "alert":
            view.alerts.appendleft(data)
        elif kind == "command/result":
            view.last_result = data

    def device_ids(self) -> list[str]:
        return sorted(self.devices)

    def render(self) -> RenderableType:
        from rich.console import Group  # noqa: PLC0415 - lazy: see module docstring
        from rich.panel import Panel  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415

        panels: list[RenderableType] = []
        for number, device_id in enumerate(self.device_ids(), start=1):
            view = self.devices[device_id]
            s = view.state
            table = Table.grid(padding=(0, 2))
            table.add_column(style="bold")
            table.add_column()
            online = view.availability == "online"
            table.add_row("link", Text(view.availability, style="green" if online else "red"))
            table.add_row("session", str(s.get("session_state", "-")))
            table.add_row(
                "pressure",
                f"{_fmt(s.get('pressure_mmhg'))} / cap {_fmt(s.get('pressure_cap_mmhg'))} mmHg",
            )
            heater = "ON" if s.get("heater_on") else "off"
            table.add_row("heater", heater)
            skin = s.get("skin_temp_c")
            over = " OVER-TEMPERATURE" if s.get("over_temperature") else ""
            table.add_row("skin", Text(f"{_fmt(skin)} °C{over}", style="bold red" if over else ""))
            table.add_row("remaining", _duration(s.get("remaining_s")))
            table.add_row(
                "devices",
                f"massager {'up' if s.get('massager_connected') else 'down'}, "
                f"sensor {'up' if s.get('sensor_connected') else 'down'} "
                f"({s.get('sensor_health', '-')})",
            )
            table.add_row(
                "battery/rssi", f"{_fmt(s.get('battery_pct'))} % / {_fmt(s.get('rssi_dbm'))} dBm"
            )
            alarms = ", ".join(
                f"{a.get('code')} ({a.get('priority')})" for a in s.get("alarms", [])
            )
            table.add_row("alarms", alarms or "-")
            for alert in view.alerts:
                style = {"high": "bold red", "medium": "yellow"}.get(alert.get("priority", ""), "")
                table.add_row(
                    "alert",
                    Text(
                        f"{alert.get('time', '')} {alert.get('priority', '')} "
                        f"{alert.get('code', '')}: {alert.get('message', '')}",
                        style=style,
                    ),
                )
            if view.last_result is not None:
                r = view.last_result
                verdict = "accepted" if r.get("accepted") else f"refused: {r.get('reason')}"
                table.add_row("command", f"{r.get('request_id')}: {verdict}")
            panels.append(Panel(table, title=f"[{number}] {device_id}"))
        if not panels:
            panels.append(Text(f"no devices under {self.base_topic}/ yet"))
        footer = Text(f"{self.status}  |  {self.prompt}", style="dim")
        return Group(*panels, footer)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _duration(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}:{seconds:02d}"


@contextlib.contextmanager
def _raw_keys(loop: asyncio.AbstractEventLoop, keys: asyncio.Queue[str]) -> Iterator[bool]:
    """Feed key presses into ``keys`` without blocking the loop; yields False without a tty."""
    stdin = sys.stdin
    if not stdin.isatty():
        yield False
        return
    import termios  # noqa: PLC0415 - POSIX only; the monitor still runs (no keys) elsewhere
    import tty  # noqa: PLC0415

    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    # cbreak, not raw: Ctrl-C still raises KeyboardInterrupt and output newlines stay normal.
    tty.setcbreak(fd)

    def on_key() -> None:
        data = os.read(fd, 32)
        for ch in data.decode(errors="ignore"):
            keys.put_nowait(ch)

    loop.add_reader(fd, on_key)
    try:
        yield True
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _run_monitor(
    url: str,
    base_topic: str,
    username: str | None,
    password: str | None,
    ca_file: Path | None,
) -> None:
    import aiomqtt  # noqa: PLC0415 - lazy: see module docstring
    from rich.live import Live  # noqa: PLC0415

    from controller.caregiver.broker import parse_broker_url  # noqa: PLC0415

    target = parse_broker_url(url)
    tls = None
    if target.tls:
        tls = aiomqtt.TLSParameters(ca_certs=str(ca_file) if ca_file else None)
    model = MonitorModel(base_topic)
    keys: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    client = aiomqtt.Client(
        target.host,
        target.port,
        username=username,
        password=password,
        tls_params=tls,
        timeout=CONNECT_TIMEOUT_S,
        identifier=f"soleguard-monitor-{uuid.uuid4().hex[:8]}",
    )
    with (
        _raw_keys(loop, keys) as has_keys,
        Live(model.render(), refresh_per_second=REFRESH_PER_S, screen=False) as live,
    ):
        if not has_keys:
            model.prompt = "stdin is not a terminal: view only, Ctrl-C to quit"
        try:
            async with client:
                model.status = f"connected to {target}"
                await client.subscribe(f"{base_topic}/+/availability", qos=1)
                await client.subscribe(f"{base_topic}/+/state", qos=1)
                await client.subscribe(f"{base_topic}/+/alert", qos=1)
                await client.subscribe(f"{base_topic}/+/command/result", qos=1)
                live.update(model.render())
                async with asyncio.TaskGroup() as tg:
                    receiver = tg.create_task(_receive(client, model, live), name="monitor-rx")
                    await _handle_keys(client, model, live, keys)
                    receiver.cancel()
        except* aiomqtt.MqttError as group:
            raise ConfigError(f"broker {target}: {group.exceptions[0]}") from None


async def _receive(client: Any, model: MonitorModel, live: Any) -> None:
    async for message in client.messages:
        payload = message.payload if isinstance(message.payload, bytes) else b""
        model.apply(message.topic.value, payload)
        live.update(model.render())


async def _handle_keys(
    client: Any, model: MonitorModel, live: Any, keys: asyncio.Queue[str]
) -> None:
    """Returns when the user quits."""
    while True:
        key = await keys.get()
        if key in ("q", "Q"):
            return
        ids = model.device_ids()
        target: str | None = None
        if model.choosing:
            model.choosing = False
            if key.isdigit() and 1 <= int(key) <= len(ids):
                target = ids[int(key) - 1]
            model.prompt = "s: stop  q: quit"
        elif key in ("s", "S"):
            if len(ids) == 1:
                target = ids[0]
            elif ids:
                model.choosing = True
                model.prompt = f"stop which device? 1-{len(ids)} (other key: cancel)"
            else:
                model.prompt = "no device to stop yet  |  s: stop  q: quit"
        if target is not None:
            request_id = f"monitor-{uuid.uuid4().hex[:12]}"
            command = json.dumps({"action": "stop", "request_id": request_id})
            await client.publish(f"{model.base_topic}/{target}/command", command, qos=1)
            model.prompt = f"stop sent to {target} ({request_id})  |  s: stop  q: quit"
        live.update(model.render())


def monitor(
    broker: Annotated[
        str, typer.Option("--broker", "-b", help="mqtt://HOST:PORT or mqtts://HOST:PORT")
    ] = "mqtt://127.0.0.1:1883",
    base_topic: Annotated[str, typer.Option(help="Base topic the controllers publish under.")] = (
        "soleguard"
    ),
    username: Annotated[str | None, typer.Option("--username", "-u")] = None,
    password: Annotated[
        str | None, typer.Option("--password", "-P", envvar="SOLEGUARD_MQTT_PASSWORD")
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="CA certificate for mqtts://")
    ] = None,
) -> None:
    """Caregiver view: every device's state and alerts, live; 's' sends stop, 'q' quits."""
    try:
        asyncio.run(_run_monitor(broker, base_topic, username, password, ca_file))
    except KeyboardInterrupt:
        pass
    except ConfigError as exc:
        typer.echo(f"soleguard monitor: {exc}", err=True)
        raise typer.Exit(1) from None
