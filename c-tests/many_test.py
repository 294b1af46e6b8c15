#!/usr/bin/env python3
"""dps_register_many (the one-thread event-loop example) against the real emulator: every
device of a group assigned exactly once, never more in flight than --in-flight, one JSON line
each and the summary; a wrong group key and a server that is not there fail every device with
the cause, and exit 1. Run by CTest; exits non-zero when a check fails."""

import argparse
import json
import socket
import subprocess
import sys
import tempfile

from emulator import ID_SCOPE, Emulator, test_key

GROUP_KEY = test_key("many-group")
HUB = "many-hub.azure-devices.net"
ENROLLMENTS = {
    "idScope": ID_SCOPE,
    "enrollments": [],
    "groups": [{
        "groupId": "many",
        "attestation": {"type": "symmetricKey", "primaryKey": GROUP_KEY},
        "assignedHub": HUB,
        "retryAfter": 0,
    }],
}

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr)


def run(binary, port, ca, *extra, key=GROUP_KEY):
    out = subprocess.run(
        [binary, "--host", "localhost", "--port", str(port), "--ca-file", ca,
         "--id-scope", ID_SCOPE, "--group-key", key, *extra],
        capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    summary = json.loads(out.stderr.strip().splitlines()[-1]) if out.stderr.strip() else {}
    return out.returncode, lines, summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--emulator", required=True)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as work, Emulator(args.emulator, work, ENROLLMENTS) as emu:
        code, lines, summary = run(args.binary, emu.port, emu.ca, "--count", "200",
                                   "--in-flight", "50")
        check(code == 0, f"200 devices: exit {code}")
        ids = sorted(line["registrationId"] for line in lines)
        check(ids == sorted(f"device-{i}" for i in range(200)), "each device reported once")
        check(all(line["result"] == "DPS_OK" and line["assignedHub"] == HUB
                  and line["deviceId"] == line["registrationId"] for line in lines),
              "every device assigned to the group's hub")
        check(summary.get("count") == 200 and summary.get("assigned") == 200
              and summary.get("failed") == 0, f"summary counts: {summary}")
        check(summary.get("peakInFlight") == 50, f"at most 50 in flight: {summary}")
        check(summary.get("peakHeapBytes", 0) > 0 and summary.get("heapPerInFlightBytes", 0) > 0,
              f"summary heap figures: {summary}")

        code, lines, summary = run(args.binary, emu.port, emu.ca, "--count", "5",
                                   "--prefix", "bad-", key=test_key("not-the-group"))
        check(code == 1, f"wrong group key: exit {code}")
        check(len(lines) == 5 and all(line["result"] == "DPS_ERR_AUTH_UNAUTHORIZED"
                                      and line["message"] for line in lines),
              f"wrong group key: every device unauthorized, with a message: {lines}")
        check(summary.get("failed") == 5, f"wrong group key: summary {summary}")

        # A port nobody listens on: connection refused, reported per device with the cause.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        code, lines, _ = run(args.binary, closed, emu.ca, "--count", "3", "--timeout", "2")
        check(code == 1, f"closed port: exit {code}")
        check(len(lines) == 3 and all(line["result"] == "DPS_ERR_TRANSPORT_CONNECT"
                                      and "Connection refused" in line.get("detail", "")
                                      for line in lines),
              f"closed port: every device fails to connect, with the hook's cause: {lines}")

        usage = subprocess.run([args.binary, "--count", "3"], capture_output=True, text=True)
        check(usage.returncode == 2 and "required" in usage.stderr,
              f"missing options: exit {usage.returncode}, {usage.stderr!r}")

    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("dps_register_many: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
