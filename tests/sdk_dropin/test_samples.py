"""The programs in samples/, written against azure-iot-device 2.14 in the shape of its own
provisioning samples, run against the bundled emulator twice: as written (Microsoft's SDK), and
with only their import lines swapped to dps_mqtt. Both runs must print the same, line for line
(the result objects as the samples print them too) but for a refusal's message, and the status,
hub and device id must be the enrollment's. Individual enrollments answer `retry-after: 0` (the
SDK still waits its fixed 2 s before the first poll, dps_mqtt polls at once), the groups 1 s,
and one enrollment is assigned only on the third poll.

Runs in tools/run-sdk-dropin.sh's virtual environment (the SDK and this package installed side
by side), as root in a private network namespace: the SDK dials only ports 8883 and 443.
"""

import base64
import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SAMPLES = HERE / "samples"
ID_SCOPE = "0ne00D40F1A"
HOST = "localhost"
RUN_TIMEOUT_S = 60

# The emulator's start-up parser and the tinyproxy runner of the conformance suite.
_spec = importlib.util.spec_from_file_location("sdk_conformance_support",
                                               REPO / "tests" / "sdk_conformance" / "conftest.py")
support = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support)

IMPORT_SWAPS = {
    "azure.iot.device": "dps_mqtt",
    "azure.iot.device.aio": "dps_mqtt.aio",
    "azure.iot.device.exceptions": "dps_mqtt.exceptions",
}
IMPORT_LINE = re.compile(r"^(\s*from )(azure\.iot\.device(?:\.aio|\.exceptions)?)( import .*)$", re.M)


def swap_imports(source: str) -> str:
    """The sample as a user switching packages edits it: its import lines, nothing else."""
    swapped = IMPORT_LINE.sub(lambda m: m[1] + IMPORT_SWAPS[m[2]] + m[3], source)
    assert "azure.iot" not in swapped, "a sample imports the SDK in a way the swap does not cover"
    changed = [(a, b) for a, b in zip(source.splitlines(), swapped.splitlines()) if a != b]
    assert changed and all(IMPORT_LINE.match(a) for a, _ in changed)
    return swapped


def test_swap_touches_only_import_lines():
    source = ("import os\nfrom azure.iot.device import X509, ProvisioningDeviceClient\n"
              "from azure.iot.device.aio import ProvisioningDeviceClient\n"
              "from azure.iot.device.exceptions import ClientError\nprint('azure.iot.device')\n")
    with pytest.raises(AssertionError):
        swap_imports(source)
    assert swap_imports(source.replace("print('azure.iot.device')\n", "")) == (
        "import os\nfrom dps_mqtt import X509, ProvisioningDeviceClient\n"
        "from dps_mqtt.aio import ProvisioningDeviceClient\n"
        "from dps_mqtt.exceptions import ClientError\n")


# Received bytes after which the emulator closes a device's first connection: past the CONNECT
# and the SUBSCRIBE, while or after the register request arrives.
DROP_AFTER_BYTES = 500


def random_key(size: int = 32) -> str:
    return base64.b64encode(os.urandom(size)).decode()


def sym(reg_id: str, hub: str, **knobs) -> dict:
    entry = {"registrationId": reg_id,
             "attestation": {"type": "symmetricKey", "primaryKey": random_key(), "secondaryKey": random_key()},
             "assignedHub": hub, "retryAfter": 0}
    entry.update(knobs)
    return entry


ENROLLMENTS = {
    "idScope": ID_SCOPE,
    "enrollments": [
        sym("dropin-sym", "dropin-hub.azure-devices.net", deviceId="dropin-sym-device",
            substatus="initialAssignment"),
        sym("dropin-ws", "dropin-ws-hub.azure-devices.net", deviceId="dropin-ws-device"),
        sym("dropin-proxy", "dropin-proxy-hub.azure-devices.net"),
        sym("dropin-payload", "dropin-payload-hub.azure-devices.net"),
        sym("dropin-async-1", "dropin-async-hub.azure-devices.net", deviceId="dropin-async-device-1"),
        sym("dropin-async-2", "dropin-async-hub-2.azure-devices.net", assignAfterPolls=2, retryAfter=1),
        sym("dropin-disabled", "dropin-hub.azure-devices.net", outcome="disabled"),
        sym("dropin-wrong-key", "dropin-hub.azure-devices.net"),
        sym("dropin-drop-sdk", "dropin-drop-hub.azure-devices.net", dropAfterBytes=DROP_AFTER_BYTES),
        sym("dropin-drop-ours", "dropin-drop-hub.azure-devices.net", dropAfterBytes=DROP_AFTER_BYTES),
        {"registrationId": "dropin-x509", "attestation": {"type": "x509"},
         "assignedHub": "dropin-x509-hub.azure-devices.net", "deviceId": "dropin-x509-device", "retryAfter": 0},
    ],
    "groups": [
        {"groupId": "dropin-group",
         "attestation": {"type": "symmetricKey", "primaryKey": random_key(64), "secondaryKey": random_key(64)},
         "assignedHub": "dropin-group-hub.azure-devices.net", "retryAfter": 1},
        {"groupId": "dropin-x509-group", "attestation": {"type": "x509"},
         "assignedHub": "dropin-x509-group-hub.azure-devices.net", "retryAfter": 1},
    ],
}
PAYLOAD = {"fruit": {"type": "Apple", "name": "McIntosh", "sweet": True}, "readings": [1, 2.5, None]}
PROXY_USER, PROXY_PASSWORD = "device", "dropin-proxy-pw"


def key_of(reg_id: str) -> str:
    return next(e for e in ENROLLMENTS["enrollments"] if e["registrationId"] == reg_id)["attestation"]["primaryKey"]


def assigned(hub: str, device_id: str, *extra) -> list:
    return [("status", "assigned"), ("assigned hub", hub), ("device id", device_id), *extra]


@dataclass
class Setup:
    ca_file: str
    binary: Path
    cert_dir: Path
    work: Path
    proxy: object
    log: object
    certs: dict = field(default_factory=dict)

    def device_cert(self, cn: str) -> tuple:
        if cn not in self.certs:
            cert, key = self.work / f"{cn}.pem", self.work / f"{cn}-key.pem"
            subprocess.run([str(self.binary), "issue-device-cert", "--cert-dir", str(self.cert_dir),
                            "--registration-id", cn, "--cert-out", str(cert), "--key-out", str(key)],
                           check=True, capture_output=True, timeout=30)
            self.certs[cn] = (str(cert), str(key))
        return self.certs[cn]


@dataclass
class Case:
    sample: str
    env: Callable[[Setup], dict]
    expected: list
    exit_code: int = 0
    proxied: bool = False


def x509_env(cn: str) -> Callable[[Setup], dict]:
    def env(s: Setup) -> dict:
        cert, key = s.device_cert(cn)
        return {"DPS_X509_REGISTRATION_ID": cn, "X509_CERT_FILE": cert, "X509_KEY_FILE": key}
    return env


CASES = {
    "symmetric-key": Case(
        "provision_symmetric_key.py",
        lambda s: {"PROVISIONING_REGISTRATION_ID": "dropin-sym", "PROVISIONING_SYMMETRIC_KEY": key_of("dropin-sym")},
        assigned("dropin-hub.azure-devices.net", "dropin-sym-device", ("sub status", "initialAssignment"))),
    "group-derived-key": Case(
        "provision_symmetric_key_group.py",
        lambda s: {"PROVISIONING_DEVICE_ID_1": "dropin-group-device-1", "PROVISIONING_DEVICE_ID_2": "dropin-group-device-2",
                   "PROVISIONING_GROUP_SYMMETRIC_KEY": ENROLLMENTS["groups"][0]["attestation"]["primaryKey"]},
        assigned("dropin-group-hub.azure-devices.net", "dropin-group-device-1")
        + assigned("dropin-group-hub.azure-devices.net", "dropin-group-device-2")),
    "x509": Case("provision_x509.py", x509_env("dropin-x509"),
                 assigned("dropin-x509-hub.azure-devices.net", "dropin-x509-device")),
    "x509-group": Case("provision_x509.py", x509_env("dropin-x509-group-device"),
                       assigned("dropin-x509-group-hub.azure-devices.net", "dropin-x509-group-device")),
    "websockets": Case(
        "provision_symmetric_key_websockets.py",
        lambda s: {"PROVISIONING_REGISTRATION_ID": "dropin-ws", "PROVISIONING_SYMMETRIC_KEY": key_of("dropin-ws")},
        assigned("dropin-ws-hub.azure-devices.net", "dropin-ws-device")),
    "proxy": Case(
        "provision_symmetric_key_proxy.py",
        lambda s: {"PROVISIONING_REGISTRATION_ID": "dropin-proxy", "PROVISIONING_SYMMETRIC_KEY": key_of("dropin-proxy"),
                   "PROXY_HOST": "127.0.0.1", "PROXY_PORT": str(s.proxy.port),
                   "PROXY_USERNAME": PROXY_USER, "PROXY_PASSWORD": PROXY_PASSWORD},
        assigned("dropin-proxy-hub.azure-devices.net", "dropin-proxy"), proxied=True),
    "payload": Case(
        "provision_symmetric_key_with_payload.py",
        lambda s: {"PROVISIONING_REGISTRATION_ID": "dropin-payload", "PROVISIONING_SYMMETRIC_KEY": key_of("dropin-payload")},
        assigned("dropin-payload-hub.azure-devices.net", "dropin-payload", ("payload", json.dumps(PAYLOAD, sort_keys=True)))),
    "async-symmetric-key": Case(
        "provision_symmetric_key_async.py",
        lambda s: {"PROVISIONING_REGISTRATION_ID": "dropin-async-1", "PROVISIONING_SYMMETRIC_KEY": key_of("dropin-async-1"),
                   "PROVISIONING_REGISTRATION_ID_2": "dropin-async-2", "PROVISIONING_SYMMETRIC_KEY_2": key_of("dropin-async-2")},
        assigned("dropin-async-hub.azure-devices.net", "dropin-async-device-1")
        + assigned("dropin-async-hub-2.azure-devices.net", "dropin-async-2")
        + [("loop ran while registering", "True")]),
    "async-x509": Case("provision_x509_async.py", x509_env("dropin-x509"),
                       assigned("dropin-x509-hub.azure-devices.net", "dropin-x509-device")),
    "disabled": Case(
        "provision_symmetric_key_refused.py",
        lambda s: {"PROVISIONING_REGISTRATION_ID": "dropin-disabled", "PROVISIONING_SYMMETRIC_KEY": key_of("dropin-disabled")},
        [("status", "refused")], exit_code=2),
    "wrong-key": Case(
        "provision_symmetric_key_refused.py",
        lambda s: {"PROVISIONING_REGISTRATION_ID": "dropin-wrong-key", "PROVISIONING_SYMMETRIC_KEY": random_key()},
        [("status", "refused")], exit_code=2),
}

RESULT_LINE = re.compile(r"^(status|assigned hub|device id|sub status|payload|loop ran while registering): (.*)$", re.M)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    binary = Path(os.environ.get("DPS_EMULATOR", REPO / "target" / "release" / "dps-emulator"))
    if not binary.is_file():
        pytest.fail(f"{binary} not found: run `cargo build --release -p dps-emulator` first")
    work = tmp_path_factory.mktemp("dropin")
    (work / "enrollments.json").write_text(json.dumps(ENROLLMENTS, indent=2))
    log = support.ConnectionLog(work / "connections.fifo")
    proc = subprocess.Popen(
        [str(binary), "serve", "--bind", "127.0.0.1", "--port", "8883", "--ws-port", "443", "--tls12-only",
         "--cert-dir", str(work / "certs"), "--enrollments", str(work / "enrollments.json"), "--log", str(log.fifo)],
        stdout=subprocess.PIPE)
    proxy = None
    try:
        startup = support.wait_for_ready(proc)
        assert startup.get("listening mqtts") == "127.0.0.1:8883", startup
        assert startup.get("listening wss") == "127.0.0.1:443", startup
        proxy = support.Tinyproxy(work, "dropin", [8883, 443], (PROXY_USER, PROXY_PASSWORD))
        yield Setup(ca_file=startup["CA certificate"], binary=binary, cert_dir=work / "certs", work=work, proxy=proxy, log=log)
    finally:
        if proxy:
            proxy.stop()
        proc.terminate()
        assert proc.wait(timeout=30) == 0


@dataclass
class Run:
    results: list
    stdout: str
    output: str

    def printed(self) -> list:
        """Everything printed, but the refusal's message: ours is richer by design."""
        return [line for line in self.stdout.splitlines() if not line.startswith("registration refused: ")]


def run(setup: Setup, case: Case, source: Path) -> Run:
    env = dict(os.environ, PROVISIONING_HOST=HOST, PROVISIONING_IDSCOPE=ID_SCOPE,
               PROVISIONING_SERVER_VERIFICATION_CERT=setup.ca_file, **case.env(setup))
    env.pop("PYTHONPATH", None)
    since = setup.proxy.mark()
    proc = subprocess.run([sys.executable, str(source)], env=env, cwd=setup.work, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)
    output = f"--- {source} exited {proc.returncode}\n--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
    assert proc.returncode == case.exit_code, output
    if case.proxied:
        assert setup.proxy.connect_requests(since) == [f"{HOST}:8883"], output
    return Run(RESULT_LINE.findall(proc.stdout), proc.stdout, output)


_sdk_runs: dict = {}


def run_with_sdk(setup: Setup, name: str) -> Run:
    if name not in _sdk_runs:
        _sdk_runs[name] = run(setup, CASES[name], SAMPLES / CASES[name].sample)
    return _sdk_runs[name]


@pytest.mark.parametrize("name", CASES)
def test_sample_with_the_sdk(setup, name):
    sdk = run_with_sdk(setup, name)
    assert sdk.results == CASES[name].expected, sdk.output


@pytest.mark.parametrize("name", CASES)
def test_sample_with_dps_mqtt_by_swapping_imports(setup, name, tmp_path):
    case = CASES[name]
    swapped = tmp_path / case.sample
    swapped.write_text(swap_imports((SAMPLES / case.sample).read_text()))
    ours = run(setup, case, swapped)
    sdk = run_with_sdk(setup, name)
    assert ours.results == sdk.results, f"{ours.output}\n{sdk.output}"
    assert ours.printed() == sdk.printed(), f"{ours.output}\n{sdk.output}"
    assert ours.results == case.expected, ours.output


def test_dropped_connection_differs_on_purpose(setup, tmp_path):
    """The emulator closes the first connection as the register request arrives. The SDK
    reconnects and sends its request again, but does not subscribe again, so the emulator has
    nowhere to send the answer (its log counts it in unsubscribedResponses) and the SDK's
    register() raises ClientError when its 30 s response timer ends. dps_mqtt subscribes again
    on the new connection, re-sends, and is assigned. python/README.md documents this."""
    case = CASES["symmetric-key"]
    swapped = tmp_path / case.sample
    swapped.write_text(swap_imports((SAMPLES / case.sample).read_text()))
    runs = {}
    for reg_id, source in (("dropin-drop-sdk", SAMPLES / case.sample), ("dropin-drop-ours", swapped)):
        env = dict(os.environ, PROVISIONING_HOST=HOST, PROVISIONING_IDSCOPE=ID_SCOPE,
                   PROVISIONING_SERVER_VERIFICATION_CERT=setup.ca_file,
                   PROVISIONING_REGISTRATION_ID=reg_id, PROVISIONING_SYMMETRIC_KEY=key_of(reg_id))
        runs[reg_id] = subprocess.run([sys.executable, str(source)], env=env, cwd=setup.work,
                                      capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    sdk, ours = runs["dropin-drop-sdk"], runs["dropin-drop-ours"]
    sdk_log, ours_log = setup.log.wait_for("dropin-drop-sdk", 2), setup.log.wait_for("dropin-drop-ours", 2)
    assert [e["outcome"] for e in (sdk_log[0], ours_log[0])] == ["dropped (dropAfterBytes)"] * 2
    assert sdk.returncode == 1 and "azure.iot.device.exceptions.ClientError" in sdk.stderr, sdk.stderr
    assert "SUBSCRIBE" not in sdk_log[1]["packetsIn"] and sdk_log[1]["packetsIn"]["PUBLISH"] == 1, sdk_log
    assert sdk_log[1]["unsubscribedResponses"] == 1, sdk_log
    assert ours.returncode == 0, ours.stderr
    assert RESULT_LINE.findall(ours.stdout)[:3] == assigned("dropin-drop-hub.azure-devices.net", "dropin-drop-ours")
    assert ours_log[1]["packetsIn"]["SUBSCRIBE"] == 1 and ours_log[1]["outcome"] == "assigned", ours_log
