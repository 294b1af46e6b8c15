"""The Python CLI and the C CLI (dps_register, given by DPS_REGISTER_CLI; tools/test.sh passes
CMake's build) answer the same command lines with the same exit code and the same JSON (the
message text aside, and the trackingId, which differs per request), take the same flags with
the same defaults (the option table's), and the files generated from that table are fresh.
A missing C CLI fails these tests: a parity that is not checked must not pass."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ID_SCOPE, test_key

from dps_mqtt import _options

MODEL = "dtmi:com:example:Thermostat;1"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def c_cli() -> str:
    path = os.environ.get("DPS_REGISTER_CLI")
    if not path:
        pytest.fail("DPS_REGISTER_CLI is not set: point it at CMake's build/c-examples/"
                    "dps_register (tools/test.sh does)")
    if not os.access(path, os.X_OK):
        pytest.fail(f"DPS_REGISTER_CLI={path} is not an executable")
    return path


def run_both(c_cli: str, *args: str):
    """(exit code, stdout, stderr) of the C CLI and of the Python CLI."""
    out = []
    for cmd in ([c_cli], [sys.executable, "-m", "dps_mqtt", "register"]):
        p = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=80)
        out.append((p.returncode, p.stdout, p.stderr))
    return out


@pytest.fixture
def both(c_cli):
    def run(emulator, *args: str, connect: bool = True):
        common = []
        if connect:
            common = ["--host", "localhost", "--port", str(emulator.port), "--ca-file",
                      emulator.ca_file, "--timeout", "20"]
        results = []
        for rc, stdout, _ in run_both(c_cli, *common, *args):
            doc = json.loads(stdout)
            doc.pop("trackingId", None)
            doc.pop("message", None)
            results.append((rc, doc))
        return results
    return run


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
def test_same_answer(both, emulator, args) -> None:
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
def test_same_usage_errors(both, emulator, args) -> None:
    c, py = both(emulator, *args, connect=False)
    assert c == py


def test_same_x509_answer(both, emulator) -> None:
    c, py = both(emulator, "--id-scope", ID_SCOPE, "--cert", emulator.x509_cert, "--key",
                 emulator.x509_key)
    assert c == py and c[0] == 0


def test_same_x509_answer_with_request_details(both, emulator) -> None:
    c, py = both(emulator, "--id-scope", ID_SCOPE, "--cert", emulator.x509_cert, "--key",
                 emulator.x509_key, "--model-id", MODEL, "--client-version", "fw/1",
                 "--sas-ttl", "120")
    assert c == py and c[0] == 0 and c[1]["payload"] == {"modelId": MODEL}


def test_same_answer_over_websocket(both, emulator) -> None:
    if emulator.ws_port is None:
        pytest.fail("the emulator has no WebSocket port")
    c, py = both(emulator, *creds("py-model", "--model-id", MODEL), "--websocket", "--port",
                 str(emulator.ws_port))
    assert c == py and c[0] == 0 and c[1]["payload"] == {"modelId": MODEL}


def test_same_answers_through_a_proxy(both, emulator, proxies) -> None:
    with_auth, _ = proxies
    proxy = ("--proxy", f"127.0.0.1:{with_auth.port}")
    for extra, code in [(("--proxy-user", "dev:s3cret"), 0), (("--proxy-user", "dev:wrong"), 5),
                        ((), 5)]:
        c, py = both(emulator, *creds("py-ok"), *proxy, *extra)
        assert c == py and c[0] == code, (extra, c, py)


def test_same_answer_with_a_csr(both, emulator, tmp_path) -> None:
    from test_signing_issuance_offload import make_csr

    c, py = both(emulator, *creds("py-csr", "--csr", make_csr(tmp_path, "py-csr", "PEM")))
    for _, doc in (c, py):  # a new certificate each time: compare its presence only
        assert doc.pop("issuedCertificateChain").count("-----BEGIN CERTIFICATE-----") == 2
    assert c == py and c[0] == 0
    c, py = both(emulator, *creds("py-csr", "--csr", "/nonexistent.csr"))
    assert c == py and c[0] == 2


def option_lines(usage: str) -> str:
    """The options part of a --help text: between the description and the results."""
    start = usage.index("\n  --")
    return usage[start:usage.index("\nOn success")]


def test_same_flags_and_defaults(c_cli) -> None:
    (c_rc, c_help, _), (py_rc, py_help, _) = run_both(c_cli, "--help")
    assert c_rc == py_rc == 0
    assert option_lines(c_help) == option_lines(py_help)
    assert c_help == _options.usage("dps_register", "dps_register")
    assert [o.flag for o in _options.for_program("dps_register")] == \
        [o.flag for o in _options.for_program("python")]


@pytest.mark.parametrize("option,value", [
    (o, v) for o in _options.for_program("python") for v in o.valid])
def test_same_answer_for_the_tables_valid_values(both, emulator, option, value) -> None:
    c, py = both(emulator, *creds("py-ok", option.flag, value))
    assert c == py and c[0] == 0


@pytest.mark.parametrize("option,value", [
    (o, v) for o in _options.for_program("python") for v in o.invalid])
def test_same_answer_for_the_tables_invalid_values(c_cli, option, value) -> None:
    results = run_both(c_cli, *creds("x", option.flag, value))
    (c_rc, c_out, _), (py_rc, py_out, _) = results
    c, py = json.loads(c_out), json.loads(py_out)
    assert c_rc == py_rc == 2 and c["error"] == py["error"], results
    assert c["message"].startswith(option.flag) and py["message"].startswith(option.flag)


def python_value(option, text: str):
    """The table's command-line example as the Python keyword's value: a number for a number
    that is written as one, the text otherwise (which the keyword must then refuse)."""
    return int(text) if option.kind in _options.TYPE_MAX and text.isdigit() else text


KEYWORD_EXAMPLES = [o for o in _options.OPTIONS if o.keyword]


@pytest.mark.parametrize("option,value", [
    (o, v) for o in KEYWORD_EXAMPLES for v in o.valid])
def test_the_python_keyword_takes_the_tables_valid_values(emulator, option, value) -> None:
    from dps_mqtt import ProvisioningClient

    with ProvisioningClient.create_from_symmetric_key(
            "localhost", "py-ok", ID_SCOPE, test_key("py-ok"),
            **emulator.kwargs(**{option.python: python_value(option, value)})) as client:
        assert client.register().status == "assigned"


@pytest.mark.parametrize("option,value", [
    (o, v) for o in KEYWORD_EXAMPLES for v in o.invalid])
def test_the_python_keyword_refuses_the_tables_invalid_values(option, value) -> None:
    from dps_mqtt import InvalidArgumentError, ProvisioningClient

    with pytest.raises(InvalidArgumentError) as e:
        ProvisioningClient.create_from_symmetric_key(
            "localhost", "x", ID_SCOPE, test_key("x"),
            **{option.python: python_value(option, value)})
    assert e.value.message.startswith(f"{option.python}: ")


def test_same_message_for_a_misspelt_flag(c_cli) -> None:
    results = run_both(c_cli, *creds("x", "--regstration-id", "y"))
    want = "unknown option --regstration-id (did you mean --registration-id?) (see --help)"
    for rc, stdout, _ in results:
        assert rc == 2 and json.loads(stdout)["message"] == want, results


def test_the_tables_defaults_are_the_headers() -> None:
    """A default shown in --help and README is the library's own (the header's macro)."""
    header = (REPO / "include" / "dps_mqtt.h").read_text()
    defines = dict(re.findall(r"^#define (DPS_\w+) (\d+)$", header, flags=re.M))
    named = [o for o in _options.OPTIONS if o.default_constant]
    assert named
    for option in named:
        assert defines.get(option.default_constant) == option.default, option.flag


def test_generated_files_are_fresh() -> None:
    script = REPO / "tools" / "gen_options.py"
    if not script.is_file():
        pytest.fail(f"no generator at {script}")
    p = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
