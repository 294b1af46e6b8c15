"""Provisions two devices concurrently on one asyncio event loop, each with its own symmetric
key, while a ticker task shows that the loop keeps running.

    PROVISIONING_HOST, PROVISIONING_IDSCOPE, PROVISIONING_REGISTRATION_ID,
    PROVISIONING_SYMMETRIC_KEY, PROVISIONING_REGISTRATION_ID_2, PROVISIONING_SYMMETRIC_KEY_2,
    PROVISIONING_SERVER_VERIFICATION_CERT (optional).
"""
import asyncio
import os

from azure.iot.device.aio import ProvisioningDeviceClient

provisioning_host = os.getenv("PROVISIONING_HOST")
id_scope = os.getenv("PROVISIONING_IDSCOPE")
devices = [
    (os.getenv("PROVISIONING_REGISTRATION_ID"), os.getenv("PROVISIONING_SYMMETRIC_KEY")),
    (os.getenv("PROVISIONING_REGISTRATION_ID_2"), os.getenv("PROVISIONING_SYMMETRIC_KEY_2")),
]
ca_file = os.getenv("PROVISIONING_SERVER_VERIFICATION_CERT")


async def provision(registration_id, symmetric_key):
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
    return await provisioning_device_client.register()


async def main():
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.ensure_future(ticker())
    results = await asyncio.gather(*(provision(r, k) for r, k in devices))
    ticking.cancel()

    for registration_result in results:
        print("The complete registration result is")
        print(registration_result.registration_state)
        print("status:", registration_result.status)
        print("assigned hub:", registration_result.registration_state.assigned_hub)
        print("device id:", registration_result.registration_state.device_id)
    print("loop ran while registering:", ticks > 0)


if __name__ == "__main__":
    asyncio.run(main())
