"""The shipped config/mosquitto/mosquitto.conf on a real mosquitto: TLS, accounts, client certs.

The broker runs the shipped config itself, with the README's Debian paths moved under tmp_path,
the fixture's listener (127.0.0.1, free port) in place of 8883, and the fixture's persistence and
log settings in place of /var/lib and syslog. The certificates are made with the `openssl`
commands of config/mosquitto/README.md, so the instructions are checked along with the config.
Who may use which topic is tests/caregiver/test_acl.py's business; here it is the transport.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiomqtt
import pytest

from controller.caregiver import CaregiverBridge, DeviceState
from controller.settings.models import TlsSettings
from tests.caregiver.helpers import make_alert, recorder, settings_for, wait_until

if TYPE_CHECKING:
    from controller.caregiver.broker import MosquittoBroker
    from controller.store import Store
    from tests.conftest import MakeMosquitto

SHIPPED = Path(__file__).parents[2] / "config" / "mosquitto"
# Where README.md installs the broker's files; the config names them under this folder.
DEPLOYED_ROOT = "/etc/mosquitto/soleguard/"
# The keys whose value is a file that must exist once the paths point into tmp_path.
FILE_KEYS = {"password_file", "acl_file", "cafile", "certfile", "keyfile"}
PASSWORDS = {"home": "home-secret", "caregiver": "care-secret"}
# The server certificate names only the address clients dial (the README's `broker.example.lan`
# stands in for 127.0.0.1), so connecting by another name that reaches it must fail.
SERVER_NAME = "127.0.0.1"
OTHER_NAME_FOR_SERVER = "localhost"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl tool")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(folder: Path) -> None:
    """README.md: a private CA."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-new", "-nodes", "-newkey", "rsa:3072", "-days", "3650",
        "-subj", "/CN=SoleGuard CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", "ca.key", "-out", "ca.crt",
        cwd=folder,
    )  # fmt: skip


def _sign(folder: Path, name: str, subject: str, extensions: str) -> None:
    """README.md: a key and a certificate signed by the CA in the same folder."""
    (folder / f"{name}.ext").write_text(extensions)
    _openssl(
        "req", "-new", "-nodes", "-newkey", "rsa:3072", "-subj", f"/CN={subject}",
        "-keyout", f"{name}.key", "-out", f"{name}.csr",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "825", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
        cwd=folder,
    )  # fmt: skip


def _server_extensions(san: str) -> str:
    return (
        f"subjectAltName={san}\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )


def _client_extensions() -> str:
    return (
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=clientAuth\n"
    )


@dataclass(frozen=True)
class Deployment:
    """The README's /etc/mosquitto/soleguard, under tmp_path."""

    root: Path
    stranger_ca: Path

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def ca(self) -> Path:
        return self.certs / "ca.crt"

    def tls(self, client: str | None = None, *, ca: Path | None = None) -> TlsSettings:
        if client is None:
            return TlsSettings(ca_file=ca or self.ca)
        return TlsSettings(
            ca_file=ca or self.ca,
            certfile=self.certs / f"{client}.crt",
            keyfile=self.certs / f"{client}.key",
        )

    def caregiver_tls(self, client_cert: bool = False) -> aiomqtt.TLSParameters:
        if not client_cert:
            return aiomqtt.TLSParameters(ca_certs=str(self.ca))
        return aiomqtt.TLSParameters(
            ca_certs=str(self.ca),
            certfile=str(self.certs / "caregiver.crt"),
            keyfile=str(self.certs / "caregiver.key"),
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """CA, server and client certificates, password file and ACL, laid out as README.md says."""
    passwd_tool = shutil.which("mosquitto_passwd")
    if passwd_tool is None:
        pytest.skip("needs mosquitto_passwd")
    root = tmp_path_factory.mktemp("etc-mosquitto-soleguard")
    certs = root / "certs"
    _make_ca(certs)
    _sign(certs, "server", SERVER_NAME, _server_extensions(f"IP:{SERVER_NAME}"))
    # README: one certificate per controller (CN=<device_id>), and here one for the caregiver.
    _sign(certs, "home", "home", _client_extensions())
    _sign(certs, "caregiver", "caregiver", _client_extensions())
    # Same subject, different key: a CA that did not sign the broker's certificate.
    stranger = tmp_path_factory.mktemp("stranger-ca")
    _make_ca(stranger)
    shutil.copy(SHIPPED / "acl", root / "acl")
    for i, (user, password) in enumerate(PASSWORDS.items()):
        create = ["-c"] if i == 0 else []
        subprocess.run(
            [passwd_tool, *create, "-b", str(root / "passwd"), user, password], check=True
        )
    return Deployment(root, stranger / "ca.crt")


def shipped_config(root: Path, *, require_certificate: bool = False) -> list[str]:
    """config/mosquitto/mosquitto.conf with its paths under ``root``, for MosquittoBroker."""
    lines: list[str] = []
    listeners: list[str] = []
    for raw in (SHIPPED / "mosquitto.conf").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key == "listener":
            # MosquittoBroker's own first line declares the listener (127.0.0.1, a free port);
            # the shipped listener options below then apply to it.
            listeners.append(value)
            continue
        if key in {"persistence", "persistence_location", "log_dest"}:
            continue  # the fixture's workdir and stderr log instead of /var/lib and syslog
        if key == "require_certificate" and require_certificate:
            assert value == "false", "the shipped default changed; update this test"
            value = "true"
        value = value.replace(DEPLOYED_ROOT, f"{root}/")
        if key in FILE_KEYS:
            assert Path(value).is_file(), f"{key} {value}: README.md does not make this file"
        lines.append(f"{key} {value}")
    assert listeners == ["8883"], "the shipped config should have exactly one (TLS) listener"
    assert not [line for line in lines if "/etc/" in line or "/var/" in line]
    return lines


async def start_shipped(
    make_mosquitto: MakeMosquitto, deployment: Deployment, *, require_certificate: bool = False
) -> MosquittoBroker:
    return await make_mosquitto(
        allow_anonymous=False,
        persistence=True,
        extra_config=shipped_config(deployment.root, require_certificate=require_certificate),
    )


def _connect_failures(caplog: pytest.LogCaptureFixture, reason: str) -> int:
    return sum(
        1
        for record in caplog.records
        if record.name == "controller.caregiver.bridge"
        and record.levelno == logging.WARNING
        and reason in record.getMessage()
    )


async def test_bridge_speaks_tls_with_its_account_and_a_caregiver_receives_its_state(
    make_mosquitto: MakeMosquitto, deployment: Deployment, store: Store
) -> None:
    broker = await start_shipped(make_mosquitto, deployment)
    # The listener really is TLS: the same account in plain MQTT gets nowhere.
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            broker.host, broker.port, username="caregiver", password=PASSWORDS["caregiver"]
        ):
            pass

    settings = settings_for(
        broker, "home", username="home", password=PASSWORDS["home"], tls=deployment.tls()
    )
    async with (
        recorder(
            broker,
            "soleguard/+/state",
            "soleguard/+/availability",
            tls_params=deployment.caregiver_tls(),
            username="caregiver",
            password=PASSWORDS["caregiver"],
        ) as rec,
        CaregiverBridge(settings, store) as bridge,
    ):
        await rec.wait_for(lambda r: [m.payload for m in r.on("/availability")] == [b"online"])
        bridge.update_state(
            DeviceState(session_state="running", skin_temp_c=36.5, sensor_health="ok")
        )
        await rec.wait_for(lambda r: bool(r.on("/state")))
        assert bridge.connected

    assert rec.on("/availability")[0].topic.value == "soleguard/home/availability"
    state = rec.json_on("/state")[0]
    assert (state["session_state"], state["skin_temp_c"]) == ("running", 36.5)


@pytest.mark.parametrize(
    ("ca_file", "host", "reason"),
    [
        pytest.param("stranger", SERVER_NAME, "certificate verify failed", id="wrong-ca"),
        pytest.param("right", OTHER_NAME_FOR_SERVER, "mismatch", id="name-not-in-certificate"),
        # A typo in a certificate path never gets this far: it is a settings error (see
        # tests/settings: test_missing_tls_file_is_a_settings_error).
    ],
)
async def test_bridge_refuses_a_broker_it_cannot_verify_and_keeps_trying_without_blocking(
    make_mosquitto: MakeMosquitto,
    deployment: Deployment,
    store: Store,
    caplog: pytest.LogCaptureFixture,
    ca_file: str,
    host: str,
    reason: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="controller.caregiver.bridge")
    broker = await start_shipped(make_mosquitto, deployment)
    ca = {
        "stranger": deployment.stranger_ca,
        "right": deployment.ca,
    }[ca_file]
    settings = settings_for(
        broker, "home", username="home", password=PASSWORDS["home"], tls=deployment.tls(ca=ca)
    ).model_copy(update={"host": host})
    alert = make_alert("home")
    async with CaregiverBridge(settings, store) as bridge:
        # The service's calls return while the bridge fails to connect in its own task.
        bridge.update_state(DeviceState(session_state="running"))
        bridge.raise_alert(alert)
        bridge.command_result("r-1", False, "refused")
        # Two refusals in the log: it did not give up after the first.
        await wait_until(lambda: _connect_failures(caplog, reason) >= 2)
        assert not bridge.connected
        assert bridge.stats.connects == 0
    # The alert waits in the outbox for a broker the bridge can trust.
    assert [a.id for a in store.undelivered_alerts(device_id="home", limit=10)] == [alert.id]


async def test_required_client_certificate_lets_only_certified_clients_in(
    make_mosquitto: MakeMosquitto,
    deployment: Deployment,
    store: Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """README: `require_certificate true` and a certificate per controller (mutual TLS)."""
    caplog.set_level(logging.WARNING, logger="controller.caregiver.bridge")
    broker = await start_shipped(make_mosquitto, deployment, require_certificate=True)
    account = {"username": "home", "password": PASSWORDS["home"]}

    # Without a client certificate, the right CA and password are not enough.
    uncertified = settings_for(broker, "home", tls=deployment.tls(), **account)
    async with CaregiverBridge(uncertified, store, client_id="uncertified") as bridge:
        # Whatever the reason: the broker ends the handshake, which aiomqtt 2.5 reports only as
        # a CONNACK timeout (paho logs the TLS alert itself).
        await wait_until(lambda: _connect_failures(caplog, "") >= 1)
        assert not bridge.connected
        assert bridge.stats.connects == 0
    # A certificate does not replace the password file: a wrong password is still refused.
    with pytest.raises(aiomqtt.MqttCodeError):
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            username="home",
            password="guess",
            tls_params=aiomqtt.TLSParameters(
                ca_certs=str(deployment.ca),
                certfile=str(deployment.certs / "home.crt"),
                keyfile=str(deployment.certs / "home.key"),
            ),
        ):
            pass

    certified = settings_for(broker, "home", tls=deployment.tls("home"), **account)
    async with (
        recorder(
            broker,
            "soleguard/+/state",
            "soleguard/+/availability",
            tls_params=deployment.caregiver_tls(client_cert=True),
            username="caregiver",
            password=PASSWORDS["caregiver"],
        ) as rec,
        CaregiverBridge(certified, store) as bridge,
    ):
        await rec.wait_for(lambda r: [m.payload for m in r.on("/availability")] == [b"online"])
        bridge.update_state(DeviceState(session_state="idle"))
        await rec.wait_for(lambda r: bool(r.on("/state")))
    assert rec.json_on("/state")[0]["session_state"] == "idle"
