"""The Python CLI and the C CLI (dps_register, given by DPS_REGISTER_CLI; tools/test.sh passes
CMake's build) answer the same command lines with the same exit code and the same JSON (the
message text aside, and the trackingId, which differs per request)."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ID_SCOPE, test_key

C_CLI = os.environ.get("DPS_REGISTER_CLI")

pytestmark = pytest.mark.skipif(not C_CLI, reason="DPS_REGISTER_CLI is not set")


def both(emulator, *args: str, connect: bool = True):
    common = []
    if connect:
        common = ["--host", "localhost", "--port", str(emulator.port), "--ca-file",
                  emulator.ca_file, "--timeout", "20"]
    results = []
    for cmd in ([C_CLI], [sys.executable, "-m", "dps_mqtt", "register"]):
        p = subprocess.run([*cmd, *common, *args], capture_output=True, text=True, timeout=80)
        doc = json.loads(p.stdout)
        doc.pop("trackingId", None)
        doc.pop("message", None)
        results.append((p.returncode, doc))
    return results


def creds(reg_id: str, *extra: str):
    return ("--id-scope", ID_SCOPE, "--registration-id", reg_id, "--symmetric-key",
            test_key(reg_id), *extra)


@pytest.mark.parametrize("args", [
    creds("py-ok"),
    creds("py-migrated"),
    creds("py-service-payload"),
    creds("py-payload", "--payload", '{"a":[1,2.5,null,"\\u00e9"],"b":{"c":true}}'),
    ("--id-scope", ID_SCOPE, "--registration-id", "py-parity", "--group-key",
     test_key("py-group")),
    creds("py-failed"),
    creds("py-disabled"),
    ("--id-scope", ID_SCOPE, "--registration-id", "py-ok", "--symmetric-key", test_key("x")),
    creds("bad id!"),
    creds("py-ok", "--payload", "{nope"),
    creds("py-ok", "--save-assignment", "/nonexistent/dir/a.bin"),
    creds("py-failed", "--save-assignment", "/nonexistent/dir/a.bin"),
])
def test_same_answer(emulator, args) -> None:
    c, py = both(emulator, *args)
    assert c == py


@pytest.mark.parametrize("args", [
    (), creds("x", "--port", "0"), creds("x", "--timeout", "soon"), creds("x", "--frobnicate"),
    ("--id-scope", ID_SCOPE, "--symmetric-key", test_key("x")),
])
def test_same_usage_errors(emulator, args) -> None:
    c, py = both(emulator, *args, connect=False)
    assert c == py


def test_same_x509_answer(emulator) -> None:
    c, py = both(emulator, "--id-scope", ID_SCOPE, "--cert", emulator.x509_cert, "--key",
                 emulator.x509_key)
    assert c == py and c[0] == 0
