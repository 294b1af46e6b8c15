#!/usr/bin/env python3
"""Reports the emulator's resident set per open connection: starts the emulator, opens N TLS
connections that each register a device of a symmetric-key group (CONNECT, SUBSCRIBE, register,
poll until assigned) and stay open, then prints the emulator's RSS before and with them open.

    python3 emulator/scripts/rss_per_connection.py [--emulator target/release/dps-emulator]
        [--connections 10000] [--server-key rsa|ecdsa]

A report, not a test: loopback only, nothing asserted. Needs N + a few hundred descriptors.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import resource
import ssl
import struct
import sys
import tempfile
import time
import urllib.parse

# The C tests' emulator launcher: a fresh certificate directory and enrollment file, start-up
# synchronised on the `ready` line.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "c-tests"))
from emulator import Emulator  # noqa: E402

SCOPE = "0ne0000RSS1"
GROUP_KEY = base64.b64encode(hashlib.sha256(b"rss group").digest()).decode()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def mqtt_string(s: bytes) -> bytes:
    return struct.pack("!H", len(s)) + s


def packet(first: int, body: bytes) -> bytes:
    n, length = len(body), b""
    while True:
        byte, n = n % 128, n // 128
        length += bytes([byte | (0x80 if n else 0)])
        if not n:
            return bytes([first]) + length + body


def sas(reg: str) -> str:
    device_key = hmac.new(base64.b64decode(GROUP_KEY), reg.encode(), hashlib.sha256).digest()
    sr = f"{SCOPE}%2fregistrations%2f{reg}"
    se = int(time.time()) + 3600
    sig = base64.b64encode(hmac.new(device_key, f"{sr}\n{se}".encode(), hashlib.sha256).digest())
    return (f"SharedAccessSignature sr={sr}&sig={urllib.parse.quote(sig.decode(), safe='')}"
            f"&se={se}&skn=registration")


async def read_packet(reader: asyncio.StreamReader) -> tuple:
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        b = (await reader.readexactly(1))[0]
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return first, await reader.readexactly(length)


async def response(reader, writer) -> tuple:
    """The next PUBLISH (acknowledged): its status and JSON body."""
    while True:
        first, body = await read_packet(reader)
        if first >> 4 == 3:
            tlen = struct.unpack("!H", body[:2])[0]
            topic = body[2:2 + tlen].decode()
            pid = body[2 + tlen:4 + tlen]
            writer.write(packet(0x40, pid))
            status = int(topic.split("/")[3])
            return status, json.loads(body[4 + tlen:])


async def device(i: int, port: int, ctx: ssl.SSLContext, held: list) -> None:
    reg = f"rss-{i}"
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                   server_hostname="localhost")
    user = f"{SCOPE}/registrations/{reg}/api-version=2019-03-31".encode()
    body = (mqtt_string(b"MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 1200)
            + mqtt_string(reg.encode()) + mqtt_string(user) + mqtt_string(sas(reg).encode()))
    writer.write(packet(0x10, body))
    first, ack = await read_packet(reader)
    assert first == 0x20 and ack[1] == 0, f"CONNACK {ack!r}"
    writer.write(packet(0x82, struct.pack("!H", 1) + mqtt_string(b"$dps/registrations/res/#") + b"\x01"))
    first, _ = await read_packet(reader)
    assert first == 0x90
    topic = b"$dps/registrations/PUT/iotdps-register/?$rid=1"
    writer.write(packet(0x32, mqtt_string(topic) + struct.pack("!H", 2)
                        + json.dumps({"registrationId": reg}).encode()))
    status, resp = await response(reader, writer)
    assert status == 202, resp
    for n in range(3, 40):
        topic = (f"$dps/registrations/GET/iotdps-get-operationstatus/?$rid={n}"
                 f"&operationId={resp['operationId']}").encode()
        writer.write(packet(0x30, mqtt_string(topic)))
        status, body = await response(reader, writer)
        if status != 202:
            assert status == 200 and body["status"] == "assigned", body
            held.append(writer)
            return
    raise RuntimeError(f"{reg}: not assigned")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--emulator", default="target/release/dps-emulator")
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--server-key", default="rsa")
    ap.add_argument("--parallel", type=int, default=200)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory(prefix="dps-emulator-rss-") as work, Emulator(
            args.emulator, work,
            {"idScope": SCOPE, "groups": [{
                "groupId": "rss", "retryAfter": 0,
                "attestation": {"type": "symmetricKey", "primaryKey": GROUP_KEY}}]},
            ["--server-key", args.server_key]) as emu:
        ctx = ssl.create_default_context(cafile=emu.ca)
        idle = rss_kib(emu.proc.pid)
        held: list = []
        started = time.monotonic()
        sem = asyncio.Semaphore(args.parallel)

        async def one(i):
            async with sem:
                await device(i, emu.port, ctx, held)

        await asyncio.gather(*(one(i) for i in range(args.connections)))
        took = time.monotonic() - started
        loaded = rss_kib(emu.proc.pid)
        print(f"server key {args.server_key}: {len(held)} connections registered and open "
              f"in {took:.1f} s")
        print(f"emulator RSS idle {idle} KiB, with them open {loaded} KiB: "
              f"{(loaded - idle) / len(held):.1f} KiB per connection")
        for w in held:
            w.close()

if __name__ == "__main__":
    asyncio.run(main())
