#!/usr/bin/env python3
"""Provisions one porting example against the real emulator, through that stack's stand-in,
and checks what it prints: the assigned hub and device id, and the error names that the
stack's own failure paths must end in. Run by CTest; exits non-zero when a check fails.

    porting_test.py --emulator BIN --stack lwip|freertos_tcp|at_modem --example BIN
                    [--bridge firmware/bridge.py]

The AT-modem example talks to the QEMU firmware's modem bridge (the example's UART is a TCP
connection to it); the other two dial the emulator through their stack's stand-in.
"""

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

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


@contextlib.contextmanager
def modem_bridge(script, ca, routes=(), extra=()):
    """The modem stand-in: the bridge, verifying servers against `ca`; yields its address."""
    argv = [sys.executable, script, "--listen", "127.0.0.1:0", "--ca", ca, *extra]
    for route in routes:
        argv += ["--route", route]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        if not line.startswith("bridge: listening "):
            raise RuntimeError(f"the modem bridge printed {line!r}, not its address")
        yield line[len("bridge: listening "):]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


class Checks:
    def __init__(self, example):
        self.example, self.failed, self.passed = example, 0, 0
        self.serial = []  # --serial HOST:PORT for the AT-modem example, which comes first

    def run(self, name, args, rc, lines, unix_time=None, timeout=120):
        """Runs the example; `unix_time` is the wall clock its stand-in reports (SNTP's answer,
        the board's RTC) instead of the host's."""
        env = dict(os.environ)
        if unix_time is not None:
            env["DPS_STANDIN_UNIX_TIME"] = str(unix_time)
        proc = subprocess.run([self.example, *self.serial, *args], capture_output=True,
                              text=True, timeout=timeout, env=env)
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
            # The figures the examples report (heap, stack), for docs/porting.md.
            for line in out:
                if line.startswith(("library heap:", "task stack")):
                    print(f"     {line}")


def common_cases(checks, emu, device, key, stack, target_host="localhost"):
    """Assigned, wrong key, nothing listening: through the stack's success and failure paths."""
    target = ["--host", target_host, "--port", str(emu.port), "--ca-file", emu.ca]
    checks.run("assigned", target + device + key, 0,
               [f"assigned hub: {stack}-hub.azure-devices.net", f"device id: {stack}-device-7"])
    # DPS answers a wrong key with CONNACK 0, a 401 and a hang-up: the stack's recv must
    # deliver the 401 before it reports the close.
    checks.run("wrong key", target + device + ["--symmetric-key", test_key("wrong")], 1,
               ["error: DPS_ERR_AUTH_UNAUTHORIZED"])
    # The stack's connect failure (RST to the SYN) must surface as a transport error, once
    # the deadline ends the reconnects (a short one: every refused connect is retried).
    with refused_port() as s:
        refused = ["--host", "127.0.0.1", "--port", str(s.getsockname()[1]), "--ca-file", emu.ca,
                   "--timeout-ms", "3000"]
        checks.run("nothing listening", refused + device + key, 1,
                   ["error: DPS_ERR_TRANSPORT_CONNECT"])


HOUR = 3600
YEAR = 365 * 24 * HOUR


def wrong_clock_cases(checks, emu, device, key, stack):
    """What a wrong wall clock does with the library's TLS: the server certificate is checked
    against it first, then the SAS token's expiry (clock + 1 h) is checked by the service."""
    target = ["--host", "localhost", "--port", str(emu.port), "--ca-file", emu.ca]
    now = int(time.time())
    if stack == "lwip":
        checks.run("SNTP 2 h behind: the SAS token arrives expired", target + device + key, 1,
                   ["error: DPS_ERR_AUTH_UNAUTHORIZED"], unix_time=now - 2 * HOUR)
        checks.run("SNTP 5 years ahead: the certificate looks expired", target + device + key,
                   1, ["error: DPS_ERR_TLS_CERT_EXPIRED"], unix_time=now + 5 * YEAR)
    else:
        checks.run("RTC never set (0): no certificate check without a time",
                   target + device + key, 1, ["error: DPS_ERR_TLS_HANDSHAKE"], unix_time=0)
        checks.run("RTC reset to 2000: the certificate is not valid yet", target + device + key,
                   1, ["error: DPS_ERR_TLS_CERT_EXPIRED"], unix_time=946684800)


def at_modem_cases(args, emu, device, key, results):
    """The same cases through the modem, plus the modem's own TLS failures, which the hooks
    must report as negated DPS_ERR_TLS_* codes (no reconnect)."""
    if not args.bridge or not os.path.exists(args.bridge):
        raise SystemExit(f"the modem bridge {args.bridge!r} does not exist")
    wrong_name = f"wrong-name.example:{emu.port}=127.0.0.1:{emu.port}"
    with modem_bridge(args.bridge, emu.ca, [wrong_name]) as serial:
        checks = Checks(args.example)
        checks.serial = ["--serial", serial]
        results.append(checks)
        common_cases(checks, emu, device, key, "at_modem")
        checks.run("certificate for another name",
                   ["--host", "wrong-name.example", "--port", str(emu.port)] + device + key, 1,
                   ["error: DPS_ERR_TLS_CERT_NAME_MISMATCH"])
    # A modem whose trust store lacks the emulator's CA (it trusts the device CA instead).
    with modem_bridge(args.bridge, os.path.join(emu.cert_dir, "device-ca.pem")) as serial:
        checks = Checks(args.example)
        checks.serial = ["--serial", serial]
        results.append(checks)
        checks.run("untrusted server certificate",
                   ["--host", "localhost", "--port", str(emu.port)] + device + key, 1,
                   ["error: DPS_ERR_TLS_CERT_UNTRUSTED"])
    # Under offload the modem checks the certificate by its own clock; the library's clock,
    # from the modem's network time, only makes the SAS token.
    behind = ["--unix-time", str(int(time.time()) - 2 * HOUR)]
    with modem_bridge(args.bridge, emu.ca, extra=behind) as serial:
        checks = Checks(args.example)
        checks.serial = ["--serial", serial]
        results.append(checks)
        checks.run("network time 2 h behind: the SAS token arrives expired",
                   ["--host", "localhost", "--port", str(emu.port)] + device + key, 1,
                   ["error: DPS_ERR_AUTH_UNAUTHORIZED"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emulator", required=True)
    ap.add_argument("--stack", required=True, choices=["lwip", "freertos_tcp", "at_modem"])
    ap.add_argument("--example", required=True)
    ap.add_argument("--bridge", help="firmware/bridge.py, the modem stand-in (at_modem)")
    args = ap.parse_args()
    stack = args.stack
    work = tempfile.mkdtemp(prefix=f"dps-porting-{stack}-")
    results = []
    try:
        with Emulator(args.emulator, work, enrollments(stack)) as emu:
            device = ["--id-scope", ID_SCOPE, "--registration-id", f"porting-{stack}"]
            key = ["--symmetric-key", test_key(f"porting-{stack}")]
            if stack == "at_modem":
                at_modem_cases(args, emu, device, key, results)
            else:
                checks = Checks(args.example)
                results.append(checks)
                common_cases(checks, emu, device, key, stack)
                wrong_clock_cases(checks, emu, device, key, stack)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    passed = sum(c.passed for c in results)
    failed = sum(c.failed for c in results)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
