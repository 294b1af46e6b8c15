#!/usr/bin/env bash
# Builds everything (the Rust library and emulator, the C examples through CMake), starts the
# bundled DPS emulator on a free port, provisions demo-device-1 with the C CLI, and prints the
# assigned hub and device id. Exits with the CLI's exit code.
#
# On a fresh Debian machine with Rust, run as root: missing build tools (cmake, a C compiler,
# python3) are installed with apt-get first.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/ensure-deps.sh

echo "==> building (cargo, then cmake)" >&2
cargo build --release --quiet -p dps-mqtt -p dps-emulator  # the same invocation as CMake's
# The workspace target directory, so the cargo build above is reused rather than repeated.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDPS_MQTT_CARGO_TARGET_DIR="$PWD/target" >/dev/null
cmake --build build -j2 >/dev/null

work=$(mktemp -d)
emulator_pid=
cleanup() {
    if [ -n "$emulator_pid" ]; then
        kill "$emulator_pid" 2>/dev/null || true
        wait "$emulator_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "==> starting the emulator" >&2
mkfifo "$work/stdout"
target/release/dps-emulator --port 0 --cert-dir "$work/certs" \
    --enrollments emulator/enrollments.example.json >"$work/stdout" &
emulator_pid=$!
exec 3<"$work/stdout"
port= ca=
# Its stdout announces the CA, the real port (it was started on port 0), then "ready".
while read -r line <&3; do
    case "$line" in
        "dps-emulator: CA certificate: "*) ca=${line#dps-emulator: CA certificate: } ;;
        "dps-emulator: listening mqtts "*) port=${line##*:} ;;
        "dps-emulator: ready") break ;;
    esac
done
if [ -z "$port" ] || [ -z "$ca" ]; then
    echo "demo: the emulator did not start" >&2
    exit 1
fi

key=$(python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
print(next(e["attestation"]["primaryKey"] for e in doc["enrollments"]
           if e["registrationId"] == "demo-device-1"))' emulator/enrollments.example.json)

echo "==> provisioning demo-device-1 at localhost:$port" >&2
rc=0
result=$(build/c-examples/dps_register --id-scope 0ne00000001 --registration-id demo-device-1 \
    --symmetric-key "$key" --host localhost --port "$port" --ca-file "$ca" --timeout 30) || rc=$?
echo "$result"
if [ "$rc" -eq 0 ]; then
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print("assigned hub:", r["assignedHub"])
print("device id:   ", r["deviceId"])' "$result"
else
    echo "demo: dps_register failed with exit code $rc" >&2
fi
exit "$rc"
