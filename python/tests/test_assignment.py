"""The stored assignment: save it after a registration, read it back, and decide at boot
whether to provision again (no reboot loop)."""

import json
import subprocess
import sys
import time

import pytest
from conftest import HUB, ID_SCOPE, test_key

import dps_mqtt
from dps_mqtt import Assignment, HubOutcome, ProvisioningClient, should_provision


def client_for(emulator, reg_id: str) -> ProvisioningClient:
    return ProvisioningClient.create_from_symmetric_key(
        "localhost", reg_id, ID_SCOPE, test_key(reg_id), **emulator.kwargs())


def test_save_parse_and_decide(emulator) -> None:
    before = int(time.time())
    with client_for(emulator, "py-ok") as client:
        result = client.register()
        blob = client.save_assignment()
    after = int(time.time())
    assert 0 < len(blob) <= 785
    stored = Assignment.parse(blob)
    assert (stored.assigned_hub, stored.device_id, stored.etag) == (HUB, "py-ok", result.etag)
    assert before <= stored.assigned_at_unix <= after
    assert should_provision(blob) is False
    assert should_provision(blob, HubOutcome.CONNECTED) is False
    assert should_provision(blob, HubOutcome.UNREACHABLE) is False  # an outage is no reason
    assert should_provision(blob, HubOutcome.REJECTED_DEVICE) is True
    assert should_provision(None) is True
    assert should_provision(b"") is True


def test_saved_from_the_assigned_status_callback(emulator) -> None:
    """The natural place to store the assignment: on_status runs inside register() on the
    same thread, and the client's getters are allowed there (no deadlock)."""
    saved = []

    def on_status(status: dps_mqtt.Status) -> None:
        if status == dps_mqtt.Status.ASSIGNED:
            saved.append(client.save_assignment())

    client = ProvisioningClient.create_from_symmetric_key(
        "localhost", "py-ok", ID_SCOPE, test_key("py-ok"), on_status=on_status,
        **emulator.kwargs())
    with client:
        client.register()
    assert len(saved) == 1
    assert Assignment.parse(saved[0]).device_id == "py-ok"


def test_a_corrupt_blob_means_provision(emulator) -> None:
    with client_for(emulator, "py-ok") as client:
        client.register()
        blob = bytearray(client.save_assignment())
    blob[len(blob) // 2] ^= 0xFF
    assert should_provision(bytes(blob)) is True
    with pytest.raises(dps_mqtt.InvalidArgumentError) as e:
        Assignment.parse(bytes(blob))
    assert e.value.name == "DPS_ERR_INVALID_ASSIGNMENT"
    assert should_provision(bytes(blob[:5])) is True


def test_nothing_to_save_after_a_failure(emulator) -> None:
    with client_for(emulator, "py-disabled") as client:
        with pytest.raises(dps_mqtt.RegistrationDisabledError):
            client.register()
        with pytest.raises(dps_mqtt.InvalidArgumentError) as e:
            client.save_assignment()
    assert e.value.name == "DPS_ERR_INVALID_STATE"


def cli(emulator, reg_id: str, path: str):
    p = subprocess.run(
        [sys.executable, "-m", "dps_mqtt", "register", "--host", "localhost", "--port",
         str(emulator.port), "--ca-file", emulator.ca_file, "--id-scope", ID_SCOPE,
         "--registration-id", reg_id, "--symmetric-key", test_key(reg_id),
         "--save-assignment", path], capture_output=True, text=True, timeout=60)
    return p.returncode, json.loads(p.stdout)


def test_cli_save_assignment(emulator, tmp_path) -> None:
    path = tmp_path / "assignment.bin"
    rc, doc = cli(emulator, "py-ok", str(path))
    assert rc == 0 and doc["deviceId"] == "py-ok"
    assert Assignment.parse(path.read_bytes()).assigned_hub == HUB
    assert not (tmp_path / "assignment.bin.tmp").exists()
    rc, doc = cli(emulator, "py-ok", "/nonexistent/dir/a.bin")
    assert (rc, doc["error"]) == (2, "DPS_ERR_INVALID_ARGUMENT")
    missing = tmp_path / "never.bin"
    rc, doc = cli(emulator, "py-failed", str(missing))
    assert rc == 8 and not missing.exists()
