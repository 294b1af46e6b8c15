#!/usr/bin/env python3
"""One registration with the Python binding (dps_mqtt) or Microsoft's azure-iot-device, the same
program for both (the binding is a drop-in for the SDK's provisioning client), for tools/bench.py.

usage: bench_client.py dps_mqtt|azure HOST PORT CA_FILE ID_SCOPE REGISTRATION_ID KEY

Prints one JSON object: the time of create + register in milliseconds, the assigned hub, and the
peak heap of the registration: for dps_mqtt the C library's own count (dps_heap_usage), for the
SDK what Python allocated (tracemalloc; OpenSSL's C heap is not in it).
"""

import json
import sys
import time
import tracemalloc


def main():
    impl, host, port, ca_file, scope, reg_id, key = sys.argv[1:8]
    with open(ca_file) as f:
        ca = f.read()
    if impl == "dps_mqtt":
        from dps_mqtt import ProvisioningDeviceClient
        from dps_mqtt import _ffi
        import ctypes

        kwargs = {"port": int(port)}
        _ffi.dps_heap_reset_peak()
    else:
        from azure.iot.device import ProvisioningDeviceClient

        kwargs = {}  # the SDK dials 8883, where bench.py's relay listens
        tracemalloc.start()
    t0 = time.monotonic()
    client = ProvisioningDeviceClient.create_from_symmetric_key(
        provisioning_host=host, registration_id=reg_id, id_scope=scope, symmetric_key=key,
        server_verification_cert=ca, **kwargs)
    result = client.register()
    ms = (time.monotonic() - t0) * 1000
    if impl == "dps_mqtt":
        now, peak = ctypes.c_size_t(), ctypes.c_size_t()
        _ffi.dps_heap_usage(ctypes.byref(now), ctypes.byref(peak))
        heap = peak.value
    else:
        heap = tracemalloc.get_traced_memory()[1]
    if impl == "dps_mqtt":
        client.shutdown()  # the SDK's register() shuts its pipeline down itself once assigned
    print(json.dumps({"registerMs": round(ms, 2),
                      "assignedHub": result.registration_state.assigned_hub,
                      "peakHeapBytes": heap}))


if __name__ == "__main__":
    main()
