"""`python -m dps_mqtt register`: the C CLI's flags, one JSON object on stdout, and its exit
codes (0 assigned, 2 invalid, 3 auth, 4 TLS, 5 transport, 7 timeout, 8 failed/disabled)."""

import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import AWKWARD_MESSAGE, GROUP_HUB, HUB, ID_SCOPE, test_key

SUCCESS_KEYS = {"status", "assignedHub", "deviceId", "substatus", "payload"}
FAILURE_KEYS = {"status", "error", "message", "hint"}
OPTIONAL_FAILURE_KEYS = {"errorCode", "trackingId"}


def run(*args, emu=None, ca=True, host="localhost", port=None, timeout=20, raw=False,
        cwd=None):
    cmd = [sys.executable, "-m", "dps_mqtt"]
    if not raw:
        cmd += ["register", "--host", host, "--port", str(port or emu.port),
                "--timeout", str(timeout)]
        if ca:
            cmd += ["--ca-file", emu.ca_file]
    cmd += list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def check(result, code, **expect):
    rc, out, err = result
    assert rc == code, (out, err)
    assert out.endswith("\n") and out.count("\n") == 1, out
    doc = json.loads(out)
    assert isinstance(doc, dict)
    if code == 0:
        assert set(doc) == SUCCESS_KEYS
    else:
        assert FAILURE_KEYS <= set(doc) <= FAILURE_KEYS | OPTIONAL_FAILURE_KEYS, doc
        assert isinstance(doc["message"], str)
        assert isinstance(doc["hint"], str) and doc["hint"], doc
    for key, want in expect.items():
        if callable(want):
            assert want(doc.get(key)), (key, doc)
        else:
            assert doc.get(key) == want, (key, doc)
    return doc


def creds(reg_id, *extra):
    return ("--id-scope", ID_SCOPE, "--registration-id", reg_id,
            "--symmetric-key", test_key(reg_id), *extra)


def starts(prefix):
    return lambda v: isinstance(v, str) and v.startswith(prefix)


def test_symmetric_key_from_another_directory(emulator, tmp_path) -> None:
    check(run(*creds("py-ok"), emu=emulator, cwd=tmp_path), 0, status="assigned",
          assignedHub=HUB, deviceId="py-ok", substatus="initialAssignment", payload=None)


def test_group_key(emulator) -> None:
    check(run("--id-scope", ID_SCOPE, "--registration-id", "py-cli-member",
              "--group-key", test_key("py-group"), emu=emulator), 0,
          assignedHub=GROUP_HUB, deviceId="py-cli-member")


def test_payload_round_trip_and_service_payload(emulator) -> None:
    sent = {"modelId": "dtmi:com:example:Thermostat;1", "s": "q\"b\\n\u00e9", "n": [1, None]}
    check(run(*creds("py-payload", "--payload", json.dumps(sent)), emu=emulator), 0,
          payload=sent)
    check(run(*creds("py-service-payload"), emu=emulator), 0,
          payload={"tier": "gold", "n": [1, 2.5, None, True]})


def test_failed_and_disabled(emulator) -> None:
    check(run(*creds("py-failed"), emu=emulator), 8, status="failed",
          error="DPS_ERR_REGISTRATION_FAILED", errorCode=400209,
          message=lambda m: AWKWARD_MESSAGE in m)
    check(run(*creds("py-disabled"), emu=emulator), 8, status="disabled",
          error="DPS_ERR_REGISTRATION_DISABLED")


def library_hint(result: int) -> str:
    from dps_mqtt import _ffi

    return _ffi.text(_ffi.dps_result_hint(result)) or ""


def test_the_failure_says_what_to_do(emulator) -> None:
    """"hint" after "message" in the JSON; with --verbose, the error and the hint on stderr."""
    wrong = ("--id-scope", ID_SCOPE, "--registration-id", "py-ok",
             "--symmetric-key", test_key("wrong"))
    hint = library_hint(203)  # DPS_ERR_AUTH_UNAUTHORIZED
    rc, out, err = run(*wrong, emu=emulator)
    doc = check((rc, out, err), 3, error="DPS_ERR_AUTH_UNAUTHORIZED", hint=hint)
    assert list(doc)[:4] == ["status", "error", "message", "hint"], doc
    assert "hint:" not in err
    rc, out, err = run(*wrong, "--verbose", emu=emulator)
    check((rc, out, err), 3, hint=hint)
    assert f"python -m dps_mqtt: hint: {hint}\n" in err, err
    assert "python -m dps_mqtt: error: DPS_ERR_AUTH_UNAUTHORIZED: " in err, err
    check(run("register", *creds("x", "--frobnicate"), raw=True), 2, hint=library_hint(100))


def test_wrong_key(emulator, connack_emulator) -> None:
    wrong = ("--id-scope", ID_SCOPE, "--registration-id", "py-ok",
             "--symmetric-key", test_key("wrong"))
    check(run(*wrong, emu=emulator), 3, status="error", error="DPS_ERR_AUTH_UNAUTHORIZED",
          errorCode=401002, trackingId=lambda t: isinstance(t, str) and t)
    check(run(*wrong, emu=connack_emulator), 3, error="DPS_ERR_AUTH_NOT_AUTHORIZED")


def test_untrusted_ca(emulator) -> None:
    check(run(*creds("py-ok"), emu=emulator, ca=False), 4, error=starts("DPS_ERR_TLS"))


def test_nothing_listening(emulator) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        check(run(*creds("py-ok"), emu=emulator, host="127.0.0.1", port=s.getsockname()[1]),
              5, error=starts("DPS_ERR_TRANSPORT"))


def test_deadline(emulator) -> None:
    check(run(*creds("py-slow"), emu=emulator, timeout=1.5), 7,
          error="DPS_ERR_TIMEOUT_ASSIGNING")


BASE = ("register", "--id-scope", ID_SCOPE, "--registration-id", "x")


@pytest.mark.parametrize("args,error", [
    ((), "DPS_ERR_INVALID_ARGUMENT"),
    (("register",), "DPS_ERR_INVALID_ARGUMENT"),
    (("frobnicate", *creds("x")), "DPS_ERR_INVALID_ARGUMENT"),
    (BASE, "DPS_ERR_INVALID_ARGUMENT"),
    (BASE + ("--symmetric-key", test_key("x"), "--group-key", test_key("g")),
     "DPS_ERR_INVALID_ARGUMENT"),
    (("register", "--registration-id", "x", "--symmetric-key", test_key("x")),
     "DPS_ERR_INVALID_ARGUMENT"),
    (("register", "--id-scope", ID_SCOPE, "--symmetric-key", test_key("x")),
     "DPS_ERR_INVALID_ARGUMENT"),
    (("register", *creds("x", "--frobnicate", "1")), "DPS_ERR_INVALID_ARGUMENT"),
    (("register", *creds("x", "--host")), "DPS_ERR_INVALID_ARGUMENT"),
    (("register", *creds("x", "--port", "88a")), "DPS_ERR_INVALID_ARGUMENT"),
    (("register", *creds("x", "--port", "65536")), "DPS_ERR_INVALID_ARGUMENT"),
    (("register", *creds("x", "--port", "0")), "DPS_ERR_INVALID_ARGUMENT"),
    (("register", *creds("x", "--timeout", "0")), "DPS_ERR_INVALID_ARGUMENT"),
    (("register", *creds("x", "--timeout", "-3")), "DPS_ERR_INVALID_ARGUMENT"),
    (("register", *creds("x", "--timeout", "soon")), "DPS_ERR_INVALID_ARGUMENT"),
    (("register", *creds("x", "--ca-file", "/nonexistent/ca.pem")), "DPS_ERR_INVALID_ARGUMENT"),
    (("register", *creds("x", "--cert", "c.pem")), "DPS_ERR_INVALID_ARGUMENT"),
    (("register", *creds("x", "--proxy-user", "u:p")), "DPS_ERR_INVALID_ARGUMENT"),
    (("register", *creds("bad id!")), "DPS_ERR_INVALID_REGISTRATION_ID"),
    (("register", "--id-scope", "0ne 1", "--registration-id", "x", "--symmetric-key",
      test_key("x")), "DPS_ERR_INVALID_ID_SCOPE"),
    (BASE + ("--symmetric-key", "not base64!"), "DPS_ERR_INVALID_KEY"),
    (BASE + ("--group-key", "***"), "DPS_ERR_INVALID_KEY"),
    (("register", *creds("x", "--payload", "{nope")), "DPS_ERR_INVALID_PAYLOAD"),
    (("register", *creds("x", "--ca-file", os.devnull)), "DPS_ERR_INVALID_CERTIFICATE"),
])
def test_usage_errors_exit_2_before_dialling(args, error) -> None:
    # The default host is the real service: a usage error must end before any connection.
    check(run(*args, raw=True), 2, status="error", error=error)


def test_help() -> None:
    rc, out, _ = run("--help", raw=True)
    assert rc == 0 and "--symmetric-key" in out and "exit code" in out
    rc, out, _ = run("register", "--help", raw=True)
    assert rc == 0 and "--group-key" in out


def test_verbose_logs_progress_on_stderr_never_a_key(emulator) -> None:
    key = test_key("py-polls")
    rc, out, err = run(*creds("py-polls", "--verbose"), emu=emulator)
    check((rc, out, err), 0)
    assert "status: connecting" in err and "status: assigned" in err
    assert "debug:" in err or "info:" in err
    for secret in (key, key[:16], "SharedAccessSignature", "sig="):
        assert secret not in err and secret not in out


def test_request_detail_flags(emulator) -> None:
    """--model-id (inside the payload), --sas-ttl and --client-version, as dps_register."""
    model = "dtmi:com:example:Thermostat;1"
    creds = ("--id-scope", ID_SCOPE, "--registration-id", "py-model", "--symmetric-key",
             test_key("py-model"))
    check(run(*creds, "--model-id", model, "--sas-ttl", "7200", "--client-version",
              "contoso-fw/2.4 (x)", emu=emulator), 0, payload={"modelId": model})
    check(run(*creds, "--model-id", model, "--payload", '{"site":"b"}', emu=emulator), 0,
          payload={"modelId": model, "site": "b"})
    check(run(*creds, "--model-id", model, "--payload", '{"modelId":"dtmi:x;1"}',
              emu=emulator), 2, error="DPS_ERR_INVALID_PAYLOAD")
    check(run(*creds, "--model-id", "Thermostat", emu=emulator), 2,
          error="DPS_ERR_INVALID_MODEL_ID", message=starts("--model-id: "))
    for ttl in ("59", "2592001"):  # the setter's range
        check(run(*creds, "--sas-ttl", ttl, emu=emulator), 2, error="DPS_ERR_INVALID_ARGUMENT",
              message=starts("--sas-ttl: "))
    for ttl in ("1h", "", "4294967296"):  # not a uint32_t
        check(run(*creds, "--sas-ttl", ttl, emu=emulator), 2, error="DPS_ERR_INVALID_ARGUMENT",
              message="--sas-ttl must be a number from 0 to 4294967295")
    check(run(*creds, "--client-version", "", emu=emulator), 2,
          error="DPS_ERR_INVALID_ARGUMENT", message=starts("--client-version: "))
    rc, out, _ = run("--help", raw=True)
    assert rc == 0 and all(f in out for f in ("--model-id", "--sas-ttl", "--client-version"))


def test_a_misspelt_flag_is_named_with_the_nearest() -> None:
    check(run("register", *creds("x", "--regstration-id", "y"), raw=True), 2,
          error="DPS_ERR_INVALID_ARGUMENT",
          message="unknown option --regstration-id (did you mean --registration-id?) "
                  "(see --help)")
    check(run("register", *creds("x", "--frobnicate", "1"), raw=True), 2,
          message="unknown option --frobnicate (see --help)")


def test_a_ca_file_that_is_not_pem_is_named(tmp_path) -> None:
    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("not a certificate\n")
    check(run("register", *creds("x", "--ca-file", str(not_pem)), raw=True), 2,
          error="DPS_ERR_INVALID_CERTIFICATE",
          message=starts(f"--ca-file {not_pem}: no PEM certificate in it ("))


def test_help_is_the_option_tables_and_lists_exit_9() -> None:
    from dps_mqtt import _options

    rc, out, _ = run("--help", raw=True)
    assert rc == 0 and out == _options.usage("python", "python -m dps_mqtt register")
    assert "9 internal error" in out
    assert all(o.flag in out for o in _options.for_program("python"))
