#!/usr/bin/env python3
"""The dps_register CLI's deadline and failure messages over real loopback sockets: nothing
listening (retried until --timeout, then exit 5 naming the address, the attempt count and
errno's text), a listener that never completes the handshake, a DNS server that never answers
(in a private mount namespace whose resolv.conf names it: needs root, as CI has), and an
untrusted server certificate (the message says how to trust it). Each run ends within
--timeout + 1 s. Run by CTest; exits non-zero when a check fails, never skips."""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from emulator import ID_SCOPE, Emulator, test_key

SLACK = 1.0
SILENT_DNS = "127.0.0.77"
UNRESOLVABLE = "dps-deadline.example"


class Checks:
    def __init__(self, cli):
        self.cli = cli
        self.failed = 0

    def run(self, host, port, timeout, *extra, wrapper=()):
        cmd = [*wrapper, self.cli, "--id-scope", ID_SCOPE, "--registration-id", "cli-deadline",
               "--symmetric-key", test_key("cli-deadline"), "--host", host, "--port",
               str(port), "--timeout", str(timeout), *extra]
        start = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60)
        elapsed = time.monotonic() - start
        try:
            out = json.loads(p.stdout)
        except ValueError:
            out = {}
        return p.returncode, out, p.stderr, elapsed

    def check(self, name, result, code, timeout, message, to_the_deadline=False):
        rc, out, err, elapsed = result
        problems = []
        if rc != code:
            problems.append(f"exit {rc}, want {code}")
        if to_the_deadline and elapsed < timeout:
            problems.append(f"gave up after {elapsed:.2f} s, before --timeout {timeout}")
        if elapsed > timeout + SLACK:
            problems.append(f"took {elapsed:.2f} s, over --timeout {timeout} + {SLACK} s")
        text = out.get("message", "")
        if not re.fullmatch(message, text):
            problems.append(f"message {text!r} does not match {message!r}")
        if problems:
            self.failed += 1
            print(f"FAIL {name}: {'; '.join(problems)}\n  stdout: {out!r}\n  stderr: {err[-2000:]}")
        else:
            print(f"ok   {name} ({elapsed:.2f} s): {text}")


def blackhole():
    """A listener whose accept queue is full: the kernel drops further SYNs, so a connect to it
    neither succeeds nor fails. Returns the sockets to keep open."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    queued = []
    while True:
        s = socket.socket()
        s.settimeout(0.3)
        try:
            s.connect(listener.getsockname())
        except socket.timeout:
            s.close()
            return listener, queued
        queued.append(s)
        if len(queued) > 1000:
            raise RuntimeError("the accept queue never filled")


def silent_dns(workdir):
    """A UDP DNS server on SILENT_DNS:53 that never answers, and a resolv.conf naming it.
    Returns (resolv.conf path, query counter, stop function)."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((SILENT_DNS, 53))
    except OSError as e:
        raise SystemExit(f"FAIL: a silent DNS server needs {SILENT_DNS}:53, which takes root "
                         f"(CI runs as root): {e}")
    sock.settimeout(0.1)
    queries = [0]
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                sock.recvfrom(512)
                queries[0] += 1
            except socket.timeout:
                pass

    thread = threading.Thread(target=serve)
    thread.start()
    resolv = os.path.join(workdir, "resolv.conf")
    with open(resolv, "w") as f:
        # glibc's defaults (5 s per try, 2 tries) would take 10 s for each name.
        f.write(f"nameserver {SILENT_DNS}\noptions timeout:5 attempts:2\n")

    def finish():
        stop.set()
        thread.join()
        sock.close()

    return resolv, queries, finish


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--emulator", required=True)
    args = ap.parse_args()
    for tool in ("unshare", "mount"):
        if shutil.which(tool) is None:
            raise SystemExit(f"FAIL: {tool} (util-linux) is needed for the DNS case")
    c = Checks(args.cli)

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
    port = closed.getsockname()[1]
    # Long enough for the old cap (5 connects, about 12 s with the default back-off) to show.
    c.check("nothing listening: retried until the deadline, errno's text kept",
            c.run("127.0.0.1", port, 14), 5, 14,
            rf"could not connect to the server: 127\.0\.0\.1:{port}, \d+ attempts in \d+ ms: "
            r"connection failed before the server answered: transport hook returned -1: "
            r"Connection refused", to_the_deadline=True)
    closed.close()

    listener, queued = blackhole()
    port = listener.getsockname()[1]
    c.check("a listener that never completes the handshake",
            c.run("127.0.0.1", port, 2), 5, 2,
            rf"could not connect to the server: 127\.0\.0\.1:{port}, 1 attempt in \d+ ms: "
            r"no answer from the server")
    for s in queued:
        s.close()
    listener.close()

    with tempfile.TemporaryDirectory() as workdir:
        resolv, queries, finish = silent_dns(workdir)
        try:
            namespace = ("unshare", "--mount", "--", "sh", "-c",
                         'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolv)
            c.check("a DNS server that never answers",
                    c.run(UNRESOLVABLE, 8883, 2, wrapper=namespace), 5, 2,
                    rf"could not connect to the server: {re.escape(UNRESOLVABLE)}:8883, "
                    r"1 attempt in \d+ ms: connect hook returned -1: cannot resolve "
                    rf"{re.escape(UNRESOLVABLE)}: no answer from the name server within "
                    r"\d+ ms")
        finally:
            finish()
        if queries[0] == 0:
            c.failed += 1
            print("FAIL the resolver never asked the silent DNS server")

        enrollments = {"idScope": ID_SCOPE, "enrollments": [{
            "registrationId": "cli-deadline",
            "attestation": {"type": "symmetricKey", "primaryKey": test_key("cli-deadline")},
            "assignedHub": "cli-hub.azure-devices.net"}]}
        emu = Emulator(args.emulator, os.path.join(workdir, "emu"), enrollments)
        try:
            c.check("an untrusted server certificate says how to trust it",
                    c.run("localhost", emu.port, 10), 4, 10,
                    r"the server's certificate is not trusted: invalid peer certificate: "
                    r"UnknownIssuer: no trust anchor vouches for the server's chain; add its "
                    r"root CA with dps_config_add_trust_anchors_pem \(the CLI's --ca-file\), "
                    r"or keep the public roots")
        finally:
            emu.stop()

    print(f"{'FAILED' if c.failed else 'passed'}: {c.failed} failed")
    sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
