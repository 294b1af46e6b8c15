"""The C API of libdps_mqtt, declared for ctypes: every function's argtypes and restype, in
this one module (include/dps_mqtt.h is the reference; tests/test_ffi.py checks that none is
missing).
"""

import ctypes
import os
import sys
from ctypes import (CFUNCTYPE, POINTER, Structure, c_bool, c_char_p, c_int, c_int32, c_int64,
                    c_size_t, c_ssize_t, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p)
from typing import Any, List, Optional

from . import _options

# --- constants (dps_mqtt.h) ---------------------------------------------------------------

DPS_OK = 0
DPS_PENDING = 1
DPS_ERR_INVALID_ARGUMENT = 100
DPS_ERR_INVALID_STATE = 107
DPS_ERR_INVALID_CERTIFICATE = 108
DPS_ERR_PROTOCOL_BAD_RESPONSE = 503
DPS_ERR_REGISTRATION_FAILED = 700
DPS_ERR_REGISTRATION_DISABLED = 701
DPS_ERR_REGISTRATION_REJECTED = 702
DPS_ERR_INTERNAL = 901

DPS_ERR_INVALID_BUFFER_TOO_SMALL = 115
DPS_ASSIGNMENT_MAX_LEN = 785

DPS_SAS_TOKEN_LIFETIME_MIN_S = 60
DPS_SAS_TOKEN_LIFETIME_MAX_S = 2592000

DPS_IO_WOULD_BLOCK = -2
DPS_IO_ERROR = -1

DPS_LOG_ERROR = 1
DPS_LOG_WARN = 2
DPS_LOG_INFO = 3
DPS_LOG_DEBUG = 4

# enum dps_class
DPS_CLASS_OK = 0
DPS_CLASS_PENDING = 1
DPS_CLASS_INVALID = 2
DPS_CLASS_AUTH = 3
DPS_CLASS_TLS = 4
DPS_CLASS_TRANSPORT = 5
DPS_CLASS_PROTOCOL = 6
DPS_CLASS_TIMEOUT = 7
DPS_CLASS_REGISTRATION = 8
DPS_CLASS_INTERNAL = 9

dps_result = c_uint32

# --- opaque handles -----------------------------------------------------------------------


class dps_config(Structure):
    """Opaque `dps_config`."""


class dps_client(Structure):
    """Opaque `dps_client`."""


class dps_assignment(Structure):
    """Opaque `dps_assignment`."""


dps_assignment_p = POINTER(dps_assignment)
dps_config_p = POINTER(dps_config)
dps_client_p = POINTER(dps_client)

# --- callback types and hook tables -------------------------------------------------------

dps_log_callback = CFUNCTYPE(None, c_void_p, c_uint32, c_char_p)
dps_status_callback = CFUNCTYPE(None, c_void_p, c_uint32)
dps_sign_fn = CFUNCTYPE(c_int32, c_void_p, POINTER(c_uint8), c_size_t, POINTER(c_uint8), c_size_t)
transport_connect_fn = CFUNCTYPE(c_int, c_void_p, c_char_p, c_uint16)
transport_send_fn = CFUNCTYPE(c_ssize_t, c_void_p, POINTER(c_uint8), c_size_t)
transport_recv_fn = CFUNCTYPE(c_ssize_t, c_void_p, POINTER(c_uint8), c_size_t)
transport_close_fn = CFUNCTYPE(None, c_void_p)
transport_wait_fn = CFUNCTYPE(None, c_void_p, c_uint32, c_bool)
transport_error_detail_fn = CFUNCTYPE(c_size_t, c_void_p, c_void_p, c_size_t)


dps_entropy_fn = CFUNCTYPE(c_int32, c_void_p, POINTER(c_uint8), c_size_t)
dps_alloc_fn = CFUNCTYPE(c_void_p, c_void_p, c_size_t, c_size_t)
dps_free_fn = CFUNCTYPE(None, c_void_p, c_void_p, c_size_t, c_size_t)
dps_panic_fn = CFUNCTYPE(None, c_void_p, c_char_p, c_size_t)


class dps_allocator(Structure):
    _fields_ = [
        ("user", c_void_p),
        ("alloc", dps_alloc_fn),
        ("free", dps_free_fn),
        ("reserve", c_size_t),
    ]


clock_now_ms_fn = CFUNCTYPE(c_uint64, c_void_p)
clock_unix_seconds_fn = CFUNCTYPE(c_uint64, c_void_p)


class dps_clock(Structure):
    _fields_ = [
        ("user", c_void_p),
        ("now_ms", clock_now_ms_fn),
        ("unix_seconds", clock_unix_seconds_fn),
    ]


class dps_transport(Structure):
    _fields_ = [
        ("user", c_void_p),
        ("connect", transport_connect_fn),
        ("send", transport_send_fn),
        ("recv", transport_recv_fn),
        ("close", transport_close_fn),
        ("wait", transport_wait_fn),
        ("error_detail", transport_error_detail_fn),
    ]


# --- the library --------------------------------------------------------------------------

LIBRARY_ENV = "DPS_MQTT_LIBRARY"


def _library_file_name() -> str:
    if sys.platform == "win32":
        return "dps_mqtt.dll"
    if sys.platform == "darwin":
        return "libdps_mqtt.dylib"
    return "libdps_mqtt.so"


def _load() -> ctypes.CDLL:
    path = os.environ.get(LIBRARY_ENV) or os.path.join(os.path.dirname(__file__),
                                                       _library_file_name())
    try:
        return ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(
            f"dps_mqtt: cannot load the C library {path!r} ({e}); reinstall the package "
            f"(pip install ./python builds it) or point {LIBRARY_ENV} at a libdps_mqtt build"
        ) from e


lib = _load()


def _declare(name: str, restype: Any, argtypes: List[Any]) -> Any:
    fn = getattr(lib, name)
    fn.restype, fn.argtypes = restype, argtypes
    return fn


dps_client_new = _declare(
    "dps_client_new", dps_result, [dps_config_p, POINTER(dps_transport), POINTER(dps_client_p)])
dps_client_free = _declare("dps_client_free", None, [dps_client_p])
dps_client_do_work = _declare("dps_client_do_work", dps_result, [dps_client_p, POINTER(c_uint32)])
dps_client_register = _declare("dps_client_register", dps_result, [dps_client_p])
dps_client_wants_write = _declare("dps_client_wants_write", c_bool, [dps_client_p])
dps_client_socket = _declare("dps_client_socket", c_int, [dps_client_p])
dps_client_last_result = _declare("dps_client_last_result", dps_result, [dps_client_p])
dps_client_assigned_hub = _declare("dps_client_assigned_hub", c_char_p, [dps_client_p])
dps_client_device_id = _declare("dps_client_device_id", c_char_p, [dps_client_p])
dps_client_substatus = _declare("dps_client_substatus", c_char_p, [dps_client_p])
dps_client_payload_json = _declare("dps_client_payload_json", c_char_p, [dps_client_p])
dps_client_operation_id = _declare("dps_client_operation_id", c_char_p, [dps_client_p])
dps_client_registration_status = _declare(
    "dps_client_registration_status", c_char_p, [dps_client_p])
dps_client_etag = _declare("dps_client_etag", c_char_p, [dps_client_p])
dps_client_created_date_time_utc = _declare("dps_client_created_date_time_utc", c_char_p,
                                            [dps_client_p])
dps_client_last_updated_date_time_utc = _declare("dps_client_last_updated_date_time_utc",
                                                 c_char_p, [dps_client_p])
dps_client_error_message = _declare("dps_client_error_message", c_char_p, [dps_client_p])
dps_client_tracking_id = _declare("dps_client_tracking_id", c_char_p, [dps_client_p])
dps_client_result_detail = _declare("dps_client_result_detail", c_char_p, [dps_client_p])
dps_client_error_code = _declare("dps_client_error_code", c_int64, [dps_client_p])
dps_client_http_status = _declare("dps_client_http_status", c_uint32, [dps_client_p])
dps_client_issued_certificate_chain_pem = _declare(
    "dps_client_issued_certificate_chain_pem", c_char_p, [dps_client_p])
dps_client_assignment_save = _declare(
    "dps_client_assignment_save", dps_result,
    [dps_client_p, c_char_p, c_size_t, POINTER(c_size_t)])
dps_assignment_parse = _declare(
    "dps_assignment_parse", dps_result, [c_char_p, c_size_t, POINTER(dps_assignment_p)])
dps_assignment_free = _declare("dps_assignment_free", None, [dps_assignment_p])
dps_assignment_assigned_hub = _declare(
    "dps_assignment_assigned_hub", c_char_p, [dps_assignment_p])
dps_assignment_device_id = _declare("dps_assignment_device_id", c_char_p, [dps_assignment_p])
dps_assignment_etag = _declare("dps_assignment_etag", c_char_p, [dps_assignment_p])
dps_assignment_assigned_at_unix = _declare(
    "dps_assignment_assigned_at_unix", c_uint64, [dps_assignment_p])
dps_should_provision = _declare("dps_should_provision", c_bool, [c_char_p, c_size_t, c_uint32])
dps_client_retry_after_ms = _declare("dps_client_retry_after_ms", c_int64, [dps_client_p])
dps_config_new = _declare("dps_config_new", dps_config_p, [])
dps_config_free = _declare("dps_config_free", None, [dps_config_p])
dps_config_result_detail = _declare("dps_config_result_detail", c_char_p, [dps_config_p])
dps_config_set_endpoint = _declare(
    "dps_config_set_endpoint", dps_result, [dps_config_p, c_char_p, c_uint16])
dps_config_add_trust_anchors_pem = _declare(
    "dps_config_add_trust_anchors_pem", dps_result, [dps_config_p, c_char_p, c_size_t, c_bool])
dps_config_set_trust_anchors_pem = _declare(
    "dps_config_set_trust_anchors_pem", dps_result, [dps_config_p, c_char_p, c_size_t, c_bool])
dps_config_set_client_certificate = _declare(
    "dps_config_set_client_certificate", dps_result,
    [dps_config_p, c_char_p, c_size_t, c_char_p, c_size_t])
dps_config_set_clock = _declare(
    "dps_config_set_clock", dps_result, [dps_config_p, POINTER(dps_clock)])
dps_config_set_signing_callback = _declare(
    "dps_config_set_signing_callback", dps_result, [dps_config_p, dps_sign_fn, c_void_p])
dps_config_set_entropy = _declare(
    "dps_config_set_entropy", dps_result, [dps_config_p, dps_entropy_fn, c_void_p])
dps_config_set_tls_offload = _declare(
    "dps_config_set_tls_offload", dps_result, [dps_config_p, c_bool])
dps_config_set_x509_offloaded = _declare(
    "dps_config_set_x509_offloaded", dps_result, [dps_config_p])
dps_config_set_csr_der = _declare(
    "dps_config_set_csr_der", dps_result, [dps_config_p, c_char_p, c_size_t])
dps_config_set_proxy = _declare(
    "dps_config_set_proxy", dps_result, [dps_config_p, c_char_p, c_uint16, c_char_p, c_char_p])
# The simple options' setters, `dps_result setter(dps_config *, value)`, from the option table.
_OPTION_CTYPES = {"string": c_char_p, "u16": c_uint16, "u32": c_uint32, "bool": c_bool}
for _option in _options.OPTIONS:
    if _option.simple:
        globals()[_option.setter] = _declare(
            _option.setter, dps_result, [dps_config_p, _OPTION_CTYPES[_option.kind]])
dps_config_set_timeout_ms = _declare(
    "dps_config_set_timeout_ms", dps_result, [dps_config_p, c_uint32])
dps_config_set_log_callback = _declare(
    "dps_config_set_log_callback",
    dps_result, [dps_config_p, dps_log_callback, c_void_p, c_uint32])
dps_config_set_status_callback = _declare(
    "dps_config_set_status_callback", dps_result, [dps_config_p, dps_status_callback, c_void_p])
dps_derive_group_key = _declare(
    "dps_derive_group_key",
    dps_result, [c_char_p, c_char_p, c_char_p, c_size_t, POINTER(c_size_t)])
dps_sas_token = _declare(
    "dps_sas_token",
    dps_result, [c_char_p, c_char_p, c_char_p, c_uint64, c_char_p, c_size_t, POINTER(c_size_t)])
dps_version = _declare("dps_version", c_char_p, [])
# Process-wide platform hooks, for firmware: Python keeps the default allocator and catches
# panics at the boundary, so these are declared for completeness and for the tests.
dps_set_allocator = _declare("dps_set_allocator", dps_result, [POINTER(dps_allocator)])
dps_heap_usage = _declare(
    "dps_heap_usage", dps_result, [POINTER(c_size_t), POINTER(c_size_t)])
dps_heap_reset_peak = _declare("dps_heap_reset_peak", None, [])
dps_set_panic_hook = _declare("dps_set_panic_hook", dps_result, [dps_panic_fn, c_void_p])
dps_result_str = _declare("dps_result_str", c_char_p, [c_uint32])
dps_result_name = _declare("dps_result_name", c_char_p, [c_uint32])
dps_result_hint = _declare("dps_result_hint", c_char_p, [c_uint32])
dps_result_class = _declare("dps_result_class", c_uint32, [c_uint32])
dps_result_is_retryable = _declare("dps_result_is_retryable", c_bool, [c_uint32])

def text(value: Optional[bytes]) -> Optional[str]:
    """A borrowed `const char *` result as str (copied now: the pointer dies with the call)."""
    return None if value is None else value.decode("utf-8", errors="replace")
