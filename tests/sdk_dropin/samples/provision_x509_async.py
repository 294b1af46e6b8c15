"""Provisions a device with an X.509 certificate from an asyncio program.

    PROVISIONING_HOST, PROVISIONING_IDSCOPE, DPS_X509_REGISTRATION_ID, X509_CERT_FILE,
    X509_KEY_FILE, X509_PASS_PHRASE (optional), PROVISIONING_SERVER_VERIFICATION_CERT (optional).
"""
import asyncio
import os

from azure.iot.device import X509
from azure.iot.device.aio import ProvisioningDeviceClient

provisioning_host = os.getenv("PROVISIONING_HOST")
id_scope = os.getenv("PROVISIONING_IDSCOPE")
registration_id = os.getenv("DPS_X509_REGISTRATION_ID")
ca_file = os.getenv("PROVISIONING_SERVER_VERIFICATION_CERT")


async def main():
    x509 = X509(
        cert_file=os.getenv("X509_CERT_FILE"),
        key_file=os.getenv("X509_KEY_FILE"),
        pass_phrase=os.getenv("X509_PASS_PHRASE"),
    )
    options = {}
    if ca_file:
        with open(ca_file) as f:
            options["server_verification_cert"] = f.read()

    provisioning_device_client = ProvisioningDeviceClient.create_from_x509_certificate(
        provisioning_host=provisioning_host,
        registration_id=registration_id,
        id_scope=id_scope,
        x509=x509,
        **options,
    )

    registration_result = await provisioning_device_client.register()

    print("The complete registration result is")
    print(registration_result.registration_state)
    print("status:", registration_result.status)
    print("assigned hub:", registration_result.registration_state.assigned_hub)
    print("device id:", registration_result.registration_state.device_id)


if __name__ == "__main__":
    asyncio.run(main())
