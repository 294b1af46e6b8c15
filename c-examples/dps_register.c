/*
 * dps_register: provision a device with the Azure IoT Device Provisioning Service (DPS) from
 * the command line.
 *
 *   dps_register --id-scope SCOPE --registration-id ID (--symmetric-key B64 | --group-key B64)
 *                [--host HOST] [--port PORT] [--ca-file PEM] [--payload JSON]
 *                [--api-version V] [--timeout SECONDS] [--verbose]
 *                [--csr FILE [--issued-cert-out FILE]] [--save-assignment FILE]
 *   dps_register --id-scope SCOPE [--registration-id ID] --cert FILE --key FILE [...]
 *
 * With --cert and --key the device authenticates with an X.509 client certificate (individual
 * or enrollment-group X.509 attestation): no SAS token is sent, and the registration id is the
 * certificate's CN (if given, --registration-id must equal it).
 *
 * It is also the reference for firmware authors. It uses only the public header, and brings
 * its own transport: four small hooks over POSIX sockets (a non-blocking connect, send and recv
 * that return DPS_IO_WOULD_BLOCK instead of blocking, close) plus a wait hook built on poll().
 * On a device, replace those hooks with your modem's or TCP/IP stack's calls; the rest of the
 * program (configure, register, read the results) stays the same.
 *
 * Output contract, relied on by other tools: stdout carries exactly one JSON object, and the
 * exit code tells the class of the result (see usage_text below). Progress goes to stderr,
 * only with --verbose, and never includes a key or a token.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "dps_mqtt.h"

/* ======================================================================================== */
/* Transport hooks over POSIX sockets                                                        */
/* ======================================================================================== */

/* The state behind the hooks' `user` pointer. */
typedef struct posix_socket {
    int fd;                    /* -1 while closed */
    int connecting;            /* 1 while a non-blocking connect is in flight */
    int send_blocked;          /* 1 when the last send was refused: bytes wait to go out */
    struct addrinfo *addrs;    /* the resolved addresses, kept to fall back on */
    struct addrinfo *next;     /* the next address to try if the current one fails */
} posix_socket;

#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL /* a reset peer must give EPIPE, not kill us with SIGPIPE */
#else
#define SEND_FLAGS 0 /* main() ignores SIGPIPE instead */
#endif

static int would_block(int err) {
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

static void close_fd(posix_socket *s) {
    if (s->fd >= 0) {
        close(s->fd);
    }
    s->fd = -1;
    s->connecting = 0;
    s->send_blocked = 0;
}

/* Starts a non-blocking connect to the next address that accepts one. Returns 0 when a
 * connect is under way (or done), -1 when no address is left. */
static int start_next_address(posix_socket *s) {
    while (s->next != NULL) {
        const struct addrinfo *ai = s->next;
        int fd, flags, one = 1;

        s->next = ai->ai_next;
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        flags = fcntl(fd, F_GETFL, 0);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
            close(fd);
            continue;
        }
        /* The library sends CONNECT, SUBSCRIBE and the register request in one flight;
         * Nagle's algorithm would only delay it. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            s->fd = fd;
            s->connecting = 0;
            return 0;
        }
        if (errno == EINPROGRESS) {
            s->fd = fd;
            s->connecting = 1;
            return 0;
        }
        close(fd);
    }
    return -1;
}

/* connect hook: resolves the host and starts connecting without waiting for the handshake.
 * The library then calls send/recv, which report DPS_IO_WOULD_BLOCK until the connection is
 * up. (getaddrinfo itself blocks; a firmware's DNS call usually does too.) */
static int sock_connect(void *user, const char *host, uint16_t port) {
    posix_socket *s = (posix_socket *)user;
    struct addrinfo hints;
    char service[8];

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%u", (unsigned)port);
    if (getaddrinfo(host, service, &hints, &s->addrs) != 0) {
        s->addrs = NULL;
        return -1;
    }
    s->next = s->addrs;
    if (start_next_address(s) != 0) {
        freeaddrinfo(s->addrs);
        s->addrs = s->next = NULL;
        return -1;
    }
    return 0;
}

/* Checks a connect in flight: 1 = connected, 0 = still connecting, -1 = every address
 * failed. A failed address makes way for the next one (e.g. IPv6 ::1, then 127.0.0.1). */
static int connection_ready(posix_socket *s) {
    while (s->connecting) {
        struct pollfd p;
        int err = 0;
        socklen_t len = sizeof err;

        p.fd = s->fd;
        p.events = POLLOUT;
        p.revents = 0;
        if (poll(&p, 1, 0) == 0) {
            return 0;
        }
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
            s->connecting = 0;
            return 1;
        }
        close_fd(s);
        if (start_next_address(s) != 0) {
            return -1;
        }
    }
    return s->fd >= 0 ? 1 : -1;
}

/* send hook: bytes sent, DPS_IO_WOULD_BLOCK, or DPS_IO_ERROR. */
static ptrdiff_t sock_send(void *user, const uint8_t *buf, size_t len) {
    posix_socket *s = (posix_socket *)user;
    ssize_t n;
    int ready = connection_ready(s);

    s->send_blocked = 1;
    if (ready <= 0) {
        return ready == 0 ? DPS_IO_WOULD_BLOCK : DPS_IO_ERROR;
    }
    n = send(s->fd, buf, len, SEND_FLAGS);
    if (n >= 0) {
        s->send_blocked = 0;
        return (ptrdiff_t)n;
    }
    return would_block(errno) ? DPS_IO_WOULD_BLOCK : DPS_IO_ERROR;
}

/* recv hook: bytes received, 0 when the peer closed the connection, DPS_IO_WOULD_BLOCK, or
 * DPS_IO_ERROR. */
static ptrdiff_t sock_recv(void *user, uint8_t *buf, size_t len) {
    posix_socket *s = (posix_socket *)user;
    ssize_t n;
    int ready = connection_ready(s);

    if (ready <= 0) {
        return ready == 0 ? DPS_IO_WOULD_BLOCK : DPS_IO_ERROR;
    }
    n = recv(s->fd, buf, len, 0);
    if (n >= 0) {
        return (ptrdiff_t)n;
    }
    if (errno == ECONNRESET) {
        /* A server that closes while our bytes are still unread sends a reset instead of a
         * normal close; either way the peer is gone, and the library must first act on the
         * answer it already received (e.g. a 401 just before the service hangs up). */
        return 0;
    }
    return would_block(errno) ? DPS_IO_WOULD_BLOCK : DPS_IO_ERROR;
}

/* close hook: called once for every successful connect. */
static void sock_close(void *user) {
    posix_socket *s = (posix_socket *)user;

    close_fd(s);
    if (s->addrs != NULL) {
        freeaddrinfo(s->addrs);
    }
    s->addrs = s->next = NULL;
}

/* wait hook (optional, used by the blocking dps_client_register): sleeps until the socket has
 * something for the library or its next timer is due, instead of spinning. It also wakes when
 * the socket becomes writable if the library has bytes waiting to go out: the transport knows
 * that itself, because its last send returned DPS_IO_WOULD_BLOCK. */
static void sock_wait(void *user, uint32_t timeout_ms, bool want_write) {
    posix_socket *s = (posix_socket *)user;
    struct pollfd p;
    int timeout = timeout_ms > (uint32_t)INT_MAX ? INT_MAX : (int)timeout_ms;

    if (s->fd < 0) {
        (void)poll(NULL, 0, timeout);
        return;
    }
    p.fd = s->fd;
    p.events = (short)(POLLIN | ((want_write || s->connecting || s->send_blocked) ? POLLOUT : 0));
    p.revents = 0;
    (void)poll(&p, 1, timeout);
}

/* ======================================================================================== */
/* JSON output                                                                               */
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

/* The exit code of a result: one per class, as the CLI's contract says. */
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

/* Prints the failure object and returns the exit code. `client` may be NULL (nothing was
 * dialled); otherwise the service's errorCode and trackingId are added when it sent them. */
static int report_failure(dps_result r, const char *message, const dps_client *client) {
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

/* Prints the success object. The payload is the JSON text the service returned, as is.
 * With --csr it also carries "issuedCertificateChain": the PEM text, or null. */
static void report_success(const dps_client *client, int with_csr) {
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

/* What the log callback knows: whether to print, and the last error, which explains a
 * configuration that dps_client_new refused (e.g. a registration id that is not the
 * certificate's CN). */
typedef struct log_state {
    int verbose;
    char last_error[512];
} log_state;

/* The library promises never to pass a key or a token to these callbacks. */
static void on_log(void *user, dps_log_level level, const char *message) {
    log_state *state = (log_state *)user;

    if (level == DPS_LOG_ERROR) {
        snprintf(state->last_error, sizeof state->last_error, "%s", message);
    }
    if (state->verbose) {
        fprintf(stderr, "dps_register: %s: %s\n", level_name(level), message);
    }
}

static void on_status(void *user, dps_status status) {
    (void)user;
    fprintf(stderr, "dps_register: status: %s\n", status_name(status));
}

/* ======================================================================================== */
/* Command line                                                                              */
/* ======================================================================================== */

static const char usage_text[] =
    "usage: dps_register --id-scope SCOPE --registration-id ID\n"
    "                    (--symmetric-key B64 | --group-key B64)\n"
    "                    [--host HOST] [--port PORT] [--ca-file PEM] [--payload JSON]\n"
    "                    [--api-version V] [--timeout SECONDS] [--verbose]\n"
    "                    [--csr FILE [--issued-cert-out FILE]] [--save-assignment FILE]\n"
    "                    [--websocket] [--proxy HOST:PORT [--proxy-user USER:PASS]]\n"
    "       dps_register --id-scope SCOPE [--registration-id ID] --cert FILE --key FILE\n"
    "                    [--host HOST] [--port PORT] [--ca-file PEM] [--payload JSON]\n"
    "                    [--api-version V] [--timeout SECONDS] [--verbose]\n"
    "\n"
    "Registers a device with the Azure IoT Device Provisioning Service over MQTT/TLS and\n"
    "prints one JSON object on stdout.\n"
    "\n"
    "  --id-scope SCOPE       the DPS instance's id scope, e.g. 0ne00000001\n"
    "  --registration-id ID   the device's registration id\n"
    "  --symmetric-key B64    the device's key (individual enrollment)\n"
    "  --group-key B64        the enrollment group's key; the device key is derived from it\n"
    "  --cert FILE            X.509 client certificate: PEM chain (leaf first) or one DER\n"
    "                         certificate; its CN is the registration id\n"
    "  --key FILE             the certificate's private key, PEM or DER (PKCS#8, PKCS#1 RSA\n"
    "                         or SEC1 EC), unencrypted\n"
    "  --host HOST            DPS host (default global.azure-devices-provisioning.net)\n"
    "  --port PORT            port (default 8883, or 443 with --websocket)\n"
    "  --ca-file PEM          trust only the CA certificates in this PEM file (a private CA,\n"
    "                         or the local emulator's ca.pem) instead of the public roots\n"
    "  --payload JSON         custom JSON sent with the registration as its payload\n"
    "  --api-version V        service api-version (default 2019-03-31)\n"
    "  --timeout SECONDS      one deadline for the whole registration: connects,\n"
    "                         reconnects, waits and polls (default 90)\n"
    "  --verbose              progress on stderr (never keys or tokens)\n"
    "  --csr FILE             request a certificate: send this PKCS#10 CSR (DER or PEM, CN =\n"
    "                         the registration id); api-version 2025-07-01-preview unless\n"
    "                         --api-version is given; the JSON adds \"issuedCertificateChain\"\n"
    "  --issued-cert-out FILE write the issued chain there as PEM (leaf first)\n"
    "  --websocket            MQTT over WebSocket over TLS (/$iothub/websocket), for networks\n"
    "                         that only let port 443 out\n"
    "  --proxy HOST:PORT      tunnel through this HTTP proxy (CONNECT), e.g. proxy:3128\n"
    "  --proxy-user USER:PASS basic authentication for the proxy (split at the first ':')\n"
    "  --save-assignment FILE write the assignment blob (hub, device id, etag, time) there,\n"
    "                         for dps_should_provision at the next boot\n"
    "\n"
    "On success, exit 0 and {\"status\":\"assigned\",\"assignedHub\",\"deviceId\",\"substatus\",\n"
    "\"payload\"}. Otherwise {\"status\":\"failed\"|\"disabled\"|\"error\",\"error\",\"message\"}\n"
    "(with \"errorCode\" and \"trackingId\" when the service sent them), and the exit code:\n"
    "  2 invalid argument (nothing was sent)  3 authentication refused  4 TLS\n"
    "  5 transport (connect, reset, closed)   6 protocol  7 deadline passed\n"
    "  8 the service said failed or disabled   9 internal error\n";

typedef struct options {
    const char *id_scope, *registration_id, *symmetric_key, *group_key;
    const char *host, *ca_file, *payload, *api_version;
    const char *cert_file, *key_file;
    const char *csr_file, *issued_cert_out; /* certificate issuance */
    const char *save_assignment;            /* the stored assignment blob */
    unsigned long port;
    unsigned long timeout_ms;
    int verbose, help;
    /* Connection path: WebSocket and HTTP proxy. */
    int websocket;
    const char *proxy, *proxy_user;
    char proxy_host[256], proxy_username[256], proxy_password[256];
    unsigned long proxy_port;
} options;

/* Parses a decimal integer in [min, max]; 0 on success. */
static int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out) {
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

/* Fills `o` from argv. Returns NULL on success, or what is wrong. */
static const char *parse_args(int argc, char **argv, options *o) {
    int i;

    memset(o, 0, sizeof *o);
    o->host = "global.azure-devices-provisioning.net";
    o->port = 0; /* unset: 8883, or 443 with --websocket */
    o->timeout_ms = 90000;
    for (i = 1; i < argc; i++) {
        const char *flag = argv[i];
        const char *value;
        const char **text = NULL;

        if (strcmp(flag, "--verbose") == 0) {
            o->verbose = 1;
            continue;
        }
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            o->help = 1;
            return NULL;
        }
        /* Connection path: WebSocket and HTTP proxy. */
        if (strcmp(flag, "--websocket") == 0) {
            o->websocket = 1;
            continue;
        }
        if (strcmp(flag, "--id-scope") == 0) text = &o->id_scope;
        else if (strcmp(flag, "--registration-id") == 0) text = &o->registration_id;
        else if (strcmp(flag, "--symmetric-key") == 0) text = &o->symmetric_key;
        else if (strcmp(flag, "--group-key") == 0) text = &o->group_key;
        else if (strcmp(flag, "--host") == 0) text = &o->host;
        else if (strcmp(flag, "--ca-file") == 0) text = &o->ca_file;
        else if (strcmp(flag, "--payload") == 0) text = &o->payload;
        else if (strcmp(flag, "--api-version") == 0) text = &o->api_version;
        else if (strcmp(flag, "--cert") == 0) text = &o->cert_file;
        else if (strcmp(flag, "--key") == 0) text = &o->key_file;
        else if (strcmp(flag, "--csr") == 0) text = &o->csr_file;
        else if (strcmp(flag, "--issued-cert-out") == 0) text = &o->issued_cert_out;
        else if (strcmp(flag, "--proxy") == 0) text = &o->proxy;
        else if (strcmp(flag, "--proxy-user") == 0) text = &o->proxy_user;
        else if (strcmp(flag, "--save-assignment") == 0) text = &o->save_assignment;
        else if (strcmp(flag, "--port") != 0 && strcmp(flag, "--timeout") != 0) {
            return "unknown option (see --help)";
        }
        if (i + 1 >= argc) {
            return "an option is missing its value";
        }
        value = argv[++i];
        if (text != NULL) {
            *text = value;
        } else if (strcmp(flag, "--port") == 0) {
            if (parse_ulong(value, 1, 65535, &o->port) != 0) {
                return "--port must be a number from 1 to 65535";
            }
        } else if (parse_seconds(value, &o->timeout_ms) != 0) {
            return "--timeout must be a positive number of seconds, at most 86400";
        }
    }
    if ((o->cert_file == NULL) != (o->key_file == NULL)) {
        return "--cert and --key go together";
    }
    if (o->port == 0) {
        o->port = o->websocket ? 443 : 8883;
    }
    if (o->proxy != NULL) {
        /* HOST:PORT, split at the last ':' ([v6]:port keeps its brackets off). */
        const char *colon = strrchr(o->proxy, ':');
        const char *host = o->proxy;
        size_t host_len = colon == NULL ? 0 : (size_t)(colon - o->proxy);
        if (host_len > 1 && host[0] == '[' && host[host_len - 1] == ']') {
            host++;
            host_len -= 2;
        }
        if (colon == NULL || host_len == 0 || host_len >= sizeof o->proxy_host ||
            parse_ulong(colon + 1, 1, 65535, &o->proxy_port) != 0) {
            return "--proxy must be HOST:PORT with a port from 1 to 65535";
        }
        memcpy(o->proxy_host, host, host_len);
        o->proxy_host[host_len] = '\0';
    }
    if (o->proxy_user != NULL) {
        const char *colon = strchr(o->proxy_user, ':');
        size_t user_len = colon == NULL ? strlen(o->proxy_user) : (size_t)(colon - o->proxy_user);
        const char *password = colon == NULL ? "" : colon + 1;
        if (o->proxy == NULL) {
            return "--proxy-user needs --proxy";
        }
        if (user_len == 0 || user_len >= sizeof o->proxy_username ||
            strlen(password) >= sizeof o->proxy_password) {
            return "--proxy-user must be USER:PASS (each under 256 bytes)";
        }
        memcpy(o->proxy_username, o->proxy_user, user_len);
        o->proxy_username[user_len] = '\0';
        memcpy(o->proxy_password, password, strlen(password) + 1);
    }
    if ((o->symmetric_key != NULL) + (o->group_key != NULL) + (o->cert_file != NULL) != 1) {
        return "give exactly one of --symmetric-key, --group-key and --cert/--key";
    }
    if (o->id_scope == NULL || (o->registration_id == NULL && o->cert_file == NULL)) {
        return "--id-scope and --registration-id are required (with --cert, the CN is the id)";
    }
    if (o->issued_cert_out != NULL && o->csr_file == NULL) {
        return "--issued-cert-out needs --csr";
    }
    return NULL;
}

/* Reads a whole (small) file into a malloc'd buffer; NULL on failure, errno set. */
static char *read_file(const char *path, size_t *len) {
    enum { MAX_SIZE = 1 << 20 }; /* a CA bundle is a few hundred kB at most */
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL) {
        return NULL;
    }
    buf = (char *)malloc(MAX_SIZE);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, MAX_SIZE, f);
    if (ferror(f) || n == MAX_SIZE) {
        int err = ferror(f) ? EIO : EFBIG;
        free(buf);
        fclose(f);
        errno = err;
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Overwrites a buffer that held a secret (a plain memset may be optimised away before free). */
static void wipe(char *buf, size_t len) {
    volatile char *p = buf;
    while (len-- > 0) {
        *p++ = 0;
    }
}

/* Reads --cert and --key and sets them; the key's copy is wiped at once (the library keeps its
 * own, wiped when freed). On failure, `buf` says what went wrong. */
static dps_result set_client_certificate(dps_config *cfg, const options *o, char *buf,
                                         size_t buf_len) {
    size_t cert_len = 0, key_len = 0;
    char *cert = read_file(o->cert_file, &cert_len);
    char *key;
    dps_result r;

    if (cert == NULL) {
        snprintf(buf, buf_len, "--cert: cannot read %s: %s", o->cert_file, strerror(errno));
        return DPS_ERR_INVALID_ARGUMENT;
    }
    key = read_file(o->key_file, &key_len);
    if (key == NULL) {
        snprintf(buf, buf_len, "--key: cannot read %s: %s", o->key_file, strerror(errno));
        free(cert);
        return DPS_ERR_INVALID_ARGUMENT;
    }
    r = dps_config_set_client_certificate(cfg, (const uint8_t *)cert, cert_len,
                                          (const uint8_t *)key, key_len);
    wipe(key, key_len);
    free(key);
    free(cert);
    if (r != DPS_OK) {
        snprintf(buf, buf_len, "--cert/--key: %s", dps_result_str(r));
    }
    return r;
}

/* Applies the options to a config. On failure returns the setter's error and points
 * `message` at a description in `buf`. */
static dps_result configure(dps_config *cfg, const options *o, log_state *logger, char *buf,
                            size_t buf_len, const char **message) {
    const char *flag;
    dps_result r;

#define TRY(option, call)                                                              \
    do {                                                                               \
        flag = (option);                                                               \
        if ((r = (call)) != DPS_OK) {                                                  \
            goto failed;                                                               \
        }                                                                              \
    } while (0)

    TRY("--id-scope", dps_config_set_id_scope(cfg, o->id_scope));
    if (o->registration_id != NULL) {
        TRY("--registration-id", dps_config_set_registration_id(cfg, o->registration_id));
    }
    if (o->symmetric_key != NULL) {
        TRY("--symmetric-key", dps_config_set_symmetric_key(cfg, o->symmetric_key));
    } else if (o->group_key != NULL) {
        TRY("--group-key", dps_config_set_group_key(cfg, o->group_key));
    } else if ((r = set_client_certificate(cfg, o, buf, buf_len)) != DPS_OK) {
        *message = buf;
        return r;
    }
    TRY("--host/--port", dps_config_set_endpoint(cfg, o->host, (uint16_t)o->port));
    if (o->payload != NULL) {
        TRY("--payload", dps_config_set_payload_json(cfg, o->payload));
    }
    if (o->api_version != NULL) {
        TRY("--api-version", dps_config_set_api_version(cfg, o->api_version));
    }
    TRY("--timeout", dps_config_set_timeout_ms(cfg, (uint32_t)o->timeout_ms));
    /* Connection path: WebSocket and HTTP proxy. */
    TRY("--websocket", dps_config_set_websocket(cfg, o->websocket != 0));
    if (o->proxy != NULL) {
        TRY("--proxy/--proxy-user",
            dps_config_set_proxy(cfg, o->proxy_host, (uint16_t)o->proxy_port,
                                 o->proxy_user != NULL ? o->proxy_username : NULL,
                                 o->proxy_user != NULL ? o->proxy_password : NULL));
    }
    if (o->ca_file != NULL) {
        size_t len = 0;
        char *pem = read_file(o->ca_file, &len);
        if (pem == NULL) {
            snprintf(buf, buf_len, "--ca-file: cannot read %s: %s", o->ca_file, strerror(errno));
            *message = buf;
            return DPS_ERR_INVALID_ARGUMENT;
        }
        /* Trust only the given CA: a private CA or the emulator's replaces the public roots. */
        r = dps_config_add_trust_anchors_pem(cfg, (const uint8_t *)pem, len, false);
        free(pem);
        flag = "--ca-file";
        if (r != DPS_OK) {
            goto failed;
        }
    }
    TRY("--verbose", dps_config_set_log_callback(cfg, on_log, logger,
                                                 o->verbose ? DPS_LOG_DEBUG : DPS_LOG_ERROR));
    if (o->csr_file != NULL) {
        size_t len = 0;
        char *csr = read_file(o->csr_file, &len);
        if (csr == NULL) {
            snprintf(buf, buf_len, "--csr: cannot read %s: %s", o->csr_file, strerror(errno));
            *message = buf;
            return DPS_ERR_INVALID_ARGUMENT;
        }
        r = dps_config_set_csr_der(cfg, (const uint8_t *)csr, len);
        free(csr);
        flag = "--csr";
        if (r != DPS_OK) {
            goto failed;
        }
    }
    if (o->verbose) {
        TRY("--verbose", dps_config_set_status_callback(cfg, on_status, NULL));
    }
    return DPS_OK;
#undef TRY

failed:
    snprintf(buf, buf_len, "%s: %s", flag, dps_result_str(r));
    *message = buf;
    return r;
}

/* Writes the issued certificate chain (PEM) to `path`. Without a chain (the service issued
 * none) or when the file cannot be written, returns an error and a message in `buf`. */
static dps_result write_issued_chain(const dps_client *client, const char *path, char *buf,
                                     size_t buf_len) {
    const char *pem = dps_client_issued_certificate_chain_pem(client);
    FILE *f;
    int ok;

    if (pem == NULL) {
        snprintf(buf, buf_len, "--issued-cert-out: the service issued no certificate");
        return DPS_ERR_PROTOCOL_BAD_RESPONSE;
    }
    f = fopen(path, "w");
    if (f == NULL) {
        snprintf(buf, buf_len, "--issued-cert-out: cannot write %s: %s", path, strerror(errno));
        return DPS_ERR_INVALID_ARGUMENT;
    }
    ok = fputs(pem, f) >= 0;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        snprintf(buf, buf_len, "--issued-cert-out: cannot write %s", path);
        return DPS_ERR_INVALID_ARGUMENT;
    }
    return DPS_OK;
}

/* Writes the assignment blob for the next boot's dps_should_provision to `path`, through a
 * temporary file and a rename, so a crash never leaves half a blob behind. */
static dps_result write_assignment(const dps_client *client, const char *path, char *buf,
                                   size_t buf_len) {
    uint8_t blob[DPS_ASSIGNMENT_MAX_LEN];
    size_t len = 0;
    char tmp[PATH_MAX];
    FILE *f;
    int ok;
    dps_result r = dps_client_assignment_save(client, blob, sizeof blob, &len);

    if (r != DPS_OK) {
        snprintf(buf, buf_len, "--save-assignment: %s", dps_result_str(r));
        return r;
    }
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp ||
        (f = fopen(tmp, "wb")) == NULL) {
        snprintf(buf, buf_len, "--save-assignment: cannot write %s: %s", path, strerror(errno));
        return DPS_ERR_INVALID_ARGUMENT;
    }
    ok = fwrite(blob, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(buf, buf_len, "--save-assignment: cannot write %s", path);
        remove(tmp);
        return DPS_ERR_INVALID_ARGUMENT;
    }
    return DPS_OK;
}

int main(int argc, char **argv) {
    options o;
    const char *usage_error = parse_args(argc, argv, &o);
    const char *message = NULL;
    char message_buf[512];
    posix_socket sock;
    log_state logger;
    dps_transport transport;
    dps_config *cfg;
    dps_client *client = NULL;
    dps_result r;
    int rc;

    if (o.help) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (usage_error != NULL) {
        fprintf(stderr, "dps_register: %s\n%s", usage_error, usage_text);
        return report_failure(DPS_ERR_INVALID_ARGUMENT, usage_error, NULL);
    }
#ifndef MSG_NOSIGNAL
    signal(SIGPIPE, SIG_IGN);
#endif

    /* Configure: every setter validates its argument, so mistakes end here, before any
     * connection is made. */
    cfg = dps_config_new();
    if (cfg == NULL) {
        return report_failure(DPS_ERR_INTERNAL, "out of memory", NULL);
    }
    memset(&logger, 0, sizeof logger);
    logger.verbose = o.verbose;
    r = configure(cfg, &o, &logger, message_buf, sizeof message_buf, &message);
    if (r != DPS_OK) {
        dps_config_free(cfg);
        return report_failure(r, message, NULL);
    }

    /* The transport: the hooks above, with `sock` as their state. */
    memset(&sock, 0, sizeof sock);
    sock.fd = -1;
    memset(&transport, 0, sizeof transport);
    transport.user = &sock;
    transport.connect = sock_connect;
    transport.send = sock_send;
    transport.recv = sock_recv;
    transport.close = sock_close;
    transport.wait = sock_wait;

    r = dps_client_new(cfg, &transport, &client);
    dps_config_free(cfg); /* the client keeps its own copy (keys included, zeroized on free) */
    if (r != DPS_OK) {
        /* The reason, if the library gave one, came through the log callback. */
        return report_failure(r, logger.last_error[0] != '\0' ? logger.last_error : NULL, NULL);
    }

    /* Blocking: returns when assigned, refused, failed, or the deadline passed. A firmware
     * main loop would call dps_client_do_work() instead and sleep for the time it returns. */
    r = dps_client_register(client);
    message = dps_client_result_detail(client);
    /* Outputs asked for on the command line; failing to write one fails the run. */
    if (r == DPS_OK && o.issued_cert_out != NULL) {
        r = write_issued_chain(client, o.issued_cert_out, message_buf, sizeof message_buf);
        message = message_buf;
    }
    if (r == DPS_OK && o.save_assignment != NULL) {
        r = write_assignment(client, o.save_assignment, message_buf, sizeof message_buf);
        message = message_buf;
    }
    if (r == DPS_OK) {
        report_success(client, o.csr_file != NULL);
        rc = 0;
    } else {
        rc = report_failure(r, message, client);
    }
    dps_client_free(client);
    return rc;
}
