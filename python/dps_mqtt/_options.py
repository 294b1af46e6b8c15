"""The one definition of every configuration option: its CLI flag, its Python keyword, the C
setter that takes it, its type, its default and its help.

Read at import by the Python client (the keyword arguments, their ctypes declarations) and the
Python CLI (its flags and usage text); tools/gen_options.py writes the C CLIs' flag table,
usage text and setter calls (c-examples/cli_options.h) and README's option table from it.

An option of kind "string", "u16", "u32" or "bool" is simple: its value goes unchanged (after
the C type's own range) to `setter(config, value)`, which alone decides whether the value is
valid. A "special" option (credentials, files, host and port, the deadline in seconds, the
proxy, outputs) is handled by hand in each front end; its flag, usage and default still come
from here.
"""

from typing import NamedTuple, Optional, Tuple

BOTH = ("dps_register", "dps_register_offload", "python")
"""Every front end: the two C CLIs and `python -m dps_mqtt register`."""
NOT_OFFLOAD = ("dps_register", "python")
"""Not in dps_register_offload, whose OpenSSL hooks own TLS, certificates and the socket."""


class Option(NamedTuple):
    flag: str
    metavar: str
    kind: str
    """"string", "u16", "u32", "bool" (simple: the setter takes the value) or "special"."""
    help: str
    setter: str = ""
    """The C setter of a simple option: `dps_result setter(dps_config *, value)`."""
    python: str = ""
    """The Python name: a `create_from_*` keyword (or positional) argument; "" for none."""
    keyword: bool = False
    """Whether the Python client takes it as a keyword passed straight to `setter`."""
    default: str = ""
    """The default as shown in --help and README (the library's, not re-applied by the CLIs)."""
    default_constant: str = ""
    """The header's macro holding that default, which a test compares with `default`."""
    programs: Tuple[str, ...] = BOTH
    valid: Tuple[str, ...] = ()
    """Values the setter accepts (command-line text): a generic test registers with each."""
    invalid: Tuple[str, ...] = ()
    """Values refused before anything is sent (exit 2): a generic test tries each."""
    offload_help: Optional[str] = None
    """dps_register_offload's own help text, when its hooks give the option another meaning."""

    @property
    def simple(self) -> bool:
        return self.kind != "special"

    @property
    def dest(self) -> str:
        """The option's identifier: the flag without dashes (--ca-file: ca_file)."""
        return self.flag[2:].replace("-", "_")


OPTIONS: Tuple[Option, ...] = (
    Option("--id-scope", "SCOPE", "string", "the DPS instance's id scope, e.g. 0ne00000001",
           setter="dps_config_set_id_scope", python="id_scope"),
    Option("--registration-id", "ID", "string", "the device's registration id",
           setter="dps_config_set_registration_id", python="registration_id"),
    Option("--symmetric-key", "B64", "string", "the device's key (individual enrollment)",
           setter="dps_config_set_symmetric_key", python="symmetric_key"),
    Option("--group-key", "B64", "string",
           "the enrollment group's key; the device key is derived from it",
           setter="dps_config_set_group_key", python="group_key"),
    Option("--cert", "FILE", "special",
           "X.509 client certificate: PEM chain (leaf first) or one DER certificate; its CN "
           "is the registration id", python="x509",
           offload_help="X.509: OpenSSL presents this PEM client certificate chain; the "
           "registration id must be the certificate's CN"),
    Option("--key", "FILE", "special",
           "the certificate's private key, PEM or DER (PKCS#8, PKCS#1 RSA or SEC1 EC), "
           "unencrypted", python="x509",
           offload_help="the PEM private key of --cert, for OpenSSL"),
    Option("--model-id", "DTMI", "string",
           "IoT Plug and Play model id, sent inside the payload as modelId (e.g. "
           "dtmi:com:example:Thermostat;1)",
           setter="dps_config_set_model_id", python="model_id", keyword=True,
           programs=NOT_OFFLOAD, valid=("dtmi:com:example:Thermostat;1",),
           invalid=("Thermostat",)),
    Option("--sas-ttl", "SECONDS", "u32", "lifetime of the SAS token, 60 to 2592000",
           setter="dps_config_set_sas_token_lifetime_s", python="sastoken_ttl", keyword=True,
           default="3600", programs=NOT_OFFLOAD, valid=("60", "2592000"),
           invalid=("59", "2592001", "1h", "-60", "4294967296")),
    Option("--client-version", "STR", "string", "user agent sent as ClientVersion",
           setter="dps_config_set_client_version", python="client_version", keyword=True,
           default="dps-mqtt/VERSION", programs=NOT_OFFLOAD, valid=("contoso-fw/2.4 (x)",),
           invalid=("", "a\tb", "x" * 257)),
    Option("--host", "HOST", "string", "DPS host: a DNS name or an IP address",
           setter="dps_config_set_host", python="provisioning_host",
           default="global.azure-devices-provisioning.net", invalid=("exa mple.com", "x..y")),
    Option("--port", "PORT", "special", "port", python="port",
           default="8883, or 443 with --websocket"),
    Option("--ca-file", "PEM", "special",
           "trust only the CA certificates in this PEM file (a private CA, or the local "
           "emulator's ca.pem) instead of the public roots",
           python="server_verification_cert",
           offload_help="trust only the CA certificates in this PEM file instead of the "
           "system's roots"),
    Option("--payload", "JSON", "string", "custom JSON sent with the registration as its payload",
           setter="dps_config_set_payload_json", python="provisioning_payload"),
    Option("--api-version", "V", "string", "service api-version",
           setter="dps_config_set_api_version", python="api_version", keyword=True,
           default="2019-03-31", valid=("2021-06-01",), invalid=("2019-3-31",)),
    Option("--timeout", "SECONDS", "special",
           "one deadline for the whole registration: connects, reconnects, waits and polls",
           python="timeout", default="90"),
    Option("--keep-alive", "SECONDS", "u16",
           "MQTT keep-alive: after this long without traffic the client pings, and a server "
           "silent for longer is taken as gone; 5 to 1767",
           setter="dps_config_set_keep_alive_s", python="keep_alive", keyword=True,
           default="60", default_constant="DPS_KEEP_ALIVE_DEFAULT_S", valid=("30",),
           invalid=("4", "1768", "65536", "x")),
    Option("--max-packet-size", "BYTES", "u32",
           "the largest MQTT packet accepted from the service, 1024 to 268435460; a larger one "
           "ends the attempt", setter="dps_config_set_max_packet_size", python="max_packet_size",
           keyword=True, default="99328", default_constant="DPS_MAX_PACKET_SIZE_DEFAULT",
           valid=("16384",), invalid=("1023", "268435461", "4294967296")),
    Option("--verbose", "", "special", "progress on stderr (never keys or tokens)"),
    Option("--csr", "FILE", "special",
           "request a certificate: send this PKCS#10 CSR (DER or PEM, CN = the registration "
           "id); api-version 2025-07-01-preview unless --api-version is given; the JSON adds "
           "\"issuedCertificateChain\"", python="csr", programs=NOT_OFFLOAD),
    Option("--issued-cert-out", "FILE", "special",
           "write the issued chain there as PEM (leaf first)", programs=NOT_OFFLOAD),
    Option("--websocket", "", "bool",
           "MQTT over WebSocket over TLS (/$iothub/websocket), for networks that only let port "
           "443 out", setter="dps_config_set_websocket", python="websockets", keyword=True,
           offload_help="MQTT over WebSocket (inside the hooks' TLS), for networks that block "
           "port 8883"),
    Option("--proxy", "HOST:PORT", "special",
           "tunnel through this HTTP proxy (CONNECT), e.g. proxy:3128",
           python="proxy_options", programs=NOT_OFFLOAD),
    Option("--proxy-user", "USER:PASS", "special",
           "basic authentication for the proxy (split at the first ':')",
           python="proxy_options", programs=NOT_OFFLOAD),
    Option("--save-assignment", "FILE", "special",
           "write the assignment blob (hub, device id, etag, time) there, for "
           "dps_should_provision at the next boot", programs=NOT_OFFLOAD),
    Option("--help", "", "special", "this text"),
)

BY_FLAG = {o.flag: o for o in OPTIONS}

C_TYPES = {"string": "const char *", "u16": "uint16_t", "u32": "uint32_t", "bool": "bool"}
TYPE_MAX = {"u16": 0xFFFF, "u32": 0xFFFFFFFF}


def for_program(program: str) -> Tuple[Option, ...]:
    return tuple(o for o in OPTIONS if program in o.programs)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), as cli_common.c counts it."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1,
                                           diagonal + (ca != cb))
    return row[len(b)]


SUGGEST_MAX_DISTANCE = 2


def unknown_option_message(flag: str, program: str) -> str:
    """`unknown option --regstration-id (did you mean --registration-id?) (see --help)`: the
    nearest flag within SUGGEST_MAX_DISTANCE edits, the first in table order on a tie."""
    best: Optional[str] = None
    best_distance = SUGGEST_MAX_DISTANCE + 1
    for o in for_program(program):
        d = edit_distance(flag, o.flag)
        if d < best_distance:
            best, best_distance = o.flag, d
    hint = f" (did you mean {best}?)" if best is not None else ""
    return f"unknown option {flag}{hint} (see --help)"


# --- usage text -----------------------------------------------------------------------------

HELP_COLUMN = 25
WIDTH = 94

SYNOPSIS = {
    "dps_register": (
        "usage: {name} --id-scope SCOPE --registration-id ID",
        "       {pad} (--symmetric-key B64 | --group-key B64) [OPTION...]",
        "       {name} --id-scope SCOPE [--registration-id ID] --cert FILE --key FILE",
        "       {pad} [OPTION...]",
    ),
    "dps_register_offload": (
        "usage: {name} --id-scope SCOPE --registration-id ID",
        "       {pad} (--symmetric-key B64 | --group-key B64 | --cert PEM --key PEM)",
        "       {pad} [OPTION...]",
    ),
}
SYNOPSIS["python"] = SYNOPSIS["dps_register"]

DESCRIPTION = {
    "dps_register": "Registers a device with the Azure IoT Device Provisioning Service over "
                    "MQTT/TLS and prints one JSON object on stdout.",
    "dps_register_offload": "Registers a device with the Azure IoT Device Provisioning Service "
                            "over MQTT, with TLS done by OpenSSL in the transport hooks (TLS "
                            "offload), and prints one JSON object on stdout.",
}
DESCRIPTION["python"] = DESCRIPTION["dps_register"]

RESULTS = """\
On success, exit 0 and {"status":"assigned","assignedHub","deviceId","substatus","payload"}.
Otherwise {"status":"failed"|"disabled"|"error","error","message","hint"} (with "errorCode"
and "trackingId" when the service sent them), and the exit code:
  2 invalid argument (nothing was sent)  3 authentication refused  4 TLS
  5 transport (connect, reset, closed)   6 protocol  7 deadline passed
  8 the service said failed or disabled   9 internal error (a bug: please report it)
"""

EXIT_CODES = {0: "assigned", 2: "invalid argument (nothing was sent)",
              3: "authentication refused", 4: "TLS", 5: "transport (connect, reset, closed)",
              6: "protocol", 7: "deadline passed", 8: "the service said failed or disabled",
              9: "internal error (a bug: please report it)"}


def _wrap(text: str, width: int) -> Tuple[str, ...]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return tuple(lines)


def option_help(o: Option, program: str) -> str:
    text = o.offload_help if program == "dps_register_offload" and o.offload_help else o.help
    return f"{text} (default {o.default})" if o.default else text


def usage(program: str, name: str) -> str:
    """The --help text of `program` ("dps_register", "dps_register_offload" or "python"),
    which calls itself `name`."""
    out = [line.format(name=name, pad=" " * len(name)) for line in SYNOPSIS[program]]
    out.append("")
    out += _wrap(DESCRIPTION[program], WIDTH - 2)
    out.append("")
    for o in for_program(program):
        head = f"  {o.flag} {o.metavar}".rstrip()
        lines = _wrap(option_help(o, program), WIDTH - HELP_COLUMN)
        if len(head) + 1 > HELP_COLUMN:
            out.append(head)
        else:
            out.append(head.ljust(HELP_COLUMN) + lines[0])
            lines = lines[1:]
        out += [" " * HELP_COLUMN + line for line in lines]
    out.append("")
    return "\n".join(out) + "\n" + RESULTS
