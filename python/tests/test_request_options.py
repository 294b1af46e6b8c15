"""The request's details against the real emulator: the model id inside the payload, the SAS
token lifetime (with a device clock that lags), the user agent (ClientVersion, read from the
emulator's connection log) and the api-version."""

import ctypes
import time
from typing import Any, List

import pytest
from conftest import ID_SCOPE, test_key

import dps_mqtt
from dps_mqtt import ProvisioningClient, SocketTransport, _ffi
from dps_mqtt._errors import check

MODEL = "dtmi:com:example:Thermostat;1"


def client_for(emulator, reg_id: str, **kwargs: Any) -> ProvisioningClient:
    return ProvisioningClient.create_from_symmetric_key(
        "localhost", reg_id, ID_SCOPE, test_key(reg_id), **emulator.kwargs(**kwargs))


def register(emulator, reg_id: str, **kwargs: Any) -> dps_mqtt.RegistrationResult:
    with client_for(emulator, reg_id, **kwargs) as client:
        return client.register()


def test_model_id_goes_inside_the_payload(emulator) -> None:
    # Without a payload of its own, the emulator echoes the device's payload back.
    assert register(emulator, "py-model", model_id=MODEL).payload == {"modelId": MODEL}
    result = register(emulator, "py-model", model_id=MODEL,
                      provisioning_payload={"site": "berlin", "n": [1, 2]})
    assert result.payload == {"modelId": MODEL, "site": "berlin", "n": [1, 2]}
    assert register(emulator, "py-model").payload is None


@pytest.mark.parametrize("kwargs,name", [
    ({"model_id": "com:example:Thermostat;1"}, "DPS_ERR_INVALID_MODEL_ID"),
    ({"model_id": MODEL, "provisioning_payload": {"modelId": "dtmi:other;1"}},
     "DPS_ERR_INVALID_PAYLOAD"),
    ({"model_id": MODEL, "provisioning_payload": [1, 2]}, "DPS_ERR_INVALID_PAYLOAD"),
    ({"sastoken_ttl": 59}, "DPS_ERR_INVALID_ARGUMENT"),
    ({"sastoken_ttl": 2592001}, "DPS_ERR_INVALID_ARGUMENT"),
    ({"sastoken_ttl": 2**32 + 3600}, "DPS_ERR_INVALID_ARGUMENT"),
    ({"sastoken_ttl": 3600.0}, "DPS_ERR_INVALID_ARGUMENT"),
    ({"sastoken_ttl": True}, "DPS_ERR_INVALID_ARGUMENT"),
    ({"client_version": ""}, "DPS_ERR_INVALID_ARGUMENT"),
    ({"client_version": "a\nb"}, "DPS_ERR_INVALID_ARGUMENT"),
    ({"client_version": "x" * 257}, "DPS_ERR_INVALID_ARGUMENT"),
    ({"client_version": "a", "product_info": "b"}, "DPS_ERR_INVALID_ARGUMENT"),
    ({"api_version": "2021-6-1"}, "DPS_ERR_INVALID_ARGUMENT"),
])
def test_invalid_request_details_raise_before_dialling(kwargs, name) -> None:
    # Port 1 on a host that does not exist: nothing may be dialled for these to fail.
    with pytest.raises(dps_mqtt.InvalidArgumentError) as e:
        ProvisioningClient.create_from_symmetric_key(
            "nowhere.invalid", "py-model", ID_SCOPE, test_key("py-model"), port=1, **kwargs)
    assert e.value.name == name


def test_a_model_id_conflict_set_after_creation_is_refused_at_register(emulator) -> None:
    with client_for(emulator, "py-model", model_id=MODEL) as client:
        client.provisioning_payload = {"modelId": "dtmi:other;1"}
        with pytest.raises(dps_mqtt.InvalidArgumentError) as e:
            client.register()
    assert e.value.name == "DPS_ERR_INVALID_PAYLOAD"


def lag_clock(client: ProvisioningClient, lag_seconds: int) -> None:
    """Gives the client a device clock whose wall-clock time is `lag_seconds` behind (through
    the C clock hooks, which the Python API does not expose)."""
    hooks = _ffi.dps_clock(
        user=None,
        now_ms=_ffi.clock_now_ms_fn(lambda _user: int(time.monotonic() * 1000)),
        unix_seconds=_ffi.clock_unix_seconds_fn(lambda _user: int(time.time()) - lag_seconds))
    check(_ffi.dps_config_set_clock(client._config, ctypes.byref(hooks)), "clock")
    client._test_clock = hooks  # type: ignore[attr-defined]  # C keeps the function pointers
    client._dirty = True  # the next register() builds its C client from the changed config


def test_sas_token_lifetime_sets_the_expiry(emulator) -> None:
    """The emulator, like DPS, refuses a token whose expiry has passed: with a device clock
    two hours behind, the default one-hour token arrives expired, a three-hour one does not."""
    with client_for(emulator, "py-sas-ttl") as client:
        assert client.register().status == "assigned"
        lag_clock(client, 2 * 3600)
        with pytest.raises(dps_mqtt.AuthenticationError) as e:
            client.register()
        assert e.value.name == "DPS_ERR_AUTH_UNAUTHORIZED"
    with client_for(emulator, "py-sas-ttl", sastoken_ttl=3 * 3600) as client:
        lag_clock(client, 2 * 3600)
        assert client.register().status == "assigned"
    for ttl in (_ffi.DPS_SAS_TOKEN_LIFETIME_MIN_S, _ffi.DPS_SAS_TOKEN_LIFETIME_MAX_S):
        assert register(emulator, "py-sas-ttl", sastoken_ttl=ttl).status == "assigned"


class WaitForServerClose(SocketTransport):
    """TCP whose close first waits for the server to close its side. The emulator writes a
    connection's log line before it closes the connection, so once the client is closed the
    line is in the log: no race between the test reading the log and the server writing it."""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.settimeout(30)
            try:
                while self.sock.recv(4096):
                    pass
            except OSError:
                pass
        super().close()


def logged_versions(emulator, reg_id: str) -> List[Any]:
    return [(line["apiVersion"], line["clientVersion"]) for line in emulator.log_lines()
            if line["registrationId"] == reg_id]


def test_client_version_and_api_version_reach_the_service(emulator) -> None:
    default = f"dps-mqtt/{dps_mqtt.library_version()}"
    assert dps_mqtt.default_client_version() == default
    agent = "contoso-fw/2.4.1 (board-x; rev b)"
    cases: List[Any] = [
        ({}, ("2019-03-31", default)),
        ({"client_version": agent, "api_version": "2021-06-01"}, ("2021-06-01", agent)),
        ({"product_info": " contoso-fw/2.4.1"}, ("2019-03-31", default + " contoso-fw/2.4.1")),
    ]
    for kwargs, _ in cases:
        with client_for(emulator, "py-agent", transport=WaitForServerClose(), **kwargs) as c:
            assert c.register().status == "assigned"
    assert logged_versions(emulator, "py-agent") == [want for _, want in cases]


def test_server_verification_cert_replaces_the_public_roots(emulator) -> None:
    # The emulator's CA is trusted; without it the public roots do not vouch for the emulator.
    assert register(emulator, "py-ok").status == "assigned"
    args = emulator.kwargs()
    del args["server_verification_cert"]
    with pytest.raises(dps_mqtt.TlsError):
        with ProvisioningClient.create_from_symmetric_key(
                "localhost", "py-ok", ID_SCOPE, test_key("py-ok"), **args) as client:
            client.register()


