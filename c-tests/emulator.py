"""Starts the real dps-emulator for the C tests: a fresh certificate directory and enrollment
file, a port the OS chooses, and start-up synchronised on the emulator's `ready` line."""

import base64
import hashlib
import hmac
import json
import os
import subprocess

ID_SCOPE = "0ne00000001"


def test_key(name: str) -> str:
    """A deterministic base64 key per name, so tests need no committed secrets."""
    return base64.b64encode(hashlib.sha256(name.encode()).digest()).decode()


def derived_key(group_key: str, registration_id: str) -> str:
    raw = hmac.new(base64.b64decode(group_key), registration_id.encode(), hashlib.sha256)
    return base64.b64encode(raw.digest()).decode()


class Emulator:
    """A running emulator; use as a context manager so it is always stopped."""

    def __init__(self, binary: str, workdir: str, enrollments: dict, extra=()):
        os.makedirs(workdir, exist_ok=True)
        self.binary = binary
        self.cert_dir = os.path.join(workdir, "certs")
        path = os.path.join(workdir, "enrollments.json")
        with open(path, "w") as f:
            json.dump(enrollments, f)
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--cert-dir", os.path.join(workdir, "certs"),
             "--enrollments", path, *extra],
            stdout=subprocess.PIPE, text=True)
        self.port = None
        self.ws_port = None  # with extra ["--ws-port", "0"]
        self.ca = None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("dps-emulator: listening mqtts "):
                self.port = int(line.rsplit(":", 1)[1])
            elif line.startswith("dps-emulator: listening wss "):
                self.ws_port = int(line.rsplit(":", 1)[1])
            elif line.startswith("dps-emulator: CA certificate: "):
                self.ca = line[len("dps-emulator: CA certificate: "):]
            elif line == "dps-emulator: ready":
                break
        if self.port is None or self.ca is None:
            self.stop()
            raise RuntimeError(f"{binary} did not print its port, CA and ready lines")

    def issue_device_cert(self, registration_id: str, directory: str):
        """A device certificate (CN = registration_id) from the emulator's device CA: returns
        the paths of the chain (leaf, device CA) and of the PKCS#8 key, both PEM."""
        cert = os.path.join(directory, f"{registration_id}.pem")
        key = os.path.join(directory, f"{registration_id}-key.pem")
        subprocess.run([self.binary, "issue-device-cert", "--cert-dir", self.cert_dir,
                        "--registration-id", registration_id, "--cert-out", cert,
                        "--key-out", key], check=True, stdout=subprocess.DEVNULL)
        return cert, key

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
