"""Starts the real dps-emulator (DPS_EMULATOR, else the repository's target/release build) for
the tests: fresh certificates and enrollments, ports the OS chooses, start-up synchronised on the
emulator's `ready` line."""

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

ID_SCOPE = "0ne00000001"
HUB = "py-hub.azure-devices.net"
GROUP_HUB = "py-group-hub.azure-devices.net"
X509_HUB = "py-x509-hub.azure-devices.net"
X509_GROUP_HUB = "py-x509-group-hub.azure-devices.net"
AWKWARD_MESSAGE = 'quote " backslash \\ newline \n e-acute \u00e9 snowman \u2603'


def test_key(name: str) -> str:
    """A deterministic base64 key per name, so the tests need no committed secrets."""
    return base64.b64encode(hashlib.sha256(name.encode()).digest()).decode()


test_key.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


def enrollment(reg_id: str, **knobs: object) -> dict:
    e = {"registrationId": reg_id,
         "attestation": {"type": "symmetricKey", "primaryKey": test_key(reg_id)},
         "assignedHub": HUB, "retryAfter": 0}
    e.update(knobs)
    return e


ENROLLMENTS = {
    "idScope": ID_SCOPE,
    "enrollments": [
        enrollment("py-ok"),
        enrollment("py-payload"),
        enrollment("py-service-payload", payload={"tier": "gold", "n": [1, 2.5, None, True]}),
        enrollment("py-polls", assignAfterPolls=2),
        enrollment("py-failed", outcome="failed", errorCode=400209, errorMessage=AWKWARD_MESSAGE),
        enrollment("py-disabled", outcome="disabled"),
        enrollment("py-slow", assignAfterPolls=1000000, retryAfter=1),
        enrollment("py-migrated", deviceId="renamed-device", substatus="deviceDataMigrated"),
        enrollment("py-csr"),
        enrollment("py-signed"),
        enrollment("py-model"),
        enrollment("py-sas-ttl"),
        enrollment("py-agent"),
        # One device per thread of test_lifecycle's concurrency test: the service keeps one
        # live operation per device, so two registrations of one device supersede each other.
        *(enrollment(f"py-thread-{i}") for i in range(6)),
        {"registrationId": "py-x509", "attestation": {"type": "x509"}, "assignedHub": X509_HUB,
         "retryAfter": 0},
    ],
    "groups": [
        {"groupId": "py-group",
         "attestation": {"type": "symmetricKey", "primaryKey": test_key("py-group")},
         "assignedHub": GROUP_HUB, "retryAfter": 0},
        {"groupId": "py-x509-group", "attestation": {"type": "x509"},
         "assignedHub": X509_GROUP_HUB, "retryAfter": 0},
    ],
}


def emulator_binary() -> str:
    path = os.environ.get("DPS_EMULATOR") or str(
        Path(__file__).resolve().parents[2] / "target" / "release" / "dps-emulator")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no emulator at {path}: cargo build --release -p dps-emulator, or set "
                    "DPS_EMULATOR", pytrace=False)
    return path


class Emulator:
    """A running emulator (stopped by the fixture)."""

    def __init__(self, workdir: Path, extra: List[str] = ()) -> None:  # type: ignore[assignment]
        self.binary = emulator_binary()
        self.cert_dir = workdir / "certs"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "connections.jsonl"  # one JSON line per connection
        path = workdir / "enrollments.json"
        path.write_text(json.dumps(ENROLLMENTS))
        # The device CA must exist before the emulator starts, so that it trusts it.
        self.x509_cert, self.x509_key = self.issue_device_cert("py-x509")
        self.proc = subprocess.Popen(
            [self.binary, "--port", "0", "--ws-port", "0", "--cert-dir", str(self.cert_dir),
             "--enrollments", str(path), "--log", str(self.log_path), *extra],
            stdout=subprocess.PIPE, text=True)
        self.port: Optional[int] = None
        self.ws_port: Optional[int] = None
        ca_path = None
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("dps-emulator: listening mqtts "):
                self.port = int(line.rsplit(":", 1)[1])
            elif line.startswith("dps-emulator: listening wss "):
                self.ws_port = int(line.rsplit(":", 1)[1])
            elif line.startswith("dps-emulator: CA certificate: "):
                ca_path = line[len("dps-emulator: CA certificate: "):]
            elif line == "dps-emulator: ready":
                break
        if self.port is None or ca_path is None:
            self.stop()
            raise RuntimeError("the emulator did not print its port, CA and ready lines")
        self.ca_file = ca_path
        self.ca_pem = Path(ca_path).read_text()
        # Whatever it prints later must not fill the pipe and stall it.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def issue_device_cert(self, registration_id: str) -> "tuple[str, str]":
        cert = self.workdir / f"{registration_id}.pem"
        key = self.workdir / f"{registration_id}.key.pem"
        subprocess.run([self.binary, "issue-device-cert", "--cert-dir", str(self.cert_dir),
                        "--registration-id", registration_id, "--cert-out", str(cert),
                        "--key-out", str(key)], check=True, stdout=subprocess.DEVNULL)
        return str(cert), str(key)

    def log_lines(self) -> List[dict]:
        """What the emulator logged, one dict per finished connection."""
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def kwargs(self, **extra: object) -> Dict[str, object]:
        """The keyword arguments that point a client at this emulator."""
        args: Dict[str, object] = {"port": self.port, "server_verification_cert": self.ca_pem,
                                   "timeout": 30}
        args.update(extra)
        return args

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emu = Emulator(tmp_path_factory.mktemp("emulator"))
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def connack_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """Answers bad credentials with CONNACK 5 instead of a 401."""
    emu = Emulator(tmp_path_factory.mktemp("connack"), ["--auth-failure", "connack"])
    yield emu
    emu.stop()


class Tinyproxy:
    """Debian's tinyproxy in the foreground on a free loopback port, allowing CONNECT to
    `connect_ports` only, with basic auth when `auth` = (user, password)."""

    def __init__(self, workdir: Path, connect_ports: List[int],
                 auth: Optional["tuple[str, str]"] = None) -> None:
        binary = os.environ.get("TINYPROXY") or shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
        if not os.access(binary, os.X_OK):
            pytest.fail("tinyproxy not found (apt-get install tinyproxy)", pytrace=False)
        for _ in range(3):  # the free port may be taken between probing and binding
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
            conf = workdir / f"tinyproxy-{self.port}.conf"
            lines = [f"Port {self.port}", "Listen 127.0.0.1", "Timeout 30", "LogLevel Info",
                     "MaxClients 20", "Allow 127.0.0.1", "DisableViaHeader Yes"]
            lines += [f"ConnectPort {p}" for p in connect_ports]
            if auth:
                lines.append(f"BasicAuth {auth[0]} {auth[1]}")
            conf.write_text("\n".join(lines) + "\n")
            self.proc = subprocess.Popen([binary, "-d", "-c", str(conf)], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
            assert self.proc.stdout is not None
            if any("Accepting connections" in line for line in self.proc.stdout):
                threading.Thread(target=self.proc.stdout.read, daemon=True).start()
                return
            self.proc.wait()
        raise RuntimeError("tinyproxy did not start")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="session")
def proxies(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory
            ) -> "Iterator[tuple[Tinyproxy, Tinyproxy]]":
    """(a proxy with basic auth dev:s3cret to both emulator ports, one without auth)."""
    work = tmp_path_factory.mktemp("proxies")
    ports = [p for p in (emulator.port, emulator.ws_port) if p is not None]
    with_auth = Tinyproxy(work, ports, ("dev", "s3cret"))
    try:
        plain = Tinyproxy(work, ports)
    except BaseException:
        with_auth.stop()
        raise
    yield with_auth, plain
    with_auth.stop()
    plain.stop()
