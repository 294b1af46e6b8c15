"""The exception names of azure-iot-device 2.14's `azure.iot.device.exceptions`, with its
hierarchy, so that code written against the SDK catches this package's errors unchanged.

Every error this package raises is a `ProvisioningError` (see `dps_mqtt`) that also derives
from the SDK name with the same meaning:

- `AuthenticationError` is a `CredentialError`;
- `TlsError` and `TransportError` are `ConnectionFailedError`s; a `TransportError` for a
  connection that was lost mid-session and could not be re-established
  (`DPS_ERR_TRANSPORT_CLOSED`, `DPS_ERR_TRANSPORT_IO`) is also a `ConnectionDroppedError`;
- `ProtocolError` and `InternalError` are `ClientError`s (the SDK's "Error in the
  provisioning client" and "Unexpected failure");
- `RegistrationError` (the service answered failed, disabled or refused the request) is a
  `ServiceError` and, since the SDK wraps its ServiceError in a ClientError when it leaves
  `register()`, also a `ClientError`;
- `ProvisioningTimeoutError` is an `OperationTimeout`;
- `OperationCancelledError` (`cancel()`) is an `OperationCancelled`;
- `InvalidArgumentError` is a `ValueError`, as the SDK's argument checks raise.

`NoConnectionError` exists for code that names it; a provisioning client never raises it
(the SDK's provisioning client does not either).
"""


class OperationCancelled(Exception):
    """An operation was cancelled."""


class OperationTimeout(Exception):
    """An operation timed out."""


class ClientError(Exception):
    """Generic error for a client."""


class ConnectionFailedError(ClientError):
    """Failed to establish a connection."""


class ConnectionDroppedError(ClientError):
    """Lost connection while executing operation."""


class NoConnectionError(ClientError):
    """Operation could not be completed because no connection has been established."""


class CredentialError(ClientError):
    """Could not connect client using given credentials."""


class ServiceError(Exception):
    """Error received from an Azure IoT service."""


__all__ = [
    "ClientError", "ConnectionDroppedError", "ConnectionFailedError", "CredentialError",
    "NoConnectionError", "OperationCancelled", "OperationTimeout", "ServiceError",
]
