"""Provisions a device with its symmetric key and sends a custom payload (for a custom
allocation policy); prints the payload the service returned.

    PROVISIONING_HOST, PROVISIONING_IDSCOPE, PROVISIONING_REGISTRATION_ID,
    PROVISIONING_SYMMETRIC_KEY, PROVISIONING_SERVER_VERIFICATION_CERT (optional).
"""
import json
import os

from azure.iot.device import ProvisioningDeviceClient

provisioning_host = os.getenv("PROVISIONING_HOST")
id_scope = os.getenv("PROVISIONING_IDSCOPE")
registration_id = os.getenv("PROVISIONING_REGISTRATION_ID")
symmetric_key = os.getenv("PROVISIONING_SYMMETRIC_KEY")
ca_file = os.getenv("PROVISIONING_SERVER_VERIFICATION_CERT")

options = {}
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

provisioning_device_client.provisioning_payload = {
    "fruit": {"type": "Apple", "name": "McIntosh", "sweet": True},
    "readings": [1, 2.5, None],
}
registration_result = provisioning_device_client.register()
print(registration_result)

print("status:", registration_result.status)
print("assigned hub:", registration_result.registration_state.assigned_hub)
print("device id:", registration_result.registration_state.device_id)
# response_payload is the returned payload as JSON text.
payload = json.loads(registration_result.registration_state.response_payload)
print("payload:", json.dumps(payload, sort_keys=True))

