"""The ctypes declarations cover the C header: every exported function is declared in
dps_mqtt/_ffi.py."""

import re
from pathlib import Path

import pytest

from dps_mqtt import _ffi

HEADER = Path(__file__).resolve().parents[2] / "include" / "dps_mqtt.h"


def header_functions() -> set:
    if not HEADER.is_file():
        pytest.fail(f"no header at {HEADER}")
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    return set(re.findall(r"^[a-z][\w ]*?[\s*](dps_\w+)\(", text, flags=re.M))


def test_every_header_function_is_declared() -> None:
    functions = header_functions()
    assert len(functions) > 40
    declared = {name for name in dir(_ffi) if name.startswith("dps_") and callable(
        getattr(_ffi, name)) and hasattr(getattr(_ffi, name), "argtypes")}
    missing = functions - declared
    assert not missing, f"declare these in dps_mqtt/_ffi.py: {sorted(missing)}"


def test_declarations_have_types() -> None:
    for name in header_functions():
        fn = getattr(_ffi, name)
        assert fn.argtypes is not None, name
