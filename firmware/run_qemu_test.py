#!/usr/bin/env python3
"""Runs the firmware images under QEMU (mps2-an386) with the bridge on their UART, and checks
what they print. Exits non-zero when a check fails.

    run_qemu_test.py --images DIR [--emulator BIN] [--report FILE] [--only modem|provision]

- modem: modem-selftest.elf against a TLS echo server (the emulator's server certificate,
  on loopback) through the bridge: the UART protocol alone, no library.
- provision: provision.elf against the real emulator through the bridge; asserts the
  assigned hub and device id it prints, and writes the figures it prints (arena size and
  high-water mark, the library's peak heap, stack) to --report as JSON. Then boots it again
  with an arena 1 KiB smaller than the mark (semihosting command line `arena=N`) and expects
  DPS_ERR_OUT_OF_MEMORY, with no fault and no panic. Last, provision-malloc.elf (the
  library's default allocator, newlib's malloc, and no panic hook) must provision too.

Every wait is on a socket or a process's output, bounded by a timeout."""

import argparse
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "c-tests"))
from emulator import Emulator  # noqa: E402

QEMU_TIMEOUT_S = 120
# The addresses the images dial; the bridge's --route sends them to the servers started here.
DPS_ADDRESS = "localhost:8883"
ECHO_ADDRESSES = ("localhost:7", "wrong-name.test:7")
REFUSED_ADDRESS = "localhost:9"
HUB = "fw-hub.azure-devices.net"


def device_config():
    """The credentials compiled into the image, from firmware/device_config.h (one source)."""
    with open(os.path.join(HERE, "device_config.h")) as f:
        text = f.read()
    values = dict(re.findall(r'#define\s+(FW_\w+)\s+"([^"]*)"', text))
    return values


class Bridge:
    def __init__(self, ca, routes):
        argv = [sys.executable, os.path.join(HERE, "bridge.py"), "--listen", "127.0.0.1:0",
                "--ca", ca, "--once"]
        for asked, dial in routes.items():
            argv += ["--route", f"{asked}={dial}"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("bridge: listening "):
            self.stop()
            raise RuntimeError(f"the bridge did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=10)  # --once: it exits when QEMU hangs up
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


class EchoServer:
    """TLS echo on loopback; a connection that receives `bye\\n` echoes it and closes."""

    def __init__(self, cert, key):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.echo, args=(raw,), daemon=True).start()

    def echo(self, raw):
        try:
            with self.context.wrap_socket(raw, server_side=True) as tls:
                tls.settimeout(30)
                tail = b""  # the bridge forwards what the UART gave it: any split
                while True:
                    data = tls.recv(4096)
                    if not data:
                        return
                    tls.sendall(data)
                    tail = (tail + data)[-4:]
                    if tail == b"bye\n":
                        tls.unwrap()
                        return
        except (ssl.SSLError, OSError):
            pass  # the wrong-name and abandoned opens end the handshake abruptly

    def stop(self):
        self.sock.close()


def run_qemu(qemu, image, bridge_port, cmdline=""):
    semihosting = "enable=on,target=native" + (f",arg={cmdline}" if cmdline else "")
    argv = [qemu, "-M", "mps2-an386", "-nographic", "-monitor", "none",
            "-semihosting-config", semihosting,
            "-serial", f"tcp:127.0.0.1:{bridge_port}", "-kernel", image]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=QEMU_TIMEOUT_S)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def modem_test(args, work):
    with Emulator(args.emulator, os.path.join(work, "modem"), {"idScope": "0ne00000000",
                                                              "enrollments": []}) as emu:
        certs = emu.cert_dir
        echo = EchoServer(os.path.join(certs, "server.pem"), os.path.join(certs, "server-key.pem"))
        routes = {a: f"127.0.0.1:{echo.port}" for a in ECHO_ADDRESSES}
        routes[REFUSED_ADDRESS] = f"127.0.0.1:{closed_port()}"
        try:
            bridge = Bridge(emu.ca, routes)
            try:
                rc, out, err, elapsed = run_qemu(args.qemu, os.path.join(args.images,
                                                 "modem-selftest.elf"), bridge.port)
            finally:
                bridge.stop()
        finally:
            echo.stop()
    sys.stdout.write(out)
    ok = rc == 0 and "modem selftest: all passed" in out
    print(f"run_qemu_test: modem selftest {'passed' if ok else 'FAILED'} "
          f"(exit {rc}, {elapsed:.2f} s)")
    if not ok:
        sys.stderr.write(err)
    return ok


def provision_enrollments():
    cfg = device_config()
    return cfg, {
        "idScope": cfg["FW_ID_SCOPE"],
        "enrollments": [{
            "registrationId": cfg["FW_REGISTRATION_ID"],
            "attestation": {"type": "symmetricKey", "primaryKey": cfg["FW_SYMMETRIC_KEY"]},
            "assignedHub": HUB,
            "retryAfter": 0,
            "assignAfterPolls": 1,
        }],
    }


def provision_run(args, emu, cmdline="", image="provision.elf"):
    """One boot of a provisioning image: its exit status, output, the `firmware: name: value`
    lines, and elapsed seconds."""
    bridge = Bridge(emu.ca, {DPS_ADDRESS: f"127.0.0.1:{emu.port}"})
    try:
        rc, out, err, elapsed = run_qemu(args.qemu, os.path.join(args.images, image),
                                         bridge.port, cmdline)
    finally:
        bridge.stop()
    sys.stdout.write(out)
    printed = dict(re.findall(r"^firmware: ([a-z _-]+): (.*)$", out, re.M))
    return rc, out, err, printed, elapsed


def figures_of(printed):
    figures = {}
    for name, value in printed.items():
        m = re.fullmatch(r"(\d+) (bytes|ms)", value)
        if m:
            suffix = "" if m.group(2) == "bytes" else "_ms"
            figures[name.replace(" ", "_") + suffix] = int(m.group(1))
    return figures


def assignment_problems(rc, printed, reg_id):
    problems = []
    if rc != 0:
        problems.append(f"exit status {rc}")
    if printed.get("assigned hub") != HUB:
        problems.append(f"assigned hub {printed.get('assigned hub')!r}, expected {HUB!r}")
    if printed.get("device id") != reg_id:
        problems.append(f"device id {printed.get('device id')!r}, expected {reg_id!r}")
    return problems


def provision_test(args, work):
    cfg, enrollments = provision_enrollments()
    reg_id = cfg["FW_REGISTRATION_ID"]
    with Emulator(args.emulator, os.path.join(work, "provision"), enrollments) as emu:
        rc, out, err, printed, elapsed = provision_run(args, emu)
        figures = figures_of(printed)
        problems = assignment_problems(rc, printed, reg_id)
        for needed in ("arena_size", "arena_high_water", "library_peak_heap", "heap_reserve"):
            if needed not in figures:
                problems.append(f"no '{needed.replace('_', ' ')}' line")
        # The library keeps its reserve while the allocator is installed; more is a leak.
        leaked = figures.get("arena_in_use_after_free", 0) - figures.get("heap_reserve", 0)
        if leaked != 0:
            problems.append(f"{leaked} arena bytes beyond the reserve still in use after "
                            "dps_client_free")
        figures["qemu_run_s"] = round(elapsed, 2)
        print(f"run_qemu_test: provisioning "
              f"{'FAILED: ' + '; '.join(problems) if problems else 'passed'} ({elapsed:.2f} s)")
        if problems:
            sys.stderr.write(err)
            return False

        if args.report:
            with open(args.report, "w") as f:
                json.dump(figures, f, indent=1, sort_keys=True)

        # The library's defaults (newlib's malloc, no panic hook) link and provision too.
        rc, out, err, printed, elapsed = provision_run(args, emu, image="provision-malloc.elf")
        problems = assignment_problems(rc, printed, reg_id)
        print(f"run_qemu_test: provisioning with malloc "
              f"{'FAILED: ' + '; '.join(problems) if problems else 'passed'} ({elapsed:.2f} s)")
        ok = not problems
        if problems:
            sys.stderr.write(err)

        # The arena image with an arena 1 KiB smaller than the mark: a clean out-of-memory
        # result, no fault, no panic.
        small = figures["arena_high_water"] - 1024
        rc, out, err, printed, elapsed = provision_run(args, emu, f"arena={small}")
        problems = []
        if rc != 1:
            problems.append(f"exit status {rc}, expected 1")
        if printed.get("result") != "DPS_ERR_OUT_OF_MEMORY":
            problems.append(f"result {printed.get('result')!r}, expected DPS_ERR_OUT_OF_MEMORY")
        if figures_of(printed).get("arena_size") != small:
            problems.append(f"arena size {printed.get('arena size')!r}, expected {small} bytes")
        if "library panic" in printed or "firmware: fault" in out:
            problems.append("it panicked or faulted")
        print(f"run_qemu_test: arena of {small} bytes (1 KiB under the mark) "
              f"{'FAILED: ' + '; '.join(problems) if problems else 'ends cleanly out of memory'}"
              f" ({elapsed:.2f} s)")
        if problems:
            sys.stderr.write(err)
            ok = False
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True, help="the directory of the built .elf images")
    ap.add_argument("--emulator", default=os.environ.get("DPS_EMULATOR"),
                    help="dps-emulator binary (default: $DPS_EMULATOR)")
    ap.add_argument("--qemu", default=shutil.which("qemu-system-arm") or "qemu-system-arm")
    ap.add_argument("--report", help="write the provisioning run's figures here (JSON)")
    ap.add_argument("--only", choices=("modem", "provision"))
    args = ap.parse_args()
    if not args.emulator:
        ap.error("--emulator or DPS_EMULATOR is required")
    work = tempfile.mkdtemp(prefix="dps-fw-test-")
    try:
        ok = True
        if args.only in (None, "modem"):
            ok = modem_test(args, work) and ok
        if args.only in (None, "provision"):
            ok = provision_test(args, work) and ok
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
