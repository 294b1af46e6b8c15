"""A transport written in Python, plugged in through the C transport hooks."""

from typing import Optional

import pytest
from conftest import HUB, ID_SCOPE, test_key

import dps_mqtt
from dps_mqtt import ProvisioningClient, SocketTransport


def client_for(emulator, transport, reg_id: str = "py-ok", **kwargs) -> ProvisioningClient:
    return ProvisioningClient.create_from_symmetric_key(
        "localhost", reg_id, ID_SCOPE, test_key(reg_id),
        **emulator.kwargs(transport=transport, **kwargs))


def test_registration_over_a_python_socket(emulator) -> None:
    transport = SocketTransport()
    with client_for(emulator, transport) as client:
        result = client.register()
    assert (result.assigned_hub, result.device_id) == (HUB, "py-ok")
    assert transport.connects == 1
    assert transport.bytes_sent > 500  # a TLS handshake and the MQTT flight went through it
    assert transport.bytes_received > 500
    assert transport.sock is None  # the library closed it


def test_polling_and_errors_over_a_python_socket(emulator) -> None:
    with client_for(emulator, SocketTransport(), "py-polls") as client:
        assert client.register().status == "assigned"
    with client_for(emulator, SocketTransport(), "py-disabled") as client:
        with pytest.raises(dps_mqtt.RegistrationDisabledError):
            client.register()


class Refusing(SocketTransport):
    def connect(self, host: str, port: int) -> None:
        raise ConnectionRefusedError(111, "refused by the test")


def test_an_oserror_is_a_transport_failure_and_the_cause(emulator) -> None:
    # Refused connects are retried until the deadline, which then reports the refusal.
    with client_for(emulator, Refusing(), timeout=1.5) as client:
        with pytest.raises(dps_mqtt.TransportError) as e:
            client.register()
    assert isinstance(e.value.__cause__, ConnectionRefusedError)
    message = str(e.value)
    assert f"localhost:{emulator.port}, " in message, message
    assert " attempts in " in message, message
    assert message.endswith("connect hook returned -1: refused by the test"), message


class Flaky(SocketTransport):
    """Raises a bug-like exception from its first receive only."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = True

    def recv_into(self, buffer: memoryview) -> Optional[int]:
        if self.armed:
            self.armed = False
            raise KeyError("bug in the transport")
        return super().recv_into(buffer)


def test_an_exception_in_a_hook_ends_register_and_the_next_attempt_is_clean(emulator) -> None:
    transport = Flaky()
    with client_for(emulator, transport) as client:
        with pytest.raises(KeyError, match="bug in the transport"):
            client.register()
        assert transport.connects == 1  # ended at once: no reconnect after the exception
        assert transport.sock is None  # and the connection was closed
        assert client.register().assigned_hub == HUB


class RaisesOnClose(SocketTransport):
    def close(self) -> None:
        super().close()
        raise Boom("from close")


class Boom(Exception):
    pass


def test_an_exception_in_the_close_hook_is_reraised(emulator) -> None:
    with client_for(emulator, RaisesOnClose()) as client:
        with pytest.raises(Boom, match="from close"):
            client.register()
