#!/usr/bin/env python3
"""The side-by-side benchmark behind tools/bench.sh: this library's C CLI, its Python binding and
Microsoft's azure-iot-device 2.14 against the same emulator in the same run, and the many-devices
run of the one-thread event-loop example. A report, never a test: it prints a Markdown table.

Every client reaches the emulator through a relay on port 8883 (the SDK dials no other port;
tools/bench.sh runs this in a private network namespace). The relay records each chunk and its
direction, for the round trips and the bytes, and can delay every chunk by a fixed one-way
latency, each direction on its own.

usage: bench.py --emulator BIN --cli BIN --many BIN --heap BIN --library SO --python PY
                [--runs N] [--slow-runs N] [--latency-ms MS] [--many-count N] [--json FILE]
"""

import argparse
import datetime
import json
import os
import platform
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "c-tests"))
from emulator import ID_SCOPE, Emulator, test_key  # noqa: E402

RELAY_PORT = 8883
GROUP_KEY = test_key("bench-group")
DEVICE = "bench-device"
DEVICE_KEY = test_key(DEVICE)
ENROLLMENTS = {
    "idScope": ID_SCOPE,
    "enrollments": [
        {"registrationId": DEVICE, "retryAfter": 0, "assignedHub": "bench-hub.azure-devices.net",
         "attestation": {"type": "symmetricKey", "primaryKey": DEVICE_KEY}},
        # c-tests/handle_heap.c's device.
        {"registrationId": "api-device", "retryAfter": 0,
         "attestation": {"type": "symmetricKey",
                         "primaryKey": "pmImfq0KLX6Pz0Cn55CDokkQ7dC3rEhAfggusfpcyJw="}},
    ],
    "groups": [{"groupId": "bench", "retryAfter": 0, "assignedHub": "bench-hub.azure-devices.net",
                "attestation": {"type": "symmetricKey", "primaryKey": GROUP_KEY}}],
}


class Relay:
    """TCP relay from RELAY_PORT to the emulator; records (direction, bytes) per chunk."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.delay_s = 0.0
        self.lock = threading.Condition()
        self.events = []
        self.open_directions = 0  # directions whose reader has not seen the end yet
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", RELAY_PORT))
        self.listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self, delay_ms=0):
        with self.lock:
            self.events = []
            self.delay_s = delay_ms / 1000.0

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.open_directions += 2
            self._pump(client, server, "c2s")
            self._pump(server, client, "s2c")

    def _pump(self, src, dst, direction):
        """Reads `src`; each chunk goes to `dst` once its delay has passed, in order."""
        due = queue.Queue()

        def read():
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                if data:
                    with self.lock:
                        self.events.append((direction, len(data)))
                due.put((time.monotonic() + self.delay_s, data))
                if not data:
                    with self.lock:
                        self.open_directions -= 1
                        self.lock.notify_all()
                    return

        def write():
            while True:
                when, data = due.get()
                wait = when - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                try:
                    if not data:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    dst.sendall(data)
                except OSError:
                    return

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()

    def traffic(self):
        """Bytes each way since the last reset, once every connection has ended (the client's
        last bytes may still be on their way through the relay when it exits)."""
        with self.lock:
            self.lock.wait_for(lambda: self.open_directions == 0, timeout=10)
            events = list(self.events)
        return {"bytesOut": sum(n for d, n in events if d == "c2s"),
                "bytesIn": sum(n for d, n in events if d == "s2c")}


def measured(argv, env=None):
    """Runs a command: its wall ms, CPU ms (user + system, os.wait4) and peak RSS (KiB), and its
    output. The peak RSS comes from GNU time, which forks the command from its own small image:
    the kernel counts what a process held before exec in its peak, so a child forked or
    vforked from this Python would start at this Python's size."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        actions = [(os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
        timed = ["/usr/bin/time", "-q", "-f", "%M", "-o", rss.name, *argv]
        t0 = time.monotonic()
        pid = os.posix_spawn(timed[0], timed, env if env is not None else os.environ,
                             file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        wall = (time.monotonic() - t0) * 1000
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
        peak_rss = int(rss.read().split()[-1])
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} exited {code}: {stderr[-600:]}")
    return {"wallMs": wall, "cpuMs": (usage.ru_utime + usage.ru_stime) * 1000,
            "rssKiB": peak_rss, "stdout": stdout, "stderr": stderr}


def instructions(argv, env=None):
    """Instructions of the whole process (callgrind's total)."""
    with tempfile.NamedTemporaryFile(suffix=".callgrind") as f:
        subprocess.run(["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={f.name}",
                        *argv], check=True, capture_output=True, env=env, timeout=900)
        for line in open(f.name):
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no total")


def stripped_size(path):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "stripped")
        subprocess.run(["strip", "-o", out, path], check=True)
        return os.path.getsize(out)


def tree_size(paths):
    total = 0
    for top in paths:
        for root, _, files in os.walk(top):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def median(values):
    return statistics.median(values) if values else None


class Bench:
    def __init__(self, args, ca, relay):
        self.args, self.ca, self.relay = args, ca, relay
        self.py_env = dict(os.environ, DPS_MQTT_LIBRARY=args.library,
                           PYTHONPATH=os.path.join(HERE, "..", "python"))

    def cli_argv(self):
        return [self.args.cli, "--host", "localhost", "--port", str(RELAY_PORT), "--ca-file",
                self.ca, "--id-scope", ID_SCOPE, "--registration-id", DEVICE,
                "--symmetric-key", DEVICE_KEY]

    def py_argv(self, impl):
        return [self.args.python, os.path.join(HERE, "bench_client.py"), impl, "localhost",
                str(RELAY_PORT), self.ca, ID_SCOPE, DEVICE, DEVICE_KEY]

    def row(self, name, argv, env, wall_from_stdout):
        """Cold registrations: medians of --runs at 0 ms and of --slow-runs at --latency-ms."""
        runs = {0: [], self.args.latency_ms: []}
        traffic = None  # of the first run; every run sends the same
        for delay, count in ((0, self.args.runs), (self.args.latency_ms, self.args.slow_runs)):
            for _ in range(count):
                self.relay.reset(delay)
                m = measured(argv, env)
                if wall_from_stdout:
                    m["regMs"] = json.loads(m["stdout"])["registerMs"]
                    m["heap"] = json.loads(m["stdout"])["peakHeapBytes"]
                else:
                    m["regMs"] = m["wallMs"]
                runs[delay].append(m)
                traffic = traffic or self.relay.traffic()
        self.relay.reset(0)
        fast = runs[0]
        wall = median([m["regMs"] for m in fast])
        wall_slow = median([m["regMs"] for m in runs[self.args.latency_ms]])
        result = {
            "name": name,
            # The round trips the client waits for: what the added latency costs, over one
            # round trip's worth of it. Counting direction changes on the wire would also count
            # a server answer that overtakes the rest of a flight the client never waits on.
            "roundTrips": round((wall_slow - wall) / (2 * self.args.latency_ms)),
            "wallMs": wall,
            "wallSlowMs": wall_slow,
            "bytesOut": traffic["bytesOut"], "bytesIn": traffic["bytesIn"],
            "cpuMs": median([m["cpuMs"] for m in fast]),
            "rssKiB": median([m["rssKiB"] for m in fast]),
            "heapBytes": median([m["heap"] for m in fast]) if wall_from_stdout else None,
            "instructions": instructions(argv, env),
        }
        self.relay.reset(0)
        return result

    def library_heap(self):
        """The C library's peak heap for one TLS registration (c-tests/handle_heap.c)."""
        m = measured([self.args.heap, "localhost", str(RELAY_PORT), self.ca])
        for line in m["stdout"].splitlines():
            if line.startswith("in flight (peak)"):
                return int(line.split()[-1])
        raise RuntimeError("handle_heap printed no peak")

    def many(self, emulator_port, in_flight):
        """The event-loop example straight to the emulator (the relay would be the bottleneck)."""
        m = measured([self.args.many, "--host", "localhost", "--port", str(emulator_port),
                      "--ca-file", self.ca, "--id-scope", ID_SCOPE, "--group-key", GROUP_KEY,
                      "--prefix", f"bench-many-{in_flight}-", "--count", str(self.args.many_count),
                      "--in-flight", str(in_flight)])
        summary = json.loads(m["stderr"].strip().splitlines()[-1])
        n = summary["count"]
        if summary["assigned"] != n:
            raise RuntimeError(f"many-devices run: {summary}")
        return {"name": f"C event loop, one thread, {summary['inFlightLimit']:,} in flight",
                "count": n,
                "wallMs": summary["wallMs"] / n, "totalWallMs": summary["wallMs"],
                "cpuMs": m["cpuMs"] / n, "rssKiB": m["rssKiB"],
                "heapBytes": summary["peakHeapBytes"],
                "heapPerInFlightBytes": summary["heapPerInFlightBytes"],
                "peakInFlight": summary["peakInFlight"]}


def fmt(v, unit=""):
    if v is None:
        return "—"
    if isinstance(v, float):
        v = round(v, 1) if v < 100 else round(v)
    if isinstance(v, int) or (isinstance(v, float) and v == int(v)):
        return f"{int(v):,}{unit}"
    return f"{v}{unit}"


def ratio(ours, theirs):
    if ours is None or theirs is None or theirs == 0:
        return "—"
    return f"{ours / theirs:.3g}×"


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--emulator", "--cli", "--many", "--heap", "--library", "--python"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--sdk-site", action="append", default=[],
                    help="a directory of the SDK and its dependencies, for its size")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--slow-runs", type=int, default=3)
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--many-count", type=int, default=10000)
    ap.add_argument("--json")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="dps-bench-")
    try:
        # As the service: TLS 1.2 and an RSA-2048 server key. The 1.3 emulator shows what the
        # library does when the server allows it.
        with Emulator(args.emulator, os.path.join(work, "tls12"), ENROLLMENTS,
                      ["--tls12-only"]) as emu12, \
                Emulator(args.emulator, os.path.join(work, "tls13"), ENROLLMENTS) as emu13, \
                Emulator(args.emulator, os.path.join(work, "ecdsa"), ENROLLMENTS,
                         ["--server-key", "ecdsa"]) as emu_ecdsa:
            rows = []
            relay = Relay(emu12.port)
            bench = Bench(args, emu12.ca, relay)
            heap12 = bench.library_heap()
            rows.append(bench.row("C CLI (dps_register)", bench.cli_argv(), None, False))
            rows[-1]["heapBytes"] = heap12
            rows.append(bench.row("Python binding (dps_mqtt)", bench.py_argv("dps_mqtt"),
                                  bench.py_env, True))
            rows.append(bench.row("azure-iot-device 2.14", bench.py_argv("azure"),
                                  bench.py_env, True))
            relay.upstream_port = emu13.port
            bench13 = Bench(args, emu13.ca, relay)
            rows.insert(1, bench13.row("C CLI, server allows TLS 1.3", bench13.cli_argv(),
                                       None, False))
            rows[1]["heapBytes"] = bench13.library_heap()
            # The many-devices run measures the client: with the service's RSA key, the
            # emulator's signing on the same 2 cores would be what limits it.
            bench_many = Bench(args, emu_ecdsa.ca, relay)
            many = [bench_many.many(emu_ecdsa.port, n)
                    for n in sorted({args.many_count, min(1000, args.many_count)}, reverse=True)]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cli_size = stripped_size(args.cli)
    sizes = {
        "C CLI (dps_register)": cli_size,
        "C CLI, server allows TLS 1.3": cli_size,
        "Python binding (dps_mqtt)": stripped_size(args.library),
        "azure-iot-device 2.14": tree_size(args.sdk_site) if args.sdk_site else None,
    }
    for r in rows:
        r["strippedBytes"] = sizes[r["name"]]
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    print(f"Measured {when} on {os.cpu_count()} cores of {cpu}, Linux {platform.release()}; "
          f"medians of {args.runs} runs at 0 ms and {args.slow_runs} at {args.latency_ms} ms "
          f"one-way added latency (a relay that delays each chunk). The emulator: TLS 1.2 only "
          f"and an RSA-2048 key, as the service, except the second row.\n")
    print(f"| one cold registration | round trips | wall, 0 ms | wall, {args.latency_ms} ms | "
          f"bytes out / in | CPU | peak RSS | library peak heap | instructions | stripped size |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['roundTrips']} | {fmt(r['wallMs'], ' ms')} | "
              f"{fmt(r['wallSlowMs'], ' ms')} | {fmt(r['bytesOut'])} / {fmt(r['bytesIn'])} | "
              f"{fmt(r['cpuMs'], ' ms')} | {fmt(r['rssKiB'], ' KiB')} | "
              f"{fmt(r['heapBytes'], ' B')} | {fmt(r['instructions'])} | "
              f"{fmt(r['strippedBytes'], ' B')} |")
    ours, sdk = rows[0], rows[-1]
    print(f"| C CLI ÷ azure-iot-device | {ratio(ours['roundTrips'], sdk['roundTrips'])} | "
          f"{ratio(ours['wallMs'], sdk['wallMs'])} | {ratio(ours['wallSlowMs'], sdk['wallSlowMs'])} "
          f"| {ratio(ours['bytesOut'], sdk['bytesOut'])} / {ratio(ours['bytesIn'], sdk['bytesIn'])} "
          f"| {ratio(ours['cpuMs'], sdk['cpuMs'])} | {ratio(ours['rssKiB'], sdk['rssKiB'])} | — | "
          f"{ratio(ours['instructions'], sdk['instructions'])} | "
          f"{ratio(ours['strippedBytes'], sdk['strippedBytes'])} |")
    print()
    print("| many devices | devices | wall | wall per device | CPU per device | peak RSS | "
          "library peak heap | heap per in-flight handle, steady state |")
    print("|---|---|---|---|---|---|---|---|")
    for m in many:
        print(f"| {m['name']} | {fmt(m['count'])} | {fmt(m['totalWallMs'], ' ms')} | "
              f"{m['wallMs']:.3f} ms | {m['cpuMs']:.3f} ms | {fmt(m['rssKiB'], ' KiB')} | "
              f"{fmt(m['heapBytes'], ' B')} | {fmt(m['heapPerInFlightBytes'], ' B')} |")
    print()
    print("Round trips: the ones the client waits for, (wall at 50 ms − wall at 0 ms) / 100 "
          "ms. Wall: the C CLI's process, from exec to exit; the Python rows time create + register "
          "inside the process (not the interpreter's start and imports). CPU, peak RSS and "
          "instructions are the whole process's. Library peak heap: the library's own count "
          "(dps_heap_usage; for the C rows c-tests/handle_heap.c, the same registration); for "
          "the SDK, Python's allocations only (tracemalloc), without OpenSSL's. Stripped size: "
          "the CLI, the binding's shared library; for the SDK its installed azure-iot-device "
          "and paho-mqtt packages (Python code), without the interpreter, OpenSSL and its "
          "other dependencies. A resumed registration is not measured: this "
          "library cannot yet keep a TLS session across processes (rustls cannot serialize a "
          "client session), and the SDK does not resume. The many-devices runs go straight to "
          "an emulator with an ECDSA P-256 key (TLS 1.3), so that they measure the client, "
          "not the emulator's RSA signatures on the same 2 cores.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "many": many}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
