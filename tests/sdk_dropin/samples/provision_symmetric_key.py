"""Provisions one device with its own symmetric key (an individual enrollment), then prints the
result. Settings come from the environment, as in azure-iot-device's samples:

    PROVISIONING_HOST, PROVISIONING_IDSCOPE, PROVISIONING_REGISTRATION_ID,
    PROVISIONING_SYMMETRIC_KEY, and PROVISIONING_SERVER_VERIFICATION_CERT (a PEM file to trust
    instead of the public roots, e.g. the emulator's ca.pem; optional).
"""
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

registration_result = provisioning_device_client.register()
print(registration_result)

print("status:", registration_result.status)
if registration_result.status == "assigned":
    print("assigned hub:", registration_result.registration_state.assigned_hub)
    print("device id:", registration_result.registration_state.device_id)
    print("sub status:", registration_result.registration_state.sub_status)
else:
    print("Can not connect the device: it was not assigned")

