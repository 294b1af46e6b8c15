"""README's "Python quick start", exactly as written: the emulator example runs against the
emulator started with README's own command line (in a scratch directory holding a copy of the
enrollment file it names, so its certificates are not written into the checkout); the real
service example is compiled, and every name it uses must be defined, every name it imports must
exist in dps_mqtt and every keyword it passes must be one the called function takes. The real
service is never dialled.

Runs in tools/run-sdk-dropin.sh's private network namespace: the example uses port 8883."""

import ast
import builtins
import importlib
import importlib.util
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Python quick start"

# The emulator's start-up parser of the conformance suite.
_spec = importlib.util.spec_from_file_location("sdk_conformance_support",
                                               REPO / "tests" / "sdk_conformance" / "conftest.py")
support = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support)


def quick_start_blocks() -> list:
    """The section's fenced blocks, as (language, text)."""
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n{SECTION}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"^```(\w*)\n(.*?)^```$", text[start:end], re.M | re.S)


def python_examples() -> tuple:
    blocks = [code for lang, code in quick_start_blocks() if lang == "python"]
    assert len(blocks) == 2, "the quick start shows an emulator example, then a real-service one"
    return blocks[0], blocks[1]


def emulator_command() -> list:
    [line] = [line for lang, code in quick_start_blocks() if lang == "sh"
              for line in code.splitlines() if line.startswith("target/release/dps-emulator ")]
    return shlex.split(line)


def undefined_names(source: str) -> set:
    """Names the code reads that nothing in it binds and that are not builtins (the code is
    module level: no function scopes to follow)."""
    tree = ast.parse(source)
    bound, read = set(dir(builtins)), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
    return read - bound


def dps_mqtt_calls(source: str) -> list:
    """(callee, call node) for each call of a name imported from dps_mqtt, or of one of its
    attributes (ProvisioningClient.create_from_symmetric_key)."""
    tree = ast.parse(source)
    imported = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "dps_mqtt":
            module = importlib.import_module("dps_mqtt")
            for a in node.names:
                assert hasattr(module, a.name), f"dps_mqtt has no {a.name}"
                imported[a.asname or a.name] = getattr(module, a.name)
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in imported:
            calls.append((imported[f.id], node))
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in imported:
            owner = imported[f.value.id]
            assert hasattr(owner, f.attr), f"{f.value.id} has no {f.attr}"
            calls.append((getattr(owner, f.attr), node))
    return calls


def test_the_name_check_catches_an_undefined_name():
    # The quick start's old text: `key` was never defined, and running it raised NameError.
    assert undefined_names("from dps_mqtt import ProvisioningClient\n"
                           "ProvisioningClient.create_from_symmetric_key(symmetric_key=key)\n") == {"key"}


def test_real_service_example_compiles_and_uses_only_defined_names():
    _, example = python_examples()
    compile(example, "README.md (real service example)", "exec")
    assert undefined_names(example) == set()
    calls = dps_mqtt_calls(example)
    assert calls, "the example calls dps_mqtt"
    for callee, call in calls:
        signature = inspect.signature(callee)
        signature.bind(*(None for _ in call.args), **{k.arg: None for k in call.keywords if k.arg})
    assert "global.azure-devices-provisioning.net" in example
    placeholders = re.findall(r'^([A-Z_]+) = "<[^">]+>"$', example, re.M)
    assert placeholders == ["ID_SCOPE", "REGISTRATION_ID", "SYMMETRIC_KEY"]


def test_emulator_example_runs_as_written(tmp_path):
    example, _ = python_examples()
    argv = emulator_command()
    binary = os.environ.get("DPS_EMULATOR", str(REPO / "target" / "release" / "dps-emulator"))
    if not Path(binary).is_file():
        pytest.fail(f"{binary} not found: run `cargo build --release -p dps-emulator` first")
    enrollment_file = argv[argv.index("--enrollments") + 1]
    (tmp_path / enrollment_file).parent.mkdir(parents=True)
    shutil.copyfile(REPO / enrollment_file, tmp_path / enrollment_file)
    demo = next(e for e in json.loads((REPO / enrollment_file).read_text())["enrollments"]
                if e["registrationId"] == "demo-device-1")

    emulator = subprocess.Popen([binary, *argv[1:]], cwd=tmp_path, stdout=subprocess.PIPE)
    try:
        startup = support.wait_for_ready(emulator)
        assert startup.get("listening mqtts") == "127.0.0.1:8883", startup
        assert startup.get("CA certificate") == str(tmp_path / "dps-emulator-certs" / "ca.pem"), startup
        (tmp_path / "quickstart.py").write_text(example)
        run = subprocess.run([sys.executable, "quickstart.py"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"{demo['assignedHub']} demo-device-1\n", run.stderr
