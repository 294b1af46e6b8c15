"""asyncio clients, as azure-iot-device's `azure.iot.device.aio`.

    from dps_mqtt.aio import ProvisioningDeviceClient

    client = ProvisioningDeviceClient.create_from_symmetric_key(
        provisioning_host=host, registration_id=rid, id_scope=scope, symmetric_key=key)
    result = await client.register()

`await register()` runs the blocking registration on a thread of its own (one per call, not
the loop's default executor, so any number of clients register at once), and the event loop
keeps running meanwhile. Cancelling the awaiting task cancels the registration: the
connection is closed before the task ends with `CancelledError`.
"""

import asyncio
import threading
from typing import Any, Callable, List, Optional, Tuple, Union, cast

from ._client import X509, RegistrationResult
from ._device_client import ProvisioningDeviceClient as _Sync
from .exceptions import ClientError

__all__ = ["ProvisioningDeviceClient"]

_Outcome = Tuple[Optional[RegistrationResult], Optional[BaseException]]

_RECANCEL_S = 0.1
"""How often a cancelled register() is told again to stop: cancel() only reaches a
registration that has started, and the thread may not have started it yet."""


def _settle(done: "asyncio.Future[_Outcome]", outcome: _Outcome) -> None:
    if not done.done():
        done.set_result(outcome)


class ProvisioningDeviceClient:
    """azure-iot-device's asynchronous `ProvisioningDeviceClient`: the constructors,
    keyword arguments and `provisioning_payload` of `dps_mqtt.ProvisioningDeviceClient`, with
    `register()` and `shutdown()` as coroutines. Errors are those of the synchronous client.
    """

    def __init__(self, client: _Sync) -> None:
        """Use the `create_from_*` class methods."""
        self._client = client
        self._registering = False

    @classmethod
    def create_from_symmetric_key(cls, provisioning_host: str, registration_id: str,
                                  id_scope: str, symmetric_key: str,
                                  **kwargs: Any) -> "ProvisioningDeviceClient":
        """As `dps_mqtt.ProvisioningDeviceClient.create_from_symmetric_key`."""
        return cls(cast(_Sync, _Sync.create_from_symmetric_key(
            provisioning_host, registration_id, id_scope, symmetric_key, **kwargs)))

    @classmethod
    def create_from_x509_certificate(cls, provisioning_host: str,
                                     registration_id: Optional[str], id_scope: str, x509: X509,
                                     **kwargs: Any) -> "ProvisioningDeviceClient":
        """As `dps_mqtt.ProvisioningDeviceClient.create_from_x509_certificate`."""
        return cls(_Sync.create_from_x509_certificate(
            provisioning_host, registration_id, id_scope, x509, **kwargs))

    @classmethod
    def create_from_group_key(cls, provisioning_host: str, registration_id: str, id_scope: str,
                              group_key: str, **kwargs: Any) -> "ProvisioningDeviceClient":
        """As `dps_mqtt.ProvisioningClient.create_from_group_key` (not in the SDK)."""
        return cls(cast(_Sync, _Sync.create_from_group_key(
            provisioning_host, registration_id, id_scope, group_key, **kwargs)))

    @classmethod
    def create_from_signing_callback(cls, provisioning_host: str, registration_id: str,
                                     id_scope: str, sign: Callable[[bytes], bytes],
                                     **kwargs: Any) -> "ProvisioningDeviceClient":
        """As `dps_mqtt.ProvisioningClient.create_from_signing_callback` (not in the SDK);
        `sign` is called on the registration's thread, not on the event loop."""
        return cls(cast(_Sync, _Sync.create_from_signing_callback(
            provisioning_host, registration_id, id_scope, sign, **kwargs)))

    @property
    def provisioning_payload(self) -> Any:
        """The payload sent with the next registration, as it was set."""
        return self._client.provisioning_payload

    @provisioning_payload.setter
    def provisioning_payload(self, value: Union[dict, str, int, List[Any], None]) -> None:
        self._client.provisioning_payload = value

    @property
    def sync_client(self) -> _Sync:
        """The synchronous client underneath (for `save_assignment()` and the like)."""
        return self._client

    async def register(self) -> RegistrationResult:
        """Registers the device without blocking the event loop: the result, or the
        synchronous client's exception. Cancelling the task closes the connection, then
        raises `CancelledError`. One registration at a time per client: a second call while
        one runs raises `ClientError`."""
        if self._registering:
            # Cancelling this call would stop the other one, which is the one running.
            raise ClientError("a registration is already in progress on this client")
        self._registering = True
        try:
            return await self._register()
        finally:
            self._registering = False

    async def _register(self) -> RegistrationResult:
        loop = asyncio.get_running_loop()
        done: "asyncio.Future[_Outcome]" = loop.create_future()
        client = self._client

        def run() -> None:
            outcome: _Outcome
            try:
                outcome = (client.register(), None)
            except BaseException as e:  # delivered to the awaiting task, not lost here
                outcome = (None, e)
            try:
                loop.call_soon_threadsafe(_settle, done, outcome)
            except RuntimeError:
                pass  # the loop closed: nobody awaits the outcome any more

        threading.Thread(target=run, name="dps_mqtt.aio register", daemon=True).start()
        try:
            result, error = await asyncio.shield(done)
        except asyncio.CancelledError:
            await self._cancel_and_wait(done)
            raise
        if error is not None:
            raise error
        assert result is not None
        return result

    async def _cancel_and_wait(self, done: "asyncio.Future[_Outcome]") -> None:
        """Stops the registration and waits until its thread has closed the connection;
        further cancellations of the task meanwhile are absorbed (it ends cancelled anyway)."""
        while not done.done():
            self._client.cancel()
            try:
                await asyncio.wait_for(asyncio.shield(done), _RECANCEL_S)
            except asyncio.TimeoutError:
                pass
            except asyncio.CancelledError:
                pass

    async def shutdown(self) -> None:
        """Cancels a running `register()` and frees the client, without blocking the loop
        while a registration thread finishes. Idempotent."""
        await asyncio.get_running_loop().run_in_executor(None, self._client.shutdown)

    async def __aenter__(self) -> "ProvisioningDeviceClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown()
