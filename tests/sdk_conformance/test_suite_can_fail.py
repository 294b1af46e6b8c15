"""Proof that the conformance tests fail when the emulator or a proxy answers wrongly."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import PROXY_USER, WRONG_PROXY_PASSWORD

HERE = Path(__file__).resolve().parent

# registration id (or group, or proxy) -> the wrong answer the emulator (or tinyproxy) is told to
# give -> the tests that must notice, each with a fragment of its failure that shows it failed
# *because of that answer*.
TAMPERING = {
    "sym-individual": (
        {"outcome": "disabled"},
        [("test_symmetric_key_individual", "invalid registration status disabled")],
    ),
    "group:conformance-group": (
        {"assignedHub": "evil-hub.azure-devices.net"},
        [("test_group_derived_key", "evil-hub.azure-devices.net")],
    ),
    "sym-payload-echo": ({"payload": {"tampered": True}}, [("test_custom_payload_round_trip", "tampered")]),
    "sym-throttled": ({"throttleFirst": 0}, [("test_throttling_is_retried_after_retry_after", "[202, 200]")]),
    "sym-failed": ({"outcome": "assigned"}, [("test_failed_registration", "DID NOT RAISE")]),
    # The proxy without auth stops tunnelling to 8883: MQTT through it must fail with the proxy's
    # 403, which shows the SDK's connection really goes through the proxy.
    "proxy:open": (
        {"connectPorts": [443]},
        [("test_http_connect_proxy[mqtts-open]", "403: Access violation")],
    ),
    # The proxy with auth is given the wrong password as its own: the right one must be refused
    # (on both ports) and the wrong one must get through.
    "proxy:auth": (
        {"basicAuth": [PROXY_USER, WRONG_PROXY_PASSWORD]},
        [
            ("test_http_connect_proxy[mqtts-auth]", "401: Unauthorized"),
            ("test_http_connect_proxy[wss-auth]", "401: Unauthorized"),
            ("test_wrong_proxy_password_is_refused_by_the_proxy", "DID NOT RAISE"),
        ],
    ),
}
# Untampered tests in the same nested run: they must pass, or the nested run itself is broken and
# the failures above would prove nothing.
CONTROLS = ["test_x509_individual", "test_polling_honours_retry_after", "test_http_connect_proxy[wss-open]"]


def can_unshare_network() -> bool:
    return subprocess.run(["unshare", "--net", "--", "true"], capture_output=True).returncode == 0


@pytest.mark.timeout(180)
@pytest.mark.skipif(not can_unshare_network(), reason="needs root and network namespaces (unshare --net)")
def test_tampered_emulator_answers_fail_the_suite(tmp_path):
    """Runs this suite's own tests, unmodified, against an emulator that answers wrongly.

    What makes this convincing rather than a re-statement of the assertions:
    - The tests that run are the real ones from test_registration.py, not copies of their checks,
      against the real emulator binary. The only difference is one field per enrollment in the
      enrollment file (DPS_CONFORMANCE_TAMPER), the same kind of change an emulator bug would make:
      a `disabled` where `assigned` is due, another hub, another payload, no 429 where two are
      due, `assigned` where `failed` is due. The proxies get the same treatment through their
      configuration: one stops tunnelling to port 8883, the other takes the password the
      wrong-password test sends as the right one.
    - Each tampered test must fail, and fail for that reason: its failure text has to show the
      wrong answer as the SDK reported it (its "invalid registration status disabled" error, the
      foreign hub's name, the missing 429s, the foreign payload, "DID NOT RAISE" for a
      registration that should have failed, the proxy's 403 or 401). A failure for an unrelated
      reason (port busy, emulator crash) does not count.
    - Untampered tests in the same run must pass, so the nested run demonstrably works and the
      failures come from the tampering alone.
    The nested run needs the SDK's fixed ports 8883 and 443 while this session's emulator holds
    them, so it gets a network namespace of its own.
    """
    tamper = {name: changes for name, (changes, _) in TAMPERING.items()}
    expected = [case for _, cases in TAMPERING.values() for case in cases]
    tests = [test for test, _ in expected] + CONTROLS
    junit = tmp_path / "nested.xml"
    env = dict(os.environ, DPS_CONFORMANCE_TAMPER=json.dumps(tamper))
    run = subprocess.run(
        ["unshare", "--net", "--", sys.executable, str(HERE / "netns.py"),
         sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-W", "ignore::DeprecationWarning",
         f"--junitxml={junit}", *[f"{HERE / 'test_registration.py'}::{t}" for t in tests]],
        env=env, capture_output=True, text=True, timeout=170,
    )
    assert run.returncode == 1, f"nested run should report test failures:\n{run.stdout}\n{run.stderr}"

    outcomes = {}
    for case in ET.parse(junit).iter("testcase"):
        failure = case.find("failure")
        error = case.find("error")
        outcomes[case.get("name")] = (
            "error" if error is not None else "failed" if failure is not None else "passed",
            "" if failure is None else f"{failure.get('message')}\n{failure.text}",
        )
    assert set(outcomes) == set(tests), run.stdout
    for test, evidence in expected:
        status, text = outcomes[test]
        assert status == "failed", f"{test} did not notice the tampered answer ({status})"
        assert evidence in text, f"{test} failed for another reason:\n{text}"
    for test in CONTROLS:
        assert outcomes[test][0] == "passed", f"control {test} failed in the nested run:\n{outcomes[test][1]}"
