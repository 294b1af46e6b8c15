#!/usr/bin/env python3
"""The memory bound, proved on the host with a fixed arena (c-tests/heap_arena.c).

For TLS inside the library and for TLS offload (through a loopback relay that does TLS toward
the emulator, as a modem does), a registration runs in an arena large enough and reports the
arena's high-water mark; then the same registration runs in an arena 1 KiB smaller than that
mark and must end with DPS_ERR_OUT_OF_MEMORY, without crashing, leaving nothing allocated; and
in about 48 arena sizes from almost nothing up to the mark, each run must end cleanly too.

    heap_arena_test.py --binary build/c-tests/heap_arena --emulator target/release/dps-emulator
"""

import argparse
import json
import os
import selectors
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emulator import ID_SCOPE, Emulator, test_key  # noqa: E402

DEVICE = "arena-device"
HUB = "arena-hub.azure-devices.net"
# Room to spare for the measuring run; the reserve covers one step's allocations after the
# arena says no (README, "Memory").
LARGE_ARENA = 512 * 1024
RESERVE = {"offload": 4096, "tls": 20480}


class TlsRelay:
    """Accepts plain TCP on loopback and carries it over TLS to the emulator: the host-side
    half of TLS offload."""

    def __init__(self, port: int, ca: str):
        self.context = ssl.create_default_context(cafile=ca)
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(client,), daemon=True).start()

    def relay(self, client: socket.socket):
        with client, self.context.wrap_socket(
                socket.create_connection(("localhost", self.target)),
                server_hostname="localhost") as upstream:
            sel = selectors.DefaultSelector()
            sel.register(client, selectors.EVENT_READ, upstream)
            sel.register(upstream, selectors.EVENT_READ, client)
            while True:
                for key, _ in sel.select(timeout=30):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)

    def close(self):
        self.listener.close()


def run(binary: str, mode: str, arena: int, host: str, port: int, ca: str) -> dict:
    proc = subprocess.run(
        [binary, mode, str(arena), str(RESERVE[mode]), host, str(port), ca, ID_SCOPE, DEVICE,
         test_key(DEVICE)], capture_output=True, text=True, timeout=60)
    if proc.returncode < 0:
        raise AssertionError(f"{mode} arena {arena}: killed by signal {-proc.returncode}: "
                             f"{proc.stderr}")
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "{}"
    report = json.loads(line)
    report["exit"] = proc.returncode
    print(f"{mode:8} arena {arena:7}: {line}")
    return report


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--emulator", required=True)
    args = ap.parse_args()
    enrollments = {"idScope": ID_SCOPE, "enrollments": [{
        "registrationId": DEVICE,
        "attestation": {"type": "symmetricKey", "primaryKey": test_key(DEVICE)},
        "assignedHub": HUB, "retryAfter": 0, "assignAfterPolls": 1}]}
    failures = []
    with tempfile.TemporaryDirectory() as work, \
            Emulator(args.emulator, work, enrollments) as emu:
        relay = TlsRelay(emu.port, emu.ca)
        try:
            for mode, port in (("offload", relay.port), ("tls", emu.port)):
                host = "127.0.0.1" if mode == "offload" else "localhost"
                # The peak moves by a few hundred bytes with how the responses arrive (one
                # read or two): the mark is the largest of three runs.
                runs = [run(args.binary, mode, LARGE_ARENA, host, port, emu.ca)
                        for _ in range(3)]
                bad = [r for r in runs if (r["result"], r.get("hub"), r.get("device"),
                                           r["exit"]) != ("DPS_OK", HUB, DEVICE, 0)]
                if bad:
                    failures.append(f"{mode}: the measuring run failed: {bad[0]}")
                    continue
                big = max(runs, key=lambda r: r["high_water"])
                mark = big["high_water"]
                print(f"{mode}: arena high-water mark {mark} bytes (library peak "
                      f"{big['library_peak']} bytes, reserve {RESERVE[mode]} bytes)")
                small = run(args.binary, mode, mark - 1024, host, port, emu.ca)
                if small["result"] != "DPS_ERR_OUT_OF_MEMORY" or small["exit"] != 0:
                    failures.append(f"{mode}: an arena 1 KiB below the mark gave {small}")
                # Wherever memory runs out (while configuring, connecting, in the handshake,
                # parsing a response), the end is clean: OK or out of memory, nothing left.
                step = max(64, mark // 48)
                for arena in range(step, mark, step):
                    r = run(args.binary, mode, arena, host, port, emu.ca)
                    if r["exit"] != 0 or r["result"] not in ("DPS_OK", "DPS_ERR_OUT_OF_MEMORY"):
                        failures.append(f"{mode}: arena {arena} gave {r}")
        finally:
            relay.close()
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
