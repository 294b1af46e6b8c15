"""Typed exceptions, one per class of `dps_result` (the C CLI's exit-code classes)."""

from typing import TYPE_CHECKING, Dict, Optional, Type

from . import _ffi
from .exceptions import (ClientError, ConnectionDroppedError, ConnectionFailedError,
                         CredentialError, OperationCancelled, OperationTimeout, ServiceError)

if TYPE_CHECKING:
    from ._client import RegistrationResult


class ProvisioningError(Exception):
    """A registration or a configuration step failed. Each subclass also derives from the
    azure-iot-device exception of the same meaning (`dps_mqtt.exceptions`).

    Attributes:
        result: the library's `dps_result` code (e.g. 203).
        name: its symbolic name (e.g. "DPS_ERR_AUTH_UNAUTHORIZED").
        message: what went wrong, including the service's message when it sent one.
        hint: one line saying what to do about it (`dps_result_hint`), e.g. "check key vs
            group key, the registration id and the device clock". Not part of str(error).
        error_code: the service's `errorCode` (e.g. 401002), or None.
        tracking_id: the service's `trackingId`, or None.
        http_status: the status of the service's last answer (0 when none).
        registration_result: for a registration the service finished as `failed` or
            `disabled`, what it sent back; otherwise None.
    """

    exit_code = 9

    def __init__(self, result: int, message: Optional[str] = None, *,
                 error_code: Optional[int] = None, tracking_id: Optional[str] = None,
                 http_status: int = 0,
                 registration_result: "Optional[RegistrationResult]" = None) -> None:
        self.result = result
        self.name = _ffi.text(_ffi.dps_result_name(result)) or f"DPS_RESULT_{result}"
        self.message = message or _ffi.text(_ffi.dps_result_str(result)) or self.name
        self.hint = _ffi.text(_ffi.dps_result_hint(result))
        self.error_code = error_code
        self.tracking_id = tracking_id
        self.http_status = http_status
        self.registration_result = registration_result
        super().__init__(f"{self.name}: {self.message}")

    @property
    def retryable(self) -> bool:
        """Whether trying again later may succeed (`dps_result_is_retryable`)."""
        return bool(_ffi.dps_result_is_retryable(self.result))


class InvalidArgumentError(ProvisioningError, ValueError):
    """An argument or the configuration is invalid; nothing was sent."""

    exit_code = 2


class AuthenticationError(ProvisioningError, CredentialError):
    """The service refused the credentials (CONNACK refusal or 401)."""

    exit_code = 3


class TlsError(ProvisioningError, ConnectionFailedError):
    """The TLS handshake failed (untrusted, expired or mismatched certificate, alert)."""

    exit_code = 4


class TransportError(ProvisioningError, ConnectionError, ConnectionFailedError):
    """Connecting, sending or receiving failed, or the peer closed the connection."""

    exit_code = 5


class TransportDroppedError(TransportError, ConnectionDroppedError):
    """An open connection was lost (closed by the peer, or a send or receive failed) and the
    library's reconnects did not get it back: both a dropped and a failed connection."""


class ProtocolError(ProvisioningError, ClientError):
    """The server sent something this client does not understand."""

    exit_code = 6


class ProvisioningTimeoutError(ProvisioningError, TimeoutError, OperationTimeout):
    """The registration's deadline passed."""

    exit_code = 7


class RegistrationError(ProvisioningError, ServiceError, ClientError):
    """The service answered the registration with a refusal. A `ServiceError`, and a
    `ClientError` as azure-iot-device's register() reports a service error."""

    exit_code = 8


class RegistrationFailedError(RegistrationError):
    """The service finished the registration with status `failed`."""


class RegistrationDisabledError(RegistrationError):
    """The enrollment is disabled."""


class OperationCancelledError(ProvisioningError, OperationCancelled):
    """`register()` was cancelled: by `ProvisioningClient.cancel()`, or because the
    interpreter is exiting. The connection is closed; `result` is 0 (no library code)."""

    exit_code = 130

    def __init__(self, message: str = "the registration was cancelled") -> None:
        Exception.__init__(self, f"cancelled: {message}")
        self.result = 0
        self.name = "CANCELLED"
        self.message = message
        self.hint = "register() again when wanted"
        self.error_code = None
        self.tracking_id = None
        self.http_status = 0
        self.registration_result = None

    @property
    def retryable(self) -> bool:
        return True


class InternalError(ProvisioningError, ClientError):
    """A bug in the library (an invariant failed or a panic was caught)."""

    exit_code = 9


_BY_CLASS: Dict[int, Type[ProvisioningError]] = {
    _ffi.DPS_CLASS_INVALID: InvalidArgumentError,
    _ffi.DPS_CLASS_AUTH: AuthenticationError,
    _ffi.DPS_CLASS_TLS: TlsError,
    _ffi.DPS_CLASS_TRANSPORT: TransportError,
    _ffi.DPS_CLASS_PROTOCOL: ProtocolError,
    _ffi.DPS_CLASS_TIMEOUT: ProvisioningTimeoutError,
    _ffi.DPS_CLASS_REGISTRATION: RegistrationError,
}

_DROPPED = ("DPS_ERR_TRANSPORT_CLOSED", "DPS_ERR_TRANSPORT_IO")
"""The transport results of a connection that was open and got lost."""

_BY_RESULT: Dict[int, Type[ProvisioningError]] = {
    _ffi.DPS_ERR_REGISTRATION_FAILED: RegistrationFailedError,
    _ffi.DPS_ERR_REGISTRATION_DISABLED: RegistrationDisabledError,
    # Found by name, so that the codes stay defined in the header alone.
    **{code: TransportDroppedError for code in range(1000)
       if _ffi.text(_ffi.dps_result_name(code)) in _DROPPED},
}


def error_class(result: int) -> Type[ProvisioningError]:
    """The exception class for a `dps_result` (classified by `dps_result_class`)."""
    return _BY_RESULT.get(result) or _BY_CLASS.get(_ffi.dps_result_class(result), InternalError)


def check(result: int, what: str) -> None:
    """Raises the typed exception for a failed setter; `what` names the argument."""
    if result != _ffi.DPS_OK:
        detail = _ffi.text(_ffi.dps_result_str(result))
        raise error_class(result)(result, f"{what}: {detail}")
