"""One emulator for the whole session on the SDK's fixed ports (8883, and 443 for
WebSockets): Microsoft's SDK takes no port. Start-up is synchronised on the emulator's
`ready` line; every test uses its own registration ids so server-side counters never mix."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile

import pytest

ID_SCOPE = "0ne00000001"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def key_for(name: str) -> str:
    """A deterministic 32-byte base64 key per name."""
    return base64.b64encode(hashlib.sha256(name.encode()).digest()).decode()


def derive_device_key(group_key: str, registration_id: str) -> str:
    """The group-enrollment derivation Microsoft documents for devices."""
    mac = hmac.new(base64.b64decode(group_key), registration_id.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def symmetric(reg_id: str, **knobs) -> dict:
    e = {
        "registrationId": reg_id,
        "attestation": {"type": "symmetricKey", "primaryKey": key_for(reg_id)},
        "assignedHub": f"{reg_id}-hub.azure-devices.net",
        "retryAfter": 0,
    }
    e.update(knobs)
    return e


ENROLLMENTS = {
    "idScope": ID_SCOPE,
    "enrollments": [
        symmetric("sdk-sym"),
        symmetric("sdk-ws"),
        symmetric("sdk-payload"),
        symmetric("sdk-polls", assignAfterPolls=2, retryAfter=1),
        symmetric("sdk-throttled", throttleFirst=2, retryAfter=1),
        symmetric("sdk-failed", outcome="failed", errorCode=400209,
                  errorMessage="Custom allocation failed."),
        symmetric("sdk-disabled", outcome="disabled"),
        symmetric("sdk-wrong-answer", assignedHub="not-the-expected-hub.azure-devices.net"),
        {"registrationId": "sdk-x509", "attestation": {"type": "x509"},
         "assignedHub": "sdk-x509-hub.azure-devices.net", "retryAfter": 0},
    ],
    "groups": [
        {"groupId": "sdk-group", "attestation": {"type": "symmetricKey",
                                                 "primaryKey": key_for("sdk-group")},
         "assignedHub": "sdk-group-hub.azure-devices.net", "retryAfter": 0},
    ],
}


class Emulator:
    def __init__(self, workdir: str):
        self.workdir = workdir
        self.binary = os.environ.get("DPS_EMULATOR", os.path.join(ROOT, "target", "release", "dps-emulator"))
        self.cert_dir = os.path.join(workdir, "certs")
        self.log_path = os.path.join(workdir, "connections.jsonl")
        path = os.path.join(workdir, "enrollments.json")
        with open(path, "w") as f:
            json.dump(ENROLLMENTS, f)
        self.proc = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", "8883", "--ws-port", "443",
             "--cert-dir", self.cert_dir, "--enrollments", path, "--log", self.log_path],
            stdout=subprocess.PIPE, text=True)
        ready = False
        for line in self.proc.stdout:
            if line.startswith("dps-emulator: CA certificate: "):
                with open(line.split(": ", 2)[2].strip()) as f:
                    self.ca_pem = f.read()
            if line.strip() == "dps-emulator: ready":
                ready = True
                break
        if not ready:
            raise RuntimeError("dps-emulator did not start (ports 8883/443 busy, or not root?)")

    def issue_device_cert(self, registration_id: str):
        cert = os.path.join(self.workdir, f"{registration_id}.pem")
        key = os.path.join(self.workdir, f"{registration_id}-key.pem")
        subprocess.run([self.binary, "issue-device-cert", "--cert-dir", self.cert_dir,
                        "--registration-id", registration_id, "--cert-out", cert,
                        "--key-out", key], check=True, capture_output=True)
        return cert, key

    def connections(self, registration_id: str):
        with open(self.log_path) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        return [c for c in lines if c.get("registrationId") == registration_id]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def emulator():
    with tempfile.TemporaryDirectory(prefix="dps-sdk-conformance-") as work:
        emu = Emulator(work)
        try:
            yield emu
        finally:
            emu.stop()
