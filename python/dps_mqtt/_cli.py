"""The provisioning CLI: the flags, the one JSON object on stdout and the exit codes of the C
CLI (c-examples/dps_register.c), with `register` as the command."""

import contextlib
import json
import logging
import os
import sys
from typing import Any, Dict, List, Optional, TextIO

from . import _ffi, _options
from ._client import ProvisioningClient, ProxyOptions, RegistrationResult, Status, X509
from ._errors import InternalError, InvalidArgumentError, ProtocolError, ProvisioningError

PROG = "python -m dps_mqtt"
PROGRAM = "python"
"""This CLI's column of the option table."""

USAGE = _options.usage(PROGRAM, f"{PROG} register")

_FLAGS = {o.flag: o for o in _options.for_program(PROGRAM)}
_FLAGS["-h"] = _FLAGS["--help"]


class UsageError(Exception):
    pass


def _parse_whole(flag: str, value: str, top: int) -> int:
    """A decimal number within its C type, as cli_common.c reads it."""
    if not value.isdigit() or not value.isascii() or int(value) > top:
        raise UsageError(f"{flag} must be a number from 0 to {top}")
    return int(value)


def _parse_seconds(value: str) -> float:
    """A number of seconds whose milliseconds fit a uint32_t (the setter decides the rest)."""
    message = "--timeout must be a number of seconds"
    if not value or not (value[0].isdigit() or value[0] == "."):
        raise UsageError(message)
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(message) from None
    if not seconds * 1000.0 < 2.0**32:
        raise UsageError(message)
    return seconds


def _value(option: _options.Option, value: str) -> Any:
    if option.kind in _options.TYPE_MAX:
        return _parse_whole(option.flag, value, _options.TYPE_MAX[option.kind])
    if option.flag == "--port":
        return _parse_whole(option.flag, value, 0xFFFF)
    if option.flag == "--timeout":
        return _parse_seconds(value)
    return value


def parse_args(argv: List[str]) -> Dict[str, Any]:
    """The options of `register`, by the table's `dest` names; raises UsageError.
    {"help": True} for --help."""
    o: Dict[str, Any] = {"verbose": False, "websocket": False}
    if argv and argv[0] in ("--help", "-h"):
        return {"help": True}
    if not argv or argv[0] != "register":
        raise UsageError("the command must be `register` (see --help)")
    args = iter(argv[1:])
    for flag in args:
        option = _FLAGS.get(flag)
        if option is None:
            raise UsageError(_options.unknown_option_message(flag, PROGRAM))
        if not option.metavar:
            if option.flag == "--help":
                return {"help": True}
            o[option.dest] = True
            continue
        value = next(args, None)
        if value is None:
            raise UsageError(f"{flag} is missing its value")
        o[option.dest] = _value(option, value)
    if (o.get("cert") is None) != (o.get("key") is None):
        raise UsageError("--cert and --key go together")
    o["proxy_options"] = _proxy(o)
    if sum(o.get(k) is not None for k in ("symmetric_key", "group_key", "cert")) != 1:
        raise UsageError("give exactly one of --symmetric-key, --group-key and --cert/--key")
    if o.get("id_scope") is None or (o.get("registration_id") is None and o.get("cert") is None):
        raise UsageError(
            "--id-scope and --registration-id are required (with --cert, the CN is the id)")
    if o.get("issued_cert_out") is not None and o.get("csr") is None:
        raise UsageError("--issued-cert-out needs --csr")
    return o


def _proxy(o: Dict[str, Any]) -> Optional[ProxyOptions]:
    """--proxy HOST:PORT (split at the last ':', [v6] brackets dropped) and --proxy-user
    USER:PASS (split at the first ':'), checked as the C CLI does."""
    user = password = None
    if o.get("proxy_user") is not None:
        if o.get("proxy") is None:
            raise UsageError("--proxy-user needs --proxy")
        user, _, password = o["proxy_user"].partition(":")
        if not user or len(user.encode()) >= 256 or len(password.encode()) >= 256:
            raise UsageError("--proxy-user must be USER:PASS (each under 256 bytes)")
    if o.get("proxy") is None:
        return None
    host, sep, port = o["proxy"].rpartition(":")
    if len(host) > 1 and host[0] == "[" and host[-1] == "]":
        host = host[1:-1]
    try:
        if not sep or not host or len(host.encode()) >= 256:
            raise UsageError("no host")
        port_number = _parse_whole("--proxy", port, 0xFFFF)
    except UsageError:
        raise UsageError("--proxy must be HOST:PORT with a port from 1 to 65535") from None
    return ProxyOptions("HTTP", host, port_number, user, password)


class _StderrHandler(logging.Handler):
    NAMES = {logging.ERROR: "error", logging.WARNING: "warn", logging.INFO: "info"}

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"{PROG}: {self.NAMES.get(record.levelno, 'debug')}: "
                         f"{record.getMessage()}\n")


def _on_status(status: Status) -> None:
    sys.stderr.write(f"{PROG}: status: {status.name.lower()}\n")


def _read(o: Dict[str, Any], option: str) -> Optional[bytes]:
    path = o.get(option.lstrip("-").replace("-", "_"))
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InvalidArgumentError(_ffi.DPS_ERR_INVALID_ARGUMENT,
                                   f"{option}: cannot read {path}: {e.strerror}") from e


def _client(o: Dict[str, Any]) -> ProvisioningClient:
    ca = _read(o, "--ca-file")
    # The table's keyword options by their Python names; --websocket's is `websockets`.
    kwargs: Dict[str, Any] = {opt.python: o.get(opt.dest) for opt in _FLAGS.values()
                              if opt.keyword}
    kwargs.update(
        port=o.get("port"), server_verification_cert=ca, proxy_options=o["proxy_options"],
        timeout=o.get("timeout"), on_status=_on_status if o["verbose"] else None,
        csr=_read(o, "--csr"))
    host = o["host"] if "host" in o else _options.BY_FLAG["--host"].default
    id_scope = o["id_scope"]
    registration_id: Any = o.get("registration_id")  # None only with --cert (parse_args)
    try:
        if o.get("symmetric_key") is not None:
            client = ProvisioningClient.create_from_symmetric_key(
                host, registration_id, id_scope, o["symmetric_key"], **kwargs)
        elif o.get("group_key") is not None:
            client = ProvisioningClient.create_from_group_key(
                host, registration_id, id_scope, o["group_key"], **kwargs)
        else:  # the only credential without a registration id: the certificate's CN is used
            client = ProvisioningClient.create_from_x509_certificate(
                host, registration_id, id_scope, X509(o["cert"], o["key"]), **kwargs)
    except ProvisioningError as e:
        raise _named_by_flag(e, o) from e
    if o.get("payload") is not None:
        client._set_payload_json(o["payload"])
    return client


def _flag_names() -> Dict[str, str]:
    """The flag(s) of each Python name the client's messages start with."""
    flags: Dict[str, List[str]] = {}
    for opt in _FLAGS.values():
        if opt.python and opt.flag != "-h":
            flags.setdefault(opt.python, []).append(opt.flag)
    names = {python: "/".join(sorted(set(f), key=f.index)) for python, f in flags.items()}
    return names


_FLAG_OF = _flag_names()


def _named_by_flag(e: ProvisioningError, o: Dict[str, Any]) -> ProvisioningError:
    """The client's error, naming the flag instead of the Python keyword ("--model-id: ..."
    for "model_id: ..."), and the file of --ca-file, as dps_register does."""
    name, sep, reason = e.message.partition(": ")
    flag = _FLAG_OF.get(name)
    if not sep or flag is None:
        return e
    if flag == "--ca-file" and e.result == _ffi.DPS_ERR_INVALID_CERTIFICATE:
        message = f"--ca-file {o['ca_file']}: no PEM certificate in it ({reason})"
    elif flag == "--ca-file":
        message = f"--ca-file {o['ca_file']}: {reason}"
    else:
        message = f"{flag}: {reason}"
    return type(e)(e.result, message, error_code=e.error_code, tracking_id=e.tracking_id,
                   http_status=e.http_status, registration_result=e.registration_result)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def success_json(result: RegistrationResult, with_csr: bool = False) -> str:
    fields = [("status", "assigned"), ("assignedHub", result.assigned_hub),
              ("deviceId", result.device_id), ("substatus", result.sub_status)]
    if with_csr:
        fields.append(("issuedCertificateChain", result.issued_certificate_chain))
    body = ",".join(f"{_dumps(k)}:{_dumps(v)}" for k, v in fields)
    # The payload is the JSON text the service returned, as is.
    return "{" + body + ',"payload":' + (result.payload_json or "null") + "}"


def failure_json(e: ProvisioningError) -> str:
    status = "error"
    if e.result == _ffi.DPS_ERR_REGISTRATION_FAILED:
        status = "failed"
    elif e.result == _ffi.DPS_ERR_REGISTRATION_DISABLED:
        status = "disabled"
    doc: Dict[str, Any] = {"status": status, "error": e.name, "message": e.message,
                           "hint": e.hint}
    if e.error_code:
        doc["errorCode"] = e.error_code
    if e.tracking_id is not None:
        doc["trackingId"] = e.tracking_id
    return _dumps(doc)


def _write_chain(result: RegistrationResult, path: str) -> None:
    if result.issued_certificate_chain is None:
        raise ProtocolError(_ffi.DPS_ERR_PROTOCOL_BAD_RESPONSE,
                            "--issued-cert-out: the service issued no certificate")
    try:
        with open(path, "w") as f:
            f.write(result.issued_certificate_chain)
    except OSError as e:
        raise InvalidArgumentError(_ffi.DPS_ERR_INVALID_ARGUMENT,
                                   f"--issued-cert-out: cannot write {path}: {e.strerror}") from e


def _write_assignment(client: ProvisioningClient, path: str) -> None:
    """Through a temporary file and a rename: a crash never leaves half a blob behind."""
    try:
        blob = client.save_assignment()
    except ProvisioningError as e:
        raise type(e)(e.result, f"--save-assignment: {e.message}") from e
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise InvalidArgumentError(_ffi.DPS_ERR_INVALID_ARGUMENT,
                                   f"--save-assignment: cannot write {path}: {e.strerror}") from e


def _fail(out: TextIO, e: ProvisioningError, verbose: bool = False) -> int:
    doc = failure_json(e)
    out.write(doc + "\n")
    if verbose:
        status = json.loads(doc)["status"]
        sys.stderr.write(f"{PROG}: {status}: {e.name}: {e.message}\n{PROG}: hint: {e.hint}\n")
    return e.exit_code


def main(argv: List[str], out: TextIO = sys.stdout) -> int:
    verbose = False
    try:
        o = parse_args(argv)
        verbose = bool(o.get("verbose"))
        if o.get("help"):
            out.write(USAGE)
            return 0
        if o["verbose"]:
            logger = logging.getLogger("dps_mqtt")
            logger.addHandler(_StderrHandler())
            logger.setLevel(logging.DEBUG)
        with _client(o) as client:
            result = client.register()
            # Outputs asked for on the command line; failing to write one fails the run.
            if o.get("issued_cert_out") is not None:
                _write_chain(result, o["issued_cert_out"])
            if o.get("save_assignment") is not None:
                _write_assignment(client, o["save_assignment"])
        out.write(success_json(result, o.get("csr") is not None) + "\n")
        return 0
    except UsageError as e:
        sys.stderr.write(f"{PROG}: {e}\n{USAGE}")
        return _fail(out, InvalidArgumentError(_ffi.DPS_ERR_INVALID_ARGUMENT, str(e)))
    except ProvisioningError as e:
        return _fail(out, e, verbose)
    except Exception as e:  # a bug: still one JSON object, and never success
        return _fail(out, InternalError(_ffi.DPS_ERR_INTERNAL, f"{type(e).__name__}: {e}"),
                     verbose)
