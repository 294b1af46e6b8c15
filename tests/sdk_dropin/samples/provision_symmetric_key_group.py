"""Provisions two devices of an enrollment group, each with the key derived from the group key
(HMAC-SHA256 of the registration id, as azure-iot-device's group sample derives it).

    PROVISIONING_HOST, PROVISIONING_IDSCOPE, PROVISIONING_DEVICE_ID_1, PROVISIONING_DEVICE_ID_2,
    PROVISIONING_GROUP_SYMMETRIC_KEY, PROVISIONING_SERVER_VERIFICATION_CERT (optional).

Deriving the keys here is for illustration only: a real device is given its derived key, never
the group key.
"""
import base64
import hashlib
import hmac
import os

from azure.iot.device import ProvisioningDeviceClient

provisioning_host = os.getenv("PROVISIONING_HOST")
id_scope = os.getenv("PROVISIONING_IDSCOPE")
device_ids = [os.getenv("PROVISIONING_DEVICE_ID_1"), os.getenv("PROVISIONING_DEVICE_ID_2")]
group_symmetric_key = os.getenv("PROVISIONING_GROUP_SYMMETRIC_KEY")
ca_file = os.getenv("PROVISIONING_SERVER_VERIFICATION_CERT")


def derive_device_key(device_id, group_key):
    """base64(HMAC-SHA256(base64decode(group key), utf-8 registration id))."""
    digest = hmac.new(base64.b64decode(group_key), device_id.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("utf-8")


def register_device(registration_id):
    options = {}
    if ca_file:
        with open(ca_file) as f:
            options["server_verification_cert"] = f.read()
    client = ProvisioningDeviceClient.create_from_symmetric_key(
        provisioning_host=provisioning_host,
        registration_id=registration_id,
        id_scope=id_scope,
        symmetric_key=derive_device_key(registration_id, group_symmetric_key),
        **options,
    )
    return client.register()


results = {device_id: register_device(device_id) for device_id in device_ids}

for device_id, registration_result in results.items():
    print(registration_result)
    print("status:", registration_result.status)
    print("assigned hub:", registration_result.registration_state.assigned_hub)
    print("device id:", registration_result.registration_state.device_id)
