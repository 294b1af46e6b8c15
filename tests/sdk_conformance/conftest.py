"""Fixtures for running Microsoft's Python device SDK against dps-emulator.

One emulator per session, on the ports the SDK hard-codes (8883, and 443 with websockets), with a
fresh certificate directory and an enrollment file written here. Every test uses its own
registration id, so the emulator's per-device counters (throttleFirst, ...) never interfere.

Environment:
  DPS_EMULATOR           path of the dps-emulator binary (default: target/release/dps-emulator)
  DPS_CONFORMANCE_TAMPER JSON object {registrationId or "group:<groupId>": {field: value}} merged
                         into the enrollment file before the emulator starts, and
                         {"proxy:<name>": {"connectPorts": [...], "basicAuth": [user, password]}}
                         replacing a proxy's settings. Only test_suite_can_fail.py sets it, in a
                         nested run, to make the emulator or a proxy answer wrongly and prove that
                         the tests below notice.
  TINYPROXY              path of the tinyproxy binary (default: tinyproxy on PATH, /usr/bin/tinyproxy)
"""

import ast
import base64
import json
import logging
import os
import re
import selectors
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from azure.iot.device.common.pipeline import pipeline_stages_mqtt
from azure.iot.device.provisioning.pipeline import constant as provisioning_constant

REPO = Path(__file__).resolve().parents[2]
ID_SCOPE = "0ne00C0FFEE"
HOST = "localhost"
READY_TIMEOUT_S = 30
LOG_TIMEOUT_S = 10

# The SDK waits 30 s for a DPS response and 60 s for a CONNACK before it gives up. Against a local
# emulator every answer takes milliseconds, so a broken emulator should fail a test in seconds,
# not minutes. These are the SDK's own timers (read at call time), only shortened.
provisioning_constant.DEFAULT_TIMEOUT_INTERVAL = 10
pipeline_stages_mqtt.WATCHDOG_INTERVAL = 10


def random_key(size: int = 32) -> str:
    return base64.b64encode(os.urandom(size)).decode()


@dataclass
class Enrollments:
    """What the emulator is told, so that tests can assert it comes back."""

    individual_keys: dict = field(default_factory=dict)
    group_key: str = ""
    doc: dict = field(default_factory=dict)

    def entry(self, name: str) -> dict:
        if name.startswith("group:"):
            return next(g for g in self.doc["groups"] if g["groupId"] == name[len("group:") :])
        return next(e for e in self.doc["enrollments"] if e["registrationId"] == name)


def sym(reg_id: str, keys: dict, **knobs) -> dict:
    keys[reg_id] = random_key()
    entry = {
        "registrationId": reg_id,
        "attestation": {"type": "symmetricKey", "primaryKey": keys[reg_id], "secondaryKey": random_key()},
        "assignedHub": "conformance-hub-1.azure-devices.net",
        "retryAfter": 1,
    }
    entry.update(knobs)
    return entry


def x509(reg_id: str, **knobs) -> dict:
    entry = {
        "registrationId": reg_id,
        "attestation": {"type": "x509"},
        "assignedHub": "conformance-x509-hub.azure-devices.net",
        "retryAfter": 1,
    }
    entry.update(knobs)
    return entry


def build_enrollments() -> Enrollments:
    keys: dict = {}
    group_key = random_key(64)
    enrollments = [
        sym("sym-individual", keys, deviceId="sym-individual-device", substatus="initialAssignment"),
        sym("sym-websocket", keys, assignedHub="conformance-ws-hub.azure-devices.net"),
        sym("sym-payload-echo", keys),
        sym("sym-payload-enrollment", keys, payload={"from": "enrollment", "n": [1, 2, 3]}),
        sym("sym-slow", keys, assignAfterPolls=2),
        sym("sym-throttled", keys, throttleFirst=2),
        sym("sym-server-error", keys, serverErrorFirst=1),
        sym("sym-failed", keys, outcome="failed", errorCode=400209, errorMessage="Custom allocation failed: no hub."),
        sym("sym-disabled", keys, outcome="disabled"),
        sym("sym-wrong-key", keys),
        sym("sym-auth-connack", keys, authFailure="connack"),
        sym("sym-reprovisioned", keys, substatus="deviceDataMigrated"),
        sym("sym-fragmented", keys, fragment=True, delayMs=20),
        sym("sym-fragmented-ws", keys, fragment=True, delayMs=20),
        sym("sym-proxy-mqtts-auth", keys),
        sym("sym-proxy-wss-auth", keys),
        sym("sym-proxy-mqtts-open", keys),
        sym("sym-proxy-wss-open", keys),
        sym("sym-proxy-wrong-password", keys),
        sym("sym-proxy-port-refused", keys),
        sym("sym-ttl-default", keys),
        sym("sym-ttl-day", keys),
        x509("x509-individual", deviceId="x509-individual-device"),
        x509("x509-websocket"),
        x509("x509-cn-mismatch"),
        x509("x509-expired"),
    ]
    groups = [
        {
            "groupId": "conformance-group",
            "attestation": {"type": "symmetricKey", "primaryKey": group_key, "secondaryKey": random_key(64)},
            "assignedHub": "conformance-group-hub.azure-devices.net",
            "retryAfter": 1,
        },
        {
            "groupId": "conformance-x509-group",
            "attestation": {"type": "x509"},
            "assignedHub": "conformance-x509-group-hub.azure-devices.net",
            "retryAfter": 1,
        },
    ]
    doc = {"idScope": ID_SCOPE, "authFailure": "401", "enrollments": enrollments, "groups": groups}
    result = Enrollments(individual_keys=keys, group_key=group_key, doc=doc)
    for name, changes in tamper().items():
        if not name.startswith("proxy:"):
            result.entry(name).update(changes)
    return result


def tamper() -> dict:
    return json.loads(os.environ.get("DPS_CONFORMANCE_TAMPER", "{}"))


class ConnectionLog:
    """The emulator's --log, read from a FIFO as it is written.

    The emulator writes a connection's line when that connection ends, which can be just after
    the SDK's register() has returned; waiting on the FIFO avoids both a race and a sleep."""

    def __init__(self, fifo: Path):
        self.entries: list = []
        self.changed = threading.Condition()
        self.fifo = fifo
        os.mkfifo(fifo)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with open(self.fifo, "rb") as f:
            for line in f:
                with self.changed:
                    self.entries.append(json.loads(line))
                    self.changed.notify_all()

    def wait_for(self, registration_id: str, count: int) -> list:
        def mine():
            return [e for e in self.entries if e.get("registrationId") == registration_id]

        with self.changed:
            if not self.changed.wait_for(lambda: len(mine()) >= count, timeout=LOG_TIMEOUT_S):
                raise AssertionError(f"{len(mine())} connection log lines for {registration_id}, expected {count}")
            return mine()


@dataclass
class Emulator:
    ca_pem: str
    cert_dir: Path
    log: ConnectionLog
    binary: Path
    enrollments: Enrollments
    cert_files: dict = field(default_factory=dict)

    def device_cert(self, cn: str, tmp: Path, expired: bool = False) -> tuple:
        """A certificate chain + key for CN = cn, issued by the emulator's device CA."""
        name = f"{cn}-expired" if expired else cn
        if name not in self.cert_files:
            cert, key = tmp / f"{name}.pem", tmp / f"{name}-key.pem"
            subprocess.run(
                [str(self.binary), "issue-device-cert", "--cert-dir", str(self.cert_dir),
                 "--registration-id", cn, "--cert-out", str(cert), "--key-out", str(key),
                 *(["--expired"] if expired else [])],
                check=True, capture_output=True, timeout=30,
            )
            self.cert_files[name] = (str(cert), str(key))
        return self.cert_files[name]

    def connection_log(self, registration_id: str, connections: int = 1) -> list:
        """The emulator's --log lines for this registration id, once `connections` have ended."""
        return self.log.wait_for(registration_id, connections)


def wait_for_ready(proc: subprocess.Popen) -> dict:
    """Reads the start-up lines until `ready`; returns them as {prefix: value}."""
    seen = {}
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_TIMEOUT_S
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(left):
            raise RuntimeError(f"dps-emulator did not print ready within {READY_TIMEOUT_S} s: {seen}")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            raise RuntimeError(f"dps-emulator exited before ready (rc={proc.wait()}): {seen}")
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = line.decode()
            if text == "dps-emulator: ready":
                return seen
            key, _, value = text.removeprefix("dps-emulator: ").rpartition(": ")
            if not key:
                key, _, value = text.removeprefix("dps-emulator: ").partition(" ")
                key, value = f"{key} {value.split()[0]}", value.split()[-1]
            seen[key] = value


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> Emulator:
    binary = Path(os.environ.get("DPS_EMULATOR", REPO / "target" / "release" / "dps-emulator"))
    if not binary.is_file():
        pytest.fail(f"{binary} not found: run `cargo build --release -p dps-emulator` first")
    work = tmp_path_factory.mktemp("emulator")
    enrollments = build_enrollments()
    enrollment_file = work / "enrollments.json"
    enrollment_file.write_text(json.dumps(enrollments.doc, indent=2))
    log = ConnectionLog(work / "connections.fifo")
    proc = subprocess.Popen(
        [str(binary), "serve", "--bind", "127.0.0.1", "--port", "8883", "--ws-port", "443",
         "--tls12-only", "--cert-dir", str(work / "certs"), "--enrollments", str(enrollment_file),
         "--log", str(log.fifo)],
        stdout=subprocess.PIPE,
    )
    try:
        startup = wait_for_ready(proc)
        assert startup.get("listening mqtts") == "127.0.0.1:8883", startup
        assert startup.get("listening wss") == "127.0.0.1:443", startup
        ca_path = Path(startup["CA certificate"])
        yield Emulator(
            ca_pem=ca_path.read_text(),
            cert_dir=work / "certs",
            log=log,
            binary=binary,
            enrollments=enrollments,
        )
    finally:
        proc.terminate()
        rc = proc.wait(timeout=30)
        assert rc == 0, f"dps-emulator exited with {rc} on SIGTERM"


class Tinyproxy:
    """Debian's tinyproxy, an HTTP CONNECT proxy, in the foreground on a free loopback port of this
    network namespace: CONNECT allowed only to `connect_ports`, basic auth when `basic_auth` is
    (user, password). Ready once it logs that it accepts connections; its log is kept, so tests
    can wait for the CONNECT requests it received."""

    def __init__(self, workdir: Path, name: str, connect_ports: list, basic_auth=None):
        self.name = name
        self.lines: list = []
        self.changed = threading.Condition()
        binary = os.environ.get("TINYPROXY") or shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
        if not Path(binary).is_file():
            pytest.fail(f"{binary} not found: apt-get install tinyproxy (tools/ensure-deps.sh does)")
        for _ in range(3):  # the free port may be taken between probing and binding
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
            conf = workdir / f"tinyproxy-{name}-{self.port}.conf"
            conf.write_text(
                f"Port {self.port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 20\n"
                "Allow 127.0.0.1\nDisableViaHeader Yes\n"
                + "".join(f"ConnectPort {p}\n" for p in connect_ports)
                + (f"BasicAuth {basic_auth[0]} {basic_auth[1]}\n" if basic_auth else "")
            )
            self.proc = subprocess.Popen([binary, "-d", "-c", str(conf)], stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True)
            if any("Accepting connections" in line for line in self.proc.stdout):
                threading.Thread(target=self._read, daemon=True).start()
                return
            self.proc.wait()
        pytest.fail(f"tinyproxy ({name}) did not start")

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def mark(self) -> int:
        with self.changed:
            return len(self.lines)

    def connect_requests(self, since: int, count: int = 1) -> list:
        """The targets of the CONNECT requests logged after mark() returned `since`, once there
        are `count` of them (tinyproxy logs a request before it answers it)."""
        def requests():
            found = (re.search(r"Request \(file descriptor \d+\): CONNECT (\S+) HTTP/1\.1$", line)
                     for line in self.lines[since:])
            return [m[1] for m in found if m]

        with self.changed:
            if not self.changed.wait_for(lambda: len(requests()) >= count, timeout=LOG_TIMEOUT_S):
                raise AssertionError(f"tinyproxy {self.name} logged {requests()}, expected {count} CONNECT")
            return requests()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


PROXY_USER, PROXY_PASSWORD = "device", "s3cret-proxy-pw"
WRONG_PROXY_PASSWORD = "wrong-proxy-pw"


@pytest.fixture(scope="session")
def proxies(tmp_path_factory, emulator) -> dict:
    """HTTP CONNECT proxies in front of the emulator: `auth` requires basic auth (PROXY_USER,
    PROXY_PASSWORD) and `open` none, both allowing ports 8883 and 443; `443-only` allows only
    443, without auth."""
    work = tmp_path_factory.mktemp("proxies")
    settings = {
        "auth": {"connectPorts": [8883, 443], "basicAuth": [PROXY_USER, PROXY_PASSWORD]},
        "open": {"connectPorts": [8883, 443], "basicAuth": None},
        "443-only": {"connectPorts": [443], "basicAuth": None},
    }
    for name, changes in tamper().items():
        if name.startswith("proxy:"):
            settings[name[len("proxy:") :]].update(changes)
    started = {}
    try:
        for name, s in settings.items():
            started[name] = Tinyproxy(work, name, s["connectPorts"], s["basicAuth"])
        yield started
    finally:
        for proxy in started.values():
            proxy.stop()


TOPIC_LOG = re.compile(r"^Received payload:(?P<payload>b(?P<q>['\"]).*(?P=q)) on topic:(?P<topic>\S+)$", re.S)


@dataclass
class Response:
    status: int
    params: dict
    body: dict


@pytest.fixture
def wire(caplog):
    """What the SDK received from the emulator, as the SDK itself logged it (topic and body).

    Lets tests check the bytes on the response topic that the SDK parses but does not expose
    (retry-after, $rid echo, the error envelope)."""
    caplog.set_level(logging.DEBUG, logger="azure.iot.device.provisioning.pipeline.pipeline_stages_provisioning_mqtt")

    def responses() -> list:
        out = []
        for record in caplog.records:
            m = TOPIC_LOG.match(record.getMessage())
            if not m:
                continue
            topic = m["topic"]
            head, _, query = topic.partition("/?")
            params = dict(p.split("=", 1) for p in query.split("&"))
            out.append(Response(int(head.rsplit("/", 1)[1]), params, json.loads(ast.literal_eval(m["payload"]))))
        return out

    return responses
