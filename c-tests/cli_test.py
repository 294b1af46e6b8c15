#!/usr/bin/env python3
"""The dps_register CLI against the real emulator: exactly one JSON object on stdout and the
exit code of the contract (0 assigned, 2 invalid, 3 auth, 4 TLS, 5 transport, 6 protocol,
7 timeout, 8 registration failed/disabled). Run by CTest; exits non-zero when a check fails.

With --valgrind, runs a success and a failure under valgrind instead (any memory error or
definite leak fails)."""

import argparse
import base64
import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zlib

from emulator import ID_SCOPE, Emulator, derived_key, test_key

SUCCESS_KEYS = {"status", "assignedHub", "deviceId", "substatus", "payload"}
FAILURE_KEYS = {"status", "error", "message", "hint"}
FAILURE_OPTIONAL_KEYS = {"errorCode", "trackingId"}
AWKWARD_MESSAGE = 'quote " backslash \\ newline \n tab \t bell \x07 e-acute \u00e9 snowman \u2603'


def enrollment(reg_id: str, **knobs) -> dict:
    e = {
        "registrationId": reg_id,
        "attestation": {"type": "symmetricKey", "primaryKey": test_key(reg_id)},
        "assignedHub": "cli-hub.azure-devices.net",
        "retryAfter": 0,
    }
    e.update(knobs)
    return e


ENROLLMENTS = {
    "idScope": ID_SCOPE,
    "enrollments": [
        enrollment("cli-ok"),
        enrollment("cli-payload"),
        enrollment("cli-service-payload", payload={"tier": "gold", "n": [1, 2.5, None, True]}),
        enrollment("cli-polls-0", assignAfterPolls=2, retryAfter=0),
        enrollment("cli-polls-1", assignAfterPolls=2, retryAfter=1),
        enrollment("cli-throttled", throttleFirst=2, retryAfter=1),
        enrollment("cli-server-error", serverErrorFirst=1, retryAfter=1),
        enrollment("cli-failed", outcome="failed", errorCode=400209, errorMessage=AWKWARD_MESSAGE),
        enrollment("cli-disabled", outcome="disabled"),
        enrollment("cli-slow", assignAfterPolls=1000000, retryAfter=1),
        enrollment("cli-verbose", assignAfterPolls=1),
        enrollment("cli-migrated", deviceId="renamed-device", substatus="deviceDataMigrated"),
        {"registrationId": "cli-x509", "attestation": {"type": "x509"},
         "assignedHub": "cli-x509-hub.azure-devices.net", "retryAfter": 0},
        enrollment("cli-csr"),
    ],
    "groups": [
        {
            "groupId": "cli-group",
            "attestation": {"type": "symmetricKey", "primaryKey": test_key("cli-group")},
            "assignedHub": "cli-group-hub.azure-devices.net",
            "retryAfter": 0,
        },
        {
            "groupId": "cli-x509-group",
            "attestation": {"type": "x509"},
            "assignedHub": "cli-x509-group-hub.azure-devices.net",
            "retryAfter": 0,
        },
    ],
}


def creds(reg_id, *extra):
    return ("--id-scope", ID_SCOPE, "--registration-id", reg_id,
            "--symmetric-key", test_key(reg_id), *extra)


def refused_port():
    """A bound socket that never listens: connecting to its port is refused, and no other
    process can take the port while the socket is held."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


class Runner:
    def __init__(self, cli, wrapper=()):
        self.cli = cli
        self.wrapper = list(wrapper)
        self.passed = 0
        self.failed = 0

    def run(self, *args, emu=None, ca=True, host="localhost", port=None, timeout=20,
            raw=False):
        """Runs the CLI; with raw=True, `args` is the whole argument list."""
        cmd = self.wrapper + [self.cli]
        if not raw:
            cmd += ["--host", host, "--port", str(port if port is not None else emu.port),
                    "--timeout", str(timeout)]
            if ca:
                cmd += ["--ca-file", emu.ca]
        cmd += list(args)
        start = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 120)
        return p.returncode, p.stdout, p.stderr, time.monotonic() - start

    def report(self, name, problems, out="", err=""):
        if problems:
            self.failed += 1
            print(f"FAIL {name}: {'; '.join(problems)}\n  stdout: {out!r}\n  stderr: {err[-3000:]}")
        else:
            self.passed += 1
            print(f"ok   {name}")

    def check(self, name, result, code, seconds=None, extra_keys=(), **expect):
        """Checks the exit code, that stdout is one JSON object with exactly the contract's
        keys (plus `extra_keys` on success), and each `expect` key (a value, or a
        predicate)."""
        rc, out, err, elapsed = result
        problems = []
        if rc != code:
            problems.append(f"exit {rc}, want {code}")
        doc = {}
        try:
            doc = json.loads(out)
        except ValueError:
            problems.append("stdout is not one JSON document")
        if not isinstance(doc, dict):
            problems.append("stdout is not a JSON object")
            doc = {}
        if out.count("\n") != 1 or not out.endswith("\n"):
            problems.append("stdout is not exactly one line")
        if doc:
            keys = set(doc)
            if code == 0 and keys != SUCCESS_KEYS | set(extra_keys):
                problems.append(f"keys {sorted(keys)}, want {sorted(SUCCESS_KEYS)}")
            if code != 0 and not FAILURE_KEYS <= keys <= FAILURE_KEYS | FAILURE_OPTIONAL_KEYS:
                problems.append(f"keys {sorted(keys)} are not the failure object's")
            if code != 0 and not isinstance(doc.get("message"), str):
                problems.append("message is not a string")
        for key, want in expect.items():
            got = doc.get(key)
            if callable(want):
                if not want(got):
                    problems.append(f"{key}={got!r} fails its check")
            elif got != want:
                problems.append(f"{key}={got!r}, want {want!r}")
        if seconds is not None and not seconds(elapsed):
            problems.append(f"took {elapsed:.2f} s")
        self.report(name, problems, out, err)
        return doc


def starts(prefix):
    return lambda v: isinstance(v, str) and v.startswith(prefix)


def contains(part):
    return lambda v: isinstance(v, str) and part in v


def contract_cases(r, emu, connack):
    r.check("symmetric key", r.run(*creds("cli-ok"), emu=emu), 0, status="assigned",
            assignedHub="cli-hub.azure-devices.net", deviceId="cli-ok",
            substatus="initialAssignment", payload=None)
    r.check("group key", r.run("--id-scope", ID_SCOPE, "--registration-id", "cli-member-1",
                               "--group-key", test_key("cli-group"), emu=emu), 0,
            status="assigned", assignedHub="cli-group-hub.azure-devices.net",
            deviceId="cli-member-1")
    r.check("device id and substatus from the service", r.run(*creds("cli-migrated"), emu=emu), 0,
            deviceId="renamed-device", substatus="deviceDataMigrated")
    sent = {"modelId": "dtmi:com:example:Thermostat;1", "s": "q\"b\\n\u00e9", "n": [1, -2.5e3, None]}
    r.check("custom payload round trip",
            r.run(*creds("cli-payload", "--payload", json.dumps(sent)), emu=emu), 0, payload=sent)
    r.check("payload set by the service", r.run(*creds("cli-service-payload"), emu=emu), 0,
            payload={"tier": "gold", "n": [1, 2.5, None, True]})
    r.check("polling with retry-after 0 has no hidden wait", r.run(*creds("cli-polls-0"), emu=emu),
            0, seconds=lambda s: s < 2.9, status="assigned")
    r.check("polling follows retry-after 1 (three waits)", r.run(*creds("cli-polls-1"), emu=emu),
            0, seconds=lambda s: s >= 2.9, status="assigned")
    r.check("throttled (429) twice, then assigned", r.run(*creds("cli-throttled"), emu=emu), 0,
            status="assigned")
    r.check("server error (500), then assigned", r.run(*creds("cli-server-error"), emu=emu), 0,
            status="assigned")
    r.check("failed", r.run(*creds("cli-failed"), emu=emu), 8, status="failed",
            error="DPS_ERR_REGISTRATION_FAILED", errorCode=400209,
            message=lambda m: isinstance(m, str) and AWKWARD_MESSAGE in m)
    r.check("disabled", r.run(*creds("cli-disabled"), emu=emu), 8, status="disabled",
            error="DPS_ERR_REGISTRATION_DISABLED")
    wrong_key = ("--id-scope", ID_SCOPE, "--registration-id", "cli-ok",
                 "--symmetric-key", test_key("wrong"))
    r.check("wrong key: CONNACK 0 then 401", r.run(*wrong_key, emu=emu), 3, status="error",
            error="DPS_ERR_AUTH_UNAUTHORIZED", errorCode=401002,
            trackingId=lambda t: isinstance(t, str) and len(t) > 0)
    r.check("wrong key: CONNACK 5", r.run(*wrong_key, emu=connack), 3, status="error",
            error="DPS_ERR_AUTH_NOT_AUTHORIZED")
    r.check("unknown device", r.run("--id-scope", ID_SCOPE, "--registration-id", "nobody",
                                    "--symmetric-key", test_key("nobody"), emu=emu), 3,
            error=starts("DPS_ERR_AUTH"))
    r.check("unknown id scope", r.run("--id-scope", "0ne99999999", "--registration-id", "cli-ok",
                                      "--symmetric-key", test_key("cli-ok"), emu=emu), 3,
            error=starts("DPS_ERR_AUTH"))
    r.check("untrusted CA (public roots only)", r.run(*creds("cli-ok"), emu=emu, ca=False), 4,
            status="error", error=starts("DPS_ERR_TLS"))
    with refused_port() as s:
        # Refused connects are retried until the deadline, which then reports their cause.
        r.check("nothing listening", r.run(*creds("cli-ok"), emu=emu, host="127.0.0.1",
                                           port=s.getsockname()[1], timeout=3), 5,
                status="error", error="DPS_ERR_TRANSPORT_CONNECT",
                message=contains("attempts in"))
    r.check("host name does not resolve",
            r.run(*creds("cli-ok"), emu=emu, host="no-such-host.invalid", timeout=3), 5,
            error=starts("DPS_ERR_TRANSPORT"), message=contains("no-such-host.invalid"))
    r.check("deadline while assigning", r.run(*creds("cli-slow"), emu=emu, timeout=2), 7,
            status="error", error=starts("DPS_ERR_TIMEOUT"), seconds=lambda s: s < 10)


def usage_cases(r, emu):
    base = ("--id-scope", ID_SCOPE, "--registration-id", "x")
    invalid = "DPS_ERR_INVALID_ARGUMENT"
    for name, args in [
        ("no arguments", ()),
        ("no key", base),
        ("both keys", base + ("--symmetric-key", test_key("x"), "--group-key", test_key("g"))),
        ("no id scope", ("--registration-id", "x", "--symmetric-key", test_key("x"))),
        ("no registration id", ("--id-scope", ID_SCOPE, "--symmetric-key", test_key("x"))),
        ("unknown flag", creds("x", "--frobnicate", "1")),
        ("missing value", creds("x", "--host")),
        ("port not a number", creds("x", "--port", "88a")),
        ("port out of range", creds("x", "--port", "65536")),
        ("port zero", creds("x", "--port", "0")),
        ("timeout zero", creds("x", "--timeout", "0")),
        ("timeout negative", creds("x", "--timeout", "-3")),
        ("timeout not a number", creds("x", "--timeout", "soon")),
        ("unreadable CA file", creds("x", "--ca-file", "/nonexistent/ca.pem")),
    ]:
        r.check(f"usage: {name}", r.run(*args, raw=True), 2, status="error", error=invalid)
    for name, args, error in [
        ("invalid registration id", creds("bad id!"), "DPS_ERR_INVALID_REGISTRATION_ID"),
        ("invalid id scope", ("--id-scope", "0ne 1", "--registration-id", "x",
                              "--symmetric-key", test_key("x")), "DPS_ERR_INVALID_ID_SCOPE"),
        ("invalid key", base + ("--symmetric-key", "not base64!"), "DPS_ERR_INVALID_KEY"),
        ("invalid group key", base + ("--group-key", "***"), "DPS_ERR_INVALID_KEY"),
        ("invalid payload", creds("x", "--payload", "{nope"), "DPS_ERR_INVALID_PAYLOAD"),
        ("CA file without certificates", creds("x", "--ca-file", os.devnull),
         "DPS_ERR_INVALID_CERTIFICATE"),
    ]:
        r.check(f"usage: {name}", r.run(*args, raw=True), 2, status="error", error=error)
    # Usage errors are caught before dialling: a port nobody listens on must not matter.
    with refused_port() as s:
        r.check("usage error is reported before dialling",
                r.run(*creds("bad id!"), emu=emu, host="127.0.0.1", port=s.getsockname()[1]), 2,
                error="DPS_ERR_INVALID_REGISTRATION_ID")
    rc, out, err, _ = r.run("--help", raw=True)
    r.report("--help prints usage on stdout and exits 0",
             [] if rc == 0 and "--symmetric-key" in out and "exit" in out else [f"exit {rc}"],
             out, err)


SAS_TTL_S = 3600  # the library's default token lifetime; the CLI does not change it


def sas_signature(key_b64, reg_id, expiry, scope=ID_SCOPE):
    """The signature of the SAS token the library sends: base64 HMAC-SHA256 of
    "{scope}%2fregistrations%2f{reg_id}\n{expiry}" under the (device) key."""
    to_sign = f"{scope}%2fregistrations%2f{reg_id}\n{expiry}".encode()
    mac = hmac.new(base64.b64decode(key_b64), to_sign, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


# The published vector (Microsoft's DPS docs), so the leak check below looks for the right thing.
assert sas_signature("O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=", "FirstDevice", 1591921306,
                     scope="0ne000EEBBD") == "hwgBlMB6G2Zg5ZcYtwmtLVKRbifiSCPfUMyscbVWa8o="


def secrets_of(key_b64, reg_id, started, ended):
    """Every form in which a key or a signature made during [started, ended] could leak: the
    base64 key, a prefix of it, its hex bytes, each possible signature (plain and
    percent-encoded) and the token markers."""
    forms = [key_b64, key_b64[:16], base64.b64decode(key_b64).hex(), "SharedAccessSignature",
             "sig="]
    for expiry in range(int(started) + SAS_TTL_S - 2, int(ended) + SAS_TTL_S + 3):
        sig = sas_signature(key_b64, reg_id, expiry)
        forms += [sig, sig[:16], urllib.parse.quote(sig, safe="")]
    return forms


def leaks_in(forms, out, err):
    return [f"contains {s!r}" for s in forms if s in out or s in err]


def verbose_case(r, emu):
    key = test_key("cli-verbose")
    started = time.time()
    rc, out, err, elapsed = r.run(*creds("cli-verbose", "--verbose"), emu=emu)
    r.check("verbose run", (rc, out, err, elapsed), 0, status="assigned")
    problems = leaks_in(secrets_of(key, "cli-verbose", started, time.time()), out, err)
    if "assigned" not in err or "connecting" not in err:
        problems.append("stderr lacks the progress lines")
    r.report("verbose logs progress on stderr, never a key, a signature or a token", problems,
             out, err)

    # A group key: neither it nor the derived device key nor the signature may show.
    group_key = test_key("cli-group")
    device_key = derived_key(group_key, "cli-member-2")
    started = time.time()
    rc, out, err, _ = r.run("--id-scope", ID_SCOPE, "--registration-id", "cli-member-2",
                            "--group-key", group_key, "--verbose", emu=emu)
    forms = secrets_of(device_key, "cli-member-2", started, time.time())
    forms += [group_key, group_key[:16], base64.b64decode(group_key).hex()]
    r.report("verbose with a group key leaks no group key, derived key, signature or token",
             ([f"exit {rc}"] if rc != 0 else []) + leaks_in(forms, out, err), out, err)


def pem_to_der(pem_path, der_path):
    """The first PEM block of a file, as DER."""
    with open(pem_path) as f:
        body = f.read().split("-----")[2]
    with open(der_path, "wb") as f:
        f.write(base64.b64decode("".join(body.split())))
    return der_path


def x509_cases(r, emu, work):
    """X.509 client certificates from the emulator's device CA: an individual enrollment and
    an enrollment group, PEM and DER, and the local checks (CN, key, files)."""
    certs = os.path.join(work, "x509")
    os.makedirs(certs, exist_ok=True)
    cert, key = emu.issue_device_cert("cli-x509", certs)
    member_cert, member_key = emu.issue_device_cert("cli-x509-member", certs)
    scope = ("--id-scope", ID_SCOPE)
    r.check("X.509 individual enrollment (id from the CN)",
            r.run(*scope, "--cert", cert, "--key", key, emu=emu), 0, status="assigned",
            assignedHub="cli-x509-hub.azure-devices.net", deviceId="cli-x509")
    r.check("X.509 individual enrollment with --registration-id",
            r.run(*scope, "--registration-id", "cli-x509", "--cert", cert, "--key", key, emu=emu),
            0, deviceId="cli-x509")
    r.check("X.509 DER certificate and DER key",
            r.run(*scope, "--cert", pem_to_der(cert, os.path.join(certs, "leaf.der")),
                  "--key", pem_to_der(key, os.path.join(certs, "key.der")), emu=emu),
            0, deviceId="cli-x509")
    r.check("X.509 enrollment group (device CA)",
            r.run(*scope, "--cert", member_cert, "--key", member_key, emu=emu), 0,
            status="assigned", assignedHub="cli-x509-group-hub.azure-devices.net",
            deviceId="cli-x509-member")
    r.check("X.509 registration id is not the CN",
            r.run(*scope, "--registration-id", "cli-x509-other", "--cert", cert, "--key", key,
                  emu=emu), 2, status="error", error="DPS_ERR_INVALID_CERTIFICATE_CN",
            message=lambda m: isinstance(m, str) and '"cli-x509-other"' in m
            and '"cli-x509"' in m)
    r.check("X.509 key of another certificate",
            r.run(*scope, "--cert", cert, "--key", member_key, emu=emu), 2, status="error",
            error="DPS_ERR_INVALID_CERTIFICATE_KEY_MISMATCH")
    r.check("X.509 certificate file holds no certificate",
            r.run(*scope, "--cert", key, "--key", key, emu=emu), 2,
            error="DPS_ERR_INVALID_CERTIFICATE")
    r.check("X.509 key file holds no key",
            r.run(*scope, "--cert", cert, "--key", cert, emu=emu), 2,
            error="DPS_ERR_INVALID_PRIVATE_KEY")
    r.check("X.509 empty key file",
            r.run(*scope, "--cert", cert, "--key", os.devnull, emu=emu), 2,
            error="DPS_ERR_INVALID_PRIVATE_KEY")
    invalid = "DPS_ERR_INVALID_ARGUMENT"
    for name, args in [
        ("--cert without --key", scope + ("--cert", cert)),
        ("--key without --cert", scope + ("--key", key, "--registration-id", "x")),
        ("--cert with --symmetric-key", scope + ("--cert", cert, "--key", key,
                                                 "--symmetric-key", test_key("x"))),
        ("unreadable --cert", scope + ("--cert", "/nonexistent.pem", "--key", key)),
        ("unreadable --key", scope + ("--cert", cert, "--key", "/nonexistent.pem")),
    ]:
        r.check(f"usage: {name}", r.run(*args, raw=True), 2, status="error", error=invalid)


# ---- certificate issuance -------------------------------------------------------------------

def openssl(*args, stdin=None):
    p = subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True)
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def issuance_cases(r, emu, work):
    """--csr / --issued-cert-out: the chain the emulator issues is checked with openssl (signed
    by the emulator's device CA, CN = registration id, the CSR's public key)."""
    if shutil.which("openssl") is None:
        r.report("certificate issuance", ["openssl not found (apt-get install openssl)"])
        return
    der, pem, other = (os.path.join(work, f) for f in ("csr.der", "csr.pem", "other.der"))
    for subject, out, form in (("/CN=cli-csr", der, "DER"), ("/CN=cli-csr", pem, "PEM"),
                               ("/CN=somebody-else", other, "DER")):
        rc, _, err = openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                             "ec_paramgen_curve:P-256", "-nodes", "-keyout", out + ".key",
                             "-subj", subject, "-outform", form, "-out", out)
        if rc != 0:
            r.report("certificate issuance: openssl req", [err])
            return
    device_ca = os.path.join(os.path.dirname(emu.ca), "device-ca.pem")
    chain_file = os.path.join(work, "issued.pem")
    for form, csr in (("DER", der), ("PEM", pem)):
        if os.path.exists(chain_file):
            os.remove(chain_file)
        doc = r.check(f"issuance: {form} CSR, chain in the JSON and the file",
                      r.run(*creds("cli-csr", "--csr", csr, "--issued-cert-out", chain_file),
                            emu=emu), 0, extra_keys={"issuedCertificateChain"},
                      status="assigned", deviceId="cli-csr",
                      issuedCertificateChain=starts("-----BEGIN CERTIFICATE-----\n"))
        problems = []
        written = open(chain_file).read() if os.path.exists(chain_file) else None
        if written != doc.get("issuedCertificateChain"):
            problems.append("the file differs from the JSON's chain")
        if written is not None and written.count("-----BEGIN CERTIFICATE-----") != 2:
            problems.append("the chain is not leaf + device CA")
        rc, _, err = openssl("verify", "-CAfile", device_ca, chain_file)
        if rc != 0:
            problems.append(f"openssl verify against the device CA: {err}")
        rc, subject, _ = openssl("x509", "-in", chain_file, "-noout", "-subject", "-nameopt",
                                 "RFC2253")
        if subject != "subject=CN=cli-csr":
            problems.append(f"leaf {subject!r}, want CN=cli-csr")
        _, leaf_key, _ = openssl("x509", "-in", chain_file, "-noout", "-pubkey")
        _, csr_key, _ = openssl("pkey", "-in", csr + ".key", "-pubout")
        if not leaf_key or leaf_key != csr_key:
            problems.append("the leaf does not carry the CSR's public key")
        r.report(f"issuance: {form} CSR, issued leaf verified with openssl", problems)
    r.check("issuance: an explicit older api-version issues nothing",
            r.run(*creds("cli-csr", "--csr", der, "--api-version", "2021-06-01"), emu=emu), 0,
            extra_keys={"issuedCertificateChain"}, issuedCertificateChain=None)
    r.check("issuance: --issued-cert-out when nothing was issued",
            r.run(*creds("cli-csr", "--csr", der, "--api-version", "2021-06-01",
                         "--issued-cert-out", chain_file), emu=emu), 6,
            error="DPS_ERR_PROTOCOL_BAD_RESPONSE")
    r.check("issuance: a CSR for another name is refused by the service",
            r.run(*creds("cli-csr", "--csr", other), emu=emu), 8,
            error="DPS_ERR_REGISTRATION_REJECTED")
    for name, args, error in [
        ("unreadable CSR file", ("--csr", "/nonexistent/csr.der"), "DPS_ERR_INVALID_ARGUMENT"),
        ("not a CSR", ("--csr", device_ca), "DPS_ERR_INVALID_CSR"),
        ("--issued-cert-out without --csr", ("--issued-cert-out", chain_file),
         "DPS_ERR_INVALID_ARGUMENT"),
    ]:
        r.check(f"usage: {name}", r.run(*creds("x", *args), raw=True), 2, error=error)


class Tinyproxy:
    """Debian's tinyproxy in the foreground on a free loopback port, allowing CONNECT only to
    `connect_ports`, with basic auth when `auth` = (user, password); ready once it logs that it
    accepts connections. Use as a context manager."""

    def __init__(self, workdir, connect_ports, auth=None):
        binary = os.environ.get("TINYPROXY") or shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
        for _ in range(3):  # the free port may be taken between probing and binding
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
            conf = os.path.join(workdir, f"tinyproxy-{self.port}.conf")
            with open(conf, "w") as f:
                f.write(f"Port {self.port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\n"
                        "MaxClients 20\nAllow 127.0.0.1\nDisableViaHeader Yes\n")
                f.writelines(f"ConnectPort {p}\n" for p in connect_ports)
                if auth:
                    f.write(f"BasicAuth {auth[0]} {auth[1]}\n")
            self.proc = subprocess.Popen([binary, "-d", "-c", conf], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
            if any("Accepting connections" in line for line in self.proc.stdout):
                # Keep draining its log so that it never blocks on a full pipe.
                threading.Thread(target=lambda: [None for _ in self.proc.stdout],
                                 daemon=True).start()
                return
            self.proc.wait()
        raise RuntimeError("tinyproxy did not start")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def connection_path_cases(r, emu, work):
    """WebSocket (the emulator's wss port) and HTTP proxies (a real tinyproxy)."""
    r.check("websocket", r.run(*creds("cli-ok", "--websocket"), emu=emu, port=emu.ws_port), 0,
            status="assigned", deviceId="cli-ok")
    r.check("websocket: wrong key", r.run("--id-scope", ID_SCOPE, "--registration-id", "cli-ok",
                                          "--symmetric-key", test_key("wrong"), "--websocket",
                                          emu=emu, port=emu.ws_port), 3,
            error="DPS_ERR_AUTH_UNAUTHORIZED")
    rc, out, err, _ = r.run("--id-scope", ID_SCOPE, "--registration-id", "cli-ok",
                            "--symmetric-key", test_key("cli-ok"), "--host", "127.0.0.1",
                            "--websocket", "--timeout", "3", "--verbose", raw=True)
    r.report("websocket defaults to port 443",
             ([] if "connected to 127.0.0.1:443;" in err else ["no dial to port 443 logged"]) +
             ([] if rc != 0 else ["exit 0 with nothing on port 443"]), out, err)
    r.check("usage: --proxy without a port", r.run(*creds("cli-ok", "--proxy", "proxy"), emu=emu),
            2, error="DPS_ERR_INVALID_ARGUMENT")
    r.check("usage: --proxy-user without --proxy",
            r.run(*creds("cli-ok", "--proxy-user", "u:p"), emu=emu), 2,
            error="DPS_ERR_INVALID_ARGUMENT")
    with contextlib.ExitStack() as proxies:
        try:
            auth = proxies.enter_context(Tinyproxy(work, [emu.port, emu.ws_port],
                                                   ("dev", "s3cret")))
            plain = proxies.enter_context(Tinyproxy(work, [emu.ws_port]))
        except (OSError, RuntimeError) as e:
            r.report("proxy cases need tinyproxy (apt-get install tinyproxy)", [str(e)])
            return
        proxy = f"127.0.0.1:{auth.port}"
        r.check("proxy: 8883-style TLS through tinyproxy with basic auth",
                r.run(*creds("cli-ok", "--proxy", proxy, "--proxy-user", "dev:s3cret"), emu=emu),
                0, status="assigned", deviceId="cli-ok")
        r.check("proxy: websocket through tinyproxy with basic auth",
                r.run(*creds("cli-ok", "--websocket", "--proxy", proxy, "--proxy-user",
                             "dev:s3cret"), emu=emu, port=emu.ws_port),
                0, status="assigned")
        r.check("proxy: websocket through tinyproxy without auth",
                r.run(*creds("cli-ok", "--websocket", "--proxy", f"127.0.0.1:{plain.port}"),
                      emu=emu, port=emu.ws_port), 0, status="assigned")
        r.check("proxy: wrong password",
                r.run(*creds("cli-ok", "--proxy", proxy, "--proxy-user", "dev:wrong-pw"),
                      emu=emu), 5, error="DPS_ERR_TRANSPORT_PROXY_AUTH",
                message=lambda m: isinstance(m, str) and "wrong-pw" not in m)
        r.check("proxy: CONNECT refused (port not allowed)",
                r.run(*creds("cli-ok", "--proxy", f"127.0.0.1:{plain.port}"), emu=emu), 5,
                error="DPS_ERR_TRANSPORT_PROXY", message=lambda m: isinstance(m, str) and "403" in m)


def assignment_cases(r, emu, work):
    """--save-assignment writes the stored-assignment blob (format version 1: magic, version,
    three lengths, time, strings, CRC-32), decoded here independently of the library."""
    path = os.path.join(work, "assignment.bin")
    doc = r.check("assignment: --save-assignment after success",
                  r.run(*creds("cli-ok", "--save-assignment", path), emu=emu), 0,
                  status="assigned")
    problems = []
    blob = open(path, "rb").read() if os.path.exists(path) else b""
    if len(blob) < 20 or blob[:5] != b"DPSa\x01":
        problems.append(f"not a version 1 blob: {blob[:8]!r}")
    else:
        hub_len, dev_len, etag_len = blob[5], blob[6], blob[7]
        at = int.from_bytes(blob[8:16], "little")
        strings = blob[16:16 + hub_len + dev_len + etag_len]
        crc = int.from_bytes(blob[-4:], "little")
        if len(blob) != 20 + hub_len + dev_len + etag_len:
            problems.append("length does not match the header")
        if zlib.crc32(blob[:-4]) != crc:
            problems.append("CRC-32 mismatch")
        if strings[:hub_len].decode() != doc.get("assignedHub"):
            problems.append(f"hub {strings[:hub_len]!r}")
        if strings[hub_len:hub_len + dev_len].decode() != doc.get("deviceId"):
            problems.append(f"device id {strings[hub_len:hub_len + dev_len]!r}")
        if etag_len == 0 or abs(at - time.time()) > 120:
            problems.append(f"etag length {etag_len}, time {at}")
    if os.path.exists(path + ".tmp"):
        problems.append("the temporary file was left behind")
    r.report("assignment: the blob holds hub, device id, etag, time and a CRC", problems)
    r.check("assignment: unwritable --save-assignment",
            r.run(*creds("cli-ok", "--save-assignment", "/nonexistent/dir/a.bin"), emu=emu), 2,
            error="DPS_ERR_INVALID_ARGUMENT")
    missing = os.path.join(work, "not-written.bin")
    r.check("assignment: nothing saved when the registration fails",
            r.run(*creds("cli-failed", "--save-assignment", missing), emu=emu), 8,
            error="DPS_ERR_REGISTRATION_FAILED")
    if os.path.exists(missing):
        r.report("assignment: a failed registration writes no blob", ["file was written"])


def request_option_cases(r, emu):
    """--model-id (inside the payload), --sas-ttl, --client-version, --api-version."""
    model = "dtmi:com:example:Thermostat;1"
    r.check("--model-id goes inside the payload",
            r.run(*creds("cli-payload", "--model-id", model), emu=emu), 0,
            payload={"modelId": model})
    r.check("--model-id merged with --payload",
            r.run(*creds("cli-payload", "--model-id", model, "--payload", '{"site":"b","n":[1]}'),
                  emu=emu), 0, payload={"modelId": model, "site": "b", "n": [1]})
    r.check("--model-id with a payload that has its own modelId",
            r.run(*creds("cli-payload", "--model-id", model,
                          "--payload", '{"modelId":"dtmi:other;1"}'), emu=emu), 2,
            error="DPS_ERR_INVALID_PAYLOAD", message=lambda m: "modelId" in m)
    r.check("--model-id that is not a DTMI", r.run(*creds("cli-ok", "--model-id", "Thermostat"),
                                                   emu=emu), 2, error="DPS_ERR_INVALID_MODEL_ID")
    r.check("--sas-ttl within range", r.run(*creds("cli-ok", "--sas-ttl", "7200"), emu=emu), 0,
            status="assigned")
    r.check("--client-version", r.run(*creds("cli-ok", "--client-version", "contoso-fw/2.4 (x)"),
                                      emu=emu), 0, status="assigned")
    r.check("--api-version 2021-06-01", r.run(*creds("cli-ok", "--api-version", "2021-06-01"),
                                              emu=emu), 0, status="assigned")
    for name, args in [
        ("--sas-ttl below 60", creds("x", "--sas-ttl", "59")),
        ("--sas-ttl above 30 days", creds("x", "--sas-ttl", "2592001")),
        ("--sas-ttl not a number", creds("x", "--sas-ttl", "1h")),
        ("empty --client-version", creds("x", "--client-version", "")),
        ("--api-version not a date", creds("x", "--api-version", "2019-3-31")),
    ]:
        r.check(f"usage: {name}", r.run(*args, raw=True), 2, status="error",
                error="DPS_ERR_INVALID_ARGUMENT")


# ---- the option table and the messages that name what is wrong ----------------------------

def load_option_table():
    """python/dps_mqtt/_options.py, by path: the one definition of every option."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "python",
                        "dps_mqtt", "_options.py")
    spec = importlib.util.spec_from_file_location("_options", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def option_table_cases(r, emu, program="dps_register"):
    """--help is the table's usage text, and every example value of the table is accepted
    (valid: assigned by the emulator) or refused before dialling with a message that starts
    with the flag (invalid: exit 2): a new option is tested by its table entry alone."""
    table = load_option_table()
    rc, out, err, _ = r.run("--help", raw=True)
    want = table.usage(program, program)
    r.report("--help is the option table's usage text",
             [] if rc == 0 and out == want else [f"exit {rc}, or the text differs from the table"],
             out, err)
    for option in table.for_program(program):
        for value in option.valid:
            r.check(f"table: {option.flag} {value!r} is accepted",
                    r.run(*creds("cli-ok", option.flag, value), emu=emu), 0, status="assigned")
        for value in option.invalid:
            r.check(f"table: {option.flag} {value!r} is refused before dialling",
                    r.run(*creds("x", option.flag, value), raw=True), 2, status="error",
                    message=starts(option.flag))


def hint_cases(r, emu):
    """The failure says what to do: "hint" after "message" in the JSON, and with --verbose the
    error and the hint on stderr."""
    wrong = ("--id-scope", ID_SCOPE, "--registration-id", "cli-ok",
             "--symmetric-key", test_key("wrong"))
    hint = "check key vs group key, the registration id and the device clock"
    rc, out, err, elapsed = r.run(*wrong, emu=emu)
    doc = r.check("hint: in the JSON, after the message", (rc, out, err, elapsed), 3,
                  error="DPS_ERR_AUTH_UNAUTHORIZED", hint=hint)
    r.report("hint: the JSON's keys in order",
             [] if list(doc)[:4] == ["status", "error", "message", "hint"] else [str(list(doc))],
             out, err)
    r.report("hint: not on stderr without --verbose", [] if "hint:" not in err else [err], out,
             err)
    rc, out, err, elapsed = r.run(*wrong, "--verbose", emu=emu)
    r.check("hint: --verbose keeps the JSON", (rc, out, err, elapsed), 3, hint=hint)
    problems = []
    if f"dps_register: hint: {hint}\n" not in err:
        problems.append("no hint line")
    if "dps_register: error: DPS_ERR_AUTH_UNAUTHORIZED: " not in err:
        problems.append("no error line")
    r.report("hint: --verbose prints the error and its hint on stderr", problems, out, err)


def message_cases(r, work):
    r.check("a misspelt flag is named, with the nearest one",
            r.run(*creds("x", "--regstration-id", "y"), raw=True), 2,
            error="DPS_ERR_INVALID_ARGUMENT",
            message="unknown option --regstration-id (did you mean --registration-id?) "
                    "(see --help)")
    r.check("an unknown flag far from any is named alone",
            r.run(*creds("x", "--frobnicate", "1"), raw=True), 2,
            message="unknown option --frobnicate (see --help)")
    not_pem = os.path.join(work, "not-a-ca.pem")
    with open(not_pem, "w") as f:
        f.write("not a certificate\n")
    r.check("a CA file that is not PEM is named",
            r.run(*creds("x", "--ca-file", not_pem), raw=True), 2,
            error="DPS_ERR_INVALID_CERTIFICATE",
            message=starts(f"--ca-file {not_pem}: no PEM certificate in it ("))
    rc, out, err, _ = r.run("--help", raw=True)
    r.report("--help lists exit 9", [] if rc == 0 and "9 internal error" in out else
             [f"exit {rc}, or no exit 9 in the text"], out, err)


def valgrind_cases(r, emu, work):
    r.check("valgrind: symmetric key", r.run(*creds("cli-ok"), emu=emu, timeout=60), 0,
            status="assigned")
    r.check("valgrind: wrong key", r.run("--id-scope", ID_SCOPE, "--registration-id", "cli-ok",
                                         "--symmetric-key", test_key("wrong"), emu=emu,
                                         timeout=60), 3, error="DPS_ERR_AUTH_UNAUTHORIZED")
    r.check("valgrind: usage error", r.run(*creds("bad id!"), emu=emu), 2,
            error="DPS_ERR_INVALID_REGISTRATION_ID")
    cert, key = emu.issue_device_cert("cli-x509", work)
    r.check("valgrind: X.509", r.run("--id-scope", ID_SCOPE, "--cert", cert, "--key", key,
                                     emu=emu, timeout=60), 0, deviceId="cli-x509")
    r.check("valgrind: X.509 CN mismatch",
            r.run("--id-scope", ID_SCOPE, "--registration-id", "other", "--cert", cert,
                  "--key", key, emu=emu), 2, error="DPS_ERR_INVALID_CERTIFICATE_CN")
    r.check("valgrind: --save-assignment",
            r.run(*creds("cli-ok", "--save-assignment", os.path.join(work, "a.bin")), emu=emu,
                  timeout=60), 0, status="assigned")
    with Tinyproxy(work, [emu.ws_port], ("dev", "s3cret")) as proxy:
        r.check("valgrind: websocket through a proxy with basic auth",
                r.run(*creds("cli-ok", "--websocket", "--proxy", f"[127.0.0.1]:{proxy.port}",
                             "--proxy-user", "dev:s3cret"), emu=emu, port=emu.ws_port,
                      timeout=60), 0, status="assigned")


def runner_from_command_line(cli_help):
    """The options every CLI test script takes (--cli, --emulator, --valgrind, --suppressions)
    and a Runner for that CLI, wrapped in valgrind when asked."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True, help=cli_help)
    ap.add_argument("--emulator", required=True)
    ap.add_argument("--valgrind", help="run a few cases under this valgrind binary")
    ap.add_argument("--suppressions", help="valgrind suppression file")
    args = ap.parse_args()
    wrapper = ()
    if args.valgrind:
        wrapper = (args.valgrind, "--quiet", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite")
        if args.suppressions:
            wrapper += (f"--suppressions={args.suppressions}",)
    return args, Runner(args.cli, wrapper)


def main():
    args, r = runner_from_command_line("the dps_register binary")
    work = tempfile.mkdtemp(prefix="dps-cli-test-")
    try:
        with Emulator(args.emulator, os.path.join(work, "a"), ENROLLMENTS,
                      ["--ws-port", "0"]) as emu:
            if args.valgrind:
                valgrind_cases(r, emu, work)
            else:
                with Emulator(args.emulator, os.path.join(work, "b"), ENROLLMENTS,
                              ["--auth-failure", "connack"]) as connack:
                    contract_cases(r, emu, connack)
                usage_cases(r, emu)
                verbose_case(r, emu)
                x509_cases(r, emu, work)
                issuance_cases(r, emu, work)
                connection_path_cases(r, emu, work)
                assignment_cases(r, emu, work)
                request_option_cases(r, emu)
                option_table_cases(r, emu)
                message_cases(r, work)
                hint_cases(r, emu)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{r.passed} passed, {r.failed} failed")
    return 0 if r.failed == 0 and r.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
