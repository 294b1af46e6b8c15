"""One typed exception per result class, carrying the service's errorCode and trackingId."""

import logging
import socket

import pytest
from conftest import AWKWARD_MESSAGE, ID_SCOPE, test_key

import dps_mqtt
from dps_mqtt import ProvisioningClient


def assert_hint(err: dps_mqtt.ProvisioningError) -> None:
    """The hint is one non-empty line beside the message, which stays "NAME: message"."""
    assert err.hint and "\n" not in err.hint, err.name
    assert err.hint not in err.message
    assert str(err) == f"{err.name}: {err.message}"


def register(emulator, reg_id: str, key: str = "", **kwargs):
    args = emulator.kwargs(**kwargs)
    with ProvisioningClient.create_from_symmetric_key(
            args.pop("host", "localhost"), reg_id, args.pop("id_scope", ID_SCOPE),
            key or test_key(reg_id), **args) as client:
        return client.register()


@pytest.mark.parametrize("field,kwargs,name", [
    ("registration_id", dict(registration_id="bad id!"), "DPS_ERR_INVALID_REGISTRATION_ID"),
    ("id_scope", dict(id_scope="0ne 1"), "DPS_ERR_INVALID_ID_SCOPE"),
    ("symmetric_key", dict(symmetric_key="not base64!"), "DPS_ERR_INVALID_KEY"),
    ("nul", dict(registration_id="a\0b"), "DPS_ERR_INVALID_ARGUMENT"),
    ("port", dict(port=0), "DPS_ERR_INVALID_ARGUMENT"),
    ("port", dict(port=65536), "DPS_ERR_INVALID_ARGUMENT"),
    ("timeout", dict(timeout=0), "DPS_ERR_INVALID_ARGUMENT"),
    ("cert", dict(server_verification_cert="no certificate here"),
     "DPS_ERR_INVALID_CERTIFICATE"),
])
def test_invalid_arguments_raise_before_anything_is_sent(field, kwargs, name) -> None:
    args = dict(provisioning_host="localhost", registration_id="x", id_scope=ID_SCOPE,
                symmetric_key=test_key("x"))
    args.update(kwargs)
    with pytest.raises(dps_mqtt.InvalidArgumentError) as e:
        ProvisioningClient.create_from_symmetric_key(**args)
    assert e.value.name == name, field
    assert isinstance(e.value, ValueError)
    assert e.value.exit_code == 2
    assert_hint(e.value)


def test_invalid_payload_is_refused(emulator) -> None:
    client = ProvisioningClient.create_from_symmetric_key(
        "localhost", "py-ok", ID_SCOPE, test_key("py-ok"), **emulator.kwargs())
    with client:
        client._set_payload_json("{nope")
        with pytest.raises(dps_mqtt.InvalidArgumentError) as e:
            client.register()
    assert e.value.name == "DPS_ERR_INVALID_PAYLOAD"


def test_wrong_key_401_carries_error_code_and_tracking_id(emulator) -> None:
    with pytest.raises(dps_mqtt.AuthenticationError) as e:
        register(emulator, "py-ok", test_key("wrong"))
    err = e.value
    assert err.name == "DPS_ERR_AUTH_UNAUTHORIZED"
    assert err.error_code == 401002
    assert err.tracking_id
    assert err.http_status == 401
    assert err.exit_code == 3
    assert not err.retryable
    assert_hint(err)
    assert "group key" in err.hint


def test_device_key_given_as_group_key_is_401_with_the_key_hint(emulator) -> None:
    with pytest.raises(dps_mqtt.AuthenticationError) as e:
        with ProvisioningClient.create_from_group_key(
                "localhost", "py-ok", ID_SCOPE, test_key("py-ok"), **emulator.kwargs()) as client:
            client.register()
    assert e.value.name == "DPS_ERR_AUTH_UNAUTHORIZED"
    assert "group key" in e.value.hint


def test_wrong_key_connack_refusal(connack_emulator) -> None:
    with pytest.raises(dps_mqtt.AuthenticationError) as e:
        register(connack_emulator, "py-ok", test_key("wrong"))
    assert e.value.name == "DPS_ERR_AUTH_NOT_AUTHORIZED"


def test_unknown_id_scope(emulator) -> None:
    with pytest.raises(dps_mqtt.AuthenticationError):
        register(emulator, "py-ok", id_scope="0ne99999999")


def test_untrusted_server_certificate(emulator) -> None:
    with pytest.raises(dps_mqtt.TlsError) as e:
        register(emulator, "py-ok", server_verification_cert=None)
    assert e.value.name == "DPS_ERR_TLS_CERT_UNTRUSTED"
    assert e.value.exit_code == 4
    assert_hint(e.value)
    assert "--ca-file" in e.value.hint and "dps_config_add_trust_anchors_pem" in e.value.hint


def test_nothing_listening(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="dps_mqtt")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
        port = s.getsockname()[1]
        with pytest.raises(dps_mqtt.TransportError) as e:
            with ProvisioningClient.create_from_symmetric_key(
                    "127.0.0.1", "py-ok", ID_SCOPE, test_key("py-ok"),
                    port=port, timeout=3) as client:
                client.register()
    assert isinstance(e.value, ConnectionError)
    assert e.value.exit_code == 5
    # Retried until the deadline, then reported with the address, the count and the cause.
    message = str(e.value)
    assert f"127.0.0.1:{port}, " in message, message
    assert " attempts in " in message, message
    assert message.endswith("Connection refused (os error 111)"), message
    # The reconnects on the way were logged as warnings.
    assert any(r.levelno == logging.WARNING and "reconnecting" in r.getMessage()
               for r in caplog.records if r.name == "dps_mqtt")


def test_deadline_while_assigning(emulator) -> None:
    with pytest.raises(dps_mqtt.ProvisioningTimeoutError) as e:
        register(emulator, "py-slow", timeout=1.5)
    assert e.value.name == "DPS_ERR_TIMEOUT_ASSIGNING"
    assert isinstance(e.value, TimeoutError)
    assert e.value.exit_code == 7


def test_registration_failed(emulator) -> None:
    with pytest.raises(dps_mqtt.RegistrationFailedError) as e:
        register(emulator, "py-failed")
    err = e.value
    assert isinstance(err, dps_mqtt.RegistrationError)
    assert err.error_code == 400209
    assert AWKWARD_MESSAGE in err.message
    assert err.registration_result is not None
    assert err.registration_result.status == "failed"
    assert err.exit_code == 8
    assert_hint(err)


def test_registration_disabled(emulator) -> None:
    with pytest.raises(dps_mqtt.RegistrationDisabledError) as e:
        register(emulator, "py-disabled")
    assert e.value.name == "DPS_ERR_REGISTRATION_DISABLED"
    assert e.value.registration_result is not None
    assert e.value.registration_result.status == "disabled"


def test_every_error_is_a_provisioning_error() -> None:
    for cls in (dps_mqtt.InvalidArgumentError, dps_mqtt.AuthenticationError, dps_mqtt.TlsError,
                dps_mqtt.TransportError, dps_mqtt.ProtocolError,
                dps_mqtt.ProvisioningTimeoutError, dps_mqtt.RegistrationFailedError,
                dps_mqtt.RegistrationDisabledError, dps_mqtt.InternalError):
        assert issubclass(cls, dps_mqtt.ProvisioningError)
