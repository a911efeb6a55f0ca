"""``soleguard monitor``: the caregiver's live terminal view over MQTT.

Shows every device under the base topic (availability, state, the latest alerts as they arrive)
and sends ``stop`` on a key press: ``s`` (then the device's number when there are several), ``q``
or Ctrl-C to quit. Each alert shown is acknowledged on the device's ``alert/ack`` topic (a person
has it on screen), which stops the controller re-announcing it. When the broker goes away after
the first connect, the monitor reconnects with backoff. With an account (``--username``) its MQTT
session is persistent, so alerts raised meanwhile are queued by the broker and arrive after the
reconnect; without one it starts a clean session each time (a random client id must not leave a
persistent session behind), and the broker queues nothing for it. aiomqtt and rich are imported
inside the command so ``soleguard --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controller.cli import exit_codes
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
    """One device on the monitor: availability, last state, recent alerts, last command result."""

    availability: str = "unknown"
    state: dict[str, Any] = field(default_factory=dict)
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=ALERTS_SHOWN))
    last_result: dict[str, Any] | None = None


class MonitorModel:
    """What the screen shows, fed message by message; pure, so it is tested without a terminal."""

    def __init__(
        self, base_topic: str, client_name: str = "monitor", username: str | None = None
    ) -> None:
        self.base_topic = base_topic
        self.client_name = client_name
        # With an account, commands go to `command/<account>`: the shipped ACL lets each
        # caregiver write only there, and the controller rate-limits each caregiver apart.
        self.command_suffix = "" if username is None else f"/{username}"
        self.devices: dict[str, DeviceView] = {}
        self.status = "connecting"
        self.prompt = "s: stop  q: quit"
        self.pending_stop: dict[str, str] = {}
        self.choosing = False

    def apply(
        self, topic: str, payload: bytes, now: float | None = None
    ) -> tuple[str, bytes] | None:
        """Take one message in; return the acknowledgement to publish (topic, payload) for an
        alert now on screen, else None. ``now``: wall-clock epoch seconds of receipt."""
        parts = topic.split("/")
        base = self.base_topic.split("/")
        if parts[: len(base)] != base or len(parts) < len(base) + 2:
            return None
        device_id, kind = parts[len(base)], "/".join(parts[len(base) + 1 :])
        view = self.devices.setdefault(device_id, DeviceView())
        if kind == "availability":
            view.availability = payload.decode(errors="replace")
            return None
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict):
            return None
        if kind == "state":
            view.state = data
        elif kind == "alert":
            # Shown with the monitor's own wall clock: the controller's stamp may come from a
            # clock that is wrong or (in an accelerated demo) ahead.
            data["received_at"] = time.time() if now is None else now
            view.alerts.appendleft(data)
            alert_id = data.get("id")
            if isinstance(alert_id, str) and data.get("event") != "cleared":
                ack = json.dumps({"id": alert_id, "client": self.client_name})
                return f"{self.base_topic}/{device_id}/alert/ack", ack.encode()
        elif kind == "command/result":
            view.last_result = data
        return None

    def device_ids(self) -> list[str]:
        """The ids of every device heard from, sorted."""
        return sorted(self.devices)

    def render(self) -> RenderableType:
        """The whole screen: one panel per device (a rich renderable)."""
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
                f"{_fmt(s.get('pressure_mmhg'))} measured, target "
                f"{_fmt(s.get('pressure_target_mmhg'))}, cap {_fmt(s.get('pressure_cap_mmhg'))}"
                " mmHg",
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
            table.add_row("battery", f"{_fmt(s.get('battery_pct'))} %")
            alarms = ", ".join(
                f"{a.get('code')} ({a.get('priority')})" for a in s.get("alarms", [])
            )
            table.add_row("alarms", alarms or "-")
            for alert in view.alerts:
                style = {"high": "bold red", "medium": "yellow"}.get(alert.get("priority", ""), "")
                event = alert.get("event", "raised")
                label = "" if event == "raised" else f" ({event})"
                table.add_row(
                    "alert",
                    Text(
                        f"{_clock(alert.get('received_at'))} {alert.get('priority', '')} "
                        f"{alert.get('code', '')}{label}: {alert.get('message', '')}",
                        style="dim" if event == "cleared" else style,
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


def _clock(epoch: Any) -> str:
    """Local wall-clock time of day, as the person at the screen reads their own clock."""
    if not isinstance(epoch, int | float):
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.localtime(epoch))


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

    from controller.caregiver.bridge import no_delay  # noqa: PLC0415
    from controller.caregiver.broker import parse_broker_url  # noqa: PLC0415
    from controller.settings.models import check_topic_prefix  # noqa: PLC0415

    target = parse_broker_url(url)
    try:
        check_topic_prefix("--base-topic", base_topic)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    tls = None
    if target.tls:
        tls = aiomqtt.TLSParameters(ca_certs=str(ca_file) if ca_file else None)
    # With an account, the shipped broker config makes the client id the username anyway.
    client_id = username or f"soleguard-monitor-{uuid.uuid4().hex[:8]}"
    model = MonitorModel(base_topic, client_name=client_id, username=username)
    keys: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def make_client() -> aiomqtt.Client:
        # Nagle off: the acknowledgement follows the alert's PUBACK without a 40 ms wait.
        return no_delay(
            aiomqtt.Client(
                target.host,
                target.port,
                username=username,
                password=password,
                tls_params=tls,
                timeout=CONNECT_TIMEOUT_S,
                identifier=client_id,
                # With an account, persistent: alerts raised while this monitor is cut off are
                # queued by the broker and arrive after the reconnect. Without one the client id is
                # random, and every run would leave a persistent session on the broker.
                clean_session=username is None,
            )
        )

    with (
        _raw_keys(loop, keys) as has_keys,
        Live(model.render(), refresh_per_second=REFRESH_PER_S, screen=False) as live,
    ):
        if not has_keys:
            model.prompt = "stdin is not a terminal: view only, Ctrl-C to quit"
        holder = _ClientHolder()
        try:
            async with asyncio.TaskGroup() as tg:
                connection = tg.create_task(
                    _stay_connected(make_client, target, model, live, holder), name="monitor-mqtt"
                )
                await _handle_keys(holder, model, live, keys)  # until the user quits
                connection.cancel()
        except* ConfigError as group:
            raise group.exceptions[0] from None


@dataclass
class _ClientHolder:
    """The connection in use, or None while reconnecting (keys then say so)."""

    client: Any = None


async def _stay_connected(
    make_client: Any, target: Any, model: MonitorModel, live: Any, holder: _ClientHolder
) -> None:
    """Connect, subscribe and receive; after the first connect, reconnect with backoff forever.

    Raises ``ConfigError`` (one line) when the very first connect fails: a wrong URL or
    password should be seen at once, not retried silently.
    """
    import aiomqtt  # noqa: PLC0415 - lazy: see module docstring

    from controller.caregiver.bridge import reconnect_delay  # noqa: PLC0415
    from controller.caregiver.topics import CAREGIVER_SUBSCRIPTIONS  # noqa: PLC0415

    base_topic = model.base_topic
    attempt = 0
    connected_once = False
    while True:
        client = make_client()
        try:
            async with client:
                connected_once = True
                attempt = 0
                holder.client = client
                model.status = f"connected to {target}"
                # Alerts at QoS 1 and state at QoS 0: see CAREGIVER_SUBSCRIPTIONS (why).
                for kind, qos in CAREGIVER_SUBSCRIPTIONS:
                    await client.subscribe(f"{base_topic}/+/{kind}", qos=qos)
                live.update(model.render())
                await _receive(client, model, live)
        except aiomqtt.MqttError as exc:
            holder.client = None
            if not connected_once:
                raise ConfigError(f"broker {target}: {exc}") from None
            delay = reconnect_delay(attempt)
            attempt += 1
            model.status = f"broker {target} lost ({exc}); reconnecting in {delay:.0f} s"
            live.update(model.render())
            await asyncio.sleep(delay)


async def _receive(client: Any, model: MonitorModel, live: Any) -> None:
    async for message in client.messages:
        payload = message.payload if isinstance(message.payload, bytes) else b""
        ack = model.apply(message.topic.value, payload)
        live.update(model.render())
        if ack is not None:
            # After the screen shows it: the acknowledgement means a person could see it.
            await client.publish(ack[0], ack[1], qos=1)


async def _handle_keys(
    holder: Any, model: MonitorModel, live: Any, keys: asyncio.Queue[str]
) -> None:
    """Returns when the user quits. ``holder.client``: the connection, None while away."""
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
        client = holder.client
        if target is not None and client is None:
            model.prompt = "not connected: stop NOT sent, try again  |  s: stop  q: quit"
        elif target is not None:
            request_id = f"monitor-{uuid.uuid4().hex[:12]}"
            command = json.dumps({"action": "stop", "request_id": request_id})
            topic = f"{model.base_topic}/{target}/command{model.command_suffix}"
            await client.publish(topic, command, qos=1)
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
    from controller.caregiver.broker import parse_broker_url  # noqa: PLC0415
    from controller.settings.models import check_topic_prefix  # noqa: PLC0415

    try:
        # What the user typed is checked first: a usage error (exit 2), unlike a broker that
        # cannot be reached (exit 1).
        parse_broker_url(broker)
        check_topic_prefix("--base-topic", base_topic)
    except (ConfigError, ValueError) as exc:
        typer.echo(f"soleguard monitor: {exc}", err=True)
        raise typer.Exit(exit_codes.USAGE) from None
    from controller.errors import Interrupted  # noqa: PLC0415
    from controller.shutdown import interruptible  # noqa: PLC0415

    try:
        # A signal cancels the monitor's task, as 'q' ends it. Without a handler the signal's
        # KeyboardInterrupt is raised inside whichever task runs; asyncio stores it as that
        # task's exception and logs "Task exception was never retrieved" with a traceback.
        asyncio.run(interruptible(_run_monitor(broker, base_topic, username, password, ca_file)))
    except (KeyboardInterrupt, Interrupted):
        # A signal is the monitor's normal end (README, "Ways out and exit status").
        pass
    except ConfigError as exc:
        typer.echo(f"soleguard monitor: {exc}", err=True)
        raise typer.Exit(exit_codes.FAILED) from None
