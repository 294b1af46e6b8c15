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

/* Parses a non-negative number of seconds (fractions allowed) into milliseconds that fit a
 * uint32_t; whether the library accepts that deadline is dps_config_set_timeout_ms's call. */
static int parse_seconds(const char *s, unsigned long *out_ms) {
    char *end = NULL;
    double v;

    if ((*s < '0' || *s > '9') && *s != '.') {
        return -1;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v * 1000.0 < 4294967296.0)) {
        return -1;
    }
    *out_ms = (unsigned long)(v * 1000.0);
    return 0;
}

/* Levenshtein distance between a and b, for the nearest flag; flags are short, so a row of
 * 64 suffices (longer words are never near one). */
static size_t edit_distance(const char *a, const char *b) {
    size_t row[64], la = strlen(a), lb = strlen(b), i, j;

    if (lb >= sizeof row / sizeof row[0] || la >= sizeof row / sizeof row[0]) {
        return (size_t)-1;
    }
    for (j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb];
}

static const char *unknown_option(cli_options *o, const char *flag, unsigned program) {
    const cli_option_spec *specs = cli_option_specs();
    const char *best = NULL;
    size_t best_distance = CLI_SUGGEST_MAX_DISTANCE + 1;
    int id;

    for (id = 0; id < CLI_OPTION_COUNT; id++) {
        size_t d;
        if ((specs[id].programs & program) == 0) {
            continue;
        }
        d = edit_distance(flag, specs[id].flag);
        if (d < best_distance) {
            best = specs[id].flag;
            best_distance = d;
        }
    }
    if (best != NULL) {
        snprintf(o->error, sizeof o->error, "unknown option %s (did you mean %s?) (see --help)",
                 flag, best);
    } else {
        snprintf(o->error, sizeof o->error, "unknown option %s (see --help)", flag);
    }
    return o->error;
}

/* Checks a value against its option's C type (and --port, --timeout against theirs). */
static const char *check_value(cli_options *o, cli_option_id id) {
    const cli_option_spec *spec = &cli_option_specs()[id];
    const char *v = o->value[id];
    unsigned long n;

    if ((spec->kind == CLI_KIND_U16 && cli_parse_ulong(v, 0, 65535, &n) != 0) ||
        (spec->kind == CLI_KIND_U32 && cli_parse_ulong(v, 0, 4294967295ul, &n) != 0)) {
        snprintf(o->error, sizeof o->error, "%s must be a number from 0 to %s", spec->flag,
                 spec->kind == CLI_KIND_U16 ? "65535" : "4294967295");
        return o->error;
    }
    if (id == CLI_OPT_PORT && cli_parse_ulong(v, 0, 65535, &n) != 0) {
        return "--port must be a number from 0 to 65535";
    }
    if (id == CLI_OPT_TIMEOUT && parse_seconds(v, &n) != 0) {
        return "--timeout must be a number of seconds";
    }
    return NULL;
}

const char *cli_parse_args(cli_options *o, int argc, char **argv, unsigned program) {
    const cli_option_spec *specs = cli_option_specs();
    int i;

    memset(o, 0, sizeof *o);
    for (i = 1; i < argc; i++) {
        const char *flag = argv[i];
        const char *error;
        int id;

        if (strcmp(flag, "-h") == 0) {
            flag = "--help";
        }
        for (id = 0; id < CLI_OPTION_COUNT; id++) {
            if ((specs[id].programs & program) != 0 && strcmp(flag, specs[id].flag) == 0) {
                break;
            }
        }
        if (id == CLI_OPTION_COUNT) {
            return unknown_option(o, flag, program);
        }
        if (specs[id].metavar[0] == '\0') {
            o->value[id] = "1";
            if (id == CLI_OPT_HELP) {
                return NULL;
            }
            continue;
        }
        if (i + 1 >= argc) {
            snprintf(o->error, sizeof o->error, "%s is missing its value", flag);
            return o->error;
        }
        o->value[id] = argv[++i];
        if ((error = check_value(o, (cli_option_id)id)) != NULL) {
            return error;
        }
    }
    return NULL;
}

uint16_t cli_port(const cli_options *o) {
    return (uint16_t)strtoul(o->value[CLI_OPT_PORT], NULL, 10);
}

const char *cli_host(const cli_options *o) {
    return o->value[CLI_OPT_HOST] != NULL ? o->value[CLI_OPT_HOST] : CLI_DEFAULT_HOST;
}

uint32_t cli_timeout_ms(const cli_options *o) {
    unsigned long ms = DPS_TIMEOUT_DEFAULT_MS;

    if (o->value[CLI_OPT_TIMEOUT] != NULL) {
        (void)parse_seconds(o->value[CLI_OPT_TIMEOUT], &ms);
    }
    return (uint32_t)ms;
}

const char *cli_refused(char *buf, size_t buf_len, const char *flag, dps_result r,
                        const char *reason) {
    snprintf(buf, buf_len, "%s: %s", flag,
             reason != NULL && reason[0] != '\0' ? reason : dps_result_str(r));
    return buf;
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

int cli_report_failure(dps_result r, const char *message, const dps_client *client,
                       const cli_log_state *log) {
    const char *status = "error";
    const char *text = message != NULL ? message : dps_result_str(r);

    if (r == DPS_ERR_REGISTRATION_FAILED) {
        status = "failed";
    } else if (r == DPS_ERR_REGISTRATION_DISABLED) {
        status = "disabled";
    }
    printf("{\"status\":\"%s\"", status);
    json_field(stdout, "error", dps_result_name(r));
    json_field(stdout, "message", text);
    json_field(stdout, "hint", dps_result_hint(r));
    if (client != NULL && dps_client_error_code(client) != 0) {
        printf(",\"errorCode\":%lld", (long long)dps_client_error_code(client));
    }
    if (client != NULL && dps_client_tracking_id(client) != NULL) {
        json_field(stdout, "trackingId", dps_client_tracking_id(client));
    }
    fputs("}\n", stdout);
    if (log != NULL && log->verbose) {
        fprintf(stderr, "%s: %s: %s: %s\n%s: hint: %s\n", log->program, status,
                dps_result_name(r), text, log->program, dps_result_hint(r));
    }
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
        return cli_report_failure(DPS_ERR_INVALID_ARGUMENT, usage_error, NULL, NULL);
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
