"""dps_mqtt: provision devices with the Azure IoT Device Provisioning Service over MQTT,
through the libdps_mqtt C library (shipped inside this package).

A drop-in for azure-iot-device 2.14's provisioning client: `azure.iot.device` becomes
`dps_mqtt` (`ProvisioningDeviceClient`, `X509`, `ProxyOptions`, `RegistrationResult`),
`azure.iot.device.aio` becomes `dps_mqtt.aio` and `azure.iot.device.exceptions` becomes
`dps_mqtt.exceptions`. `ProvisioningClient` is the same client with this package's own
additions only.

    from dps_mqtt import ProvisioningClient

    with ProvisioningClient.create_from_symmetric_key(
            provisioning_host="global.azure-devices-provisioning.net",
            registration_id="my-device", id_scope="0ne00000001", symmetric_key=key) as client:
        result = client.register()
        print(result.assigned_hub, result.device_id)

Log lines go to the `dps_mqtt` logger (never keys or tokens).
"""

from ._client import (X509, Assignment, HubOutcome, ProvisioningClient, ProxyOptions,
                      RegistrationResult, RegistrationState, Status, default_client_version,
                      derive_device_key, library_version, should_provision)
from ._device_client import ProvisioningDeviceClient
from . import exceptions
from ._errors import (AuthenticationError, InternalError, InvalidArgumentError,
                      OperationCancelledError, ProtocolError, ProvisioningError, ProvisioningTimeoutError,
                      RegistrationDisabledError, RegistrationError, RegistrationFailedError,
                      TlsError, TransportDroppedError, TransportError)
from ._transport import SocketTransport, Transport

__version__ = "0.1.0"

derive_group_key = derive_device_key
"""The name of the C function (`dps_derive_group_key`)."""

__all__ = [
    "Assignment", "AuthenticationError", "default_client_version", "derive_device_key",
    "derive_group_key", "exceptions", "HubOutcome",
    "InternalError", "InvalidArgumentError", "library_version", "OperationCancelledError",
    "ProtocolError",
    "ProvisioningClient", "ProvisioningDeviceClient", "ProvisioningError",
    "ProvisioningTimeoutError", "ProxyOptions",
    "RegistrationDisabledError", "RegistrationError", "RegistrationFailedError",
    "RegistrationResult", "RegistrationState", "should_provision", "SocketTransport", "Status",
    "TlsError", "Transport", "TransportDroppedError", "TransportError", "X509",
]
