"""ProvisioningDeviceClient: azure-iot-device 2.14's `ProvisioningDeviceClient`, on top of
ProvisioningClient, so that a program written for the SDK runs with its imports changed."""

import json
from typing import Any, Callable, List, Optional, Union, cast

from . import _ffi
from ._client import X509, ProvisioningClient, RegistrationResult, _Callbacks
from ._errors import InvalidArgumentError
from .exceptions import ClientError

_RECANCEL_S = 0.1
"""How often `shutdown()` tells a registration on another thread again to stop."""


def _check_cipher(cipher: Union[str, List[str], None]) -> None:
    """azure-iot-device's `cipher`: an OpenSSL cipher list, as text or a list. Only its
    default (none chosen) can be honoured."""
    if cipher is None:
        return
    if isinstance(cipher, list):
        cipher = ":".join(cipher)
    if not isinstance(cipher, str):
        raise TypeError("Invalid type for 'cipher'")
    if cipher:
        raise InvalidArgumentError(
            _ffi.DPS_ERR_INVALID_ARGUMENT,
            f"cipher {cipher!r}: choosing cipher suites is not supported; the library offers "
            "rustls's defaults (TLS 1.3, and TLS 1.2 with ECDHE and AES-GCM or "
            "ChaCha20-Poly1305)")


class ProvisioningDeviceClient(ProvisioningClient):
    """azure-iot-device's synchronous `ProvisioningDeviceClient`: the same constructors,
    keyword arguments, `provisioning_payload` property and `register()`, raising exceptions
    that are also the SDK's (`dps_mqtt.exceptions`).

    A `ProvisioningClient`, so every keyword and method of ProvisioningClient works here too
    (`port=`, `timeout=`, `create_from_group_key`, `save_assignment()`, ...). What it adds:

    - `gateway_hostname=`: connect to this host instead of `provisioning_host` (its TLS
      certificate must name it), as the SDK does; DPS's MQTT user name and SAS token carry no
      host name, so nothing else changes.
    - `cipher=`: accepted when empty (the SDK's default); a chosen cipher list raises
      `InvalidArgumentError`.
    - `sastoken_ttl=` with `create_from_x509_certificate` raises TypeError, as in the SDK.
    - `provisioning_payload` gives back the object that was set (the SDK's property), and
      an object that is not JSON is sent as its `__dict__`, as the SDK sends it.
    - `shutdown()`: cancels a `register()` running on another thread and frees the client;
      `register()` afterwards raises `ClientError`.

    Unlike the SDK, `register()` may be called again after a success (a new attempt); a
    failed registration raises `RegistrationFailedError`, which is a `ClientError` and a
    `ServiceError`, with the service's answer in `registration_result`.
    """

    def __init__(self, provisioning_host: str, registration_id: Optional[str], id_scope: str,
                 credential: Callable[[Any, _Callbacks], None], *,
                 gateway_hostname: Optional[str] = None,
                 cipher: Union[str, List[str], None] = "", **kwargs: Any) -> None:
        _check_cipher(cipher)
        self._sdk_payload: Any = None
        super().__init__(provisioning_host if gateway_hostname is None else gateway_hostname,
                         registration_id, id_scope, credential, **kwargs)

    @classmethod
    def create_from_x509_certificate(cls, provisioning_host: str,
                                     registration_id: Optional[str], id_scope: str, x509: X509,
                                     **kwargs: Any) -> "ProvisioningDeviceClient":
        """A client authenticating with an X.509 certificate, as the SDK's; `registration_id`
        must be the certificate's CN (None: the CN is used). `sastoken_ttl` is refused with a
        TypeError, as the SDK refuses it."""
        if "sastoken_ttl" in kwargs:
            raise TypeError("Unsupported keyword argument 'sastoken_ttl'")
        return cast(ProvisioningDeviceClient, super().create_from_x509_certificate(
            provisioning_host, registration_id, id_scope, x509, **kwargs))

    @property
    def provisioning_payload(self) -> Any:
        """The payload sent with the next registration, as it was set (a dict, a str, a
        number, or an object sent as its `__dict__`)."""
        return self._sdk_payload

    @provisioning_payload.setter
    def provisioning_payload(self, value: Any) -> None:
        self._set_payload_json(
            None if value is None else json.dumps(value, default=lambda o: o.__dict__))
        self._sdk_payload = value

    def register(self) -> RegistrationResult:
        """Registers the device, blocking until it is assigned, refused, or the deadline
        (`timeout=`, default 90 s) passes. Returns the `RegistrationResult` (status
        "assigned"); raises a `ProvisioningError` that is also the SDK's exception
        (`CredentialError`, `ConnectionFailedError`, `ConnectionDroppedError`, `ClientError`,
        `ServiceError`, `OperationTimeout`, `OperationCancelled`). The connection is closed
        before it returns."""
        if self.closed:
            raise ClientError("Client has already been shut down")
        return super().register()

    def shutdown(self) -> None:
        """Ends a `register()` running on another thread (it raises `OperationCancelled`),
        closes the connection and frees the client. Idempotent."""
        # cancel() reaches only a registration already running: one that has taken the lock
        # but not yet started misses it, so it is told again until the lock is free.
        self.cancel()
        while not self._lock.acquire(timeout=_RECANCEL_S):
            self.cancel()
        try:
            self.close()
        finally:
            self._lock.release()

    def __enter__(self) -> "ProvisioningDeviceClient":
        return self
