/*
 * dps_register: provision a device with Azure IoT DPS from the command line.
 *
 * It is also the reference for firmware authors: it uses only the public header, and brings
 * its own transport hooks over POSIX sockets (non-blocking connect, send and recv returning
 * DPS_IO_WOULD_BLOCK, a poll()-based wait hook). Replace those four functions with your
 * modem's or RTOS's calls and the rest stays the same.
 *
 * Output contract (relied on by other tools): stdout carries exactly one JSON object;
 * the exit code tells the class of failure (see usage()).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "dps_mqtt.h"

/* ---------------------------------------------------------------------------------------- */
/* Transport hooks over POSIX sockets                                                        */
/* ---------------------------------------------------------------------------------------- */

typedef struct posix_socket {
    int fd;
    int connecting; /* non-blocking connect still in progress */
} posix_socket;

static int set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Resolves the host and starts a non-blocking connect to the first address that accepts
 * one; completion is detected by the first send/recv (they return DPS_IO_WOULD_BLOCK until
 * then). */
static int sock_connect(void *user, const char *host, uint16_t port) {
    posix_socket *s = (posix_socket *)user;
    struct addrinfo hints, *list = NULL, *ai;
    char service[8];
    int rc = -1;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%u", (unsigned)port);
    if (getaddrinfo(host, service, &hints, &list) != 0) {
        return -1;
    }
    for (ai = list; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (set_nonblocking(fd) == 0 &&
            (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS)) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            s->fd = fd;
            s->connecting = 1;
            rc = 0;
            break;
        }
        close(fd);
    }
    freeaddrinfo(list);
    return rc;
}

/* Finishes a pending non-blocking connect: 1 = connected, 0 = still connecting, -1 = failed. */
static int connect_done(posix_socket *s) {
    struct pollfd p;
    int err = 0;
    socklen_t len = sizeof err;

    if (!s->connecting) {
        return 1;
    }
    p.fd = s->fd;
    p.events = POLLOUT;
    p.revents = 0;
    if (poll(&p, 1, 0) <= 0) {
        return 0;
    }
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        return -1;
    }
    s->connecting = 0;
    return 1;
}

static intptr_t sock_send(void *user, const uint8_t *buf, size_t len) {
    posix_socket *s = (posix_socket *)user;
    ssize_t n;
    int state = connect_done(s);

    if (state <= 0) {
        return state == 0 ? DPS_IO_WOULD_BLOCK : DPS_IO_ERROR;
    }
    n = send(s->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) {
        return (intptr_t)n;
    }
    return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? DPS_IO_WOULD_BLOCK
                                                                        : DPS_IO_ERROR;
}

static intptr_t sock_recv(void *user, uint8_t *buf, size_t len) {
    posix_socket *s = (posix_socket *)user;
    ssize_t n;
    int state = connect_done(s);

    if (state <= 0) {
        return state == 0 ? DPS_IO_WOULD_BLOCK : DPS_IO_ERROR;
    }
    n = recv(s->fd, buf, len, 0);
    if (n >= 0) {
        return (intptr_t)n; /* 0 = the peer closed the connection */
    }
    if (errno == ECONNRESET) {
        return 0;
    }
    return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? DPS_IO_WOULD_BLOCK
                                                                        : DPS_IO_ERROR;
}

static void sock_close(void *user) {
    posix_socket *s = (posix_socket *)user;
    if (s->fd >= 0) {
        close(s->fd);
    }
    s->fd = -1;
    s->connecting = 0;
}

/* Sleeps until the socket is readable (or writable) or the library's timer is due. */
static void sock_wait(void *user, uint32_t timeout_ms, bool want_write) {
    posix_socket *s = (posix_socket *)user;
    struct pollfd p;

    if (s->fd < 0) {
        poll(NULL, 0, (int)(timeout_ms > 1000 ? 1000 : timeout_ms));
        return;
    }
    p.fd = s->fd;
    p.events = (short)(POLLIN | ((want_write || s->connecting) ? POLLOUT : 0));
    p.revents = 0;
    poll(&p, 1, timeout_ms > 60000 ? 60000 : (int)timeout_ms);
}

/* ---------------------------------------------------------------------------------------- */
/* Output                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void json_string(FILE *out, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', out);
    for (; *p != '\0'; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20) {
                fprintf(out, "\\u%04x", *p);
            } else {
                fputc(*p, out);
            }
        }
    }
    fputc('"', out);
}

static void json_field(FILE *out, const char *name, const char *value) {
    fprintf(out, ",\"%s\":", name);
    if (value != NULL) {
        json_string(out, value);
    } else {
        fputs("null", out);
    }
}

/* Exit codes by result class (the CLI's contract). */
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
    default: return 9;
    }
}

/* Prints the failure object and returns the exit code. */
static int fail(dps_result r, const char *message, const dps_client *client) {
    const char *status = "error";
    if (r == DPS_ERR_REGISTRATION_FAILED) {
        status = "failed";
    } else if (r == DPS_ERR_REGISTRATION_DISABLED) {
        status = "disabled";
    }
    printf("{\"status\":\"%s\",\"error\":\"%s\"", status, dps_result_name(r));
    json_field(stdout, "message", message != NULL ? message : dps_result_str(r));
    if (client != NULL && dps_client_error_code(client) != 0) {
        printf(",\"errorCode\":%lld", (long long)dps_client_error_code(client));
    }
    if (client != NULL && dps_client_tracking_id(client) != NULL) {
        json_field(stdout, "trackingId", dps_client_tracking_id(client));
    }
    puts("}");
    return exit_code(r);
}

static const char *level_name(dps_log_level level) {
    switch (level) {
    case DPS_LOG_ERROR: return "error";
    case DPS_LOG_WARN: return "warn";
    case DPS_LOG_INFO: return "info";
    default: return "debug";
    }
}

static void on_log(void *user, dps_log_level level, const char *message) {
    (void)user;
    fprintf(stderr, "dps_register: %s: %s\n", level_name(level), message);
}

static void on_status(void *user, dps_status status) {
    static const char *const names[] = {"idle",      "connecting",   "connected",
                                        "registering", "assigning", "throttled",
                                        "reconnecting", "assigned",  "failed"};
    (void)user;
    if ((size_t)status < sizeof names / sizeof names[0]) {
        fprintf(stderr, "dps_register: status: %s\n", names[status]);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Command line                                                                              */
/* ---------------------------------------------------------------------------------------- */

static void usage(FILE *out) {
    fputs(
        "usage: dps_register --id-scope SCOPE --registration-id ID\n"
        "                    (--symmetric-key B64 | --group-key B64)\n"
        "                    [--host HOST] [--port PORT] [--ca-file PEM] [--payload JSON]\n"
        "                    [--api-version V] [--timeout SECONDS] [--verbose]\n"
        "\n"
        "Registers a device with the Azure IoT Device Provisioning Service over MQTT/TLS and\n"
        "prints one JSON object on stdout.\n"
        "\n"
        "  --host HOST        DPS host (default global.azure-devices-provisioning.net)\n"
        "  --port PORT        port (default 8883)\n"
        "  --ca-file PEM      trust only the CA certificates in this PEM file instead of the\n"
        "                     public roots (a private CA, or the local emulator's ca.pem)\n"
        "  --payload JSON     custom payload sent with the registration\n"
        "  --api-version V    service api-version (default 2019-03-31)\n"
        "  --timeout SECONDS  one deadline for the whole registration (default 90)\n"
        "  --verbose          progress on stderr (never keys or tokens)\n"
        "\n"
        "exit codes: 0 assigned, 2 invalid argument, 3 authentication refused, 4 TLS,\n"
        "            5 transport, 6 protocol, 7 deadline passed, 8 registration failed/disabled\n",
        out);
}

typedef struct options {
    const char *id_scope, *registration_id, *symmetric_key, *group_key;
    const char *host, *ca_file, *payload, *api_version;
    long port, timeout_s;
    int verbose;
} options;

static int parse_long(const char *s, long min, long max, long *out) {
    char *end = NULL;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns NULL on success, or a message for a usage error. */
static const char *parse_args(int argc, char **argv, options *o) {
    int i;
    memset(o, 0, sizeof *o);
    o->host = "global.azure-devices-provisioning.net";
    o->port = 8883;
    o->timeout_s = 90;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **target = NULL;
        if (strcmp(a, "--verbose") == 0) {
            o->verbose = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            return "help";
        }
        if (i + 1 >= argc) {
            return "missing value for an option, or unknown option";
        }
        if (strcmp(a, "--id-scope") == 0) target = &o->id_scope;
        else if (strcmp(a, "--registration-id") == 0) target = &o->registration_id;
        else if (strcmp(a, "--symmetric-key") == 0) target = &o->symmetric_key;
        else if (strcmp(a, "--group-key") == 0) target = &o->group_key;
        else if (strcmp(a, "--host") == 0) target = &o->host;
        else if (strcmp(a, "--ca-file") == 0) target = &o->ca_file;
        else if (strcmp(a, "--payload") == 0) target = &o->payload;
        else if (strcmp(a, "--api-version") == 0) target = &o->api_version;
        else if (strcmp(a, "--port") == 0) {
            if (parse_long(argv[++i], 1, 65535, &o->port) != 0) return "--port must be 1-65535";
            continue;
        } else if (strcmp(a, "--timeout") == 0) {
            if (parse_long(argv[++i], 1, 86400, &o->timeout_s) != 0) {
                return "--timeout must be 1-86400 seconds";
            }
            continue;
        } else {
            return "unknown option";
        }
        *target = argv[++i];
    }
    if (o->id_scope == NULL || o->registration_id == NULL) {
        return "--id-scope and --registration-id are required";
    }
    if ((o->symmetric_key == NULL) == (o->group_key == NULL)) {
        return "give exactly one of --symmetric-key and --group-key";
    }
    return NULL;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    if (f == NULL) {
        return NULL;
    }
    do {
        if (n == cap) {
            char *bigger;
            cap = cap ? cap * 2 : 4096;
            if (cap > (16u << 20) || (bigger = (char *)realloc(buf, cap)) == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = bigger;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return buf;
}

/* Applies the options to a config; returns the first setter's error. */
static dps_result configure(dps_config *cfg, const options *o, const char **what) {
    dps_result r;
    if ((r = dps_config_set_id_scope(cfg, o->id_scope)) != DPS_OK) return *what = "--id-scope", r;
    if ((r = dps_config_set_registration_id(cfg, o->registration_id)) != DPS_OK) {
        return *what = "--registration-id", r;
    }
    if (o->symmetric_key != NULL) {
        if ((r = dps_config_set_symmetric_key(cfg, o->symmetric_key)) != DPS_OK) {
            return *what = "--symmetric-key", r;
        }
    } else if ((r = dps_config_set_group_key(cfg, o->group_key)) != DPS_OK) {
        return *what = "--group-key", r;
    }
    if ((r = dps_config_set_endpoint(cfg, o->host, (uint16_t)o->port)) != DPS_OK) {
        return *what = "--host", r;
    }
    if (o->payload != NULL && (r = dps_config_set_payload_json(cfg, o->payload)) != DPS_OK) {
        return *what = "--payload", r;
    }
    if (o->api_version != NULL && (r = dps_config_set_api_version(cfg, o->api_version)) != DPS_OK) {
        return *what = "--api-version", r;
    }
    if ((r = dps_config_set_timeout_ms(cfg, (uint32_t)o->timeout_s * 1000u)) != DPS_OK) {
        return *what = "--timeout", r;
    }
    if (o->ca_file != NULL) {
        size_t len = 0;
        char *pem = read_file(o->ca_file, &len);
        if (pem == NULL) {
            *what = "--ca-file: cannot read the file";
            return DPS_ERR_INVALID_ARGUMENT;
        }
        r = dps_config_add_trust_anchors_pem(cfg, (const uint8_t *)pem, len, false);
        free(pem);
        if (r != DPS_OK) return *what = "--ca-file", r;
    }
    if (o->verbose) {
        dps_config_set_log_callback(cfg, on_log, NULL, DPS_LOG_INFO);
        dps_config_set_status_callback(cfg, on_status, NULL);
    }
    return DPS_OK;
}

int main(int argc, char **argv) {
    options o;
    const char *what = NULL;
    const char *usage_error = parse_args(argc, argv, &o);
    posix_socket sock = {-1, 0};
    dps_transport transport;
    dps_config *cfg;
    dps_client *client = NULL;
    dps_result r;
    int rc;

    if (usage_error != NULL) {
        if (strcmp(usage_error, "help") == 0) {
            usage(stderr);
            return fail(DPS_ERR_INVALID_ARGUMENT, "help requested", NULL);
        }
        usage(stderr);
        return fail(DPS_ERR_INVALID_ARGUMENT, usage_error, NULL);
    }
    cfg = dps_config_new();
    if (cfg == NULL) {
        return fail(DPS_ERR_INTERNAL, "out of memory", NULL);
    }
    r = configure(cfg, &o, &what);
    if (r != DPS_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: %s", what, dps_result_str(r));
        dps_config_free(cfg);
        return fail(r, msg, NULL);
    }

    memset(&transport, 0, sizeof transport);
    transport.user = &sock;
    transport.connect = sock_connect;
    transport.send = sock_send;
    transport.recv = sock_recv;
    transport.close = sock_close;
    transport.wait = sock_wait;

    r = dps_client_new(cfg, &transport, &client);
    dps_config_free(cfg); /* the client keeps its own copy */
    if (r != DPS_OK) {
        return fail(r, NULL, NULL);
    }

    r = dps_client_register(client);
    if (r == DPS_OK) {
        const char *payload = dps_client_payload_json(client);
        printf("{\"status\":\"assigned\"");
        json_field(stdout, "assignedHub", dps_client_assigned_hub(client));
        json_field(stdout, "deviceId", dps_client_device_id(client));
        json_field(stdout, "substatus", dps_client_substatus(client));
        printf(",\"payload\":%s}\n", payload != NULL ? payload : "null");
        rc = 0;
    } else {
        rc = fail(r, dps_client_result_detail(client), client);
    }
    dps_client_free(client);
    return rc;
}
