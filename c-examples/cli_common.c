/* What dps_register and dps_register_offload share: see cli_common.h. */
#define _POSIX_C_SOURCE 200809L

#include "cli_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================================== */
/* Command line                                                                              */
/* ======================================================================================== */

void cli_options_init(cli_options *o) {
    memset(o, 0, sizeof *o);
    o->host = "global.azure-devices-provisioning.net";
    o->port = 0; /* unset: 8883, or 443 with --websocket */
    o->timeout_ms = 90000;
}

int cli_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out) {
    char *end = NULL;
    unsigned long v;

    if (*s < '0' || *s > '9') { /* strtoul would accept a sign or spaces */
        return -1;
    }
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Parses a positive number of seconds (fractions allowed) into milliseconds, at most a day. */
static int parse_seconds(const char *s, unsigned long *out_ms) {
    char *end = NULL;
    double v;

    if ((*s < '0' || *s > '9') && *s != '.') {
        return -1;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v * 1000.0 >= 1.0) || v > 86400.0) {
        return -1;
    }
    *out_ms = (unsigned long)(v * 1000.0);
    return 0;
}

const char *cli_flag_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        return NULL;
    }
    return argv[++*i];
}

int cli_parse_flag(cli_options *o, int argc, char **argv, int *i, const char **error) {
    const char *flag = argv[*i];
    const char *value;
    const char **text = NULL;

    if (strcmp(flag, "--verbose") == 0) {
        o->verbose = 1;
        return 1;
    }
    if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
        o->help = 1;
        return 1;
    }
    if (strcmp(flag, "--websocket") == 0) {
        o->websocket = 1;
        return 1;
    }
    if (strcmp(flag, "--id-scope") == 0) text = &o->id_scope;
    else if (strcmp(flag, "--registration-id") == 0) text = &o->registration_id;
    else if (strcmp(flag, "--symmetric-key") == 0) text = &o->symmetric_key;
    else if (strcmp(flag, "--group-key") == 0) text = &o->group_key;
    else if (strcmp(flag, "--cert") == 0) text = &o->cert_file;
    else if (strcmp(flag, "--key") == 0) text = &o->key_file;
    else if (strcmp(flag, "--host") == 0) text = &o->host;
    else if (strcmp(flag, "--ca-file") == 0) text = &o->ca_file;
    else if (strcmp(flag, "--payload") == 0) text = &o->payload;
    else if (strcmp(flag, "--api-version") == 0) text = &o->api_version;
    else if (strcmp(flag, "--port") != 0 && strcmp(flag, "--timeout") != 0) {
        return 0;
    }
    value = cli_flag_value(argc, argv, i);
    if (value == NULL) {
        *error = CLI_MISSING_VALUE;
    } else if (text != NULL) {
        *text = value;
    } else if (strcmp(flag, "--port") == 0) {
        if (cli_parse_ulong(value, 1, 65535, &o->port) != 0) {
            *error = "--port must be a number from 1 to 65535";
        }
    } else if (parse_seconds(value, &o->timeout_ms) != 0) {
        *error = "--timeout must be a positive number of seconds, at most 86400";
    }
    return 1;
}

void cli_finish_options(cli_options *o) {
    if (o->port == 0) {
        o->port = o->websocket ? 443 : 8883;
    }
}

/* ======================================================================================== */
/* JSON output and exit codes                                                                */
/* ======================================================================================== */

/* Length of the well-formed UTF-8 sequence starting at p (1 to 4), or 0 if it is not one. */
static size_t utf8_length(const unsigned char *p) {
    unsigned long cp;
    size_t n, i;

    if (p[0] < 0x80) {
        return 1;
    } else if ((p[0] & 0xE0) == 0xC0) {
        n = 2, cp = p[0] & 0x1Fu;
    } else if ((p[0] & 0xF0) == 0xE0) {
        n = 3, cp = p[0] & 0x0Fu;
    } else if ((p[0] & 0xF8) == 0xF0) {
        n = 4, cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) { /* also stops at the terminating NUL */
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0; /* overlong, out of range, or a UTF-16 surrogate */
    }
    return n;
}

/* Writes s as a JSON string: escapes quotes, backslashes and control characters, and
 * replaces bytes that are not UTF-8 (e.g. from a file name) with U+FFFD, so the output is
 * always valid JSON. */
static void json_string(FILE *out, const char *s) {
    const unsigned char *p = (const unsigned char *)s;

    fputc('"', out);
    while (*p != '\0') {
        size_t n = utf8_length(p);
        if (n == 0) {
            fputs("\\ufffd", out);
            p++;
            continue;
        }
        if (n > 1) {
            fwrite(p, 1, n, out);
        } else if (*p == '"' || *p == '\\') {
            fputc('\\', out);
            fputc(*p, out);
        } else if (*p == '\n') {
            fputs("\\n", out);
        } else if (*p == '\r') {
            fputs("\\r", out);
        } else if (*p == '\t') {
            fputs("\\t", out);
        } else if (*p < 0x20 || *p == 0x7F) {
            fprintf(out, "\\u%04x", (unsigned)*p);
        } else {
            fputc(*p, out);
        }
        p += n;
    }
    fputc('"', out);
}

/* Writes `,"name":value` with value a JSON string, or null when value is NULL. */
static void json_field(FILE *out, const char *name, const char *value) {
    fprintf(out, ",\"%s\":", name);
    if (value != NULL) {
        json_string(out, value);
    } else {
        fputs("null", out);
    }
}

/* The exit code of a result: one per class, as the CLIs' contract says. */
static int exit_code(dps_result r) {
    switch (dps_result_class(r)) {
    case DPS_CLASS_OK: return 0;
    case DPS_CLASS_INVALID: return 2;
    case DPS_CLASS_AUTH: return 3;
    case DPS_CLASS_TLS: return 4;
    case DPS_CLASS_TRANSPORT: return 5;
    case DPS_CLASS_PROTOCOL: return 6;
    case DPS_CLASS_TIMEOUT: return 7;
    case DPS_CLASS_REGISTRATION: return 8;
    default: return 9; /* internal error (a bug): never reported as success */
    }
}

int cli_report_failure(dps_result r, const char *message, const dps_client *client) {
    const char *status = "error";

    if (r == DPS_ERR_REGISTRATION_FAILED) {
        status = "failed";
    } else if (r == DPS_ERR_REGISTRATION_DISABLED) {
        status = "disabled";
    }
    printf("{\"status\":\"%s\"", status);
    json_field(stdout, "error", dps_result_name(r));
    json_field(stdout, "message", message != NULL ? message : dps_result_str(r));
    if (client != NULL && dps_client_error_code(client) != 0) {
        printf(",\"errorCode\":%lld", (long long)dps_client_error_code(client));
    }
    if (client != NULL && dps_client_tracking_id(client) != NULL) {
        json_field(stdout, "trackingId", dps_client_tracking_id(client));
    }
    fputs("}\n", stdout);
    return exit_code(r);
}

void cli_report_success(const dps_client *client, int with_csr) {
    const char *payload = dps_client_payload_json(client);

    fputs("{\"status\":\"assigned\"", stdout);
    json_field(stdout, "assignedHub", dps_client_assigned_hub(client));
    json_field(stdout, "deviceId", dps_client_device_id(client));
    json_field(stdout, "substatus", dps_client_substatus(client));
    if (with_csr) {
        json_field(stdout, "issuedCertificateChain",
                   dps_client_issued_certificate_chain_pem(client));
    }
    printf(",\"payload\":%s}\n", payload != NULL ? payload : "null");
}

int cli_handle_usage(const char *program, const char *usage_text, int help,
                     const char *usage_error) {
    if (help) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (usage_error != NULL) {
        fprintf(stderr, "%s: %s\n%s", program, usage_error, usage_text);
        return cli_report_failure(DPS_ERR_INVALID_ARGUMENT, usage_error, NULL);
    }
    return -1;
}

/* ======================================================================================== */
/* Progress on stderr (--verbose)                                                            */
/* ======================================================================================== */

static const char *level_name(dps_log_level level) {
    switch (level) {
    case DPS_LOG_ERROR: return "error";
    case DPS_LOG_WARN: return "warn";
    case DPS_LOG_INFO: return "info";
    default: return "debug";
    }
}

static const char *status_name(dps_status status) {
    switch (status) {
    case DPS_STATUS_IDLE: return "idle";
    case DPS_STATUS_CONNECTING: return "connecting";
    case DPS_STATUS_CONNECTED: return "connected";
    case DPS_STATUS_REGISTERING: return "registering";
    case DPS_STATUS_ASSIGNING: return "assigning";
    case DPS_STATUS_THROTTLED: return "throttled";
    case DPS_STATUS_RECONNECTING: return "reconnecting";
    case DPS_STATUS_ASSIGNED: return "assigned";
    case DPS_STATUS_FAILED: return "failed";
    default: return "unknown";
    }
}

void cli_on_log(void *user, dps_log_level level, const char *message) {
    cli_log_state *state = (cli_log_state *)user;

    if (level == DPS_LOG_ERROR) {
        snprintf(state->last_error, sizeof state->last_error, "%s", message);
    }
    if (state->verbose) {
        fprintf(stderr, "%s: %s: %s\n", state->program, level_name(level), message);
    }
}

void cli_on_status(void *user, dps_status status) {
    const cli_log_state *state = (const cli_log_state *)user;

    fprintf(stderr, "%s: status: %s\n", state->program, status_name(status));
}
