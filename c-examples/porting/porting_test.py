#!/usr/bin/env python3
"""Provisions one porting example against the real emulator, through that stack's stand-in,
and checks what it prints: the assigned hub and device id, and the error names that the
stack's own failure paths must end in. Run by CTest; exits non-zero when a check fails.

    porting_test.py --emulator BIN --stack lwip|freertos_tcp|at_modem --example BIN [--modem CMD]
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "c-tests"))
from emulator import ID_SCOPE, Emulator, test_key  # noqa: E402


def enrollments(stack):
    """One enrollment per stack; the answers differ from the request (device id, hub) so that a
    wrong mapping shows, each response byte is written separately (partial reads through the
    stack), and one poll is answered 202 first."""
    return {
        "idScope": ID_SCOPE,
        "enrollments": [{
            "registrationId": f"porting-{stack}",
            "attestation": {"type": "symmetricKey", "primaryKey": test_key(f"porting-{stack}")},
            "assignedHub": f"{stack}-hub.azure-devices.net",
            "deviceId": f"{stack}-device-7",
            "retryAfter": 0,
            "assignAfterPolls": 1,
            "fragment": True,
        }],
    }


def refused_port():
    """A loopback port with nothing listening: bound, never listened on, so connects are refused
    for as long as the socket stays open."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


class Checks:
    def __init__(self, example, prefix):
        self.example, self.prefix, self.failed, self.passed = example, prefix, 0, 0

    def run(self, name, args, rc, lines, timeout=120):
        proc = subprocess.run(self.prefix + [self.example, *args], capture_output=True, text=True,
                              timeout=timeout)
        out = proc.stdout.splitlines()
        problems = []
        if proc.returncode != rc:
            problems.append(f"exit {proc.returncode}, expected {rc}")
        problems += [f"no line {line!r}" for line in lines if line not in out]
        if problems:
            self.failed += 1
            print(f"FAIL {name}: {'; '.join(problems)}\n--- stdout\n{proc.stdout}"
                  f"--- stderr\n{proc.stderr}")
        else:
            self.passed += 1
            print(f"ok   {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emulator", required=True)
    ap.add_argument("--stack", required=True, choices=["lwip", "freertos_tcp", "at_modem"])
    ap.add_argument("--example", required=True)
    args = ap.parse_args()
    stack = args.stack
    work = tempfile.mkdtemp(prefix=f"dps-porting-{stack}-")
    try:
        with Emulator(args.emulator, work, enrollments(stack)) as emu:
            checks = Checks(args.example, [])
            device = ["--id-scope", ID_SCOPE, "--registration-id", f"porting-{stack}"]
            target = ["--host", "localhost", "--port", str(emu.port), "--ca-file", emu.ca]
            checks.run("assigned", target + device + ["--symmetric-key", test_key(f"porting-{stack}")],
                       0, [f"assigned hub: {stack}-hub.azure-devices.net",
                           f"device id: {stack}-device-7"])
            # DPS answers a wrong key with CONNACK 0, a 401 and a hang-up: the stack's recv must
            # deliver the 401 before it reports the close.
            checks.run("wrong key", target + device + ["--symmetric-key", test_key("wrong")],
                       1, ["error: DPS_ERR_AUTH_UNAUTHORIZED"])
            # The stack's connect failure (RST to the SYN) must surface as a transport error.
            with refused_port() as s:
                refused = ["--host", "127.0.0.1", "--port", str(s.getsockname()[1]),
                           "--ca-file", emu.ca]
                checks.run("nothing listening", refused + device + ["--symmetric-key", test_key("x")],
                           1, ["error: DPS_ERR_TRANSPORT_CONNECT"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 and checks.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
