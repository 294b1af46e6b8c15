"""Microsoft's own device SDK (azure-iot-device, ProvisioningDeviceClient) against the
emulator: if the SDK that ships to real devices registers, and reports the failure scenarios
as it reports the real service's, the emulator is faithful where it matters."""

import json
import time

import pytest
from azure.iot.device import ProvisioningDeviceClient, X509
from azure.iot.device import exceptions

from conftest import ID_SCOPE, derive_device_key, key_for

pytestmark = pytest.mark.timeout(90)


def client(emulator, reg_id, key=None, **kwargs):
    return ProvisioningDeviceClient.create_from_symmetric_key(
        provisioning_host="localhost",
        registration_id=reg_id,
        id_scope=ID_SCOPE,
        symmetric_key=key or key_for(reg_id),
        server_verification_cert=emulator.ca_pem,
        **kwargs,
    )


def assert_assigned(result, reg_id, hub):
    """What a device reads from a successful registration: every field the service sets."""
    assert result.status == "assigned"
    state = result.registration_state
    assert state.assigned_hub == hub
    assert state.device_id == reg_id
    assert state.sub_status == "initialAssignment"
    assert state.etag
    assert state.created_date_time and state.last_update_date_time
    assert result.operation_id.startswith("4.")


def test_symmetric_key_individual_enrollment(emulator):
    result = client(emulator, "sdk-sym").register()
    assert_assigned(result, "sdk-sym", "sdk-sym-hub.azure-devices.net")
    [conn] = emulator.connections("sdk-sym")
    assert conn["transport"] == "mqtts" and conn["enrollment"] == "individual"


def test_group_derived_key(emulator):
    reg_id = "sdk-group-member-42"
    device_key = derive_device_key(key_for("sdk-group"), reg_id)
    result = client(emulator, reg_id, key=device_key).register()
    assert_assigned(result, reg_id, "sdk-group-hub.azure-devices.net")
    assert emulator.connections(reg_id)[0]["enrollment"] == "group:sdk-group"


def test_x509_certificate(emulator):
    cert, key = emulator.issue_device_cert("sdk-x509")
    c = ProvisioningDeviceClient.create_from_x509_certificate(
        provisioning_host="localhost",
        registration_id="sdk-x509",
        id_scope=ID_SCOPE,
        x509=X509(cert_file=cert, key_file=key),
        server_verification_cert=emulator.ca_pem,
    )
    assert_assigned(c.register(), "sdk-x509", "sdk-x509-hub.azure-devices.net")


def test_websockets_on_port_443(emulator):
    result = client(emulator, "sdk-ws", websockets=True).register()
    assert_assigned(result, "sdk-ws", "sdk-ws-hub.azure-devices.net")
    [conn] = emulator.connections("sdk-ws")
    assert conn["transport"] == "wss"


def test_custom_payload_round_trip(emulator):
    c = client(emulator, "sdk-payload")
    c.provisioning_payload = {"modelId": "dtmi:com:example:Thermostat;1", "site": [1, 2]}
    result = c.register()
    # The SDK hands the payload back re-serialised as JSON text, as it does for the service.
    assert json.loads(result.registration_state.response_payload) == {
        "modelId": "dtmi:com:example:Thermostat;1",
        "site": [1, 2],
    }


def test_assigning_with_retry_after_polls(emulator):
    started = time.monotonic()
    result = client(emulator, "sdk-polls").register()
    assert_assigned(result, "sdk-polls", "sdk-polls-hub.azure-devices.net")
    # 202 to the register, then two 202 polls, each with retry-after=1, before the 200.
    assert time.monotonic() - started >= 3.0
    [conn] = emulator.connections("sdk-polls")
    assert conn["packetsIn"]["PUBLISH"] == 4


def test_throttling_is_retried_after_retry_after(emulator):
    started = time.monotonic()
    result = client(emulator, "sdk-throttled").register()
    assert_assigned(result, "sdk-throttled", "sdk-throttled-hub.azure-devices.net")
    # Two 429s with retry-after=1, then 202, then 200: the SDK waited as told.
    assert time.monotonic() - started >= 2.0
    [conn] = emulator.connections("sdk-throttled")
    assert conn["packetsOut"]["PUBLISH"] == 4


def test_failed_registration_is_reported_as_a_service_failure(emulator):
    with pytest.raises(exceptions.ClientError) as err:
        client(emulator, "sdk-failed").register()
    cause = err.value.__cause__
    assert isinstance(cause, exceptions.ServiceError)
    assert "failed registration status" in str(cause)


def test_disabled_enrollment_is_reported_as_a_service_error(emulator):
    with pytest.raises(exceptions.ClientError) as err:
        client(emulator, "sdk-disabled").register()
    cause = err.value.__cause__
    assert isinstance(cause, exceptions.ServiceError)
    assert "disabled" in str(cause)


def test_wrong_key_is_refused(emulator):
    with pytest.raises(exceptions.ClientError) as err:
        client(emulator, "sdk-sym", key=key_for("not-the-key")).register()
    assert "401" in str(err.value.__cause__)
    outcomes = [c["outcome"] for c in emulator.connections("sdk-sym")]
    assert "unauthorized (401)" in outcomes


def test_suite_detects_a_wrong_answer(emulator):
    """The checks above can fail: this enrollment answers with a hub other than the one a
    correct service would assign, and the same assertion the other tests use catches it. A
    conformance suite that passed whatever the emulator said would prove nothing."""
    result = client(emulator, "sdk-wrong-answer").register()
    with pytest.raises(AssertionError):
        assert_assigned(result, "sdk-wrong-answer", "sdk-wrong-answer-hub.azure-devices.net")
