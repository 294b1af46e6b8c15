"""Registrations against the emulator: symmetric key, group key, payloads, the result object."""

import base64
import hashlib
import hmac
import json
import os
import re
from pathlib import Path

import pytest
from conftest import GROUP_HUB, HUB, ID_SCOPE, test_key

import dps_mqtt
from dps_mqtt import ProvisioningClient


def test_the_installed_package_ships_and_loads_its_own_library() -> None:
    package = Path(dps_mqtt.__file__).parent
    assert (package / "py.typed").is_file()
    if os.environ.get("DPS_MQTT_LIBRARY"):
        pytest.skip("DPS_MQTT_LIBRARY points the package at another library")
    from dps_mqtt import _ffi
    assert Path(_ffi.lib._name).resolve() == (package / "libdps_mqtt.so").resolve()
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", dps_mqtt.library_version())


def test_symmetric_key(emulator) -> None:
    with ProvisioningClient.create_from_symmetric_key(
            provisioning_host="localhost", registration_id="py-ok", id_scope=ID_SCOPE,
            symmetric_key=test_key("py-ok"), **emulator.kwargs()) as client:
        result = client.register()
    assert result.status == "assigned"
    assert result.assigned_hub == HUB
    assert result.device_id == "py-ok"
    assert result.sub_status == "initialAssignment"
    assert result.payload is None and result.payload_json is None
    assert result.operation_id
    assert result.registration_state.assigned_hub == HUB
    assert result.registration_state.device_id == "py-ok"
    assert result.etag == result.registration_state.etag


def test_device_id_and_substatus_come_from_the_service(emulator) -> None:
    with ProvisioningClient.create_from_symmetric_key(
            "localhost", "py-migrated", ID_SCOPE, test_key("py-migrated"),
            **emulator.kwargs()) as client:
        result = client.register()
    assert (result.device_id, result.sub_status) == ("renamed-device", "deviceDataMigrated")


def test_polling_until_assigned(emulator) -> None:
    with ProvisioningClient.create_from_symmetric_key(
            "localhost", "py-polls", ID_SCOPE, test_key("py-polls"), **emulator.kwargs()) as c:
        assert c.register().status == "assigned"


def test_group_key_derived_inside_the_library(emulator) -> None:
    with ProvisioningClient.create_from_group_key(
            "localhost", "py-member-1", ID_SCOPE, test_key("py-group"),
            **emulator.kwargs()) as client:
        result = client.register()
    assert (result.assigned_hub, result.device_id) == (GROUP_HUB, "py-member-1")


def test_group_key_derivation_helper(emulator) -> None:
    group_key = test_key("py-group")
    expected = base64.b64encode(hmac.new(base64.b64decode(group_key), b"py-member-2",
                                         hashlib.sha256).digest()).decode()
    assert dps_mqtt.derive_device_key(group_key, "py-member-2") == expected
    assert dps_mqtt.derive_group_key is dps_mqtt.derive_device_key
    with ProvisioningClient.create_from_symmetric_key(
            "localhost", "py-member-2", ID_SCOPE, expected, **emulator.kwargs()) as client:
        assert client.register().assigned_hub == GROUP_HUB


def test_derivation_rejects_a_key_that_is_not_base64() -> None:
    with pytest.raises(dps_mqtt.InvalidArgumentError) as e:
        dps_mqtt.derive_device_key("***", "x")
    assert e.value.name == "DPS_ERR_INVALID_KEY"


def test_provisioning_payload_round_trip(emulator) -> None:
    sent = {"modelId": "dtmi:com:example:Thermostat;1", "s": "q\"b\\n\u00e9",
            "n": [1, -2.5e3, None]}
    with ProvisioningClient.create_from_symmetric_key(
            "localhost", "py-payload", ID_SCOPE, test_key("py-payload"),
            **emulator.kwargs()) as client:
        client.provisioning_payload = sent
        assert client.provisioning_payload == sent
        result = client.register()
    assert result.payload == sent
    assert result.registration_state.payload == sent
    assert json.loads(result.registration_state.response_payload) == sent  # as the SDK's: text


def test_payload_set_by_the_service(emulator) -> None:
    with ProvisioningClient.create_from_symmetric_key(
            "localhost", "py-service-payload", ID_SCOPE, test_key("py-service-payload"),
            **emulator.kwargs()) as client:
        assert client.register().payload == {"tier": "gold", "n": [1, 2.5, None, True]}


def test_register_twice_on_one_client(emulator) -> None:
    with ProvisioningClient.create_from_symmetric_key(
            "localhost", "py-ok", ID_SCOPE, test_key("py-ok"), **emulator.kwargs()) as client:
        first = client.register()
        second = client.register()
    assert first.assigned_hub == second.assigned_hub == HUB
