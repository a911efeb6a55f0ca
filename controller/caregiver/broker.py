"""An MQTT broker for the demo and the tests, and the ``--broker mqtt://HOST:PORT`` parser.

``soleguard demo`` needs a broker with no setup. A mosquitto binary is used when one is installed
(it is what deployments run), started as a child process on 127.0.0.1 and a free port with a
config written to a temporary directory, never the machine's own; otherwise amqtt runs inside the
process. Both can be stopped and started again on the same port, which the tests use to take the
broker away mid-session.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import getpass
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

from controller.errors import ConfigError, SoleGuardError, shown
from controller.shutdown import track_child, track_path, untrack_child, untrack_path
from controller.store.processes import pid_alive

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

__all__ = [
    "BROKER_READY_TIMEOUT_S",
    "AmqttBroker",
    "BrokerUrl",
    "LocalBroker",
    "MosquittoBroker",
    "embedded_broker",
    "find_mosquitto",
    "free_port",
    "parse_broker_url",
    "remove_stale_folders",
]

_LOGGER = logging.getLogger(__name__)

# Why 10 s: mosquitto listens within milliseconds and amqtt within ~30 ms; ten seconds only
# matters on a badly overloaded CI machine, and beats hanging forever on a broker that died.
BROKER_READY_TIMEOUT_S = 10.0
# Why 5 s: mosquitto exits at once on SIGTERM (writing its persistence file first); if it has not
# after this, it is killed so the port is free for the next start.
BROKER_STOP_TIMEOUT_S = 5.0
# Why 1 ms doubling to 20 ms: mosquitto listens a few milliseconds after it is spawned, so a fixed
# 20 ms retry cost the demo's start-up up to 20 ms of wall time for nothing; a first retry after
# 1 ms catches it at once, and the cap keeps a slow start (amqtt, a loaded CI machine) cheap.
# mosquitto has no readiness signal to wait for instead (no socket activation, no notify fd).
_READY_POLL_FIRST_S = 0.001
_READY_POLL_S = 0.02

# Why 3: a port taken between free_port() and the bind is rare; three in a row means a real problem.
_PORT_ATTEMPTS = 3
# What mosquitto logs when its listener's port is in use.
_PORT_TAKEN = "Address already in use"

# Debian installs mosquitto in /usr/sbin, which is not on a normal user's PATH.
_MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
DEFAULT_MQTT_PORT = 1883
DEFAULT_MQTTS_PORT = 8883
_FOLDER_PREFIX = "soleguard-broker-"
# prctl(2) option: the signal the kernel sends this process when its parent thread ends.
_PR_SET_PDEATHSIG = 1


def _ends_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` (Linux) that makes the kernel SIGTERM the broker when we die.

    The broker runs in its own session (a Ctrl-C in the terminal must not reach it), so nothing
    else would end it after a SIGKILL of this process: no ``finally`` runs and the shutdown
    watchdog dies with us. ``PR_SET_PDEATHSIG`` (prctl(2)) fires when the *thread* that started
    the child ends; the caregiver thread starts the broker and stops it itself before it ends,
    so that is no earlier than intended. If we died between the fork and the prctl call, the
    parent pid has already changed: the child exits at once instead of running orphaned. Other
    platforms (macOS has no such call) keep the old behaviour: the watchdog stops the broker on
    every way out but SIGKILL. The function only makes a system call: safe in a forked child.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class BrokerError(SoleGuardError):
    """The embedded broker could not be started."""


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    """A broker address as ``mqtt://HOST:PORT`` or, with TLS, ``mqtts://HOST:PORT``."""

    host: str
    port: int
    tls: bool = False

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


# RFC 1035 section 2.3.4: a host name is at most 253 characters, each dot-separated label 63.
MAX_HOST_CHARS = 253
MAX_LABEL_CHARS = 63


def parse_broker_url(url: str) -> BrokerUrl:
    """``mqtt://HOST[:PORT]`` or ``mqtts://HOST[:PORT]`` (default ports 1883 and 8883).

    A bare ``HOST[:PORT]`` means ``mqtt://``. Raises `ConfigError` (one line naming the URL and
    the rule) for another scheme, a path or query, credentials in the URL, a missing host, a
    host name longer than DNS allows (RFC 1035 2.3.4) or a port outside 1-65535.
    """
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"broker URL {shown(url)}: scheme must be mqtt:// or mqtts://")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"broker URL {shown(url)}: only mqtt://HOST:PORT is allowed")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"broker URL {shown(url)}: give credentials with --username/--password, not in the URL"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"broker URL {shown(url)}: port must be 1-65535") from exc
    if not parts.hostname:
        raise ConfigError(f"broker URL {shown(url)}: host is missing")
    host = parts.hostname
    if len(host) > MAX_HOST_CHARS or any(len(label) > MAX_LABEL_CHARS for label in host.split(".")):
        # Refused here: the resolver would raise UnicodeError deep inside the bridge instead.
        raise ConfigError(
            f"broker URL {shown(url)}: host name too long (at most {MAX_HOST_CHARS} characters, "
            f"{MAX_LABEL_CHARS} between dots)"
        )
    tls = parts.scheme == "mqtts"
    if port is None:
        port = DEFAULT_MQTTS_PORT if tls else DEFAULT_MQTT_PORT
    if port == 0:
        raise ConfigError(f"broker URL {shown(url)}: port must be 1-65535")
    return BrokerUrl(parts.hostname, port, tls)


def find_mosquitto() -> str | None:
    """The path of a mosquitto executable on PATH or in the usual sbin folders, else None."""
    for candidate in _MOSQUITTO_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the broker binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_until_accepting(host: str, port: int, alive: Any) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BROKER_READY_TIMEOUT_S
    poll_s = _READY_POLL_FIRST_S
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if not alive():
                raise BrokerError(f"broker on {host}:{port} exited while starting") from None
            if loop.time() > deadline:
                raise BrokerError(f"broker on {host}:{port} did not start") from None
            await asyncio.sleep(poll_s)
            poll_s = min(2 * poll_s, _READY_POLL_S)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


class LocalBroker(Protocol):
    """A broker this process starts for itself (demo, tests, benches): mosquitto, else amqtt."""

    host: str
    port: int
    kind: Literal["mosquitto", "amqtt"]

    @property
    def url(self) -> str:
        """``mqtt://HOST:PORT`` of this broker."""

    async def start(self) -> None:
        """Start the broker and return once it accepts connections.

        Raises `BrokerError` when mosquitto cannot start or either broker does not accept
        within ``BROKER_READY_TIMEOUT_S``; amqtt's own start-up errors pass through.
        """

    async def stop(self) -> None:
        """Stop the broker (a no-op when it is not running)."""


class MosquittoBroker:
    """A mosquitto child process with a config of its own; ``stop``/``start`` keep the port."""

    kind: Literal["mosquitto", "amqtt"] = "mosquitto"

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        extra_config: Sequence[str] = (),
        persistence: bool = False,
        allow_anonymous: bool = True,
        executable: str | None = None,
    ) -> None:
        exe = executable or find_mosquitto()
        if exe is None:
            raise BrokerError("mosquitto is not installed")
        self.executable = exe
        self.host = host
        # A port we chose may be taken by someone else between free_port() and mosquitto's bind
        # (parallel test workers, other programs); only then is another port tried.
        self._port_chosen = port is None
        self.port = port or free_port(host)
        self.workdir = workdir
        self.config_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self._settings = [
            f"allow_anonymous {'true' if allow_anonymous else 'false'}",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {workdir}/",
            # Run as whoever started it: as root, mosquitto would switch to the `mosquitto` user,
            # which cannot read a config directory private to the caller.
            f"user {getpass.getuser()}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            *extra_config,
        ]
        self._write_config()
        self._process: asyncio.subprocess.Process | None = None

    def _write_config(self) -> None:
        lines = [f"listener {self.port} {self.host}", *self._settings]
        self.config_path.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        """``mqtt://HOST:PORT`` of this mosquitto."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the mosquitto process is alive."""
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Start mosquitto and wait until it accepts connections.

        Raises:
            BrokerError: it exited while starting or did not accept within
                ``BROKER_READY_TIMEOUT_S``; the message ends with its log's tail.
        """
        if self.running:
            return
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                await self._start_once()
                return
            except BrokerError:
                taken = _PORT_TAKEN in self._log_since(log_size)
                if not (taken and self._port_chosen) or attempt == _PORT_ATTEMPTS:
                    raise
                _LOGGER.info("port %d was taken before mosquitto bound it; another port", self.port)
                self.port = free_port(self.host)
                self._write_config()

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    async def _start_once(self) -> None:
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                self.executable,
                "-c",
                str(self.config_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Its own process group: a Ctrl-C in the terminal goes to our process group and
                # must not kill the broker under the bridge, which still publishes `offline`.
                start_new_session=True,
                # ... and yet it ends when we do, even by SIGKILL.
                preexec_fn=_ends_with_parent(),
            )
        process = self._process
        track_child(process.pid, own_group=True)
        try:
            await _wait_until_accepting(self.host, self.port, lambda: process.returncode is None)
            if process.returncode is not None:
                # Whatever accepted the connection was not this mosquitto, which has exited.
                raise BrokerError(f"broker on {self.host}:{self.port} exited while starting")
        except BrokerError as exc:
            await self.stop()
            raise BrokerError(f"{exc}; log: {self.log_tail()}") from None
        except asyncio.CancelledError:
            # Stopped while starting (a signal): the caller never got a broker to stop.
            await self.stop()
            raise
        _LOGGER.info("mosquitto listening on %s (pid %d)", self.url, process.pid)

    async def stop(self) -> None:
        """SIGTERM (mosquitto writes its persistence file), then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.returncode is None:
                process.terminate()
                async with asyncio.timeout(BROKER_STOP_TIMEOUT_S):
                    await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(BROKER_STOP_TIMEOUT_S):
                    await process.wait()
        except BaseException:  # cancelled on the way out: never leave the broker running
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise
        finally:
            untrack_child(process.pid)

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of mosquitto's log ('' if it cannot be read)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class AmqttBroker:
    """amqtt inside this process (MQTT 3.1.1 only), for machines without mosquitto."""

    kind: Literal["mosquitto", "amqtt"] = "amqtt"

    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._broker: Any = None

    @property
    def url(self) -> str:
        """``mqtt://HOST:PORT`` of this amqtt broker."""
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        """Start the broker and return once it accepts connections."""
        if self._broker is not None:
            return
        from amqtt.broker import Broker  # noqa: PLC0415 - heavy, and only without mosquitto

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        broker = Broker(config)
        await broker.start()
        self._broker = broker
        await _wait_until_accepting(self.host, self.port, lambda: True)

    async def stop(self) -> None:
        """Stop the broker (a no-op when it is not running)."""
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()


def remove_stale_folders(parent: Path | None = None) -> list[Path]:
    """Remove the broker folders left by processes that died without removing them; the removed.

    Only a SIGKILL (or a power cut) leaves one: every other way out removes it (the shutdown
    watchdog too). A folder is ``soleguard-broker-<pid>-<random>`` in ``parent`` (default: the
    temporary folder); one whose process still runs is left alone, as is one we may not remove.
    """
    base = Path(tempfile.gettempdir()) if parent is None else parent
    removed = []
    for folder in base.glob(f"{_FOLDER_PREFIX}*-*"):
        owner = folder.name.removeprefix(_FOLDER_PREFIX).split("-", 1)[0]
        if not owner.isdigit() or pid_alive(int(owner)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
            _LOGGER.info("removed %s, left by process %s that was killed", folder, owner)
    return removed


@contextlib.asynccontextmanager
async def embedded_broker(*, prefer_mosquitto: bool = True) -> AsyncIterator[str]:
    """A throwaway broker on 127.0.0.1 and a free port; yields ``mqtt://127.0.0.1:PORT``."""
    remove_stale_folders()
    # The pid in the name tells a later start whose folder it is (`remove_stale_folders`).
    with tempfile.TemporaryDirectory(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-") as tmp:
        # Removed by the shutdown watchdog too, if the process has to end in a hurry.
        track_path(Path(tmp))
        try:
            broker: LocalBroker
            if prefer_mosquitto and find_mosquitto() is not None:
                broker = MosquittoBroker(Path(tmp))
            else:
                broker = AmqttBroker()
            await broker.start()
            try:
                yield broker.url
            finally:
                await broker.stop()
        finally:
            untrack_path(Path(tmp))
