#!/usr/bin/env bash
# Builds everything (the Rust library and emulator, the C examples through CMake), starts the
# bundled DPS emulator on a free port, provisions demo-device-1 with the C CLI, and prints the
# assigned hub and device id. Exits with the CLI's exit code.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/ensure-deps.sh

echo "==> building (cargo + cmake)" >&2
cargo build --release --quiet -p dps-mqtt -p dps-emulator
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 >/dev/null

work=$(mktemp -d)
emulator_pid=
cleanup() {
    [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null && wait "$emulator_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

echo "==> starting the emulator" >&2
mkfifo "$work/out"
target/release/dps-emulator --port 0 --cert-dir "$work/certs" \
    --enrollments emulator/enrollments.example.json >"$work/out" &
emulator_pid=$!
exec 3<"$work/out"
port= ca=
while read -r line <&3; do
    case "$line" in
        "dps-emulator: listening mqtts "*) port=${line##*:} ;;
        "dps-emulator: CA certificate: "*) ca=${line#dps-emulator: CA certificate: } ;;
        "dps-emulator: ready") break ;;
    esac
done
[ -n "$port" ] && [ -n "$ca" ] || { echo "emulator did not start" >&2; exit 1; }

key=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(next(e["attestation"]["primaryKey"] for e in d["enrollments"] if e["registrationId"]=="demo-device-1"))' emulator/enrollments.example.json)

echo "==> provisioning demo-device-1 against localhost:$port" >&2
set +e
result=$(build/c-examples/dps_register --id-scope 0ne00000001 --registration-id demo-device-1 \
    --symmetric-key "$key" --host localhost --port "$port" --ca-file "$ca" --timeout 30)
rc=$?
set -e
echo "$result"
if [ "$rc" -eq 0 ]; then
    python3 - "$result" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"assigned hub: {r['assignedHub']}")
print(f"device id:    {r['deviceId']}")
PY
fi
exit "$rc"
