"""X.509 client certificates issued by the emulator's device CA."""

import subprocess
import sys

import pytest
from conftest import ID_SCOPE, X509_GROUP_HUB, X509_HUB

import dps_mqtt
from dps_mqtt import X509, ProvisioningClient


def test_individual_enrollment(emulator) -> None:
    x509 = X509(cert_file=emulator.x509_cert, key_file=emulator.x509_key)
    with ProvisioningClient.create_from_x509_certificate(
            provisioning_host="localhost", registration_id="py-x509", id_scope=ID_SCOPE,
            x509=x509, **emulator.kwargs()) as client:
        result = client.register()
    assert (result.status, result.assigned_hub, result.device_id) == (
        "assigned", X509_HUB, "py-x509")


def test_registration_id_taken_from_the_cn(emulator) -> None:
    with ProvisioningClient.create_from_x509_certificate(
            "localhost", None, ID_SCOPE, X509(emulator.x509_cert, emulator.x509_key),
            **emulator.kwargs()) as client:
        assert client.register().device_id == "py-x509"


def test_enrollment_group(emulator) -> None:
    cert, key = emulator.issue_device_cert("py-x509-member")
    with ProvisioningClient.create_from_x509_certificate(
            "localhost", "py-x509-member", ID_SCOPE, X509(cert, key),
            **emulator.kwargs()) as client:
        result = client.register()
    assert (result.assigned_hub, result.device_id) == (X509_GROUP_HUB, "py-x509-member")


def test_registration_id_must_be_the_cn(emulator) -> None:
    with pytest.raises(dps_mqtt.InvalidArgumentError) as e:
        ProvisioningClient.create_from_x509_certificate(
            "localhost", "py-x509-other", ID_SCOPE, X509(emulator.x509_cert, emulator.x509_key),
            **emulator.kwargs())
    assert e.value.name == "DPS_ERR_INVALID_CERTIFICATE_CN"
    assert '"py-x509-other"' in e.value.message and '"py-x509"' in e.value.message


@pytest.mark.parametrize("cert,key,name", [
    ("cert", "member_key", "DPS_ERR_INVALID_CERTIFICATE_KEY_MISMATCH"),
    ("key", "key", "DPS_ERR_INVALID_CERTIFICATE"),
    ("cert", "cert", "DPS_ERR_INVALID_PRIVATE_KEY"),
    ("/nonexistent.pem", "key", "DPS_ERR_INVALID_ARGUMENT"),
    ("cert", "/nonexistent.pem", "DPS_ERR_INVALID_ARGUMENT"),
])
def test_bad_certificate_or_key_files(emulator, cert, key, name) -> None:
    _, member_key = emulator.issue_device_cert("py-x509-member")
    files = {"cert": emulator.x509_cert, "key": emulator.x509_key, "member_key": member_key}
    with pytest.raises(dps_mqtt.InvalidArgumentError) as e:
        ProvisioningClient.create_from_x509_certificate(
            "localhost", "py-x509", ID_SCOPE, X509(files.get(cert, cert), files.get(key, key)),
            **emulator.kwargs())
    assert e.value.name == name


def test_encrypted_keys_are_refused_up_front(emulator) -> None:
    with pytest.raises(dps_mqtt.InvalidArgumentError, match="pass_phrase"):
        X509(emulator.x509_cert, emulator.x509_key, pass_phrase="secret")


def test_cli_with_cert_and_key(emulator) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "dps_mqtt", "register", "--host", "localhost", "--port",
         str(emulator.port), "--ca-file", emulator.ca_file, "--id-scope", ID_SCOPE,
         "--cert", emulator.x509_cert, "--key", emulator.x509_key],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert '"deviceId":"py-x509"' in p.stdout and X509_HUB in p.stdout
