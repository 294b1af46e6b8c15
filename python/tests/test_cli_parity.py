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
MODEL = "dtmi:com:example:Thermostat;1"

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
    creds("py-model", "--model-id", MODEL),
    creds("py-model", "--model-id", MODEL, "--payload", '{"site":"b","n":[1]}'),
    creds("py-model", "--model-id", MODEL, "--payload", '{"modelId":"dtmi:other;1"}'),
    creds("py-model", "--model-id", MODEL, "--payload", "[1]"),
    creds("py-ok", "--model-id", "Thermostat"),
    creds("py-sas-ttl", "--sas-ttl", "60"),
    creds("py-sas-ttl", "--sas-ttl", "2592000"),
    creds("py-ok", "--client-version", "contoso-fw/2.4 (x)"),
    creds("py-ok", "--client-version", "a\tb"),
    creds("py-ok", "--client-version", "x" * 257),
    creds("py-ok", "--api-version", "2021-06-01"),
    ("--id-scope", ID_SCOPE, "--cert", "/nonexistent.pem", "--key", "/nonexistent.key"),
])
def test_same_answer(emulator, args) -> None:
    c, py = both(emulator, *args)
    assert c == py


@pytest.mark.parametrize("args", [
    (), creds("x", "--port", "0"), creds("x", "--timeout", "soon"), creds("x", "--frobnicate"),
    creds("x", "--sas-ttl", "59"), creds("x", "--sas-ttl", "2592001"),
    creds("x", "--sas-ttl", "1h"), creds("x", "--sas-ttl", "-60"),
    creds("x", "--sas-ttl", "99999999999999999999999"), creds("x", "--client-version", ""),
    creds("x", "--model-id"), creds("x", "--api-version", "2019-3-31"),
    ("--id-scope", ID_SCOPE, "--symmetric-key", test_key("x")),
])
def test_same_usage_errors(emulator, args) -> None:
    c, py = both(emulator, *args, connect=False)
    assert c == py


def test_same_x509_answer(emulator) -> None:
    c, py = both(emulator, "--id-scope", ID_SCOPE, "--cert", emulator.x509_cert, "--key",
                 emulator.x509_key)
    assert c == py and c[0] == 0


def test_same_x509_answer_with_request_details(emulator) -> None:
    c, py = both(emulator, "--id-scope", ID_SCOPE, "--cert", emulator.x509_cert, "--key",
                 emulator.x509_key, "--model-id", MODEL, "--client-version", "fw/1",
                 "--sas-ttl", "120")
    assert c == py and c[0] == 0 and c[1]["payload"] == {"modelId": MODEL}


def test_same_answer_over_websocket(emulator) -> None:
    if emulator.ws_port is None:
        pytest.fail("the emulator has no WebSocket port")
    c, py = both(emulator, *creds("py-model", "--model-id", MODEL), "--websocket", "--port",
                 str(emulator.ws_port))
    assert c == py and c[0] == 0 and c[1]["payload"] == {"modelId": MODEL}


def test_same_answers_through_a_proxy(emulator, proxies) -> None:
    with_auth, _ = proxies
    proxy = ("--proxy", f"127.0.0.1:{with_auth.port}")
    for extra, code in [(("--proxy-user", "dev:s3cret"), 0), (("--proxy-user", "dev:wrong"), 5),
                        ((), 5)]:
        c, py = both(emulator, *creds("py-ok"), *proxy, *extra)
        assert c == py and c[0] == code, (extra, c, py)


def test_same_answer_with_a_csr(emulator, tmp_path) -> None:
    from test_signing_issuance_offload import make_csr

    c, py = both(emulator, *creds("py-csr", "--csr", make_csr(tmp_path, "py-csr", "PEM")))
    for _, doc in (c, py):  # a new certificate each time: compare its presence only
        assert doc.pop("issuedCertificateChain").count("-----BEGIN CERTIFICATE-----") == 2
    assert c == py and c[0] == 0
    c, py = both(emulator, *creds("py-csr", "--csr", "/nonexistent.csr"))
    assert c == py and c[0] == 2
