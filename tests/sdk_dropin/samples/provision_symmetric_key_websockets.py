"""Provisions a device with its symmetric key over MQTT over WebSocket (port 443), for networks
that only let HTTPS out.

    PROVISIONING_HOST, PROVISIONING_IDSCOPE, PROVISIONING_REGISTRATION_ID,
    PROVISIONING_SYMMETRIC_KEY, PROVISIONING_SERVER_VERIFICATION_CERT (optional).
"""
import os

from azure.iot.device import ProvisioningDeviceClient

provisioning_host = os.getenv("PROVISIONING_HOST")
id_scope = os.getenv("PROVISIONING_IDSCOPE")
registration_id = os.getenv("PROVISIONING_REGISTRATION_ID")
symmetric_key = os.getenv("PROVISIONING_SYMMETRIC_KEY")
ca_file = os.getenv("PROVISIONING_SERVER_VERIFICATION_CERT")

options = {"websockets": True}
if ca_file:
    with open(ca_file) as f:
        options["server_verification_cert"] = f.read()

provisioning_device_client = ProvisioningDeviceClient.create_from_symmetric_key(
    provisioning_host=provisioning_host,
    registration_id=registration_id,
    id_scope=id_scope,
    symmetric_key=symmetric_key,
    **options,
)

registration_result = provisioning_device_client.register()
print(registration_result)

print("status:", registration_result.status)
print("assigned hub:", registration_result.registration_state.assigned_hub)
print("device id:", registration_result.registration_state.device_id)

