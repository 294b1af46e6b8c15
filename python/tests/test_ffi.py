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


def header_constants() -> dict:
    """Every `#define DPS_X n` and enum member `DPS_X = n` of the header."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    pairs = re.findall(r"^#define (DPS_\w+) (-?\d+)$", text, flags=re.M)
    pairs += re.findall(r"^\s+(DPS_\w+) = (-?\d+),?$", text, flags=re.M)
    return {name: int(value) for name, value in pairs}


def test_constants_match_the_header() -> None:
    constants = header_constants()
    assert constants["DPS_SAS_TOKEN_LIFETIME_MAX_S"] == 2592000
    defined = {name for name in dir(_ffi) if name.startswith("DPS_")}
    assert {"DPS_SAS_TOKEN_LIFETIME_MIN_S", "DPS_SAS_TOKEN_LIFETIME_MAX_S"} <= defined
    for name in defined:
        assert getattr(_ffi, name) == constants[name], name


CLASS_OF_PREFIX = [
    ("DPS_ERR_INVALID_", "InvalidArgumentError", 2), ("DPS_ERR_AUTH_", "AuthenticationError", 3),
    ("DPS_ERR_TLS_", "TlsError", 4), ("DPS_ERR_TRANSPORT_", "TransportError", 5),
    ("DPS_ERR_PROTOCOL_", "ProtocolError", 6), ("DPS_ERR_TIMEOUT", "ProvisioningTimeoutError", 7),
    ("DPS_ERR_REGISTRATION_", "RegistrationError", 8), ("DPS_ERR_PANIC", "InternalError", 9),
    ("DPS_ERR_INTERNAL", "InternalError", 9), ("DPS_ERR_OUT_OF_MEMORY", "InternalError", 9),
    ("DPS_ERR_ENTROPY_FAILED", "InternalError", 9),
]


def test_every_result_code_maps_to_the_exception_of_its_class() -> None:
    """Each error code of the header (e.g. 110-113, 115-117, 130, 403-404, 507-508) gets the
    exception, name and exit code of its class: none falls through to InternalError."""
    import dps_mqtt
    from dps_mqtt._errors import error_class

    codes = {name: value for name, value in header_constants().items()
             if name.startswith("DPS_ERR_")}
    assert len(codes) > 50 and codes["DPS_ERR_INVALID_MODEL_ID"] == 113
    for name, code in codes.items():
        (expected, exit_code), = [(cls, ec) for prefix, cls, ec in CLASS_OF_PREFIX
                                  if name.startswith(prefix)]
        cls = error_class(code)
        assert issubclass(cls, getattr(dps_mqtt, expected)), (name, cls)
        error = cls(code)
        assert (error.name, error.exit_code) == (name, exit_code)
    assert error_class(700) is dps_mqtt.RegistrationFailedError
    assert error_class(701) is dps_mqtt.RegistrationDisabledError
    assert error_class(65535) is dps_mqtt.InternalError
