"""Status callbacks, logging, and exceptions raised inside callbacks (never unwinding into C)."""

import gc
import logging

import pytest
from conftest import ID_SCOPE, test_key

import dps_mqtt
from dps_mqtt import ProvisioningClient, Status


def client_for(emulator, reg_id: str = "py-ok", **kwargs) -> ProvisioningClient:
    return ProvisioningClient.create_from_symmetric_key(
        "localhost", reg_id, ID_SCOPE, test_key(reg_id), **emulator.kwargs(**kwargs))


def test_status_callback_sees_the_progress_in_order(emulator) -> None:
    seen = []
    with client_for(emulator, "py-polls", on_status=seen.append) as client:
        client.register()
    assert all(isinstance(s, Status) for s in seen)
    order = [Status.CONNECTING, Status.REGISTERING, Status.ASSIGNING, Status.ASSIGNED]
    positions = [seen.index(s) for s in order]
    assert positions == sorted(positions), seen
    assert seen[-1] == Status.ASSIGNED


def test_callback_objects_outlive_the_callers_references(emulator) -> None:
    seen = []
    client = client_for(emulator, on_status=lambda s: seen.append(s))
    gc.collect()  # the lambda has no other owner: the client must keep it (and its thunk)
    with client:
        client.register()
    assert Status.ASSIGNED in seen


def test_log_lines_go_to_the_dps_mqtt_logger_without_secrets(emulator, caplog) -> None:
    key = test_key("py-ok")
    with caplog.at_level(logging.DEBUG, logger="dps_mqtt"), client_for(emulator) as client:
        client.register()
    records = [r for r in caplog.records if r.name == "dps_mqtt"]
    assert records, "no log lines"
    assert {r.levelno for r in records} <= {logging.DEBUG, logging.INFO, logging.WARNING,
                                           logging.ERROR}
    text = "\n".join(r.getMessage() for r in records)
    for secret in (key, key[:16], "SharedAccessSignature", "sig="):
        assert secret not in text


class Boom(Exception):
    pass


def test_exception_in_status_callback_is_reraised_from_register(emulator) -> None:
    calls = []
    armed = [True]

    def on_status(status: Status) -> None:
        calls.append(status)
        if status == Status.CONNECTING and armed[0]:
            armed[0] = False
            raise Boom("from the status callback")

    with client_for(emulator, on_status=on_status) as client:
        with pytest.raises(Boom, match="from the status callback"):
            client.register()
        # The exception ended the attempt after the library step that reported CONNECTING
        # (which may have got further), and the next attempt is clean.
        calls.clear()
        on_status_ok = client.register()
    assert on_status_ok.status == "assigned"


def test_exception_in_a_log_handler_is_reraised_from_register(emulator) -> None:
    class Exploding(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise Boom("from a log handler")

    handler = Exploding(level=logging.DEBUG)
    handler.handleError = lambda record: (_ for _ in ()).throw(Boom("from a log handler"))
    log = logging.getLogger("dps_mqtt")
    old_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        with client_for(emulator) as client, pytest.raises(Boom):
            client.register()
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)


def test_register_from_inside_a_callback_is_refused(emulator) -> None:
    holder = {}

    def on_status(status: Status) -> None:
        if status == Status.CONNECTING:
            holder["client"].register()

    with client_for(emulator, on_status=on_status) as client:
        holder["client"] = client
        with pytest.raises(dps_mqtt.InvalidArgumentError, match="inside a callback"):
            client.register()


def test_close_from_inside_a_callback_is_refused(emulator) -> None:
    holder = {}

    def on_status(status: Status) -> None:
        if status == Status.CONNECTING:
            holder["client"].close()

    with client_for(emulator, on_status=on_status) as client:
        holder["client"] = client
        with pytest.raises(RuntimeError, match="inside a callback"):
            client.register()
    assert client.closed
