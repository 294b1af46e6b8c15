"""Owned handles: close() is idempotent, `with` closes, the finalizer frees what was dropped."""

import gc
import threading
import weakref

import pytest
from conftest import ID_SCOPE, test_key

from dps_mqtt import ProvisioningClient, SocketTransport, Status


def make(emulator, **kwargs) -> ProvisioningClient:
    return ProvisioningClient.create_from_symmetric_key(
        "localhost", "py-ok", ID_SCOPE, test_key("py-ok"), **emulator.kwargs(**kwargs))


def test_close_is_idempotent_and_register_after_close_raises(emulator) -> None:
    client = make(emulator)
    client.register()
    client.close()
    client.close()
    assert client.closed
    with pytest.raises(ValueError, match="closed"):
        client.register()


def test_with_closes(emulator) -> None:
    with make(emulator) as client:
        assert not client.closed
    assert client.closed


def test_the_finalizer_frees_a_dropped_client_and_its_callbacks(emulator) -> None:
    client = make(emulator, on_status=lambda s: None, transport=SocketTransport())
    client.register()
    client_finalizer = client._client_finalizer
    config_finalizer = client._config_finalizer
    callbacks = weakref.ref(client._callbacks)
    assert client_finalizer.alive and config_finalizer.alive
    gone = weakref.ref(client)
    del client
    gc.collect()
    assert gone() is None, "the callbacks keep the client alive (a reference cycle)"
    assert not client_finalizer.alive and not config_finalizer.alive
    assert callbacks() is None


def test_callbacks_live_while_a_handle_can_call_them(emulator) -> None:
    seen = []
    client = make(emulator, on_status=seen.append)
    callbacks = weakref.ref(client._callbacks)
    client.register()
    client.close()
    assert Status.ASSIGNED in seen
    del client
    gc.collect()
    assert callbacks() is None


def test_clients_on_several_threads_at_once(emulator) -> None:
    # ctypes releases the GIL inside the C calls; each client's callbacks run on its own
    # thread, with a Python transport on half of them. One device per thread, as the service
    # keeps one live operation per device.
    results: dict = {}
    errors: list = []

    def run(i: int) -> None:
        try:
            seen: list = []
            transport = SocketTransport() if i % 2 else None
            device = f"py-thread-{i}"
            with ProvisioningClient.create_from_symmetric_key(
                    "localhost", device, ID_SCOPE, test_key(device),
                    **emulator.kwargs(on_status=seen.append, transport=transport)) as client:
                results[i] = (client.register().device_id, Status.ASSIGNED in seen)
        except BaseException as e:  # reported below, on the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == {i: (f"py-thread-{i}", True) for i in range(6)}
