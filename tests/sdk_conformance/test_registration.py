"""Microsoft's own device SDK (azure-iot-device 2.14.0, ProvisioningDeviceClient) against the emulator.

If the SDK that ships to real devices registers against the emulator, and reports every failure
scenario exactly as it reports the real service's, the emulator is faithful where devices can
tell. What the SDK does with each answer was read from its source (azure/iot/device/provisioning/
pipeline/pipeline_stages_provisioning.py and provisioning_device_client.py):

- 202 `assigning` to the register request: waits a fixed 2 s (it ignores retry-after there), then
  polls; 202 to a poll: waits retry-after (2 s when absent) and polls again.
- 200 `assigned`: returns a RegistrationResult. 200 `failed`: the op fails with ServiceError, which
  register() wraps as ClientError("Unexpected failure"), so the registrationState (errorCode,
  errorMessage) never reaches the caller. 200 `disabled`: the SDK does not know this status and
  fails with ServiceError("... invalid registration status disabled ..."), wrapped the same way.
- Status 300..428 on the response topic (401 for bad credentials): ServiceError("register request
  returned a service error status code 401") wrapped as ClientError. 429 and every status above it
  (500 too): the same request is sent again after retry-after seconds, transparently.
- CONNACK 5 / 4: CredentialError; CONNACK 3: ConnectionFailedError.

What it sends (same source, common/mqtt_transport.py and common/auth/sastoken.py): TLS 1.2 only
(ssl.PROTOCOL_TLSv1_2), CleanSession 0, client id = registration id, user name
`{scope}/registrations/{id}/api-version=2019-03-31&ClientVersion=azure-iot-device-provisioning-py%2F2.14.0%28...%29`,
SAS token `SharedAccessSignature sr={quote(uri, safe="")}&sig=...&se=...` with upper-case %2F and
no skn, a UUID4 as $rid, `{"payload": null, "registrationId": ...}` when the app sets no payload,
WebSocket path /$iothub/websocket with subprotocol mqtt (paho 1.6.1).

Proxies (same source, mqtt_transport.py; paho 1.6.1 client.py; PySocks 1.7.1 socks.py):
`proxy_options=ProxyOptions("HTTP", ...)` becomes paho's proxy_set(), and paho opens every socket
with socks.create_connection(): `CONNECT {host}:{8883|443} HTTP/1.1` with the host name unresolved
and `Proxy-Authorization: basic ...` when a user name and password are given; TLS, and for
websockets the WebSocket upgrade, then run inside the tunnel, so HTTP CONNECT works for both
transports. A status other than 200 raises PySocks' HTTPError ("401: Unauthorized"), wrapped in
GeneralProxyError, then the SDK's ProtocolProxyError, which register() reports as
ClientError("Unexpected failure"); it does not retry. The proxies here are Debian's tinyproxy.

`sastoken_ttl` (default 3600): the token's `se` is time.time() + ttl when the client is made. A
ttl under the SDK's 120 s renewal margin schedules the renewal in the past, so the SDK renews
and reconnects in a tight loop (tried with ttl=0: about 2,200 renewals and 1,000 connections
before register() timed out): an expired token cannot be sent through the SDK in a stable way,
so the tests only check that the lifetime arrives (the emulator logs `se` as sasExpiry).

The SDK's debug log carries every response topic and body it received; the `wire` fixture parses
it, so tests also check what the SDK parses but does not return (retry-after, the error envelope).
"""

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from datetime import datetime

import pytest
from azure.iot.device import X509, ProvisioningDeviceClient, ProxyOptions, exceptions
from azure.iot.device.common.evented_callback import EventedCallback

from conftest import HOST, ID_SCOPE, PROXY_PASSWORD, PROXY_USER, WRONG_PROXY_PASSWORD

pytestmark = pytest.mark.timeout(60)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SDK_POLL_DELAY_S = 2  # the SDK's fixed wait between the register 202 and the first poll


def derive_device_key(registration_id: str, group_key: str) -> str:
    """As the SDK's group-enrollment sample (provision_symmetric_key_group.py) derives it."""
    signed = hmac.HMAC(base64.b64decode(group_key), registration_id.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(signed.digest()).decode("utf-8")


class Devices:
    """Makes SDK clients as a device application would, and shuts each down after the test.

    register() shuts its pipeline down only on `assigned`; after a failure the SDK keeps the
    connection and its reconnect and timeout timers alive, so the test ends them the way the
    SDK's own register() does on success."""

    def __init__(self, emulator, tmp_path):
        self.emulator = emulator
        self.tmp_path = tmp_path
        self.clients = []

    def sym(self, reg_id, key=None, id_scope=ID_SCOPE, **kwargs):
        return self._keep(
            ProvisioningDeviceClient.create_from_symmetric_key(
                provisioning_host=HOST,
                registration_id=reg_id,
                id_scope=id_scope,
                symmetric_key=key or self.emulator.enrollments.individual_keys[reg_id],
                server_verification_cert=self.emulator.ca_pem,
                **kwargs,
            )
        )

    def x509(self, reg_id, cn=None, expired=False, **kwargs):
        cert, key = self.emulator.device_cert(cn or reg_id, self.tmp_path, expired)
        return self._keep(
            ProvisioningDeviceClient.create_from_x509_certificate(
                provisioning_host=HOST,
                registration_id=reg_id,
                id_scope=ID_SCOPE,
                x509=X509(cert_file=cert, key_file=key),
                server_verification_cert=self.emulator.ca_pem,
                **kwargs,
            )
        )

    def _keep(self, client):
        closed = threading.Event()
        client._pipeline.on_disconnected = lambda _reason: closed.set()
        self.clients.append((client, closed))
        return client

    def wait_closed_by_server(self, client):
        """The service closes the connection after a 401. Waiting for the SDK to have seen that
        also keeps the SDK's reconnect timer from starting after the test shut the client down."""
        [closed] = [c for k, c in self.clients if k is client]
        assert closed.wait(timeout=10), "the connection was not closed after the 401"

    def shutdown(self):
        for client, _ in self.clients:
            if client._pipeline._running:
                done = EventedCallback()
                client._pipeline.shutdown(callback=done)
                done.wait_for_completion()


@pytest.fixture
def devices(emulator, tmp_path):
    d = Devices(emulator, tmp_path)
    yield d
    d.shutdown()


def check_assigned(result, *, hub, device_id, substatus="initialAssignment"):
    """Every field a device reads from a successful registration, as the service fills them."""
    assert result.status == "assigned"
    assert result.operation_id
    state = result.registration_state
    assert state.assigned_hub == hub
    assert state.device_id == device_id
    assert state.sub_status == substatus
    assert state.etag
    created = datetime.fromisoformat(state.created_date_time.replace("Z", "+00:00"))
    updated = datetime.fromisoformat(state.last_update_date_time.replace("Z", "+00:00"))
    assert created <= updated


def check_refused_with_401(devices, client, wire):
    """Bad credentials, as the service answers them: CONNACK 0, then 401 with the error envelope
    on the first request, then the connection closed. The SDK reports a ClientError caused by a
    ServiceError naming the status."""
    with pytest.raises(exceptions.ClientError) as err:
        client.register()
    assert type(err.value.__cause__) is exceptions.ServiceError
    assert str(err.value.__cause__) == "register request returned a service error status code 401"
    [refusal] = wire()
    assert refusal.status == 401 and UUID.match(refusal.params["$rid"])
    check_envelope(refusal.body, 401002)
    devices.wait_closed_by_server(client)


def check_envelope(body, error_code):
    """The service's error envelope on 4xx/5xx response topics."""
    assert body["errorCode"] == error_code
    assert body["trackingId"] and body["message"]
    datetime.fromisoformat(body["timestampUtc"].replace("Z", "+00:00"))


def statuses(responses):
    return [r.status for r in responses]


def test_symmetric_key_individual(emulator, devices, wire):
    result = devices.sym("sym-individual").register()

    check_assigned(result, hub="conformance-hub-1.azure-devices.net", device_id="sym-individual-device")
    accepted, assigned = wire()
    assert (accepted.status, assigned.status) == (202, 200)
    assert accepted.body == {"operationId": result.operation_id, "status": "assigning"}
    assert accepted.params["retry-after"] == "1"
    # The SDK's request ids are UUIDs: the emulator must echo them, or the SDK would never match.
    assert UUID.match(accepted.params["$rid"]) and UUID.match(assigned.params["$rid"])
    assert assigned.body["registrationState"]["registrationId"] == "sym-individual"
    # The SDK sent `"payload": null`; without a custom allocation the service returns no payload.
    assert "payload" not in assigned.body["registrationState"]
    [conn] = emulator.connection_log("sym-individual")
    assert conn["transport"] == "mqtts" and conn["enrollment"] == "individual"
    # Both responses PUBACKed, and a clean DISCONNECT once assigned.
    assert conn["packetsIn"] == {"CONNECT": 1, "SUBSCRIBE": 1, "PUBLISH": 2, "PUBACK": 2, "DISCONNECT": 1}


def test_group_derived_key(emulator, devices, wire):
    reg_id = "group-device-0042"
    device_key = derive_device_key(reg_id, emulator.enrollments.group_key)

    result = devices.sym(reg_id, key=device_key).register()

    check_assigned(result, hub="conformance-group-hub.azure-devices.net", device_id=reg_id)
    assert emulator.connection_log(reg_id)[0]["enrollment"] == "group:conformance-group"


def test_group_key_itself_is_not_a_device_key(emulator, devices, wire):
    """A device that signs with the group key instead of its derived key is refused."""
    reg_id = "group-device-0043"
    check_refused_with_401(devices, devices.sym(reg_id, key=emulator.enrollments.group_key), wire)


def test_x509_individual(emulator, devices, wire):
    result = devices.x509("x509-individual").register()

    check_assigned(result, hub="conformance-x509-hub.azure-devices.net", device_id="x509-individual-device")
    [conn] = emulator.connection_log("x509-individual")
    assert conn["enrollment"] == "individual"


def test_x509_group(emulator, devices, wire):
    reg_id = "x509-group-device-7"
    result = devices.x509(reg_id).register()

    check_assigned(result, hub="conformance-x509-group-hub.azure-devices.net", device_id=reg_id)
    assert emulator.connection_log(reg_id)[0]["enrollment"] == "group:conformance-x509-group"


def test_x509_common_name_must_match_registration_id(emulator, devices, wire):
    """A valid device certificate for another device: the service answers 401 after CONNACK 0."""
    check_refused_with_401(devices, devices.x509("x509-cn-mismatch", cn="x509-someone-else"), wire)


def test_expired_device_certificate_gets_401(emulator, devices, wire):
    check_refused_with_401(devices, devices.x509("x509-expired", expired=True), wire)


@pytest.mark.parametrize("attestation", ["symmetric-key", "x509"])
def test_websockets_on_port_443(emulator, devices, wire, attestation):
    if attestation == "x509":
        result = devices.x509("x509-websocket", websockets=True).register()
        check_assigned(result, hub="conformance-x509-hub.azure-devices.net", device_id="x509-websocket")
        reg_id = "x509-websocket"
    else:
        result = devices.sym("sym-websocket", websockets=True).register()
        check_assigned(result, hub="conformance-ws-hub.azure-devices.net", device_id="sym-websocket")
        reg_id = "sym-websocket"
    [conn] = emulator.connection_log(reg_id)
    assert conn["transport"] == "wss"


def test_custom_payload_round_trip(emulator, devices, wire):
    sent = {"modelId": "dtmi:com:example:Thermostat;1", "site": {"floor": 3, "tags": ["a", "b"]}, "ok": True}
    client = devices.sym("sym-payload-echo")
    client.provisioning_payload = sent

    result = client.register()

    check_assigned(result, hub="conformance-hub-1.azure-devices.net", device_id="sym-payload-echo")
    # The SDK re-serialises registrationState.payload as JSON text.
    assert json.loads(result.registration_state.response_payload) == sent


def test_enrollment_payload_is_returned_instead_of_the_device_payload(emulator, devices, wire):
    client = devices.sym("sym-payload-enrollment")
    client.provisioning_payload = {"from": "device"}

    result = client.register()

    assert json.loads(result.registration_state.response_payload) == {"from": "enrollment", "n": [1, 2, 3]}


def test_substatus_is_passed_through(emulator, devices, wire):
    result = devices.sym("sym-reprovisioned").register()
    check_assigned(
        result, hub="conformance-hub-1.azure-devices.net", device_id="sym-reprovisioned", substatus="deviceDataMigrated"
    )


@pytest.mark.parametrize("reg_id, websockets", [("sym-fragmented", False), ("sym-fragmented-ws", True)])
def test_responses_written_byte_by_byte_and_delayed(emulator, devices, wire, reg_id, websockets):
    """`fragment` sends every byte in its own TLS record (and WebSocket frame): the SDK's TLS and
    MQTT stacks must still see the same answers."""
    result = devices.sym(reg_id, websockets=websockets).register()
    check_assigned(result, hub="conformance-hub-1.azure-devices.net", device_id=reg_id)
    assert statuses(wire()) == [202, 200]


def test_polling_honours_retry_after(emulator, devices, wire):
    started = time.monotonic()
    result = devices.sym("sym-slow").register()
    elapsed = time.monotonic() - started

    check_assigned(result, hub="conformance-hub-1.azure-devices.net", device_id="sym-slow")
    responses = wire()
    assert statuses(responses) == [202, 202, 202, 200]
    assert all(r.params["retry-after"] == "1" for r in responses[:3])
    assert {r.body["operationId"] for r in responses} == {result.operation_id}
    # The SDK's own 2 s, then retry-after=1 twice.
    assert elapsed >= SDK_POLL_DELAY_S + 1 + 1


def test_throttling_is_retried_after_retry_after(emulator, devices, wire):
    started = time.monotonic()
    result = devices.sym("sym-throttled").register()
    elapsed = time.monotonic() - started

    check_assigned(result, hub="conformance-hub-1.azure-devices.net", device_id="sym-throttled")
    responses = wire()
    assert statuses(responses) == [429, 429, 202, 200]
    for throttled in responses[:2]:
        assert throttled.params["retry-after"] == "1"
        check_envelope(throttled.body, 429001)
    # Each retry is a new request with a new $rid.
    assert len({r.params["$rid"] for r in responses[:3]}) == 3
    assert elapsed >= 1 + 1 + SDK_POLL_DELAY_S
    [conn] = emulator.connection_log("sym-throttled")
    assert conn["packetsIn"]["PUBLISH"] == 4


def test_server_error_is_retried(emulator, devices, wire):
    result = devices.sym("sym-server-error").register()

    check_assigned(result, hub="conformance-hub-1.azure-devices.net", device_id="sym-server-error")
    responses = wire()
    assert statuses(responses) == [500, 202, 200]
    check_envelope(responses[0].body, 500000)


def test_failed_registration(emulator, devices, wire):
    with pytest.raises(exceptions.ClientError) as err:
        devices.sym("sym-failed").register()

    assert str(err.value) == "Unexpected failure"
    cause = err.value.__cause__
    assert type(cause) is exceptions.ServiceError
    assert str(cause) == "Query Status operation returned a failed registration status with a status code of 200"
    final = wire()[-1]
    assert final.status == 200 and final.body["status"] == "failed"
    state = final.body["registrationState"]
    assert state["status"] == "failed"
    assert state["errorCode"] == 400209
    assert state["errorMessage"] == "Custom allocation failed: no hub."
    assert "assignedHub" not in state


def test_disabled_enrollment(emulator, devices, wire):
    with pytest.raises(exceptions.ClientError) as err:
        devices.sym("sym-disabled").register()

    cause = err.value.__cause__
    assert type(cause) is exceptions.ServiceError
    assert str(cause) == (
        "Query Status Operation encountered an invalid registration status disabled with a status code of 200"
    )
    final = wire()[-1]
    assert final.body["status"] == "disabled"
    assert "assignedHub" not in final.body["registrationState"]


def test_wrong_key_gets_401_after_connack_0(emulator, devices, wire):
    check_refused_with_401(devices, devices.sym("sym-wrong-key", key=base64.b64encode(b"k" * 32).decode()), wire)
    # The SDK reconnects after any dropped connection; the first one is the refused one.
    assert emulator.connection_log("sym-wrong-key")[0]["outcome"] == "unauthorized (401)"


def test_unknown_registration_id_gets_401(emulator, devices, wire):
    """No enrollment and no group whose derived key verifies the signature."""
    check_refused_with_401(devices, devices.sym("never-enrolled-device", key=base64.b64encode(b"u" * 32).decode()), wire)


def test_wrong_key_with_connack_refusal(emulator, devices, wire):
    with pytest.raises(exceptions.CredentialError):
        devices.sym("sym-auth-connack", key=base64.b64encode(b"k" * 32).decode()).register()


def test_unknown_id_scope_is_refused_with_connack_3(emulator, devices, wire):
    with pytest.raises(exceptions.ConnectionFailedError):
        devices.sym("sym-unknown-scope", key=base64.b64encode(b"k" * 32).decode(), id_scope="0ne00BADBAD").register()


def proxy_options(proxy, password=PROXY_PASSWORD):
    """As a device application configures an HTTP proxy for the SDK (paho's proxy_set, PySocks)."""
    if proxy.name != "auth":
        return ProxyOptions(proxy_type="HTTP", proxy_addr="127.0.0.1", proxy_port=proxy.port)
    return ProxyOptions(proxy_type="HTTP", proxy_addr="127.0.0.1", proxy_port=proxy.port,
                        proxy_username=PROXY_USER, proxy_password=password)


@pytest.mark.parametrize("proxy_name", ["auth", "open"])
@pytest.mark.parametrize("transport", ["mqtts", "wss"])
def test_http_connect_proxy(emulator, devices, proxies, wire, transport, proxy_name):
    """Through tinyproxy with HTTP CONNECT: paho opens the tunnel with PySocks, then does TLS (and
    for wss the WebSocket upgrade) inside it, so the emulator sees an ordinary connection."""
    proxy = proxies[proxy_name]
    reg_id = f"sym-proxy-{transport}-{proxy_name}"
    since = proxy.mark()

    result = devices.sym(reg_id, websockets=transport == "wss", proxy_options=proxy_options(proxy)).register()

    check_assigned(result, hub="conformance-hub-1.azure-devices.net", device_id=reg_id)
    assert statuses(wire()) == [202, 200]
    # One tunnel, to the port the SDK dials for this transport, with the host name as given
    # (PySocks lets the proxy resolve it).
    assert proxy.connect_requests(since) == [f"{HOST}:{443 if transport == 'wss' else 8883}"]
    [conn] = emulator.connection_log(reg_id)
    assert conn["transport"] == transport and conn["outcome"] == "assigned"



def check_proxy_refusal(client, http_status):
    """How the SDK reports a proxy that answers CONNECT with an error: register() raises
    ClientError("Unexpected failure") caused by the transport's ProtocolProxyError, caused by
    PySocks' GeneralProxyError wrapping the HTTPError with the proxy's status line. It does not
    retry, and nothing reaches the emulator."""
    with pytest.raises(exceptions.ClientError) as err:
        client.register()
    assert str(err.value) == "Unexpected failure"
    proxy_error = err.value.__cause__
    assert type(proxy_error).__name__ == "ProtocolProxyError"
    socks_error = proxy_error.__cause__
    assert type(socks_error).__name__ == "GeneralProxyError"
    assert type(socks_error.socket_err).__name__ == "HTTPError"
    assert str(socks_error.socket_err).startswith(f"{http_status}:")
    return socks_error


def test_wrong_proxy_password_is_refused_by_the_proxy(emulator, devices, proxies, wire):
    proxy = proxies["auth"]
    since = proxy.mark()
    client = devices.sym("sym-proxy-wrong-password", proxy_options=proxy_options(proxy, WRONG_PROXY_PASSWORD))

    # tinyproxy 1.11 answers a wrong Proxy-Authorization with 401 (not 407); PySocks passes the
    # status line through whatever it is.
    socks_error = check_proxy_refusal(client, 401)

    assert str(socks_error.socket_err) == "401: Unauthorized\n"
    assert WRONG_PROXY_PASSWORD not in str(socks_error)
    assert proxy.connect_requests(since) == [f"{HOST}:8883"]
    assert wire() == []


def test_proxy_allowing_only_port_443(emulator, devices, proxies, wire):
    """A proxy that only tunnels to 443, as many corporate proxies do: MQTT on 8883 is refused
    with 403, the same device over websockets through the same proxy registers."""
    proxy = proxies["443-only"]
    reg_id = "sym-proxy-port-refused"
    since = proxy.mark()

    socks_error = check_proxy_refusal(devices.sym(reg_id, proxy_options=proxy_options(proxy)), 403)
    # PySocks adds a note on 400/403/405 that the proxy may not support CONNECT.
    assert str(socks_error.socket_err).startswith("403: Access violation\n")
    assert wire() == []

    result = devices.sym(reg_id, websockets=True, proxy_options=proxy_options(proxy)).register()

    check_assigned(result, hub="conformance-hub-1.azure-devices.net", device_id=reg_id)
    assert proxy.connect_requests(since, 2) == [f"{HOST}:8883", f"{HOST}:443"]
    # Only the websocket connection reached the emulator.
    [conn] = emulator.connection_log(reg_id)
    assert conn["transport"] == "wss" and conn["outcome"] == "assigned"


@pytest.mark.parametrize("reg_id, ttl", [("sym-ttl-default", None), ("sym-ttl-day", 86400)])
def test_sas_token_lifetime(emulator, devices, wire, reg_id, ttl):
    """sastoken_ttl: the SDK signs `se` = now + ttl (3600 by default) when the client is made.
    The emulator refuses a token whose `se` has passed and logs the `se` it received, so the
    lifetime the device chose is checked on the wire, within the two clock readings around it."""
    kwargs = {} if ttl is None else {"sastoken_ttl": ttl}
    lifetime = 3600 if ttl is None else ttl
    before = int(time.time())

    client = devices.sym(reg_id, **kwargs)
    after = int(time.time())
    result = client.register()

    check_assigned(result, hub="conformance-hub-1.azure-devices.net", device_id=reg_id)
    [conn] = emulator.connection_log(reg_id)
    assert before + lifetime <= conn["sasExpiry"] <= after + lifetime
