"""The provisioning CLI: the flags, the one JSON object on stdout and the exit codes of the C
CLI (c-examples/dps_register.c), with `register` as the command."""

import contextlib
import json
import logging
import os
import sys
from typing import Any, Dict, List, Optional, TextIO

from . import _ffi
from ._client import ProvisioningClient, ProxyOptions, RegistrationResult, Status, X509
from ._errors import InternalError, InvalidArgumentError, ProtocolError, ProvisioningError

PROG = "python -m dps_mqtt"

USAGE = """\
usage: python -m dps_mqtt register --id-scope SCOPE --registration-id ID
                                  (--symmetric-key B64 | --group-key B64)
                                  [--host HOST] [--port PORT] [--ca-file PEM] [--payload JSON]
                                  [--api-version V] [--timeout SECONDS] [--verbose]
                                  [--csr FILE [--issued-cert-out FILE]] [--save-assignment FILE]
                                  [--websocket] [--proxy HOST:PORT [--proxy-user USER:PASS]]
       python -m dps_mqtt register --id-scope SCOPE [--registration-id ID]
                                  --cert FILE --key FILE
       and with either: [--model-id DTMI] [--sas-ttl SECONDS] [--client-version STR]
                                  [--host HOST] [--port PORT] [--ca-file PEM] [--payload JSON]
                                  [--api-version V] [--timeout SECONDS] [--verbose]

Registers a device with the Azure IoT Device Provisioning Service over MQTT/TLS and
prints one JSON object on stdout.

  --id-scope SCOPE       the DPS instance's id scope, e.g. 0ne00000001
  --registration-id ID   the device's registration id
  --symmetric-key B64    the device's key (individual enrollment)
  --group-key B64        the enrollment group's key; the device key is derived from it
  --cert FILE            X.509 client certificate: PEM chain (leaf first) or one DER
                         certificate; its CN is the registration id
  --key FILE             the certificate's private key, PEM or DER (PKCS#8, PKCS#1 RSA
                         or SEC1 EC), unencrypted
  --model-id DTMI        IoT Plug and Play model id, sent inside the payload as modelId
                         (e.g. dtmi:com:example:Thermostat;1)
  --sas-ttl SECONDS      lifetime of the SAS token, 60 to 2592000 (default 3600)
  --client-version STR   user agent sent as ClientVersion (default dps-mqtt/VERSION)
  --host HOST            DPS host (default global.azure-devices-provisioning.net)
  --port PORT            port (default 8883, or 443 with --websocket)
  --ca-file PEM          trust only the CA certificates in this PEM file (a private CA,
                         or the local emulator's ca.pem) instead of the public roots
  --payload JSON         custom JSON sent with the registration as its payload
  --api-version V        service api-version (default 2019-03-31)
  --timeout SECONDS      one deadline for the whole registration: connects,
                         reconnects, waits and polls (default 90)
  --verbose              progress on stderr (never keys or tokens)
  --csr FILE             request a certificate: send this PKCS#10 CSR (DER or PEM, CN =
                         the registration id); api-version 2025-07-01-preview unless
                         --api-version is given; the JSON adds "issuedCertificateChain"
  --issued-cert-out FILE write the issued chain there as PEM (leaf first)
  --websocket            MQTT over WebSocket over TLS (/$iothub/websocket), for networks
                         that only let port 443 out
  --proxy HOST:PORT      tunnel through this HTTP proxy (CONNECT), e.g. proxy:3128
  --proxy-user USER:PASS basic authentication for the proxy (split at the first ':')
  --save-assignment FILE write the assignment blob (hub, device id, etag, time) there,
                         for dps_should_provision at the next boot

On success, exit 0 and {"status":"assigned","assignedHub","deviceId","substatus",
"payload"}. Otherwise {"status":"failed"|"disabled"|"error","error","message"}
(with "errorCode" and "trackingId" when the service sent them), and the exit code:
  2 invalid argument (nothing was sent)  3 authentication refused  4 TLS
  5 transport (connect, reset, closed)   6 protocol  7 deadline passed
  8 the service said failed or disabled   9 internal error
"""

_TEXT_FLAGS = {
    "--id-scope": "id_scope", "--registration-id": "registration_id",
    "--symmetric-key": "symmetric_key", "--group-key": "group_key", "--cert": "cert",
    "--key": "key", "--host": "host", "--ca-file": "ca_file", "--payload": "payload",
    "--api-version": "api_version", "--proxy": "proxy", "--proxy-user": "proxy_user",
    "--csr": "csr", "--issued-cert-out": "issued_cert_out", "--save-assignment": "save_assignment",
    "--model-id": "model_id", "--client-version": "client_version",
}


class UsageError(Exception):
    pass


def _parse_port(value: str) -> int:
    if not value.isdigit() or not value.isascii() or not 1 <= int(value) <= 65535:
        raise UsageError("--port must be a number from 1 to 65535")
    return int(value)


def _parse_sas_ttl(value: str) -> int:
    if (not value.isdigit() or not value.isascii()
            or not _ffi.DPS_SAS_TOKEN_LIFETIME_MIN_S <= int(value)
            <= _ffi.DPS_SAS_TOKEN_LIFETIME_MAX_S):
        raise UsageError("--sas-ttl must be a number of seconds from 60 to 2592000")
    return int(value)


def _parse_seconds(value: str) -> float:
    message = "--timeout must be a positive number of seconds, at most 86400"
    if not value or not (value[0].isdigit() or value[0] == "."):
        raise UsageError(message)
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(message) from None
    if not seconds * 1000.0 >= 1.0 or seconds > 86400.0:
        raise UsageError(message)
    return seconds


def parse_args(argv: List[str]) -> Dict[str, Any]:
    """The options of `register`; raises UsageError. {"help": True} for --help."""
    o: Dict[str, Any] = {"host": "global.azure-devices-provisioning.net", "port": None,
                         "timeout": 90.0, "verbose": False, "websocket": False}
    if argv and argv[0] in ("--help", "-h"):
        return {"help": True}
    if not argv or argv[0] != "register":
        raise UsageError("the command must be `register` (see --help)")
    args = iter(argv[1:])
    for flag in args:
        if flag == "--verbose":
            o["verbose"] = True
            continue
        if flag == "--websocket":
            o["websocket"] = True
            continue
        if flag in ("--help", "-h"):
            return {"help": True}
        if flag not in _TEXT_FLAGS and flag not in ("--port", "--timeout", "--sas-ttl"):
            raise UsageError("unknown option (see --help)")
        value = next(args, None)
        if value is None:
            raise UsageError("an option is missing its value")
        if flag == "--port":
            o["port"] = _parse_port(value)
        elif flag == "--timeout":
            o["timeout"] = _parse_seconds(value)
        elif flag == "--sas-ttl":
            o["sas_ttl"] = _parse_sas_ttl(value)
        else:
            o[_TEXT_FLAGS[flag]] = value
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
        port_number = _parse_port(port)
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
    kwargs: Dict[str, Any] = dict(
        port=o["port"], server_verification_cert=ca, websockets=o["websocket"],
        proxy_options=o["proxy_options"], timeout=o["timeout"], api_version=o.get("api_version"),
        on_status=_on_status if o["verbose"] else None, csr=_read(o, "--csr"),
        model_id=o.get("model_id"), sastoken_ttl=o.get("sas_ttl"),
        client_version=o.get("client_version"))
    host, id_scope = o["host"], o["id_scope"]
    registration_id: Any = o.get("registration_id")  # None only with --cert (parse_args)
    if o.get("symmetric_key") is not None:
        client = ProvisioningClient.create_from_symmetric_key(
            host, registration_id, id_scope, o["symmetric_key"], **kwargs)
    elif o.get("group_key") is not None:
        client = ProvisioningClient.create_from_group_key(
            host, registration_id, id_scope, o["group_key"], **kwargs)
    else:  # the only credential without a registration id: the certificate's CN is used
        client = ProvisioningClient.create_from_x509_certificate(
            host, registration_id, id_scope, X509(o["cert"], o["key"]), **kwargs)
    if o.get("payload") is not None:
        client._set_payload_json(o["payload"])
    return client


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
    doc: Dict[str, Any] = {"status": status, "error": e.name, "message": e.message}
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


def _fail(out: TextIO, e: ProvisioningError) -> int:
    out.write(failure_json(e) + "\n")
    return e.exit_code


def main(argv: List[str], out: TextIO = sys.stdout) -> int:
    try:
        o = parse_args(argv)
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
        return _fail(out, e)
    except Exception as e:  # a bug: still one JSON object, and never success
        return _fail(out, InternalError(_ffi.DPS_ERR_INTERNAL, f"{type(e).__name__}: {e}"))
