"""External signing (a Python function instead of a key), certificate issuance from a CSR, and
TLS offload (the Python transport does TLS with the ssl module)."""

import base64
import hashlib
import hmac
import json
import shutil
import socket
import ssl
import subprocess
import sys
from typing import Optional

import pytest
from conftest import HUB, ID_SCOPE, test_key

import dps_mqtt
from dps_mqtt import ProvisioningClient, SocketTransport


def hmac_signer(reg_id: str, calls: list):
    key = base64.b64decode(test_key(reg_id))

    def sign(data: bytes) -> bytes:
        calls.append(data)
        return hmac.new(key, data, hashlib.sha256).digest()
    return sign


def test_signing_callback_instead_of_a_key(emulator) -> None:
    calls: list = []
    with ProvisioningClient.create_from_signing_callback(
            "localhost", "py-signed", ID_SCOPE, hmac_signer("py-signed", calls),
            **emulator.kwargs()) as client:
        result = client.register()
    assert (result.assigned_hub, result.device_id) == (HUB, "py-signed")
    assert calls and all(b"py-signed" in data for data in calls)


class Boom(Exception):
    pass


def test_an_exception_in_the_signer_is_reraised(emulator) -> None:
    def sign(data: bytes) -> bytes:
        raise Boom("the HSM is gone")

    with ProvisioningClient.create_from_signing_callback(
            "localhost", "py-signed", ID_SCOPE, sign, **emulator.kwargs()) as client:
        with pytest.raises(Boom, match="the HSM is gone") as e:
            client.register()
    assert isinstance(e.value.__context__, dps_mqtt.AuthenticationError)
    assert e.value.__context__.name == "DPS_ERR_AUTH_SIGNING_FAILED"


def test_a_signature_of_the_wrong_length_is_refused(emulator) -> None:
    with ProvisioningClient.create_from_signing_callback(
            "localhost", "py-signed", ID_SCOPE, lambda data: b"short",
            **emulator.kwargs()) as client:
        with pytest.raises(ValueError, match="5 bytes, want 32"):
            client.register()


def openssl(*args: str) -> str:
    if shutil.which("openssl") is None:
        pytest.fail("openssl not found (apt-get install openssl)")
    return subprocess.run(["openssl", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def make_csr(tmp_path, cn: str, form: str) -> str:
    out = str(tmp_path / f"{cn}.csr.{form.lower()}")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", out + ".key", "-subj", f"/CN={cn}", "-outform", form, "-out", out)
    return out


@pytest.mark.parametrize("form", ["DER", "PEM"])
def test_certificate_issuance(emulator, tmp_path, form) -> None:
    csr_file = make_csr(tmp_path, "py-csr", form)
    with open(csr_file, "rb") as f:
        csr = f.read()
    with ProvisioningClient.create_from_symmetric_key(
            "localhost", "py-csr", ID_SCOPE, test_key("py-csr"),
            **emulator.kwargs(csr=csr)) as client:
        chain = client.register().issued_certificate_chain
    assert chain is not None and chain.count("-----BEGIN CERTIFICATE-----") == 2
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(chain)
    assert openssl("x509", "-in", str(leaf), "-noout", "-subject", "-nameopt",
                   "RFC2253") == "subject=CN=py-csr"
    assert (openssl("x509", "-in", str(leaf), "-noout", "-pubkey")
            == openssl("pkey", "-in", csr_file + ".key", "-pubout"))


def test_no_csr_no_chain(emulator) -> None:
    with ProvisioningClient.create_from_symmetric_key(
            "localhost", "py-ok", ID_SCOPE, test_key("py-ok"), **emulator.kwargs()) as client:
        assert client.register().issued_certificate_chain is None


def test_a_malformed_csr_is_refused_at_creation() -> None:
    with pytest.raises(dps_mqtt.InvalidArgumentError) as e:
        ProvisioningClient.create_from_symmetric_key(
            "localhost", "py-csr", ID_SCOPE, test_key("py-csr"), csr=b"\x00not a csr")
    assert e.value.name == "DPS_ERR_INVALID_CSR"


def test_cli_csr_and_issued_cert_out(emulator, tmp_path) -> None:
    csr_file = make_csr(tmp_path, "py-csr", "DER")
    chain_file = tmp_path / "issued.pem"
    p = subprocess.run(
        [sys.executable, "-m", "dps_mqtt", "register", "--host", "localhost", "--port",
         str(emulator.port), "--ca-file", emulator.ca_file, "--id-scope", ID_SCOPE,
         "--registration-id", "py-csr", "--symmetric-key", test_key("py-csr"),
         "--csr", csr_file, "--issued-cert-out", str(chain_file)],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert set(doc) == {"status", "assignedHub", "deviceId", "substatus",
                        "issuedCertificateChain", "payload"}
    assert doc["issuedCertificateChain"] == chain_file.read_text()
    p = subprocess.run(
        [sys.executable, "-m", "dps_mqtt", "register", "--host", "localhost", "--port",
         str(emulator.port), "--ca-file", emulator.ca_file, "--id-scope", ID_SCOPE,
         "--registration-id", "py-csr", "--symmetric-key", test_key("py-csr"),
         "--csr", csr_file, "--api-version", "2021-06-01", "--issued-cert-out",
         str(chain_file)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 6, p.stdout
    assert json.loads(p.stdout)["error"] == "DPS_ERR_PROTOCOL_BAD_RESPONSE"


class SslTransport(SocketTransport):
    """TLS done in Python (as a modem's TLS socket would), MQTT in the clear from the library."""

    def __init__(self, ca_file: str) -> None:
        super().__init__()
        self.context = ssl.create_default_context(cafile=ca_file)
        self.handshakes = 0

    def connect(self, host: str, port: int) -> None:
        raw = socket.create_connection((host, port), timeout=self.connect_timeout)
        self.sock = self.context.wrap_socket(raw, server_hostname=host)  # handshake, blocking
        self.sock.setblocking(False)
        self.handshakes += 1

    def send(self, data: memoryview) -> Optional[int]:
        try:
            return super().send(data)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None

    def recv_into(self, buffer: memoryview) -> Optional[int]:
        try:
            return super().recv_into(buffer)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None

    def wait(self, timeout: float, want_write: bool) -> None:
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return  # decrypted bytes already wait inside the ssl object
        super().wait(timeout, want_write)


def test_tls_offload_through_a_python_ssl_transport(emulator) -> None:
    transport = SslTransport(emulator.ca_file)
    with ProvisioningClient.create_from_symmetric_key(
            "localhost", "py-ok", ID_SCOPE, test_key("py-ok"),
            **emulator.kwargs(transport=transport, tls_offload=True,
                              server_verification_cert=None)) as client:
        result = client.register()
    assert result.assigned_hub == HUB
    assert transport.handshakes == 1


def test_tls_offload_with_trust_anchors_is_contradictory(emulator) -> None:
    with pytest.raises(dps_mqtt.InvalidArgumentError) as e:
        ProvisioningClient.create_from_symmetric_key(
            "localhost", "py-ok", ID_SCOPE, test_key("py-ok"),
            **emulator.kwargs(transport=SslTransport(emulator.ca_file), tls_offload=True))
    assert e.value.name == "DPS_ERR_INVALID_CONFIG"
