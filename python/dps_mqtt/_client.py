"""ProvisioningClient: registers a device with the Azure IoT Device Provisioning Service
through libdps_mqtt, with the names of Microsoft's azure-iot-device where they exist."""

import atexit
import ctypes
import enum
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Optional, Union

from . import _ffi, _options
from ._errors import (InvalidArgumentError, OperationCancelledError, ProvisioningError,
                      RegistrationError, check, error_class)
from ._transport import Transport

logger = logging.getLogger("dps_mqtt")
logger.addHandler(logging.NullHandler())  # silent unless the application configures logging

# The library's error lines say why an attempt failed: the exception register() raises says it
# again, so they are logged at DEBUG, and an application that logs what it catches logs each
# failure once.
_LOG_LEVELS = {
    _ffi.DPS_LOG_ERROR: logging.DEBUG,
    _ffi.DPS_LOG_WARN: logging.WARNING,
    _ffi.DPS_LOG_INFO: logging.INFO,
    _ffi.DPS_LOG_DEBUG: logging.DEBUG,
}


class Status(enum.IntEnum):
    """Progress of a registration (`dps_status`), passed to the `on_status` callback."""

    IDLE = 0
    CONNECTING = 1
    CONNECTED = 2
    REGISTERING = 3
    ASSIGNING = 4
    THROTTLED = 5
    RECONNECTING = 6
    ASSIGNED = 7
    FAILED = 8


class HubOutcome(enum.IntEnum):
    """What happened when the device last used its stored hub (`dps_hub_outcome`)."""

    NOT_TRIED = 0
    CONNECTED = 1
    REJECTED_DEVICE = 2
    UNREACHABLE = 3


class Assignment:
    """A stored assignment (the blob of `ProvisioningClient.save_assignment()`), read back."""

    def __init__(self, assigned_hub: Optional[str], device_id: Optional[str],
                 etag: Optional[str], assigned_at_unix: int) -> None:
        self.assigned_hub = assigned_hub
        self.device_id = device_id
        self.etag = etag
        self.assigned_at_unix = assigned_at_unix

    @classmethod
    def parse(cls, blob: bytes) -> "Assignment":
        """Reads a blob; raises InvalidArgumentError (DPS_ERR_INVALID_ASSIGNMENT) when it is
        truncated, corrupt or of an unknown version."""
        data = _bytes(blob, "blob", 1 << 16)
        out = _ffi.dps_assignment_p()
        check(_ffi.dps_assignment_parse(data, len(data), ctypes.byref(out)), "assignment")
        try:
            return cls(_ffi.text(_ffi.dps_assignment_assigned_hub(out)),
                       _ffi.text(_ffi.dps_assignment_device_id(out)),
                       _ffi.text(_ffi.dps_assignment_etag(out)),
                       int(_ffi.dps_assignment_assigned_at_unix(out)))
        finally:
            _ffi.dps_assignment_free(out)

    def __repr__(self) -> str:
        return (f"Assignment(assigned_hub={self.assigned_hub!r}, device_id={self.device_id!r}, "
                f"assigned_at_unix={self.assigned_at_unix})")


def should_provision(blob: Optional[bytes],
                     hub_outcome: HubOutcome = HubOutcome.NOT_TRIED) -> bool:
    """Whether to provision now (`dps_should_provision`): at boot with the stored blob (None
    when nothing is stored) and NOT_TRIED, again after a failed hub connection. True when
    nothing valid is stored or the hub rejected the device; false while the hub is untried,
    connected or merely unreachable."""
    data = b"" if blob is None else _bytes(blob, "blob", 1 << 16)
    outcome = _int(hub_outcome, "hub_outcome", min(HubOutcome), max(HubOutcome))
    return bool(_ffi.dps_should_provision(data, len(data), outcome))


class ProxyOptions:
    """An HTTP CONNECT proxy, as azure-iot-device's `ProxyOptions` (only "HTTP" is
    supported)."""

    def __init__(self, proxy_type: str, proxy_addr: str, proxy_port: int,
                 proxy_username: Optional[str] = None,
                 proxy_password: Optional[str] = None) -> None:
        if not isinstance(proxy_type, str) or proxy_type.upper() != "HTTP":
            raise _invalid(f"proxy_type {proxy_type!r}: only HTTP is supported")
        _text(proxy_addr, "proxy_addr")
        for value, what in ((proxy_username, "proxy_username"),
                            (proxy_password, "proxy_password")):
            if value is not None:
                _text(value, what)
        self.proxy_type = "HTTP"
        self.proxy_address = proxy_addr
        self.proxy_port = _int(proxy_port, "proxy_port", 1, 0xFFFF)
        self.proxy_username = proxy_username
        self.proxy_password = proxy_password


class X509:
    """A device certificate and its private key, as azure-iot-device's `X509`: files in PEM
    (certificate chain, leaf first) or DER. Encrypted keys are not supported."""

    def __init__(self, cert_file: str, key_file: str, pass_phrase: Optional[str] = None) -> None:
        if pass_phrase is not None:
            raise InvalidArgumentError(_ffi.DPS_ERR_INVALID_ARGUMENT,
                                       "pass_phrase: encrypted private keys are not supported")
        _path(cert_file, "cert_file")
        _path(key_file, "key_file")
        self.cert_file = cert_file
        self.key_file = key_file
        self.pass_phrase = pass_phrase

    @property
    def certificate_file(self) -> str:
        """azure-iot-device's name for `cert_file`."""
        return self.cert_file


class RegistrationState:
    """The device's registration as the service returned it: azure-iot-device's
    `RegistrationState`, with its constructor and read-only properties."""

    def __init__(self, device_id: Optional[str] = None, assigned_hub: Optional[str] = None,
                 sub_status: Optional[str] = None, created_date_time: Optional[str] = None,
                 last_update_date_time: Optional[str] = None, etag: Optional[str] = None,
                 payload: Any = None) -> None:
        self._device_id = device_id
        self._assigned_hub = assigned_hub
        self._sub_status = sub_status
        self._created_date_time = created_date_time
        self._last_update_date_time = last_update_date_time
        self._etag = etag
        self._payload = payload

    @property
    def device_id(self) -> Optional[str]:
        return self._device_id

    @property
    def assigned_hub(self) -> Optional[str]:
        return self._assigned_hub

    @property
    def sub_status(self) -> Optional[str]:
        """"initialAssignment", "deviceDataMigrated" or "deviceDataReset"."""
        return self._sub_status

    @property
    def created_date_time(self) -> Optional[str]:
        """The service's `createdDateTimeUtc` text (ISO 8601), or None when it sent none."""
        return self._created_date_time

    @property
    def last_update_date_time(self) -> Optional[str]:
        """The service's `lastUpdatedDateTimeUtc` text (ISO 8601), or None when it sent none."""
        return self._last_update_date_time

    @property
    def etag(self) -> Optional[str]:
        return self._etag

    @property
    def payload(self) -> Any:
        """The payload the service returned, parsed (None when it sent none)."""
        return self._payload

    @property
    def response_payload(self) -> str:
        """The payload as JSON text, as azure-iot-device gives it: re-encoded with sorted keys
        ("null" when the service sent none). `payload` has it parsed."""
        return json.dumps(self._payload, default=lambda o: o.__dict__, sort_keys=True)

    def __str__(self) -> str:
        return "\n".join(str(v) for v in (self.device_id, self.assigned_hub, self.sub_status,
                                          self.response_payload))

    def __repr__(self) -> str:
        return (f"RegistrationState(device_id={self.device_id!r}, "
                f"assigned_hub={self.assigned_hub!r}, sub_status={self.sub_status!r})")


class RegistrationResult:
    """The outcome of `register()`: azure-iot-device's `RegistrationResult` (operation_id,
    status, registration_state), with the state's fields also at the top level."""

    def __init__(self, operation_id: Optional[str], status: Optional[str],
                 registration_state: Optional[RegistrationState] = None,
                 payload_json: Optional[str] = None,
                 issued_certificate_chain: Optional[str] = None) -> None:
        self._operation_id = operation_id
        self._status = status
        self._registration_state = registration_state or RegistrationState()
        self.payload_json = payload_json
        """The payload exactly as the service sent it (JSON text), or None."""
        self.issued_certificate_chain = issued_certificate_chain
        """With `csr=`: the certificate chain the service issued, as PEM (leaf first)."""

    @property
    def operation_id(self) -> Optional[str]:
        return self._operation_id

    @property
    def status(self) -> Optional[str]:
        """"assigned", or for a `RegistrationError`'s result "failed" or "disabled"."""
        return self._status

    @property
    def registration_state(self) -> RegistrationState:
        return self._registration_state

    @property
    def assigned_hub(self) -> Optional[str]:
        return self.registration_state.assigned_hub

    @property
    def device_id(self) -> Optional[str]:
        return self.registration_state.device_id

    @property
    def sub_status(self) -> Optional[str]:
        return self.registration_state.sub_status

    @property
    def etag(self) -> Optional[str]:
        return self.registration_state.etag

    @property
    def payload(self) -> Any:
        """The payload the service returned, parsed (None when it sent none)."""
        return self.registration_state.payload

    def __str__(self) -> str:
        return "\n".join([str(self.registration_state), str(self.status)])

    def __repr__(self) -> str:
        return (f"RegistrationResult(status={self.status!r}, assigned_hub={self.assigned_hub!r}, "
                f"device_id={self.device_id!r}, operation_id={self.operation_id!r})")


def derive_device_key(group_key: str, registration_id: str) -> str:
    """The device key an enrollment group gives `registration_id` (`dps_derive_group_key`):
    base64(HMAC-SHA256(base64decode(group_key), registration_id))."""
    out = ctypes.create_string_buffer(64)
    written = ctypes.c_size_t()
    key = _secret(group_key, "group_key")
    try:
        check(_ffi.dps_derive_group_key(key, _c_str(registration_id, "registration_id"), out,
                                        len(out), ctypes.byref(written)), "group_key")
        return out.raw[:written.value].decode("ascii")
    finally:
        ctypes.memset(key, 0, len(key))
        ctypes.memset(out, 0, len(out))


def library_version() -> str:
    """The version of the loaded libdps_mqtt (`dps_version`)."""
    return _ffi.text(_ffi.dps_version()) or ""


def default_client_version() -> str:
    """The user agent the library sends as ClientVersion unless told otherwise."""
    return f"dps-mqtt/{library_version()}"


def _invalid(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(_ffi.DPS_ERR_INVALID_ARGUMENT, message)


def _c_str(value: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise _invalid(f"{what}: expected str, got {type(value).__name__}")
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate
        raise _invalid(f"{what}: not valid Unicode text ({e.reason})") from None
    if b"\0" in data:
        raise InvalidArgumentError(_ffi.DPS_ERR_INVALID_ARGUMENT, f"{what}: contains NUL")
    return data


def _bytes(value: Any, what: str, limit: int) -> bytes:
    """A bytes-like argument (bytes, bytearray, memoryview) of at most `limit` bytes, checked
    before anything is copied."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise _invalid(f"{what}: expected bytes, got {type(value).__name__}")
    view = memoryview(value)
    if view.nbytes > limit:
        raise _invalid(f"{what}: {view.nbytes} bytes, more than {limit}")
    return view.tobytes()


def _int(value: Any, what: str, low: int, high: int) -> int:
    """A whole number from low to high; a bool is not one."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(f"{what}: {value!r} is not a whole number from {low} to {high}")
    return int(value)


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(f"{what}: expected True or False, got {value!r}")
    return value


def _path(value: Any, what: str) -> Any:
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise _invalid(f"{what}: expected a file name, got {type(value).__name__}")
    return value


# Larger than any certificate, key, CSR or CA bundle the library accepts; refused before the
# library copies them.
_MAX_PEM_BYTES = 1 << 20


def _text(value: str, what: str) -> str:
    _c_str(value, what)  # the type and NUL checks
    return value


_KEYWORDS = {o.python: o for o in _options.OPTIONS if o.keyword}
"""The keyword arguments that go straight to their setters, from the option table."""


def _c_value(option: _options.Option, value: Any) -> Any:
    """A keyword's value as its setter's C argument: only the C type is checked here; what is
    valid is the setter's call."""
    if option.kind == "bool":
        return _flag(value, option.python)
    if option.kind == "string":
        return _c_str(value, option.python)
    top = _options.TYPE_MAX[option.kind]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise InvalidArgumentError(_ffi.DPS_ERR_INVALID_ARGUMENT,
                                   f"{option.python}: {value!r} is not a whole number from 0 "
                                   f"to {top}")
    return value


def _secret(value: str, what: str) -> "ctypes.Array[ctypes.c_char]":
    """A key in a C buffer the caller wipes after use (the str itself cannot be wiped)."""
    return ctypes.create_string_buffer(_c_str(value, what))


class _Callbacks:
    """The ctypes callback objects handed to C, and what they caught. Referenced by the
    handles' finalizers, so it lives until the last handle that can call it is freed; it holds
    no reference to the ProvisioningClient (that would keep the client alive forever)."""

    def __init__(self, on_status: Optional[Callable[[Status], None]],
                 transport: Optional[Transport]) -> None:
        self.on_status = on_status
        self.transport = transport
        self.sign: Optional[Callable[[bytes], bytes]] = None
        self.sign_cb = _ffi.dps_sign_fn(self._sign)
        self.errors: List[BaseException] = []
        self.os_error: Optional[OSError] = None
        self.last_error_line: Optional[str] = None
        self.log_cb = _ffi.dps_log_callback(self._log)
        self.status_cb = _ffi.dps_status_callback(self._status)
        self.table: Optional[_ffi.dps_transport] = None
        if transport is not None:
            self.table = _ffi.dps_transport(
                user=None,
                connect=_ffi.transport_connect_fn(self._connect),
                send=_ffi.transport_send_fn(self._send),
                recv=_ffi.transport_recv_fn(self._recv),
                close=_ffi.transport_close_fn(self._close),
                error_detail=_ffi.transport_error_detail_fn(self._error_detail))
        self.hook_detail = b""

    def _fail(self, e: BaseException) -> None:
        if not self.errors:
            self.errors.append(e)

    def take_error(self) -> Optional[BaseException]:
        error = self.errors[0] if self.errors else None
        self.errors.clear()
        return error

    # Every function below is called by C: none may let an exception escape.

    def _log(self, _user: Optional[int], level: int, message: Optional[bytes]) -> None:
        try:
            py_level = _LOG_LEVELS.get(level, logging.DEBUG)
            line = _ffi.text(message)
            if level == _ffi.DPS_LOG_ERROR:
                self.last_error_line = line  # says why dps_client_new refused a configuration
            if logger.isEnabledFor(py_level):
                logger.log(py_level, "%s", line)
        except BaseException as e:
            self._fail(e)

    def _status(self, _user: Optional[int], status: int) -> None:
        try:
            if self.on_status is not None:
                self.on_status(Status(status))
        except BaseException as e:
            self._fail(e)

    def _sign(self, _user: Optional[int], data: Any, length: int, signature: Any,
              signature_length: int) -> int:
        try:
            if self.sign is None:
                raise RuntimeError("no signing function")
            result = bytes(self.sign(ctypes.string_at(data, length)))
            if len(result) != signature_length:
                raise ValueError(f"the signing function returned {len(result)} bytes, "
                                 f"want {signature_length} (an HMAC-SHA256)")
            ctypes.memmove(signature, result, signature_length)
            return 0
        except BaseException as e:
            self._fail(e)
            return -1

    def _hook_error(self, e: BaseException) -> int:
        self.hook_detail = b""
        if isinstance(e, OSError):
            self.os_error = e
            logger.debug("transport: %r", e)
            if self.transport is not None:
                try:
                    self.hook_detail = self.transport.error_detail(e).encode("utf-8", "replace")
                except BaseException as detail_error:
                    self._fail(detail_error)
        else:
            self._fail(e)
        return _ffi.DPS_IO_ERROR

    def _error_detail(self, _user: Optional[int], buf: Any, length: int) -> int:
        try:
            detail = self.hook_detail[:length]
            ctypes.memmove(buf, detail, len(detail))
            return len(detail)
        except BaseException as e:
            self._fail(e)
            return 0

    def _connect(self, _user: Optional[int], host: bytes, port: int) -> int:
        if self.errors or self.transport is None:
            return _ffi.DPS_IO_ERROR
        try:
            self.transport.connect(host.decode("utf-8"), port)
            return 0
        except BaseException as e:
            return self._hook_error(e)

    def _send(self, _user: Optional[int], buf: Any, length: int) -> int:
        if self.errors or self.transport is None:
            return _ffi.DPS_IO_ERROR
        try:
            n = self.transport.send(memoryview(ctypes.string_at(buf, length)))
            if n is None:
                return _ffi.DPS_IO_WOULD_BLOCK
            return _count("send", n, length)
        except BlockingIOError:
            return _ffi.DPS_IO_WOULD_BLOCK
        except BaseException as e:
            return self._hook_error(e)

    def _recv(self, _user: Optional[int], buf: Any, length: int) -> int:
        if self.errors or self.transport is None:
            return _ffi.DPS_IO_ERROR
        # The transport receives into Python memory, copied into C's buffer afterwards: a view
        # of C's buffer that the transport kept past the call would point at freed memory.
        data = bytearray(length)
        try:
            n = self.transport.recv_into(memoryview(data))
            if n is None:
                return _ffi.DPS_IO_WOULD_BLOCK
            n = _count("recv_into", n, length)
            ctypes.memmove(buf, (ctypes.c_char * length).from_buffer(data), n)
            return n
        except BlockingIOError:
            return _ffi.DPS_IO_WOULD_BLOCK
        except BaseException as e:
            return self._hook_error(e)

    def _close(self, _user: Optional[int]) -> None:
        try:
            if self.transport is not None:
                self.transport.close()
        except BaseException as e:
            self._fail(e)


def _count(method: str, n: Any, length: int) -> int:
    """What a transport's send or recv_into returned, checked: a count from 0 to `length`
    (None, for would-block, is handled before). Anything else is a broken transport: an
    OSError, so a transport failure, never taken for would-block."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= length:
        raise OSError(f"Transport.{method} returned {n!r}: want a count from 0 to {length}, "
                      "or None when it would block")
    return n


_previous_unraisablehook = sys.unraisablehook


def _unraisablehook(unraisable: Any) -> None:
    """What escapes a callback before its `try` (a signal handler's exception raised on entry
    to it, when the signal reached another thread while the main thread was in a library
    step) is what ctypes reports here: it is kept for register() to re-raise, not printed
    and dropped. Anything else goes to the hook that was in place before."""
    owner = getattr(unraisable.object, "__self__", None)
    if isinstance(owner, _Callbacks) and unraisable.exc_value is not None:
        owner._fail(unraisable.exc_value)
        return
    _previous_unraisablehook(unraisable)


sys.unraisablehook = _unraisablehook


def _free_config(ptr: Any, _keep_alive: _Callbacks) -> None:
    _ffi.dps_config_free(ptr)


def _free_client(ptr: Any, callbacks: _Callbacks) -> None:
    _ffi.dps_client_free(ptr)  # may call the transport's close hook
    error = callbacks.take_error()
    if error is not None:
        logger.error("transport close raised while a client was collected: %r", error)


class _Registrations:
    """The registrations running in this process, so that the interpreter can exit while one
    runs on a daemon thread. At exit (atexit runs before Python stops other threads), each is
    cancelled and the exit waits, for at most `EXIT_WAIT_S`, until none runs: a thread that
    Python ends inside a library call (when it calls back into Python) would unwind through
    the library's panic guard and abort the process. After that no registration starts:
    register() raises OperationCancelledError instead."""

    EXIT_WAIT_S = 2.0

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._running: "weakref.WeakSet[ProvisioningClient]" = weakref.WeakSet()
        self._count = 0
        self.exiting = False

    def start(self, client: "Optional[ProvisioningClient]", refuse: bool = True) -> None:
        """Before library calls that may call back into Python: a registration (`client`,
        which at_exit cancels) or a short section (creating or closing a client). At exit a
        registration or a creation is refused; a close is not."""
        with self._cond:
            if self.exiting and refuse:
                raise OperationCancelledError("the interpreter is exiting")
            if client is not None:
                self._running.add(client)
            self._count += 1

    def stop(self, client: "Optional[ProvisioningClient]") -> None:
        with self._cond:
            if client is not None:
                self._running.discard(client)
            self._count -= 1
            self._cond.notify_all()

    def at_exit(self) -> None:
        with self._cond:
            self.exiting = True
            running = list(self._running)
        for client in running:
            client.cancel()
        deadline = time.monotonic() + self.EXIT_WAIT_S
        with self._cond:
            while self._count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            stuck = list(self._running)
        # One still in the library (a connect to a silent address): its handles must outlive
        # it, so weakref's exit hook, which runs next, must not free them.
        for client in stuck:
            for finalizer in (client._client_finalizer, client._config_finalizer):
                if finalizer is not None:
                    finalizer.atexit = False


_REGISTRATIONS = _Registrations()
# atexit runs its hooks last registered first: weakref's, which frees the handles of clients
# still alive, is registered with the first finalize; ours must run before it.
weakref.finalize(_REGISTRATIONS, lambda: None)
atexit.register(_REGISTRATIONS.at_exit)


def _handled_signals() -> List[int]:
    """The signals with a Python handler: blocked on the main thread during a library step,
    so that a handler (KeyboardInterrupt for SIGINT) runs in the register loop, where what
    it raises propagates, and not on entry to a callback from C, where ctypes would print
    and drop it."""
    if not hasattr(signal, "pthread_sigmask") or \
            threading.current_thread() is not threading.main_thread():
        return []
    handled = []
    for sig in signal.valid_signals():
        try:
            handler = signal.getsignal(sig)
        except (OSError, ValueError):
            continue
        if callable(handler):
            handled.append(sig)
    return handled


class ProvisioningClient:
    """Registers one device. Create it with `create_from_symmetric_key`,
    `create_from_group_key`, `create_from_x509_certificate` or `create_from_signing_callback`;
    then `register()`.

    Owns C handles: use it in a `with` block or call `close()` (idempotent); a client that is
    garbage-collected without either is freed by its finalizer. Not for concurrent use: calls
    from several threads are serialised.
    """

    def __init__(self, provisioning_host: str, registration_id: Optional[str], id_scope: str,
                 credential: Callable[[Any, _Callbacks], None], *,
                 port: Optional[int] = None,
                 server_verification_cert: Union[str, bytes, None] = None,
                 proxy_options: Optional[ProxyOptions] = None,
                 timeout: Optional[float] = None, provisioning_payload: Any = None,
                 on_status: Optional[Callable[[Status], None]] = None,
                 transport: Optional[Transport] = None, tls_offload: bool = False,
                 csr: Union[bytes, str, None] = None, product_info: Optional[str] = None,
                 **options: Any) -> None:
        """Use the `create_from_*` class methods; `credential` sets the key or certificate
        on the C configuration. `options` are the option table's keywords (`websockets`,
        `api_version`, `model_id`, `sastoken_ttl`, `client_version`, ...), each passed to its
        setter."""
        unknown = sorted(set(options) - set(_KEYWORDS))
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
        if on_status is not None and not callable(on_status):
            raise _invalid(f"on_status: expected a callable, got {type(on_status).__name__}")
        if transport is not None and not isinstance(transport, Transport):
            raise _invalid(f"transport: expected a dps_mqtt.Transport, got "
                           f"{type(transport).__name__}")
        self._lock = threading.RLock()
        self._calling_thread: Optional[int] = None
        self._cancelled = False
        self._running = False
        # Wakes a register() waiting for the connection; written by cancel().
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._transport = transport
        self._callbacks = _Callbacks(on_status, transport)
        self._client: Any = None
        self._client_finalizer: Any = None  # weakref.finalize while a client exists
        self._payload_json: Optional[str] = None
        self._dirty = True
        config = _ffi.dps_config_new()
        if not config:
            raise MemoryError("dps_config_new")
        self._config = config
        self._config_finalizer = weakref.finalize(self, _free_config, config, self._callbacks)
        try:
            _REGISTRATIONS.start(None)
            try:
                self._configure(provisioning_host, registration_id, id_scope, credential, port,
                                server_verification_cert, proxy_options, timeout, tls_offload,
                                csr, product_info, options)
                if provisioning_payload is not None:
                    self.provisioning_payload = provisioning_payload
                self._prepare()  # checks the whole configuration (e.g. a certificate's CN) now
            finally:
                _REGISTRATIONS.stop(None)
        except BaseException:
            self.close()
            raise

    def _configure(self, host: str, registration_id: Optional[str], id_scope: str,
                   credential: Callable[[Any, _Callbacks], None], port: Optional[int],
                   server_verification_cert: Union[str, bytes, None],
                   proxy_options: Optional[ProxyOptions], timeout: Optional[float],
                   tls_offload: bool, csr: Union[bytes, str, None], product_info: Optional[str],
                   options: Dict[str, Any]) -> None:
        cfg = self._config
        # First, so that a setter's reason for refusing a value reaches the exception.
        check(_ffi.dps_config_set_log_callback(cfg, self._callbacks.log_cb, None,
                                               _ffi.DPS_LOG_DEBUG), "log callback")
        self._callbacks.last_error_line = None
        check(_ffi.dps_config_set_id_scope(cfg, _c_str(id_scope, "id_scope")), "id_scope")
        if registration_id is not None:  # None only for X.509: the certificate's CN
            check(_ffi.dps_config_set_registration_id(
                cfg, _c_str(registration_id, "registration_id")), "registration_id")
        credential(cfg, self._callbacks)
        if _flag(tls_offload, "tls_offload"):
            check(_ffi.dps_config_set_tls_offload(cfg, True), "tls_offload")
        if csr is not None:
            data = (_c_str(csr, "csr") if isinstance(csr, str)
                    else _bytes(csr, "csr", _MAX_PEM_BYTES))
            check(_ffi.dps_config_set_csr_der(cfg, data, len(data)), "csr")
        if product_info is not None:
            if options.get("client_version") is not None:
                raise InvalidArgumentError(_ffi.DPS_ERR_INVALID_ARGUMENT,
                                           "give client_version or product_info, not both")
            # azure-iot-device appends product_info to its own user agent: so do we.
            options["client_version"] = default_client_version() + _text(product_info,
                                                                          "product_info")
        for name, value in options.items():
            if value is not None:
                option = _KEYWORDS[name]
                self._check(getattr(_ffi, option.setter)(cfg, _c_value(option, value)), name)
        self._check(_ffi.dps_config_set_host(cfg, _c_str(host, "provisioning_host")),
                    "provisioning_host")
        if port is not None:  # else the library's default, which follows websockets
            _int(port, "port", 0, 0xFFFF)
            self._check(_ffi.dps_config_set_endpoint(cfg, _c_str(host, "provisioning_host"),
                                                     port), "port")
        if server_verification_cert is not None:
            pem = (_c_str(server_verification_cert, "server_verification_cert")
                   if isinstance(server_verification_cert, str)
                   else _bytes(server_verification_cert, "server_verification_cert",
                               _MAX_PEM_BYTES))
            # Replaces the public roots: only this CA is trusted, as in azure-iot-device.
            self._check(_ffi.dps_config_set_trust_anchors_pem(cfg, pem, len(pem), False),
                        "server_verification_cert")
        if proxy_options is not None:
            if not isinstance(proxy_options, ProxyOptions):
                raise _invalid(f"proxy_options: expected a dps_mqtt.ProxyOptions, got "
                               f"{type(proxy_options).__name__}")
            user = proxy_options.proxy_username
            password = (None if proxy_options.proxy_password is None
                        else _secret(proxy_options.proxy_password, "proxy_password"))
            try:
                self._check(_ffi.dps_config_set_proxy(
                    cfg, _c_str(proxy_options.proxy_address, "proxy_addr"),
                    proxy_options.proxy_port,
                    None if user is None else _c_str(user, "proxy_username"), password),
                    "proxy_options")
            finally:
                if password is not None:
                    ctypes.memset(password, 0, len(password))
        if timeout is not None:
            if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                    or not 0 <= timeout * 1000 < 2**32):
                raise InvalidArgumentError(_ffi.DPS_ERR_INVALID_ARGUMENT,
                                           f"timeout: {timeout!r} is not a number of seconds")
            self._check(_ffi.dps_config_set_timeout_ms(cfg, int(timeout * 1000)), "timeout")
        if self._callbacks.on_status is not None:
            check(_ffi.dps_config_set_status_callback(cfg, self._callbacks.status_cb, None),
                  "on_status")

    def _check(self, result: int, what: str) -> None:
        """As `check`, with the library's reason (its log's last error) when it gave one."""
        if result != _ffi.DPS_OK:
            reason = (self._callbacks.last_error_line
                      or _ffi.text(_ffi.dps_result_str(result)))
            raise error_class(result)(result, f"{what}: {reason}")

    # --- constructors (azure-iot-device's names) ---------------------------------------

    @classmethod
    def create_from_symmetric_key(cls, provisioning_host: str, registration_id: str,
                                  id_scope: str, symmetric_key: str,
                                  **kwargs: Any) -> "ProvisioningClient":
        """A client authenticating with a device's symmetric key (individual enrollment).

        Keyword arguments: `port` (default 8883, or 443 with `websockets`),
        `server_verification_cert` (PEM text of the CA to trust instead of the public roots),
        `websockets`, `proxy_options` (`ProxyOptions`), `timeout` (seconds for the whole
        registration, default 90), `api_version`, `provisioning_payload` (any JSON value),
        `on_status` (called with a `Status` on each change), `transport` (a `Transport`;
        default: the library's built-in TCP), `tls_offload` (the transport does TLS itself:
        the library sends MQTT in the clear through it), `csr` (a PKCS#10 certificate signing
        request, DER bytes or PEM: the issued chain comes back in
        `RegistrationResult.issued_certificate_chain`).

        Request details: `model_id` (the IoT Plug and Play model id, a DTMI such as
        "dtmi:com:example:Thermostat;1", sent inside the registration's payload as "modelId"
        next to the keys of `provisioning_payload`, which must then be a JSON object without
        its own "modelId"), `sastoken_ttl` (azure-iot-device's name: the SAS token's lifetime
        in seconds, 60 to 2592000, default 3600; a longer one tolerates a device clock that
        lags the service's; not used with X.509), `client_version` (the whole user agent sent
        as ClientVersion, e.g. "contoso-fw/2.4.1 (board-x)", default "dps-mqtt/VERSION") or
        `product_info` (azure-iot-device's name on its hub client: text appended to the
        default user agent, e.g. " contoso-fw/2.4.1"; give one of the two).

        Connection: `keep_alive` (MQTT keep-alive in seconds, 5 to 1767, default 60) and
        `max_packet_size` (the largest MQTT packet accepted from the service, 1024 to
        268435460 bytes, default 99328). README's option table lists every keyword with its
        CLI flag and C setter; each value goes to its setter, which alone decides what is
        valid.
        """
        def credential(cfg: Any, _callbacks: _Callbacks) -> None:
            key = _secret(symmetric_key, "symmetric_key")
            try:
                check(_ffi.dps_config_set_symmetric_key(cfg, key), "symmetric_key")
            finally:
                ctypes.memset(key, 0, len(key))
        return cls(provisioning_host, registration_id, id_scope, credential, **kwargs)

    @classmethod
    def create_from_group_key(cls, provisioning_host: str, registration_id: str, id_scope: str,
                              group_key: str, **kwargs: Any) -> "ProvisioningClient":
        """A client of an enrollment group: the device key is derived from `group_key` inside
        the library. Same keyword arguments as `create_from_symmetric_key`."""
        def credential(cfg: Any, _callbacks: _Callbacks) -> None:
            key = _secret(group_key, "group_key")
            try:
                check(_ffi.dps_config_set_group_key(cfg, key), "group_key")
            finally:
                ctypes.memset(key, 0, len(key))
        return cls(provisioning_host, registration_id, id_scope, credential, **kwargs)

    @classmethod
    def create_from_x509_certificate(cls, provisioning_host: str,
                                     registration_id: Optional[str],
                                     id_scope: str, x509: X509,
                                     **kwargs: Any) -> "ProvisioningClient":
        """A client authenticating with an X.509 certificate; `registration_id` must be the
        certificate's CN (None: the CN is used). Same keyword arguments as
        `create_from_symmetric_key`."""
        if not isinstance(x509, X509):
            raise _invalid(f"x509: expected a dps_mqtt.X509, got {type(x509).__name__}")
        try:
            with open(x509.cert_file, "rb") as f:
                cert = f.read()
        except OSError as e:
            raise InvalidArgumentError(_ffi.DPS_ERR_INVALID_ARGUMENT,
                                       f"cert_file: cannot read {e.filename}: {e.strerror}") from e
        try:
            with open(x509.key_file, "rb") as f:
                key = ctypes.create_string_buffer(f.read())
        except OSError as e:
            raise InvalidArgumentError(_ffi.DPS_ERR_INVALID_ARGUMENT,
                                       f"key_file: cannot read {e.filename}: {e.strerror}") from e

        def credential(cfg: Any, _callbacks: _Callbacks) -> None:
            check(_ffi.dps_config_set_client_certificate(cfg, cert, len(cert), key, len(key) - 1),
                  "x509")
        try:
            return cls(provisioning_host, registration_id, id_scope, credential, **kwargs)
        finally:
            ctypes.memset(key, 0, len(key))

    @classmethod
    def create_from_signing_callback(cls, provisioning_host: str, registration_id: str,
                                     id_scope: str, sign: Callable[[bytes], bytes],
                                     **kwargs: Any) -> "ProvisioningClient":
        """A client whose key stays in an HSM, TPM or secure element: `sign(data)` returns
        HMAC-SHA256(device key, data), 32 bytes. An exception it raises fails the
        registration and is re-raised from `register()`. Same keyword arguments as
        `create_from_symmetric_key`."""
        if not callable(sign):
            raise _invalid(f"sign: expected a callable, got {type(sign).__name__}")

        def credential(cfg: Any, callbacks: _Callbacks) -> None:
            callbacks.sign = sign
            check(_ffi.dps_config_set_signing_callback(cfg, callbacks.sign_cb, None), "sign")
        return cls(provisioning_host, registration_id, id_scope, credential, **kwargs)

    # --- use ----------------------------------------------------------------------------

    @property
    def provisioning_payload(self) -> Any:
        """Custom data sent with the registration (any JSON-serialisable value), as in
        azure-iot-device. Takes effect at the next `register()`."""
        return None if self._payload_json is None else json.loads(self._payload_json)

    @provisioning_payload.setter
    def provisioning_payload(self, value: Any) -> None:
        if value is None:
            self._set_payload_json(None)
            return
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise _invalid(f"provisioning_payload: not JSON-serialisable: {e}") from None
        self._set_payload_json(_text(text, "provisioning_payload"))

    def _set_payload_json(self, text: Optional[str]) -> None:
        self._payload_json = text
        self._dirty = True

    @property
    def closed(self) -> bool:
        return self._config is None

    def register(self) -> RegistrationResult:
        """Registers the device, blocking until it is assigned, refused, or the deadline
        passes. Raises the `ProvisioningError` subclass of the result's class; an exception
        raised by a callback or the transport is re-raised here (ending the attempt at once),
        and so is what a signal handler raises (KeyboardInterrupt for Ctrl-C); `cancel()`
        ends it with `OperationCancelledError`. Either way the connection is closed first.
        Calling it again starts a new attempt."""
        if self._calling_thread == threading.get_ident():
            raise InvalidArgumentError(_ffi.DPS_ERR_INVALID_STATE,
                                       "register() called from inside a callback")
        with self._lock:
            if self._config is None:
                raise ValueError("the ProvisioningClient is closed")
            _REGISTRATIONS.start(self)
            self._calling_thread = threading.get_ident()
            self._drain_wake()
            self._cancelled = False
            self._running = True
            try:
                client = self._prepare()
                result = self._run(client)
                error = self._callbacks.take_error()
                failure: Optional[ProvisioningError] = None
                if result != _ffi.DPS_OK:
                    # After an aborted attempt the client is gone: only the code is left.
                    failure = (self._failure(client, result) if self._client is not None
                               else error_class(result)(result))
                if error is not None:
                    error.__context__ = failure
                    raise error
                if failure is not None:
                    raise failure
                return self._result(client)
            finally:
                self._running = False
                self._calling_thread = None
                _REGISTRATIONS.stop(self)

    def cancel(self) -> None:
        """Ends the `register()` running now, from any thread or a signal handler: it closes
        the connection and raises `OperationCancelledError` (within a few milliseconds when
        it waits for the service; a connect of the built-in transport to a silent address
        finishes first). Does nothing when no register() runs. Takes no lock."""
        if self._running:
            self._cancelled = True
            try:
                self._wake_w.send(b"x")
            except OSError:  # full (a wake-up is pending anyway) or closed
                pass

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(64):
                pass
        except OSError:
            pass

    def _prepare(self) -> Any:
        if self._dirty or self._client is None:
            if self._payload_json is not None:
                check(_ffi.dps_config_set_payload_json(
                    self._config, _c_str(self._payload_json, "provisioning_payload")),
                    "provisioning_payload")
            self._free_client()
            out = _ffi.dps_client_p()
            table = None if self._callbacks.table is None else ctypes.byref(self._callbacks.table)
            self._callbacks.last_error_line = None
            result = _ffi.dps_client_new(self._config, table, ctypes.byref(out))
            if result != _ffi.DPS_OK:
                raise error_class(result)(result, self._callbacks.last_error_line)
            self._client = out
            self._client_finalizer = weakref.finalize(self, _free_client, out, self._callbacks)
            self._dirty = False
        return self._client

    def _run(self, client: Any) -> int:
        # The client is driven step by step (each step returns without waiting) and the
        # waiting is done here, in Python: so that an exception from a callback ends the
        # attempt at once, a signal's handler runs (and what it raises propagates) within a
        # step, cancel() wakes the wait, and no thread sits inside the library when the
        # interpreter exits.
        next_ms = ctypes.c_uint32()
        blocked = _handled_signals()
        try:
            while True:
                self._check_cancelled()
                result = self._step(client, next_ms, blocked)
                if self._callbacks.errors:
                    self._free_client()  # abandons the attempt; the next register() starts anew
                    return result
                if result != _ffi.DPS_PENDING:
                    return result
                self._check_cancelled()
                self._wait(client, next_ms.value / 1000.0)
        except BaseException:
            self._free_client()
            raise

    def _check_cancelled(self) -> None:
        if self._cancelled:
            raise OperationCancelledError()
        if _REGISTRATIONS.exiting:
            raise OperationCancelledError("the interpreter is exiting")

    @staticmethod
    def _step(client: Any, next_ms: Any, blocked: List[int]) -> int:
        if not blocked:
            return int(_ffi.dps_client_do_work(client, ctypes.byref(next_ms)))
        old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            return int(_ffi.dps_client_do_work(client, ctypes.byref(next_ms)))
        finally:
            # Delivers what arrived during the step: its handler runs here.
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    # A Python transport's wait cannot be woken by cancel(): it waits in slices this long.
    _TRANSPORT_WAIT_SLICE_S = 0.05
    # On the main thread, waits are this long at most, so that a signal's handler runs soon.
    _MAIN_THREAD_WAIT_SLICE_S = 0.2

    def _wait(self, client: Any, timeout: float) -> None:
        want_write = bool(_ffi.dps_client_wants_write(client))
        if self._transport is not None:
            self._transport.wait(min(timeout, self._TRANSPORT_WAIT_SLICE_S), want_write)
            return
        fd = int(_ffi.dps_client_socket(client))
        readers: List[Any] = [self._wake_r]
        writers: List[Any] = []
        if fd >= 0:
            readers.append(fd)
            if want_write:
                writers.append(fd)
        elif sys.platform == "win32":
            # select on Windows takes sockets only, and the library gives none: wait in
            # short slices, as the library's own blocking loop does.
            timeout = min(timeout, 0.01)
        if threading.current_thread() is threading.main_thread():
            # A signal that another thread received (the main thread blocks them during a
            # step) does not interrupt this select; its handler runs when the select returns.
            timeout = min(timeout, self._MAIN_THREAD_WAIT_SLICE_S)
        select.select(readers, writers, [], timeout)

    def _failure(self, client: Any, result: int) -> ProvisioningError:
        cls = error_class(result)
        registration = self._result(client) if issubclass(cls, RegistrationError) else None
        error = cls(result, _ffi.text(_ffi.dps_client_result_detail(client)),
                    error_code=int(_ffi.dps_client_error_code(client)) or None,
                    tracking_id=_ffi.text(_ffi.dps_client_tracking_id(client)),
                    http_status=int(_ffi.dps_client_http_status(client)),
                    registration_result=registration)
        if self._callbacks.os_error is not None:
            error.__cause__ = self._callbacks.os_error
            self._callbacks.os_error = None
        return error

    def _result(self, client: Any) -> RegistrationResult:
        payload_json = _ffi.text(_ffi.dps_client_payload_json(client))
        state = RegistrationState(
            device_id=_ffi.text(_ffi.dps_client_device_id(client)),
            assigned_hub=_ffi.text(_ffi.dps_client_assigned_hub(client)),
            sub_status=_ffi.text(_ffi.dps_client_substatus(client)),
            etag=_ffi.text(_ffi.dps_client_etag(client)),
            created_date_time=_ffi.text(_ffi.dps_client_created_date_time_utc(client)),
            last_update_date_time=_ffi.text(_ffi.dps_client_last_updated_date_time_utc(client)),
            payload=None if payload_json is None else json.loads(payload_json))
        return RegistrationResult(
            operation_id=_ffi.text(_ffi.dps_client_operation_id(client)),
            status=_ffi.text(_ffi.dps_client_registration_status(client)),
            registration_state=state, payload_json=payload_json,
            issued_certificate_chain=_ffi.text(
                _ffi.dps_client_issued_certificate_chain_pem(client)))

    def save_assignment(self) -> bytes:
        """The last registration's assignment (hub, device id, etag, time) as a small blob to
        store and give to `should_provision` / `Assignment.parse` at the next boot. Raises
        InvalidArgumentError when the last attempt did not end assigned."""
        with self._lock:
            if self._client is None:
                raise InvalidArgumentError(_ffi.DPS_ERR_INVALID_STATE,
                                           "no registration on this client yet")
            buf = ctypes.create_string_buffer(_ffi.DPS_ASSIGNMENT_MAX_LEN)
            written = ctypes.c_size_t()
            check(_ffi.dps_client_assignment_save(self._client, buf, len(buf),
                                                  ctypes.byref(written)), "assignment")
            return buf.raw[:written.value]

    def _free_client(self) -> None:
        # Freed here rather than through the finalizer, which would log and drop what the
        # transport's close hook raised instead of leaving it to be re-raised.
        if self._client_finalizer is not None and self._client_finalizer.detach() is not None:
            _ffi.dps_client_free(self._client)
        self._client = None
        self._client_finalizer = None
        self._dirty = True

    def close(self) -> None:
        """Frees the C handles (closing any open connection). Idempotent. Raises what the
        transport's `close` raised, if anything."""
        if self._calling_thread == threading.get_ident():
            raise RuntimeError("close() called from inside a callback of this client")
        with self._lock:
            _REGISTRATIONS.start(None, refuse=False)
            try:
                self._free_client()
                self._config_finalizer()
            finally:
                _REGISTRATIONS.stop(None)
            self._config = None
            error = self._callbacks.take_error()
            self._wake_r.close()
            self._wake_w.close()
        if error is not None:
            raise error

    def __enter__(self) -> "ProvisioningClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
