"""The azure-iot-device 2.14 provisioning API (`dps_mqtt.ProvisioningDeviceClient`, `X509`,
`ProxyOptions`, `RegistrationResult`, `dps_mqtt.exceptions`) against the emulator: written as
a program for the SDK is written, with only the import lines and the emulator's port changed.

When DPS_SDK_PYTHON names a Python with azure-iot-device 2.14 installed (tools/test.sh's
.venv-conformance), or the SDK is installed next to this package, the SDK's own names, signatures and exception hierarchy are read from it
and compared with ours; the tables below say the same from reading the SDK's source."""

import base64
import hashlib
import hmac
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import threading

import pytest
from conftest import GROUP_HUB, HUB, ID_SCOPE, X509_HUB, test_key

import dps_mqtt
from dps_mqtt import (X509, ProvisioningDeviceClient, ProxyOptions, RegistrationResult,
                      exceptions)
from dps_mqtt._client import RegistrationState

SDK_EXCEPTIONS = {
    "OperationCancelled": "Exception",
    "OperationTimeout": "Exception",
    "ClientError": "Exception",
    "ConnectionFailedError": "ClientError",
    "ConnectionDroppedError": "ClientError",
    "NoConnectionError": "ClientError",
    "CredentialError": "ClientError",
    "ServiceError": "Exception",
}
"""azure/iot/device/exceptions.py in 2.14.0: every class and its base."""


def create(emulator, registration_id: str, key: str = "", **kwargs) -> ProvisioningDeviceClient:
    """As the SDK's samples create their client, plus the emulator's port and CA."""
    args = dict(port=emulator.port, server_verification_cert=emulator.ca_pem)
    args.update(kwargs)
    return ProvisioningDeviceClient.create_from_symmetric_key(
        provisioning_host="localhost", registration_id=registration_id, id_scope=ID_SCOPE,
        symmetric_key=key or test_key(registration_id), **args)


# --- the surface ---------------------------------------------------------------------------

def test_exception_names_and_hierarchy() -> None:
    public = {n for n in vars(exceptions) if not n.startswith("_")
              and isinstance(getattr(exceptions, n), type)}
    assert public == set(SDK_EXCEPTIONS)
    assert set(exceptions.__all__) == set(SDK_EXCEPTIONS)
    for name, base in SDK_EXCEPTIONS.items():
        assert getattr(exceptions, name).__bases__ == (getattr(exceptions, base, Exception),)


@pytest.mark.parametrize("ours,sdk_names", [
    (dps_mqtt.AuthenticationError, ["CredentialError", "ClientError"]),
    (dps_mqtt.TlsError, ["ConnectionFailedError", "ClientError"]),
    (dps_mqtt.TransportError, ["ConnectionFailedError", "ClientError"]),
    (dps_mqtt.TransportDroppedError, ["ConnectionDroppedError", "ConnectionFailedError"]),
    (dps_mqtt.ProtocolError, ["ClientError"]),
    (dps_mqtt.InternalError, ["ClientError"]),
    (dps_mqtt.ProvisioningTimeoutError, ["OperationTimeout"]),
    (dps_mqtt.OperationCancelledError, ["OperationCancelled"]),
    (dps_mqtt.RegistrationFailedError, ["ServiceError", "ClientError"]),
    (dps_mqtt.RegistrationDisabledError, ["ServiceError", "ClientError"]),
])
def test_our_errors_are_the_sdk_errors_of_the_same_meaning(ours, sdk_names) -> None:
    for name in sdk_names:
        assert issubclass(ours, getattr(exceptions, name)), (ours, name)
    assert issubclass(ours, dps_mqtt.ProvisioningError)


def test_a_lost_connection_is_a_dropped_connection() -> None:
    from dps_mqtt._errors import error_class
    for code in range(1000):
        name = dps_mqtt.ProvisioningError(code).name
        if name in ("DPS_ERR_TRANSPORT_CLOSED", "DPS_ERR_TRANSPORT_IO"):
            assert error_class(code) is dps_mqtt.TransportDroppedError, name
        elif name.startswith("DPS_ERR_TRANSPORT_"):
            assert not issubclass(error_class(code), exceptions.ConnectionDroppedError), name
            assert issubclass(error_class(code), exceptions.ConnectionFailedError), name


def test_invalid_arguments_are_value_errors_as_in_the_sdk() -> None:
    assert issubclass(dps_mqtt.InvalidArgumentError, ValueError)
    assert not issubclass(dps_mqtt.InvalidArgumentError, exceptions.ClientError)


def test_module_paths_mirror_the_sdk() -> None:
    import dps_mqtt.aio
    from dps_mqtt.exceptions import ClientError  # noqa: F401
    for name in ("ProvisioningDeviceClient", "X509", "ProxyOptions", "RegistrationResult",
                 "exceptions"):
        assert name in dps_mqtt.__all__
    assert dps_mqtt.aio.__all__ == ["ProvisioningDeviceClient"]
    assert issubclass(ProvisioningDeviceClient, dps_mqtt.ProvisioningClient)


def test_signatures_take_the_sdk_parameter_names() -> None:
    def params(f) -> list:
        return list(inspect.signature(f).parameters)
    import dps_mqtt.aio
    for cls in (ProvisioningDeviceClient, dps_mqtt.aio.ProvisioningDeviceClient):
        assert params(cls.create_from_symmetric_key) == [
            "provisioning_host", "registration_id", "id_scope", "symmetric_key", "kwargs"]
        assert params(cls.create_from_x509_certificate) == [
            "provisioning_host", "registration_id", "id_scope", "x509", "kwargs"]
        assert isinstance(inspect.getattr_static(cls, "provisioning_payload"), property)
    assert params(X509) == ["cert_file", "key_file", "pass_phrase"]
    assert params(ProxyOptions) == ["proxy_type", "proxy_addr", "proxy_port", "proxy_username",
                                    "proxy_password"]
    assert params(RegistrationState) == ["device_id", "assigned_hub", "sub_status",
                                         "created_date_time", "last_update_date_time", "etag",
                                         "payload"]
    assert params(RegistrationResult)[:3] == ["operation_id", "status", "registration_state"]


SDK_SURFACE_SCRIPT = r"""
import inspect, json
import azure.iot.device as d
import azure.iot.device.aio as aio
from azure.iot.device import exceptions as e
from azure.iot.device.provisioning.models.registration_result import RegistrationState
def params(f):
    return list(inspect.signature(f).parameters)
props = lambda cls: sorted(n for n, v in vars(cls).items() if isinstance(v, property))
print(json.dumps({
    "exceptions": {n: c.__bases__[0].__name__ for n, c in vars(e).items()
                   if isinstance(c, type) and issubclass(c, BaseException)},
    "symmetric": params(d.ProvisioningDeviceClient.create_from_symmetric_key),
    "x509": params(d.ProvisioningDeviceClient.create_from_x509_certificate),
    "aio_symmetric": params(aio.ProvisioningDeviceClient.create_from_symmetric_key),
    "X509": params(d.X509), "ProxyOptions": params(d.ProxyOptions),
    "X509_props": props(d.X509), "ProxyOptions_props": props(d.ProxyOptions),
    "RegistrationState": params(RegistrationState),
    "RegistrationState_props": props(RegistrationState),
    "RegistrationResult": params(d.RegistrationResult),
    "RegistrationResult_props": props(d.RegistrationResult),
    "client_methods": sorted(n for n in dir(d.ProvisioningDeviceClient) if not n.startswith("_")),
}))
"""


def test_the_surface_matches_the_installed_sdk() -> None:
    sdk_python = os.environ.get("DPS_SDK_PYTHON")
    if not sdk_python and _sdk_installed_here():
        sdk_python = sys.executable  # the SDK is installed next to this package
    if not sdk_python:
        pytest.skip("DPS_SDK_PYTHON (a Python with azure-iot-device 2.14) is not set")
    sdk = json.loads(subprocess.run([sdk_python, "-c", SDK_SURFACE_SCRIPT], check=True,
                                    capture_output=True, text=True).stdout)
    assert sdk["exceptions"] == SDK_EXCEPTIONS
    import dps_mqtt.aio

    def params(f) -> list:
        return list(inspect.signature(f).parameters)
    assert sdk["symmetric"] == params(ProvisioningDeviceClient.create_from_symmetric_key)
    assert sdk["x509"] == params(ProvisioningDeviceClient.create_from_x509_certificate)
    assert sdk["aio_symmetric"] == params(
        dps_mqtt.aio.ProvisioningDeviceClient.create_from_symmetric_key)
    assert sdk["X509"] == params(X509) and sdk["ProxyOptions"] == params(ProxyOptions)
    assert sdk["RegistrationState"] == params(RegistrationState)
    assert sdk["RegistrationResult"] == params(RegistrationResult)[:3]
    for cls, key in ((X509, "X509_props"), (ProxyOptions, "ProxyOptions_props"),
                     (RegistrationState, "RegistrationState_props"),
                     (RegistrationResult, "RegistrationResult_props")):
        missing = [n for n in sdk[key] if not hasattr(cls, n)
                   and n not in vars(cls(*_sample_args(cls)))]
        # PySocks' constant for the proxy type: only HTTP proxies exist here.
        assert missing in ([], ["proxy_type_socks"]), (cls, missing)
    assert set(sdk["client_methods"]) <= set(dir(ProvisioningDeviceClient))


def _sdk_installed_here() -> bool:
    try:
        return importlib.util.find_spec("azure.iot.device") is not None
    except ModuleNotFoundError:  # no "azure" package at all
        return False


def _sample_args(cls) -> tuple:
    return {X509: ("c.pem", "k.pem"), ProxyOptions: ("HTTP", "127.0.0.1", 3128),
            RegistrationState: (), RegistrationResult: ("op", "assigned")}[cls]


def test_registration_state_as_the_sdk_builds_it() -> None:
    state = RegistrationState(device_id="d", assigned_hub="h", sub_status="initialAssignment",
                              created_date_time="2026-01-01T00:00:00Z",
                              last_update_date_time="2026-01-01T00:00:01Z", etag="e",
                              payload={"b": 1, "a": [1, None]})
    assert state.response_payload == '{"a": [1, null], "b": 1}'  # the SDK's json.dumps, sorted
    assert (state.created_date_time, state.last_update_date_time) == (
        "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z")
    assert RegistrationState().response_payload == "null"
    result = RegistrationResult("op", "assigned", state)
    assert (result.operation_id, result.status, result.registration_state) == (
        "op", "assigned", state)
    assert str(result) == "d\nh\ninitialAssignment\n" + state.response_payload + "\nassigned"
    with pytest.raises(AttributeError):
        result.status = "failed"  # read-only, as the SDK's properties


def test_x509_and_proxy_options_have_the_sdk_properties() -> None:
    x509 = X509(cert_file="c.pem", key_file="k.pem", pass_phrase=None)
    assert (x509.certificate_file, x509.key_file, x509.pass_phrase) == ("c.pem", "k.pem", None)
    proxy = ProxyOptions(proxy_type="HTTP", proxy_addr="127.0.0.1", proxy_port=3128,
                         proxy_username="u", proxy_password="p")
    assert (proxy.proxy_type, proxy.proxy_address, proxy.proxy_port, proxy.proxy_username,
            proxy.proxy_password) == ("HTTP", "127.0.0.1", 3128, "u", "p")


# --- keyword arguments ---------------------------------------------------------------------

def test_unknown_keyword_is_a_type_error(emulator) -> None:
    with pytest.raises(TypeError, match="not_an_option"):
        create(emulator, "py-ok", not_an_option=1)


def test_sastoken_ttl_is_refused_for_x509_as_in_the_sdk(emulator) -> None:
    with pytest.raises(TypeError, match="sastoken_ttl"):
        ProvisioningDeviceClient.create_from_x509_certificate(
            "localhost", "py-x509", ID_SCOPE, X509(emulator.x509_cert, emulator.x509_key),
            port=emulator.port, server_verification_cert=emulator.ca_pem, sastoken_ttl=3600)


@pytest.mark.parametrize("cipher", ["", [], None])
def test_default_cipher_is_accepted(emulator, cipher) -> None:
    with create(emulator, "py-ok", cipher=cipher) as client:
        assert client.register().registration_state.assigned_hub == HUB


def test_chosen_ciphers_are_refused(emulator) -> None:
    with pytest.raises(dps_mqtt.InvalidArgumentError, match="cipher"):
        create(emulator, "py-ok", cipher="ECDHE-RSA-AES128-GCM-SHA256")
    with pytest.raises(dps_mqtt.InvalidArgumentError, match="cipher"):
        create(emulator, "py-ok", cipher=["ECDHE-RSA-AES128-GCM-SHA256"])
    with pytest.raises(TypeError, match="cipher"):
        create(emulator, "py-ok", cipher=5)


def test_gateway_hostname_is_the_host_connected_to(emulator) -> None:
    # provisioning_host cannot resolve: only the gateway's name is dialled and verified.
    with ProvisioningDeviceClient.create_from_symmetric_key(
            "dps.invalid", "py-ok", ID_SCOPE, test_key("py-ok"), gateway_hostname="localhost",
            port=emulator.port, server_verification_cert=emulator.ca_pem) as client:
        assert client.register().registration_state.device_id == "py-ok"


def test_sdk_keywords_together(emulator) -> None:
    with create(emulator, "py-sas-ttl", sastoken_ttl=7200, keep_alive=30,
                websockets=False) as client:
        assert client.register().status == "assigned"


# --- registrations, as the SDK's samples run them ------------------------------------------

def test_symmetric_key(emulator) -> None:
    client = create(emulator, "py-ok")
    result = client.register()
    client.shutdown()
    assert isinstance(result, RegistrationResult)
    assert result.status == "assigned"
    assert result.operation_id
    state = result.registration_state
    assert (state.assigned_hub, state.device_id, state.sub_status) == (
        HUB, "py-ok", "initialAssignment")
    assert state.etag
    assert state.response_payload == "null"
    # The service's record times, as it sent them (the emulator sends both, ISO 8601).
    for stamp in (state.created_date_time, state.last_update_date_time):
        assert isinstance(stamp, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", stamp), stamp


def test_group_derived_key_computed_as_the_sdk_sample_does(emulator) -> None:
    registration_id = "py-sdk-member"
    group_key = test_key("py-group")
    device_key = base64.b64encode(hmac.HMAC(base64.b64decode(group_key),
                                            registration_id.encode(), hashlib.sha256).digest())
    assert device_key.decode() == dps_mqtt.derive_device_key(group_key, registration_id)
    client = create(emulator, registration_id, device_key.decode())
    result = client.register()
    assert (result.registration_state.assigned_hub,
            result.registration_state.device_id) == (GROUP_HUB, registration_id)


def test_x509(emulator) -> None:
    x509 = X509(cert_file=emulator.x509_cert, key_file=emulator.x509_key, pass_phrase=None)
    client = ProvisioningDeviceClient.create_from_x509_certificate(
        provisioning_host="localhost", registration_id="py-x509", id_scope=ID_SCOPE, x509=x509,
        port=emulator.port, server_verification_cert=emulator.ca_pem)
    result = client.register()
    assert (result.status, result.registration_state.assigned_hub,
            result.registration_state.device_id) == ("assigned", X509_HUB, "py-x509")


def test_websockets(emulator) -> None:
    client = create(emulator, "py-ok", websockets=True, port=emulator.ws_port)
    assert client.register().registration_state.assigned_hub == HUB


def test_proxy(emulator, proxies) -> None:
    with_auth, _ = proxies
    client = create(emulator, "py-ok", proxy_options=ProxyOptions(
        "HTTP", "127.0.0.1", with_auth.port, "dev", "s3cret"))
    assert client.register().registration_state.device_id == "py-ok"


def test_payload_round_trip(emulator) -> None:
    client = create(emulator, "py-payload")
    sent = {"modelId": "dtmi:com:example:Thermostat;1", "n": [1, 2.5, None, True]}
    client.provisioning_payload = sent
    assert client.provisioning_payload is sent  # the SDK's property gives back what was set
    result = client.register()
    # The emulator echoes the device's payload; the SDK gives it as JSON text.
    assert json.loads(result.registration_state.response_payload) == sent
    assert result.registration_state.payload == sent


def test_payload_object_sent_as_its_dict(emulator) -> None:
    class Custom:
        def __init__(self) -> None:
            self.tier = "gold"
            self.n = 3
    client = create(emulator, "py-payload")
    client.provisioning_payload = Custom()
    result = client.register()
    assert json.loads(result.registration_state.response_payload) == {"tier": "gold", "n": 3}


def test_payload_from_the_service(emulator) -> None:
    result = create(emulator, "py-service-payload").register()
    assert json.loads(result.registration_state.response_payload) == {
        "tier": "gold", "n": [1, 2.5, None, True]}


# --- failures, caught by the SDK's names ---------------------------------------------------

def test_wrong_key_is_a_credential_error(emulator) -> None:
    with pytest.raises(exceptions.CredentialError) as e:
        create(emulator, "py-ok", test_key("wrong")).register()
    assert isinstance(e.value, dps_mqtt.AuthenticationError)
    assert e.value.error_code == 401002 and e.value.tracking_id and e.value.hint


def test_connack_refusal_is_a_credential_error(connack_emulator) -> None:
    with pytest.raises(exceptions.CredentialError):
        create(connack_emulator, "py-ok", test_key("wrong")).register()


def test_failed_registration_is_a_client_and_service_error(emulator) -> None:
    with pytest.raises(exceptions.ClientError) as e:
        create(emulator, "py-failed").register()
    assert isinstance(e.value, exceptions.ServiceError)
    assert e.value.error_code == 400209
    assert e.value.registration_result.status == "failed"


def test_disabled_registration_is_a_client_and_service_error(emulator) -> None:
    with pytest.raises(exceptions.ServiceError) as e:
        create(emulator, "py-disabled").register()
    assert isinstance(e.value, exceptions.ClientError)
    assert e.value.registration_result.status == "disabled"


def test_untrusted_server_is_a_connection_failure(emulator) -> None:
    with pytest.raises(exceptions.ConnectionFailedError) as e:
        create(emulator, "py-ok", server_verification_cert=None).register()
    assert isinstance(e.value, dps_mqtt.TlsError)


def test_nothing_listening_is_a_connection_failure() -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
        client = ProvisioningDeviceClient.create_from_symmetric_key(
            "127.0.0.1", "py-ok", ID_SCOPE, test_key("py-ok"), port=s.getsockname()[1],
            timeout=2)
        with pytest.raises(exceptions.ConnectionFailedError) as e:
            client.register()
    assert isinstance(e.value, dps_mqtt.TransportError)
    assert not isinstance(e.value, exceptions.ConnectionDroppedError)


def test_deadline_is_an_operation_timeout(emulator) -> None:
    with pytest.raises(exceptions.OperationTimeout) as e:
        create(emulator, "py-slow", timeout=1.5).register()
    assert e.value.name == "DPS_ERR_TIMEOUT_ASSIGNING"


# --- shutdown ------------------------------------------------------------------------------

def test_register_after_shutdown_is_a_client_error(emulator) -> None:
    client = create(emulator, "py-ok")
    client.shutdown()
    client.shutdown()
    with pytest.raises(exceptions.ClientError, match="shut down"):
        client.register()


def test_shutdown_ends_a_running_registration(emulator) -> None:
    assigning = threading.Event()
    client = create(emulator, "py-slow", on_status=lambda s: (
        assigning.set() if s == dps_mqtt.Status.ASSIGNING else None))
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(client.register())
        except BaseException as e:
            outcome.append(e)
    worker = threading.Thread(target=run)
    worker.start()
    assert assigning.wait(30)
    client.shutdown()
    worker.join(30)
    assert not worker.is_alive()
    assert isinstance(outcome[0], exceptions.OperationCancelled), outcome
    assert client.closed


def test_shutdown_right_after_register_began_on_another_thread() -> None:
    import socket
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepted by the kernel, never answered: the handshake waits
        client = ProvisioningDeviceClient.create_from_symmetric_key(
            "127.0.0.1", "py-ok", ID_SCOPE, test_key("py-ok"), port=listener.getsockname()[1],
            timeout=20)
        outcome: list = []

        def run() -> None:
            try:
                outcome.append(client.register())
            except BaseException as e:
                outcome.append(e)
        worker = threading.Thread(target=run)
        worker.start()
        client.shutdown()  # whether register() has started yet or not
        worker.join(60)
        assert not worker.is_alive()
    # Cancelled while running, or refused because shutdown came first; not a failure of the
    # registration itself (which would mean it ran on to its deadline).
    error = outcome[0]
    assert isinstance(error, exceptions.OperationCancelled) or (
        not isinstance(error, dps_mqtt.ProvisioningError)
        and isinstance(error, (exceptions.ClientError, ValueError))), outcome
    assert client.closed
