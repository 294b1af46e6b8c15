#!/usr/bin/env python3
"""Host side of the firmware's UART: plays a cellular modem with TLS offload.

QEMU's `-serial tcp:HOST:PORT` connects the board's UART0 to this bridge. The firmware sends
AT commands; `AT+TLSOPEN="host",port` makes the bridge open TCP + TLS (Python's ssl, verifying
the server against --ca and the host name) and switch to a DLE-escaped transparent data mode
that relays bytes both ways. See firmware/README.md, "UART protocol".

    bridge.py --listen 127.0.0.1:0 --ca CA.pem [--route localhost:8883=127.0.0.1:40123] [--once]

Prints `bridge: listening HOST:PORT` on stdout once it accepts connections. --route maps the
address the firmware asks for to the one to dial (the name still goes into SNI and the
certificate check), as a network's DNS would. Python 3 standard library only."""

import argparse
import select
import socket
import ssl
import sys
import time

DLE = 0x10
DLE_CLOSE = ord("C")
DLE_LOST = ord("E")
TIMEOUT_S = 10
# OpenSSL's X509_V_ERR_* codes for the failures the firmware tells apart.
VERIFY_REASONS = {10: "tls-expired", 62: "tls-name"}


def log(*args):
    print("bridge:", *args, file=sys.stderr, flush=True)


def escape(data: bytes) -> bytes:
    return data.replace(b"\x10", b"\x10\x10")


class Session:
    """One QEMU connection: the command interpreter and at most one TLS connection."""

    def __init__(self, serial: socket.socket, args):
        self.serial = serial
        self.args = args
        self.tls = None
        self.line = bytearray()
        self.dle = False
        self.data_mode = False
        self.to_server = 0
        self.to_device = 0

    def reply(self, text: str):
        self.serial.sendall(b"\r\n" + text.encode() + b"\r\n")

    def run(self):
        while True:
            watched = [self.serial] + ([self.tls] if self.tls is not None else [])
            pending = self.tls is not None and self.tls.pending() > 0
            readable, _, _ = select.select(watched, [], [], 0 if pending else None)
            if self.tls is not None and (pending or self.tls in readable):
                self.from_server()
            if self.serial in readable:
                try:
                    chunk = self.serial.recv(4096)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    log(f"device hung up ({self.to_server} bytes to servers, "
                        f"{self.to_device} to the device)")
                    self.drop_tls()
                    return
                self.from_device(chunk)

    def from_device(self, chunk: bytes):
        out = bytearray()
        for b in chunk:
            if self.dle:
                self.dle = False
                if b == DLE and self.data_mode:
                    out.append(DLE)
                elif b == DLE_CLOSE and self.data_mode:
                    self.forward(out)
                    out.clear()
                    log("close (by the device)")
                    self.drop_tls()
                    self.end_data(DLE_CLOSE)
                # Outside data mode, a DLE pair is a close that crossed the server's: ignored.
            elif b == DLE:
                self.dle = True
            elif self.data_mode:
                out.append(b)
            elif b in (0x0D, 0x0A):
                if self.line:
                    self.forward(out)
                    out.clear()
                    self.command(self.line.decode("ascii", "replace"))
                    self.line.clear()
            elif len(self.line) < 512:
                self.line.append(b)
        self.forward(out)

    def forward(self, data: bytes):
        if data and self.tls is not None:
            self.tls.sendall(data)
            self.to_server += len(data)

    def from_server(self):
        # Reads until OpenSSL has nothing left: a close_notify that came in the same segment as
        # the last data would not make the socket readable again. Non-blocking for this, since
        # a readable socket may carry no application data (TLS 1.3 session tickets).
        self.tls.settimeout(0)
        while True:
            try:
                data = self.tls.recv(16384)
            except ssl.SSLWantReadError:
                self.tls.settimeout(TIMEOUT_S)
                return
            except (ssl.SSLError, OSError) as e:
                log(f"connection lost: {e}")
                self.drop_tls()
                self.end_data(DLE_LOST)
                return
            if not data:
                log("closed by the server")
                self.drop_tls()
                self.end_data(DLE_CLOSE)
                return
            self.to_device += len(data)
            self.serial.sendall(escape(data))

    def end_data(self, code: int):
        self.serial.sendall(bytes([DLE, code]))
        self.data_mode = False

    def drop_tls(self):
        if self.tls is None:
            return
        tls, self.tls = self.tls, None
        try:
            tls.setblocking(False)
            tls.unwrap()  # sends close_notify; does not wait for the server's
        except (ssl.SSLError, OSError):
            pass
        tls.close()

    def command(self, line: str):
        upper = line.upper()
        if upper == "AT":
            self.reply("OK")
        elif upper == "AT+UNIXTIME?":
            now = self.args.unix_time if self.args.unix_time is not None else int(time.time())
            self.reply(f"+UNIXTIME: {now}")
            self.reply("OK")
        elif upper.startswith("AT+TLSOPEN="):
            self.open(line[len("AT+TLSOPEN="):])
        else:
            log(f"unknown command {line!r}")
            self.reply("ERROR")

    def open(self, params: str):
        try:
            quoted, port_text = params.rsplit(",", 1)
            if not (quoted.startswith('"') and quoted.endswith('"')):
                raise ValueError
            host, port = quoted[1:-1], int(port_text)
        except ValueError:
            self.reply("ERROR: syntax")
            return
        if self.tls is not None:
            self.reply("ERROR: busy")
            return
        dial = self.args.route.get(f"{host}:{port}", (host, port))
        try:
            raw = socket.create_connection(dial, timeout=TIMEOUT_S)
        except socket.gaierror:
            reason = "dns"
        except ConnectionRefusedError:
            reason = "refused"
        except OSError:
            reason = "timeout"
        else:
            reason = self.handshake(raw, host)
        if reason is not None:
            log(f"open {host}:{port} (dialled {dial[0]}:{dial[1]}) failed: {reason}")
            self.reply(f"ERROR: {reason}")
            return
        log(f"open {host}:{port} (dialled {dial[0]}:{dial[1]}): {self.tls.version()}")
        self.reply("CONNECT")
        self.data_mode = True

    def handshake(self, raw: socket.socket, host: str):
        context = ssl.create_default_context(cafile=self.args.ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            tls = context.wrap_socket(raw, server_hostname=host)
        except ssl.SSLCertVerificationError as e:
            raw.close()
            return VERIFY_REASONS.get(e.verify_code, "tls-untrusted")
        except (ssl.SSLError, OSError):
            raw.close()
            return "tls"
        tls.settimeout(TIMEOUT_S)
        self.tls = tls
        return None


def address(text: str):
    host, _, port = text.rpartition(":")
    return host, int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", type=address, default=("127.0.0.1", 0))
    ap.add_argument("--ca", required=True, help="CA certificate(s) the servers must chain to")
    ap.add_argument("--route", action="append", default=[], metavar="HOST:PORT=HOST:PORT")
    ap.add_argument("--unix-time", type=int, help="what AT+UNIXTIME? answers (default: now)")
    ap.add_argument("--once", action="store_true", help="exit after the first device hangs up")
    args = ap.parse_args()
    routes = {}
    for r in args.route:
        asked, _, dial = r.partition("=")
        routes[asked] = address(dial)
    args.route = routes
    server = socket.create_server(args.listen)
    host, port = server.getsockname()[:2]
    print(f"bridge: listening {host}:{port}", flush=True)
    while True:
        serial, peer = server.accept()
        serial.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log(f"device connected from {peer[0]}:{peer[1]}")
        with serial:
            try:
                Session(serial, args).run()
            except (BrokenPipeError, ConnectionResetError):
                log("device hung up while the bridge was writing")
        if args.once:
            return 0


if __name__ == "__main__":
    sys.exit(main())
