#!/usr/bin/env python3
"""Counts the network round trips of one registration.

A TCP relay sits between a client and the emulator and records every chunk with its direction.
A round trip is a client→server flight followed by the server's answer: the number of times the
direction changes from client-to-server to server-to-client, plus one for the TCP handshake.
This is what costs time on a cellular link, whatever the byte counts.

usage: count_round_trips.py --emulator BIN [--listen-port P] [--tls12-only] -- CLIENT ARGS...
  The client command may use {port} and {ca} placeholders.
"""

import argparse
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading


def start_emulator(binary, workdir, enrollments, extra):
    proc = subprocess.Popen(
        [binary, "--port", "0", "--cert-dir", os.path.join(workdir, "certs"),
         "--enrollments", enrollments, *extra], stdout=subprocess.PIPE, text=True)
    port = ca = None
    for line in proc.stdout:
        line = line.strip()
        if line.startswith("dps-emulator: listening mqtts "):
            port = int(line.rsplit(":", 1)[1])
        elif line.startswith("dps-emulator: CA certificate: "):
            ca = line.split(": ", 2)[2]
        elif line == "dps-emulator: ready":
            break
    return proc, port, ca


def relay(listener, upstream_port, events):
    client, _ = listener.accept()
    server = socket.create_connection(("127.0.0.1", upstream_port))
    peers = {client: (server, "c2s"), server: (client, "s2c")}
    open_socks = [client, server]
    while open_socks:
        readable, _, _ = select.select(open_socks, [], [], 30)
        if not readable:
            break
        for s in readable:
            data = s.recv(65536)
            other, direction = peers[s]
            if not data:
                open_socks = []
                break
            events.append((direction, len(data)))
            other.sendall(data)
    client.close()
    server.close()


def count(events):
    trips, last = 1, None  # the TCP handshake
    for direction, _ in events:
        if direction == "s2c" and last == "c2s":
            trips += 1
        last = direction
    return trips


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emulator", required=True)
    ap.add_argument("--enrollments", default="emulator/enrollments.example.json")
    ap.add_argument("--listen-port", type=int, default=0)
    ap.add_argument("--tls12-only", action="store_true", help="start the emulator with --tls12-only")
    ap.add_argument("client", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = [a for a in args.client if a != "--"]
    with tempfile.TemporaryDirectory() as work:
        extra = ["--tls12-only"] if args.tls12_only else []
        emu, port, ca = start_emulator(args.emulator, work, args.enrollments, extra)
        try:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", args.listen_port))
            listener.listen(1)
            relay_port = listener.getsockname()[1]
            events = []
            t = threading.Thread(target=relay, args=(listener, port, events), daemon=True)
            t.start()
            out = subprocess.run([c.format(port=relay_port, ca=ca) for c in cmd],
                                 capture_output=True, text=True, timeout=120)
            t.join(timeout=10)
            print(json.dumps({
                "exit": out.returncode,
                "roundTrips": count(events),
                "clientFlights": sum(1 for i, e in enumerate(events)
                                     if e[0] == "c2s" and (i == 0 or events[i - 1][0] != "c2s")),
                "bytesClientToServer": sum(n for d, n in events if d == "c2s"),
                "bytesServerToClient": sum(n for d, n in events if d == "s2c"),
                "stdout": out.stdout.strip()[:300],
            }))
        finally:
            emu.terminate()
            emu.wait()


if __name__ == "__main__":
    sys.exit(main())
