#!/usr/bin/env python3
"""dps_register_offload (TLS done by OpenSSL in the transport hooks, the library sending MQTT in
the clear) against the real emulator: the same output contract and exit codes as the
dps_register CLI (see cli_test.py, whose checks this reuses), for the scenarios that matter
when the transport owns TLS. Run by CTest, against the normal library and against one built
without rustls; exits non-zero when a check fails.

With --valgrind, runs a success and a failure under valgrind instead."""

import json
import os
import shutil
import sys
import tempfile

from cli_test import creds, enrollment, refused_port, runner_from_command_line, starts
from emulator import ID_SCOPE, Emulator, test_key

ENROLLMENTS = {
    "idScope": ID_SCOPE,
    "enrollments": [
        enrollment("offload-ok"),
        enrollment("offload-payload"),
        enrollment("offload-polls", assignAfterPolls=2, retryAfter=0),
        enrollment("offload-dropped", dropAfterBytes=40, assignAfterPolls=1),
        dict(enrollment("offload-x509"), attestation={"type": "x509"}),
        dict(enrollment("offload-x509-other"), attestation={"type": "x509"}),
    ],
    "groups": [
        {
            "groupId": "offload-group",
            "attestation": {"type": "symmetricKey", "primaryKey": test_key("offload-group")},
            "assignedHub": "offload-group-hub.azure-devices.net",
            "retryAfter": 0,
        }
    ],
}


def contract_cases(r, emu):
    r.check("symmetric key", r.run(*creds("offload-ok"), emu=emu), 0, status="assigned",
            assignedHub="cli-hub.azure-devices.net", deviceId="offload-ok",
            substatus="initialAssignment", payload=None)
    r.check("group key", r.run("--id-scope", ID_SCOPE, "--registration-id", "offload-member",
                               "--group-key", test_key("offload-group"), emu=emu), 0,
            status="assigned", assignedHub="offload-group-hub.azure-devices.net",
            deviceId="offload-member")
    r.check("assigned after polling", r.run(*creds("offload-polls"), emu=emu), 0,
            status="assigned")
    r.check("websocket inside the hooks' TLS",
            r.run(*creds("offload-ok", "--websocket"), emu=emu, port=emu.ws_port), 0,
            status="assigned", deviceId="offload-ok")
    r.check("websocket: wrong key", r.run("--id-scope", ID_SCOPE, "--registration-id",
                                          "offload-ok", "--symmetric-key", test_key("wrong"),
                                          "--websocket", emu=emu, port=emu.ws_port), 3,
            error="DPS_ERR_AUTH_UNAUTHORIZED")
    # The server hangs up mid-session without close_notify: the hooks report a closed
    # connection (not a TLS failure), and the library reconnects and finishes.
    r.check("server drops the connection, reconnect", r.run(*creds("offload-dropped"), emu=emu),
            0, status="assigned")
    sent = {"modelId": "dtmi:com:example:Thermostat;1", "s": "q\"b\\n\u00e9", "n": [1, -2.5e3, None]}
    r.check("custom payload round trip",
            r.run(*creds("offload-payload", "--payload", json.dumps(sent)), emu=emu), 0,
            payload=sent)
    r.check("wrong key: auth error", r.run("--id-scope", ID_SCOPE, "--registration-id",
                                           "offload-ok", "--symmetric-key", test_key("wrong"),
                                           emu=emu), 3,
            status="error", error="DPS_ERR_AUTH_UNAUTHORIZED", errorCode=401002)
    # The system's roots do not include the emulator's CA: OpenSSL refuses the server, the
    # hook says so with -DPS_ERR_TLS_CERT_UNTRUSTED, and the attempt ends without retrying.
    r.check("untrusted CA (system roots only)", r.run(*creds("offload-ok"), emu=emu, ca=False),
            4, status="error", error="DPS_ERR_TLS_CERT_UNTRUSTED")
    with refused_port() as s:
        r.check("nothing listening", r.run(*creds("offload-ok"), emu=emu, host="127.0.0.1",
                                           port=s.getsockname()[1]), 5,
                status="error", error=starts("DPS_ERR_TRANSPORT"))
    r.check("host name does not resolve",
            r.run(*creds("offload-ok"), emu=emu, host="no-such-host.invalid"), 5,
            error=starts("DPS_ERR_TRANSPORT"))


def x509_cases(r, emu, work):
    """X.509 with the certificate presented by OpenSSL, not the library: no SAS password."""
    cert, key = emu.issue_device_cert("offload-x509", work)
    x509 = ("--id-scope", ID_SCOPE, "--cert", cert, "--key", key)
    r.check("X.509 by the transport", r.run(*x509, "--registration-id", "offload-x509", emu=emu),
            0, status="assigned", deviceId="offload-x509")
    r.check("X.509: certificate CN is another device's",
            r.run(*x509, "--registration-id", "offload-x509-other", emu=emu), 3,
            error=starts("DPS_ERR_AUTH"))
    r.check("usage: --key does not match --cert",
            r.run(*x509, "--registration-id", "x", "--key", os.devnull, raw=True), 2,
            error="DPS_ERR_INVALID_CERTIFICATE")


def usage_cases(r):
    for name, args, error in [
        ("no key", ("--id-scope", ID_SCOPE, "--registration-id", "x"), "DPS_ERR_INVALID_ARGUMENT"),
        ("--cert without --key", creds("x", "--cert", os.devnull), "DPS_ERR_INVALID_ARGUMENT"),
        ("unreadable CA file", creds("x", "--ca-file", "/nonexistent/ca.pem"),
         "DPS_ERR_INVALID_ARGUMENT"),
        ("CA file without certificates", creds("x", "--ca-file", os.devnull),
         "DPS_ERR_INVALID_CERTIFICATE"),
        ("invalid registration id", creds("bad id!"), "DPS_ERR_INVALID_REGISTRATION_ID"),
    ]:
        r.check(f"usage: {name}", r.run(*args, raw=True), 2, status="error", error=error)


def verbose_case(r, emu):
    key = test_key("offload-ok")
    rc, out, err, elapsed = r.run(*creds("offload-ok", "--verbose"), emu=emu)
    r.check("verbose run", (rc, out, err, elapsed), 0, status="assigned")
    problems = [f"output contains {leak!r}" for leak in (key, key[:16], "SharedAccessSignature")
                if leak in err or leak in out]
    if "TLS: TLSv1." not in err:
        problems.append("stderr does not show the hooks' TLS handshake")
    r.report("verbose shows the hooks' TLS, never a key or a token", problems, out, err)


def main():
    args, r = runner_from_command_line("the dps_register_offload binary")
    work = tempfile.mkdtemp(prefix="dps-offload-test-")
    try:
        with Emulator(args.emulator, os.path.join(work, "a"), ENROLLMENTS,
                      ["--ws-port", "0"]) as emu:
            if args.valgrind:
                r.check("valgrind: symmetric key", r.run(*creds("offload-ok"), emu=emu,
                                                         timeout=60), 0, status="assigned")
                r.check("valgrind: wrong key",
                        r.run("--id-scope", ID_SCOPE, "--registration-id", "offload-ok",
                              "--symmetric-key", test_key("wrong"), emu=emu, timeout=60), 3,
                        error="DPS_ERR_AUTH_UNAUTHORIZED")
                r.check("valgrind: untrusted CA", r.run(*creds("offload-ok"), emu=emu,
                                                        ca=False, timeout=60), 4,
                        error="DPS_ERR_TLS_CERT_UNTRUSTED")
            else:
                contract_cases(r, emu)
                x509_cases(r, emu, work)
                usage_cases(r)
                verbose_case(r, emu)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{r.passed} passed, {r.failed} failed")
    return 0 if r.failed == 0 and r.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
