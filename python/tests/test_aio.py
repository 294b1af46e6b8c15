"""`dps_mqtt.aio.ProvisioningDeviceClient` (azure-iot-device's `azure.iot.device.aio`) against
the emulator: the event loop keeps running during register(), cancelling the task closes the
connection, and many clients register at once on one loop."""

import asyncio
import socket
import threading

import pytest
from conftest import GROUP_HUB, HUB, ID_SCOPE, X509_HUB, test_key

import dps_mqtt
from dps_mqtt import X509, exceptions
from dps_mqtt.aio import ProvisioningDeviceClient

GUARD_S = 30
"""A bound on waits that must end on their own (a hang fails the test instead of the run)."""


def create(emulator, registration_id: str, key: str = "", **kwargs) -> ProvisioningDeviceClient:
    args = dict(port=emulator.port, server_verification_cert=emulator.ca_pem)
    args.update(kwargs)
    return ProvisioningDeviceClient.create_from_symmetric_key(
        provisioning_host="localhost", registration_id=registration_id, id_scope=ID_SCOPE,
        symmetric_key=key or test_key(registration_id), **args)


def test_register_does_not_block_the_loop(emulator) -> None:
    async def main() -> int:
        ticks = 0
        registering = True

        async def ticker() -> None:
            nonlocal ticks
            while registering:
                ticks += 1
                await asyncio.sleep(0)
        client = create(emulator, "py-polls")
        task = asyncio.ensure_future(ticker())
        result = await client.register()
        registering = False
        counted = ticks  # what ran while register() was awaited
        await task
        await client.shutdown()
        assert result.registration_state.assigned_hub == HUB
        return counted
    # A register() that blocked the loop would return before the ticker's first turn.
    assert asyncio.run(main()) > 0


def test_x509_and_payload(emulator) -> None:
    async def main() -> None:
        client = ProvisioningDeviceClient.create_from_x509_certificate(
            provisioning_host="localhost", registration_id="py-x509", id_scope=ID_SCOPE,
            x509=X509(emulator.x509_cert, emulator.x509_key),
            port=emulator.port, server_verification_cert=emulator.ca_pem)
        client.provisioning_payload = {"a": 1}
        assert client.provisioning_payload == {"a": 1}
        result = await client.register()
        assert (result.registration_state.assigned_hub,
                result.registration_state.device_id) == (X509_HUB, "py-x509")
        await client.shutdown()
    asyncio.run(main())


def test_errors_are_raised_in_the_task(emulator) -> None:
    async def main() -> None:
        with pytest.raises(exceptions.CredentialError) as e:
            await create(emulator, "py-ok", test_key("wrong")).register()
        assert e.value.error_code == 401002
        with pytest.raises(exceptions.ClientError):
            await create(emulator, "py-failed").register()
    asyncio.run(main())


async def accept_silently(listener: socket.socket) -> socket.socket:
    conn, _ = await asyncio.get_running_loop().sock_accept(listener)
    conn.setblocking(False)
    return conn


async def read_until_closed(conn: socket.socket) -> None:
    """Returns once the peer closed the connection (what it sent first is discarded)."""
    loop = asyncio.get_running_loop()
    while await loop.sock_recv(conn, 4096):
        pass


def test_cancelling_the_task_closes_the_connection() -> None:
    async def main() -> None:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            # Accepts and never answers: the client waits in its TLS handshake.
            client = ProvisioningDeviceClient.create_from_symmetric_key(
                "127.0.0.1", "py-ok", ID_SCOPE, test_key("py-ok"),
                port=listener.getsockname()[1], timeout=GUARD_S * 2)
            task = asyncio.ensure_future(client.register())
            conn = await asyncio.wait_for(accept_silently(listener), GUARD_S)
            with conn:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await asyncio.wait_for(task, GUARD_S)
                # The task ended after the connection was closed: EOF is already there.
                await asyncio.wait_for(read_until_closed(conn), GUARD_S)
            await client.shutdown()
    asyncio.run(main())


def test_cancelled_at_once_and_used_again(emulator) -> None:
    async def main() -> None:
        client = create(emulator, "py-ok")
        task = asyncio.ensure_future(client.register())
        await asyncio.sleep(0)  # the thread is started, its register() may not be yet
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, GUARD_S)
        result = await client.register()
        assert result.registration_state.device_id == "py-ok"
        await client.shutdown()
    asyncio.run(main())


def test_cancelled_before_the_thread_began_against_a_silent_server() -> None:
    async def main() -> None:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)  # accepted by the kernel, never answered
            client = ProvisioningDeviceClient.create_from_symmetric_key(
                "127.0.0.1", "py-ok", ID_SCOPE, test_key("py-ok"),
                port=listener.getsockname()[1], timeout=GUARD_S * 2)
            task = asyncio.ensure_future(client.register())
            await asyncio.sleep(0)
            task.cancel()
            # A cancellation that missed the registration would leave it to its deadline.
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, GUARD_S)
            await client.shutdown()
    asyncio.run(main())


def test_cancelled_while_the_service_is_assigning(emulator) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        assigning = asyncio.Event()

        def on_status(status: dps_mqtt.Status) -> None:
            if status == dps_mqtt.Status.ASSIGNING:
                loop.call_soon_threadsafe(assigning.set)
        client = create(emulator, "py-slow", on_status=on_status, timeout=GUARD_S * 2)
        task = asyncio.ensure_future(client.register())
        await asyncio.wait_for(assigning.wait(), GUARD_S)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, GUARD_S)
        await client.shutdown()
    asyncio.run(main())


def test_twenty_clients_at_once_on_one_loop(emulator) -> None:
    count = 20
    # Every registration waits here until all are connecting: they can only all get there
    # if they run at the same time (a small thread pool would leave some queued, and break
    # the barrier at its timeout).
    all_connecting = threading.Barrier(count, timeout=GUARD_S)
    tripped = threading.Event()  # a reconnect later on must not wait for nineteen others

    def on_status(status: dps_mqtt.Status) -> None:
        if status == dps_mqtt.Status.CONNECTING and not tripped.is_set():
            all_connecting.wait()
            tripped.set()

    async def main() -> list:
        group_key = test_key("py-group")
        clients = [create(emulator, f"py-aio-{i}",
                          dps_mqtt.derive_device_key(group_key, f"py-aio-{i}"),
                          on_status=on_status) for i in range(count)]
        results = await asyncio.gather(*(c.register() for c in clients))
        await asyncio.gather(*(c.shutdown() for c in clients))
        return results
    results = asyncio.run(main())
    assert [(r.status, r.registration_state.assigned_hub, r.registration_state.device_id)
            for r in results] == [("assigned", GROUP_HUB, f"py-aio-{i}") for i in range(count)]


def test_register_after_shutdown_is_a_client_error(emulator) -> None:
    async def main() -> None:
        async with create(emulator, "py-ok") as client:
            pass
        with pytest.raises(exceptions.ClientError, match="shut down"):
            await client.register()
    asyncio.run(main())


def test_one_registration_at_a_time_per_client(emulator) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        assigning = asyncio.Event()

        def on_status(status: dps_mqtt.Status) -> None:
            if status == dps_mqtt.Status.ASSIGNING:
                loop.call_soon_threadsafe(assigning.set)
        client = create(emulator, "py-slow", on_status=on_status, timeout=GUARD_S * 2)
        first = asyncio.ensure_future(client.register())
        await asyncio.wait_for(assigning.wait(), GUARD_S)
        with pytest.raises(exceptions.ClientError, match="in progress"):
            await client.register()
        assert not first.done()  # the refused call did not disturb the running one
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(first, GUARD_S)
        await client.shutdown()
    asyncio.run(main())
