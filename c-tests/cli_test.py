#!/usr/bin/env python3
"""The dps_register CLI against the real emulator: JSON on stdout and exit codes per the
contract (0 assigned, 2 invalid, 3 auth, 4 TLS, 5 transport, 6 protocol, 7 timeout,
8 registration failed/disabled). Run by CTest; exits non-zero when a check fails."""

import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

SCOPE = "0ne00000001"


def key(name: str) -> str:
    return base64.b64encode(hashlib.sha256(name.encode()).digest()).decode()


def derived(group_key: str, reg_id: str) -> str:
    raw = hmac.new(base64.b64decode(group_key), reg_id.encode(), hashlib.sha256).digest()
    return base64.b64encode(raw).decode()


def enrollment(reg_id: str, **knobs) -> dict:
    e = {
        "registrationId": reg_id,
        "attestation": {"type": "symmetricKey", "primaryKey": key(reg_id)},
        "assignedHub": "cli-hub.azure-devices.net",
        "retryAfter": 0,
    }
    e.update(knobs)
    return e


ENROLLMENTS = {
    "idScope": SCOPE,
    "enrollments": [
        enrollment("cli-ok"),
        enrollment("cli-payload"),
        enrollment("cli-polls", assignAfterPolls=2, retryAfter=1),
        enrollment("cli-throttled", throttleFirst=2),
        enrollment("cli-failed", outcome="failed", errorCode=400209, errorMessage="custom allocation failed"),
        enrollment("cli-disabled", outcome="disabled"),
        enrollment("cli-slow", assignAfterPolls=1000000, retryAfter=1),
        enrollment("cli-verbose", assignAfterPolls=1),
    ],
    "groups": [
        {
            "groupId": "cli-group",
            "attestation": {"type": "symmetricKey", "primaryKey": key("cli-group")},
            "assignedHub": "cli-group-hub.azure-devices.net",
            "retryAfter": 0,
        }
    ],
}


class Emulator:
    def __init__(self, binary: str, workdir: str, extra=()):
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, "enrollments.json")
        with open(path, "w") as f:
            json.dump(ENROLLMENTS, f)
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--cert-dir", os.path.join(workdir, "certs"),
             "--enrollments", path, *extra],
            stdout=subprocess.PIPE, text=True)
        self.port = None
        self.ca = None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("dps-emulator: listening mqtts "):
                self.port = int(line.rsplit(":", 1)[1])
            elif line.startswith("dps-emulator: CA certificate: "):
                self.ca = line.split(": ", 2)[2]
            elif line == "dps-emulator: ready":
                break
        if self.port is None or self.ca is None:
            raise RuntimeError("emulator did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Runner:
    def __init__(self, cli: str, emu: Emulator):
        self.cli, self.emu = cli, emu
        self.passed, self.failed = 0, 0

    def run(self, *args, ca=True, port=None, timeout=20, emu=None):
        emu = emu or self.emu
        cmd = [self.cli, "--host", "localhost", "--port", str(port or emu.port),
               "--timeout", str(timeout)]
        if ca:
            cmd += ["--ca-file", emu.ca]
        cmd += list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30)
        return p.returncode, p.stdout, p.stderr

    def check(self, name, result, code, **expect):
        rc, out, err = result
        problems = []
        if rc != code:
            problems.append(f"exit {rc}, want {code}")
        try:
            doc = json.loads(out)
            if out.strip().count("\n") != 0:
                problems.append("stdout is not exactly one line of JSON")
        except ValueError:
            doc = {}
            problems.append(f"stdout is not JSON: {out!r}")
        for k, v in expect.items():
            got = doc.get(k)
            if callable(v):
                if not v(got):
                    problems.append(f"{k}={got!r} fails its check")
            elif got != v:
                problems.append(f"{k}={got!r}, want {v!r}")
        if problems:
            self.failed += 1
            print(f"FAIL {name}: {'; '.join(problems)}\n  stdout: {out}\n  stderr: {err[-2000:]}")
        else:
            self.passed += 1
            print(f"ok   {name}")
        return doc


def reg(reg_id, *extra):
    return ("--id-scope", SCOPE, "--registration-id", reg_id, "--symmetric-key", key(reg_id), *extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--emulator", required=True)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dps-cli-test-")
    emu = Emulator(args.emulator, work)
    try:
        connack = Emulator(args.emulator, os.path.join(work, "connack"), ["--auth-failure", "connack"])
    except BaseException:
        emu.stop()
        raise
    r = Runner(args.cli, emu)
    try:
        r.check("symmetric key", r.run(*reg("cli-ok")), 0, status="assigned",
                assignedHub="cli-hub.azure-devices.net", deviceId="cli-ok",
                substatus="initialAssignment", payload=None)
        r.check("group key", r.run("--id-scope", SCOPE, "--registration-id", "cli-member-1",
                                   "--group-key", key("cli-group")), 0,
                status="assigned", assignedHub="cli-group-hub.azure-devices.net",
                deviceId="cli-member-1")
        r.check("custom payload round trip",
                r.run(*reg("cli-payload", "--payload", '{"modelId":"dtmi:x;1","n":[1,2,"\\u00e9"]}')), 0,
                payload={"modelId": "dtmi:x;1", "n": [1, 2, "\u00e9"]})
        r.check("retry-after polling", r.run(*reg("cli-polls")), 0, status="assigned")
        r.check("throttled then assigned", r.run(*reg("cli-throttled")), 0, status="assigned")
        r.check("failed", r.run(*reg("cli-failed")), 8, status="failed",
                error="DPS_ERR_REGISTRATION_FAILED", errorCode=400209,
                message=lambda m: isinstance(m, str) and "custom allocation failed" in m)
        r.check("disabled", r.run(*reg("cli-disabled")), 8, status="disabled",
                error="DPS_ERR_REGISTRATION_DISABLED")
        r.check("wrong key (401)", r.run("--id-scope", SCOPE, "--registration-id", "cli-ok",
                                         "--symmetric-key", key("wrong")), 3,
                status="error", error="DPS_ERR_AUTH_UNAUTHORIZED", errorCode=401002,
                trackingId=lambda t: isinstance(t, str) and len(t) > 0)
        r.check("wrong key (CONNACK 5)", r.run("--id-scope", SCOPE, "--registration-id", "cli-ok",
                                               "--symmetric-key", key("wrong"), emu=connack), 3,
                error="DPS_ERR_AUTH_NOT_AUTHORIZED")
        r.check("unknown id scope", r.run("--id-scope", "0ne99999999", "--registration-id", "cli-ok",
                                          "--symmetric-key", key("cli-ok")), 3,
                error="DPS_ERR_AUTH_UNKNOWN_ID_SCOPE")
        r.check("untrusted CA", r.run(*reg("cli-ok"), ca=False), 4,
                error=lambda e: isinstance(e, str) and e.startswith("DPS_ERR_TLS"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed_port = s.getsockname()[1]
        r.check("nothing listening", r.run(*reg("cli-ok"), port=closed_port), 5,
                error="DPS_ERR_TRANSPORT_CONNECT")
        r.check("deadline while assigning", r.run(*reg("cli-slow"), timeout=2), 7,
                status="error", error="DPS_ERR_TIMEOUT_ASSIGNING")
        r.check("usage: no key", r.run("--id-scope", SCOPE, "--registration-id", "x"), 2,
                error="DPS_ERR_INVALID_ARGUMENT")
        r.check("usage: both keys", r.run(*reg("x"), "--group-key", key("g")), 2,
                error="DPS_ERR_INVALID_ARGUMENT")
        r.check("usage: unknown flag", r.run(*reg("x"), "--frobnicate", "1"), 2,
                error="DPS_ERR_INVALID_ARGUMENT")
        r.check("usage: bad port", r.run(*reg("x"), port="99999"), 2, error="DPS_ERR_INVALID_ARGUMENT")
        r.check("invalid registration id", r.run(*reg("bad id!")), 2,
                error="DPS_ERR_INVALID_REGISTRATION_ID")
        r.check("invalid key", r.run("--id-scope", SCOPE, "--registration-id", "x",
                                     "--symmetric-key", "not base64!"), 2, error="DPS_ERR_INVALID_KEY")
        r.check("invalid payload", r.run(*reg("x", "--payload", "{nope")), 2,
                error="DPS_ERR_INVALID_PAYLOAD")
        rc, out, err = r.run(*reg("cli-verbose", "--verbose"))
        doc = r.check("verbose run", (rc, out, err), 0, status="assigned")
        sig_material = key("cli-verbose")
        leaks = [s for s in (sig_material, "SharedAccessSignature", "sig=") if s in err or s in out]
        if "status: assigned" not in err or leaks:
            r.failed += 1
            print(f"FAIL verbose log: leaks={leaks}, stderr={err[-1000:]}")
        else:
            r.passed += 1
            print("ok   verbose log has progress and no key or token")
        del doc
    finally:
        emu.stop()
        connack.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{r.passed} passed, {r.failed} failed")
    return 0 if r.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
