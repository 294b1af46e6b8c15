"""Tries to provision a device whose enrollment the service refuses (disabled, or a wrong key)
and reports the refusal the way a program written for azure-iot-device catches it.

    PROVISIONING_HOST, PROVISIONING_IDSCOPE, PROVISIONING_REGISTRATION_ID,
    PROVISIONING_SYMMETRIC_KEY, PROVISIONING_SERVER_VERIFICATION_CERT (optional).
"""
import os
import sys

from azure.iot.device import ProvisioningDeviceClient
from azure.iot.device.exceptions import ClientError

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

try:
    registration_result = provisioning_device_client.register()
except ClientError as e:
    print("registration refused:", type(e).__name__, e)
    print("status: refused")
    sys.exit(2)

print("status:", registration_result.status)
