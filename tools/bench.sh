#!/usr/bin/env bash
# One table, one run: this library's C CLI and Python binding against Microsoft's
# azure-iot-device 2.14 on the same emulator (round trips, wall at 0 ms and at 50 ms one-way
# added latency, bytes, CPU, peak RSS, library heap, callgrind instructions, stripped size),
# and the many-devices run of the event-loop example (c-examples/dps_register_many.c).
# A report, never a test. Builds what it needs; the SDK comes from the pinned virtual
# environment of the SDK suite (tools/sdk-venv.sh). Extra arguments go to tools/bench.py
# (e.g. --runs 9, --many-count 1000, --json results.json).
#
# The SDK only dials port 8883, so the relay listens there: the run happens in a private
# network namespace when the kernel allows one (root), otherwise 8883 must be free.
#
#   tools/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

tools/ensure-deps.sh
if [ ! -x /usr/bin/time ]; then  # GNU time: the peak RSS of each client (tools/bench.py)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
. tools/sdk-venv.sh
. tools/c-report.sh
build_c_report handle_heap
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DDPS_MQTT_CARGO_TARGET_DIR="$PWD/target" \
    >/dev/null
cmake --build build-bench -j2 --target dps_register dps_register_many >/dev/null

sdk_site=$("$py" -c 'import azure.iot.device, paho, os; print(os.path.dirname(os.path.dirname(azure.iot.device.__file__)) + " " + os.path.dirname(paho.__file__))')
site_args=()
for d in $sdk_site; do site_args+=(--sdk-site "$d"); done

run_in_private_netns "$py" tools/bench.py --emulator target/release/dps-emulator \
    --cli build-bench/c-examples/dps_register --many build-bench/c-examples/dps_register_many \
    --heap "$c_report_out/handle_heap" --library target/release/libdps_mqtt.so --python "$py" \
    "${site_args[@]}" "$@"
