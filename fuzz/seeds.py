#!/usr/bin/env python3
"""Writes the seed corpus: server->client MQTT bytes of real DPS sessions (the shapes the
emulator and the service send) plus the hostile shapes issue 4 lists. Deterministic; rerun after
changing it and commit fuzz/corpus/. Usage: python3 fuzz/seeds.py"""
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
RES = "$dps/registrations/res/"
ASSIGNING = json.dumps({"operationId": "op-1", "status": "assigning"})
ASSIGNED = json.dumps({
    "operationId": "op-1", "status": "assigned",
    "registrationState": {
        "registrationId": "dev-1", "createdDateTimeUtc": "2026-01-01T00:00:00Z",
        "assignedHub": "hub.azure-devices.net", "deviceId": "dev-1", "status": "assigned",
        "substatus": "initialAssignment", "lastUpdatedDateTimeUtc": "2026-01-01T00:00:01Z",
        "etag": "IjAwMDAi", "payload": {"a": 1}}})
FAILED = json.dumps({"operationId": "op-1", "status": "failed", "registrationState": {
    "registrationId": "dev-1", "status": "failed", "errorCode": 400209,
    "errorMessage": "Custom allocation failed"}})
ERROR = json.dumps({"errorCode": 401002, "trackingId": "t-1", "message": "Unauthorized",
                    "timestampUtc": "2026-01-01T00:00:00Z"})


def varint(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def string(s):
    b = s if isinstance(s, bytes) else s.encode()
    return len(b).to_bytes(2, "big") + b


CONNACK = packet(0x20, b"\x00\x00")
SUBACK = packet(0x90, b"\x00\x01\x01")
PINGRESP = b"\xd0\x00"


def publish(topic, body, qos=1, pid=7):
    head = string(topic) + (pid.to_bytes(2, "big") if qos else b"")
    return packet(0x30 | (qos << 1), head + (body if isinstance(body, bytes) else body.encode()))


def res(status, rid, body, extra=""):
    return publish(f"{RES}{status}/?$rid={rid}{extra}", body)


OPEN = CONNACK + SUBACK
# Each session: list of steps; bytes are server output, "T" fires the next timer, "X" drops
# the connection. Request ids count from 1 per engine, as the engine numbers them.
SESSIONS = {
    "assigned": [OPEN, res(200, 1, ASSIGNED)],
    "assigning_then_assigned": [OPEN, res(202, 1, ASSIGNING, "&retry-after=3"), "T",
                                res(200, 2, ASSIGNED)],
    "assigning_retry0": [OPEN, res(202, 1, ASSIGNING, "&retry-after=0"), res(200, 2, ASSIGNED)],
    "failed": [OPEN, res(202, 1, ASSIGNING, "&retry-after=1"), "T", res(200, 2, FAILED)],
    "unauthorized": [OPEN, res(401, 1, ERROR)],
    "throttled": [OPEN, res(429, 1, ERROR, "&retry-after=2"), "T", res(200, 2, ASSIGNED)],
    "server_error": [OPEN, res(503, 1, ERROR), "T", res(200, 2, ASSIGNED)],
    "connack_refused": [packet(0x20, b"\x00\x05")],
    "suback_refused": [CONNACK, packet(0x90, b"\x00\x01\x80")],
    "ping": [OPEN, "T", PINGRESP, res(200, 1, ASSIGNED)],
    "dropped_then_assigned": [OPEN, "X", "T", OPEN, res(200, 2, ASSIGNED)],
    "huge_remaining_length": [OPEN, b"\x30\xff\xff\xff\x7f"],
    "topic_overruns_packet": [OPEN, packet(0x32, b"\xff\xf0abc\x00\x07")],
    "invalid_utf8_topic": [OPEN, publish(b"$dps/registrations/res/200/?$rid=\xff\xfe", ASSIGNED)],
    "unexpected_connect": [OPEN, packet(0x10, string("MQTT") + b"\x04\x02\x00\x3c" + string("x"))],
    "unexpected_subscribe": [OPEN, packet(0x82, b"\x00\x02" + string("#") + b"\x01")],
    "qos2_publish": [OPEN, publish(f"{RES}200/?$rid=1", ASSIGNED, qos=2)],
    "connack_twice": [OPEN, CONNACK, res(200, 1, ASSIGNED)],
    "wrong_rid": [OPEN, res(200, 99, ASSIGNED)],
    "missing_rid": [OPEN, publish(f"{RES}200/?", ASSIGNED)],
    "duplicate_response": [OPEN, res(202, 1, ASSIGNING, "&retry-after=0"),
                           res(202, 1, ASSIGNING, "&retry-after=0"), res(200, 2, ASSIGNED)],
    "not_json": [OPEN, res(200, 1, "<html>")],
    "nested_json": [OPEN, res(200, 1, "[" * 200 + "]" * 200)],
    "retry_after_odd": [OPEN, res(202, 1, ASSIGNING, "&retry-after=-1"), "T",
                        res(202, 2, ASSIGNING, "&retry-after=1000000000000"), "T",
                        res(202, 3, ASSIGNING, "&retry-after=abc"), "T"],
    "status_codes": [OPEN, res(0, 1, ERROR), res(999, 1, ERROR), res(302, 1, ERROR)],
    "qos0_response": [OPEN, publish(f"{RES}200/?$rid=1", ASSIGNED, qos=0)],
}


def engine_records(steps):
    out = bytearray()
    for step in steps:
        if step == "T":
            out += b"\x02"
        elif step == "X":
            out += b"\x03"
        else:
            for i in range(0, len(step), 255):
                chunk = step[i:i + 255]
                out += bytes([0, len(chunk)]) + chunk
    return bytes(out)


def stream(steps):
    return b"".join(s for s in steps if isinstance(s, bytes))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    shutil.rmtree(os.path.join(HERE, "corpus"), ignore_errors=True)
    for name, steps in SESSIONS.items():
        write("engine", name, engine_records(steps))
        for split in (0, 1, 5):
            write("mqtt_stream", f"{name}_split{split}", bytes([split]) + stream(steps))
    responses = {
        "assigned": (f"{RES}200/?$rid=1", ASSIGNED),
        "assigning": (f"{RES}202/?$rid=1&retry-after=3", ASSIGNING),
        "failed": (f"{RES}200/?$rid=2", FAILED),
        "error": (f"{RES}401/?$rid=1", ERROR),
        "throttled": (f"{RES}429/?retry-after=5&$rid=1", ERROR),
        "no_query": (f"{RES}500", ""),
        "retry_negative": (f"{RES}202/?$rid=1&retry-after=-1", ASSIGNING),
        "retry_huge": (f"{RES}202/?$rid=1&retry-after=1000000000000", ASSIGNING),
        "retry_nan": (f"{RES}202/?$rid=1&retry-after=x", ASSIGNING),
        "nested": (f"{RES}200/?$rid=1", "[" * 200 + "]" * 200),
        "not_json": (f"{RES}200/?$rid=1", "<html>"),
        "huge_string": (f"{RES}200/?$rid=1", json.dumps({"operationId": "o" * 4000})),
        "other_topic": ("devices/x/messages", "{}"),
    }
    for name, (topic, body) in responses.items():
        write("response", name, topic.encode() + b"\n" + body.encode())


main()
