/*
 * dps_register_offload: dps_register with TLS offload. The library sends MQTT in the clear over
 * the transport hooks and the hooks do TLS themselves, here with OpenSSL, as a cellular
 * modem's TLS socket, a secure element or the platform's TLS stack would on a device.
 *
 *   dps_register_offload --id-scope SCOPE --registration-id ID
 *                        (--symmetric-key B64 | --group-key B64 | --cert PEM --key PEM)
 *                        [OPTION...]
 *
 * Same arguments, JSON output and exit codes as dps_register (see --help), plus --cert and
 * --key: X.509 where the client certificate is presented by OpenSSL, not by the library. It
 * links against a library built with or without TLS (cargo --no-default-features --features std, CMake
 * -DDPS_MQTT_TLS=OFF): it never asks the library for TLS.
 *
 * What the hooks must do when they own TLS: send SNI and verify the server's certificate
 * against the host name given to the connect hook (X509_VERIFY_PARAM_set1_host), trust the
 * right anchors, refuse TLS below 1.2, stay non-blocking (SSL_ERROR_WANT_READ/WRITE become
 * DPS_IO_WOULD_BLOCK), and report a TLS failure as a negated DPS_ERR_TLS_* code so the
 * library ends the attempt with it instead of reconnecting.
 *
 * The options (the generated table of cli_options.h), the JSON output, the exit codes and the
 * --verbose log come from cli_common.c, as in dps_register.
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

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli_common.h"
#include "dps_mqtt.h"

/* ======================================================================================== */
/* Transport hooks: POSIX sockets + OpenSSL, non-blocking                                    */
/* ======================================================================================== */

typedef struct tls_socket {
    SSL_CTX *ctx;              /* shared by every connection: trust anchors, client cert */
    SSL *ssl;                  /* NULL while closed */
    int fd;                    /* -1 while closed */
    int connecting;            /* 1 while the TCP connect is in flight */
    int handshaking;           /* 1 until the TLS handshake is done */
    int wants_write;           /* 1 when OpenSSL last asked for writability */
    int verbose;               /* --verbose: the TLS details on stderr too */
    struct addrinfo *addrs, *next;
    char detail[DPS_ERROR_DETAIL_MAX]; /* why the last hook failed, for the error_detail hook */
} tls_socket;

/* Records why a hook fails: errno's text (saved by the caller) after `what`. */
static void set_detail(tls_socket *s, const char *what, int err) {
    snprintf(s->detail, sizeof s->detail, "%s%s", what, strerror(err));
}

/* error_detail hook: the text recorded at the failure the library just saw. */
static size_t tls_error_detail(void *user, char *buf, size_t len) {
    const tls_socket *s = (const tls_socket *)user;
    size_t n = strlen(s->detail);

    if (n > len) {
        n = len;
    }
    memcpy(buf, s->detail, n);
    return n;
}

static void close_fd(tls_socket *s) {
    if (s->fd >= 0) {
        close(s->fd);
    }
    s->fd = -1;
    s->connecting = 0;
}

/* Starts a non-blocking connect to the next address that takes one; -1 when none is left. */
static int start_next_address(tls_socket *s) {
    while (s->next != NULL) {
        const struct addrinfo *ai = s->next;
        int fd, flags, one = 1;

        s->next = ai->ai_next;
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            set_detail(s, "socket: ", errno);
            continue;
        }
        flags = fcntl(fd, F_GETFL, 0);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
            set_detail(s, "fcntl: ", errno);
            close(fd);
            continue;
        }
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
        set_detail(s, "", errno);
        close(fd);
    }
    return -1;
}

/* connect hook: starts the TCP connect and prepares a TLS client for `host` (SNI and
 * certificate name check); the handshake runs from send/recv. */
static int tls_connect(void *user, const char *host, uint16_t port) {
    tls_socket *s = (tls_socket *)user;
    struct addrinfo hints;
    char service[8];
    int rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%u", (unsigned)port);
    s->detail[0] = '\0';
    rc = getaddrinfo(host, service, &hints, &s->addrs);
    if (rc != 0) {
        snprintf(s->detail, sizeof s->detail, "cannot resolve %s: %s", host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        s->addrs = NULL;
        return -1;
    }
    s->next = s->addrs;
    s->ssl = SSL_new(s->ctx);
    if (s->ssl == NULL || start_next_address(s) != 0 ||
        SSL_set_tlsext_host_name(s->ssl, host) != 1 ||
        X509_VERIFY_PARAM_set1_host(SSL_get0_param(s->ssl), host, 0) != 1) {
        SSL_free(s->ssl);
        s->ssl = NULL;
        close_fd(s);
        freeaddrinfo(s->addrs);
        s->addrs = s->next = NULL;
        return -1;
    }
    SSL_set_connect_state(s->ssl);
    s->handshaking = 1;
    s->wants_write = 0;
    return 0;
}

/* Maps a failed OpenSSL call to a hook result: DPS_IO_WOULD_BLOCK, 0 (peer closed),
 * DPS_IO_ERROR (the network: the library reconnects), or a negated DPS_ERR_TLS_* code. */
static ptrdiff_t tls_failure(tls_socket *s, int rc) {
    int err = SSL_get_error(s->ssl, rc);
    long verify;

    s->wants_write = err == SSL_ERROR_WANT_WRITE;
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        return DPS_IO_WOULD_BLOCK;
    }
    if (!s->handshaking && (err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL)) {
        /* A closed or reset connection after the handshake: the peer is gone, and the library
         * must first act on what it already received (e.g. a 401 just before the hang-up). */
        return 0;
    }
    if (err != SSL_ERROR_SSL) {
        if (err == SSL_ERROR_SYSCALL && errno != 0) {
            set_detail(s, "", errno);
        } else {
            snprintf(s->detail, sizeof s->detail, "the connection ended during the TLS handshake");
        }
        return DPS_IO_ERROR;
    }
    verify = SSL_get_verify_result(s->ssl);
    {
        char why[256];
        ERR_error_string_n(ERR_peek_last_error(), why, sizeof why);
        if (s->verbose) {
            fprintf(stderr, "dps_register_offload: TLS: %s (certificate check: %s)\n", why,
                    X509_verify_cert_error_string(verify));
        }
        snprintf(s->detail, sizeof s->detail, "OpenSSL: %.100s",
                 verify != X509_V_OK ? X509_verify_cert_error_string(verify) : why);
    }
    ERR_clear_error();
    switch (verify) {
    case X509_V_OK: return -(ptrdiff_t)DPS_ERR_TLS_HANDSHAKE;
    case X509_V_ERR_HOSTNAME_MISMATCH: return -(ptrdiff_t)DPS_ERR_TLS_CERT_NAME_MISMATCH;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID: return -(ptrdiff_t)DPS_ERR_TLS_CERT_EXPIRED;
    default: return -(ptrdiff_t)DPS_ERR_TLS_CERT_UNTRUSTED;
    }
}

/* Moves the connection on: TCP connect, then the TLS handshake. 1 = ready for data, otherwise
 * the hook result to return (DPS_IO_WOULD_BLOCK or an error). */
static ptrdiff_t progress(tls_socket *s) {
    int rc;

    while (s->connecting) {
        struct pollfd p;
        int err = 0;
        socklen_t len = sizeof err;

        p.fd = s->fd;
        p.events = POLLOUT;
        p.revents = 0;
        if (poll(&p, 1, 0) == 0) {
            return DPS_IO_WOULD_BLOCK;
        }
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }
        if (err == 0) {
            s->connecting = 0;
            break;
        }
        set_detail(s, "", err);
        close_fd(s);
        if (start_next_address(s) != 0) {
            return DPS_IO_ERROR;
        }
    }
    if (s->fd < 0) {
        return DPS_IO_ERROR;
    }
    if (!s->handshaking) {
        return 1;
    }
    if (SSL_get_fd(s->ssl) != s->fd && SSL_set_fd(s->ssl, s->fd) != 1) {
        return DPS_IO_ERROR;
    }
    ERR_clear_error();
    rc = SSL_do_handshake(s->ssl);
    if (rc != 1) {
        return tls_failure(s, rc);
    }
    s->handshaking = 0;
    s->wants_write = 0;
    if (s->verbose) {
        fprintf(stderr, "dps_register_offload: TLS: %s, %s\n", SSL_get_version(s->ssl),
                SSL_get_cipher_name(s->ssl));
    }
    return 1;
}

/* send hook: bytes taken, DPS_IO_WOULD_BLOCK, DPS_IO_ERROR or a negated DPS_ERR_TLS_*. */
static ptrdiff_t tls_send(void *user, const uint8_t *buf, size_t len) {
    tls_socket *s = (tls_socket *)user;
    ptrdiff_t ready = progress(s);
    int n, chunk = len > (size_t)INT_MAX ? INT_MAX : (int)len;

    if (ready != 1) {
        return ready == 0 ? DPS_IO_ERROR : ready; /* a peer gone while sending is an error */
    }
    ERR_clear_error();
    n = SSL_write(s->ssl, buf, chunk);
    if (n > 0) {
        s->wants_write = 0;
        return n;
    }
    ready = tls_failure(s, n);
    return ready == 0 ? DPS_IO_ERROR : ready;
}

/* recv hook: bytes read, 0 when the peer closed, DPS_IO_WOULD_BLOCK, or an error. */
static ptrdiff_t tls_recv(void *user, uint8_t *buf, size_t len) {
    tls_socket *s = (tls_socket *)user;
    ptrdiff_t ready = progress(s);
    int n, chunk = len > (size_t)INT_MAX ? INT_MAX : (int)len;

    if (ready != 1) {
        return ready;
    }
    ERR_clear_error();
    n = SSL_read(s->ssl, buf, chunk);
    return n > 0 ? n : tls_failure(s, n);
}

/* close hook: a best-effort close_notify (never waits), then frees the connection. */
static void tls_close(void *user) {
    tls_socket *s = (tls_socket *)user;

    if (s->ssl != NULL) {
        if (!s->handshaking) {
            (void)SSL_shutdown(s->ssl);
        }
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    ERR_clear_error();
    close_fd(s);
    if (s->addrs != NULL) {
        freeaddrinfo(s->addrs);
    }
    s->addrs = s->next = NULL;
}

/* wait hook: sleeps until the socket is ready or the library's timer is due. Bytes OpenSSL
 * already decrypted do not show on the socket, so those return at once. */
static void tls_wait(void *user, uint32_t timeout_ms, bool want_write) {
    tls_socket *s = (tls_socket *)user;
    struct pollfd p;
    int timeout = timeout_ms > (uint32_t)INT_MAX ? INT_MAX : (int)timeout_ms;

    if (s->ssl != NULL && SSL_pending(s->ssl) > 0) {
        return;
    }
    if (s->fd < 0) {
        (void)poll(NULL, 0, timeout);
        return;
    }
    p.fd = s->fd;
    p.events = (short)(POLLIN | ((want_write || s->connecting || s->wants_write) ? POLLOUT : 0));
    p.revents = 0;
    (void)poll(&p, 1, timeout);
}

/* The TLS settings every connection shares. On failure returns the result to report and
 * writes what went wrong into `buf`. */
static dps_result make_tls_context(SSL_CTX **out, const char *ca_file, const char *cert,
                                   const char *key, char *buf, size_t buf_len) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    const char *what = NULL, *file = NULL;

    if (ctx == NULL) {
        snprintf(buf, buf_len, "OpenSSL: cannot create a TLS context");
        return DPS_ERR_INTERNAL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* The library may retry a refused write from a moved (and longer) buffer. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* A server that hangs up without close_notify has closed the connection (the library then
     * reconnects); OpenSSL 3 would otherwise call it a TLS error, which ends the attempt. MQTT
     * packets carry their own lengths, so a truncation cannot go unnoticed. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    if (ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
                        : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        what = "no PEM certificate in it (OpenSSL could not load one)", file = ca_file;
    } else if (cert != NULL && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        what = "no certificate chain could be read from it", file = cert;
    } else if (key != NULL && (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
                               SSL_CTX_check_private_key(ctx) != 1)) {
        what = "no private key matching --cert could be read from it", file = key;
    }
    if (what != NULL) {
        snprintf(buf, buf_len, "%s %s: %s",
                 file == ca_file ? "--ca-file" : file == cert ? "--cert" : "--key",
                 file != NULL ? file : "(the system's roots)", what);
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return DPS_ERR_INVALID_CERTIFICATE;
    }
    *out = ctx;
    return DPS_OK;
}

/* ======================================================================================== */
/* Command line (as dps_register, plus --cert/--key)                                         */
/* ======================================================================================== */

#define GIVEN(o, name) ((o)->value[CLI_OPT_##name])

static const char *parse_args(int argc, char **argv, cli_options *o) {
    const char *error = cli_parse_args(o, argc, argv, CLI_PROGRAM_DPS_REGISTER_OFFLOAD);

    if (error != NULL || GIVEN(o, HELP) != NULL) {
        return error;
    }
    if (GIVEN(o, ID_SCOPE) == NULL || GIVEN(o, REGISTRATION_ID) == NULL) {
        return "--id-scope and --registration-id are required";
    }
    if ((GIVEN(o, CERT) == NULL) != (GIVEN(o, KEY) == NULL)) {
        return CLI_CERT_AND_KEY;
    }
    if ((GIVEN(o, SYMMETRIC_KEY) != NULL) + (GIVEN(o, GROUP_KEY) != NULL) +
            (GIVEN(o, CERT) != NULL) !=
        1) {
        return CLI_ONE_CREDENTIAL;
    }
    return NULL;
}

/* Applies the options to a config; on failure `buf` says which option was refused, and why. */
static dps_result configure(dps_config *cfg, const cli_options *o, cli_log_state *logger,
                            char *buf, size_t buf_len) {
    const char *flag = "TLS offload";
    cli_option_id failed = CLI_OPTION_COUNT;
    dps_result r;

#define TRY(option, call)                                                                  \
    do {                                                                                   \
        flag = (option);                                                                   \
        if ((r = (call)) != DPS_OK) {                                                      \
            cli_refused(buf, buf_len, flag, r, logger->last_error);                        \
            return r;                                                                      \
        }                                                                                  \
    } while (0)

    /* First, so that a setter's reason for a refusal reaches the message. */
    TRY("--verbose", dps_config_set_log_callback(cfg, cli_on_log, logger,
                                                 logger->verbose ? DPS_LOG_DEBUG : DPS_LOG_ERROR));
    logger->last_error[0] = '\0';
    /* The one line that makes this offload: MQTT in the clear, the hooks do TLS. */
    TRY("TLS offload", dps_config_set_tls_offload(cfg, true));
    if ((r = cli_apply_options(cfg, o->value, &failed)) != DPS_OK) {
        cli_refused(buf, buf_len, cli_option_specs()[failed].flag, r, logger->last_error);
        return r;
    }
    if (GIVEN(o, CERT) != NULL) {
        TRY("--cert", dps_config_set_x509_offloaded(cfg)); /* OpenSSL presents the cert */
    }
    if (GIVEN(o, PORT) != NULL) { /* --host alone is the table's: dps_config_set_host */
        TRY("--port", dps_config_set_endpoint(cfg, cli_host(o), cli_port(o)));
    }
    if (GIVEN(o, TIMEOUT) != NULL) {
        TRY("--timeout", dps_config_set_timeout_ms(cfg, cli_timeout_ms(o)));
    }
    return DPS_OK;
#undef TRY
}

int main(int argc, char **argv) {
    cli_options o;
    const char *usage_error = parse_args(argc, argv, &o);
    char message[512];
    tls_socket sock;
    cli_log_state logger;
    dps_transport transport;
    dps_config *cfg;
    dps_client *client = NULL;
    dps_result r;
    int rc;

    rc = cli_handle_usage("dps_register_offload", cli_usage_dps_register_offload(),
                          GIVEN(&o, HELP) != NULL, usage_error);
    if (rc >= 0) {
        return rc;
    }
    memset(&logger, 0, sizeof logger);
    logger.program = "dps_register_offload";
    logger.verbose = GIVEN(&o, VERBOSE) != NULL;
    signal(SIGPIPE, SIG_IGN); /* OpenSSL writes with write(): a reset peer must give EPIPE */

    memset(&sock, 0, sizeof sock);
    sock.fd = -1;
    sock.verbose = GIVEN(&o, VERBOSE) != NULL;
    if (GIVEN(&o, CA_FILE) != NULL && access(GIVEN(&o, CA_FILE), R_OK) != 0) {
        snprintf(message, sizeof message, "--ca-file: cannot read %s: %s", GIVEN(&o, CA_FILE),
                 strerror(errno));
        return cli_report_failure(DPS_ERR_INVALID_ARGUMENT, message, NULL, &logger);
    }
    r = make_tls_context(&sock.ctx, GIVEN(&o, CA_FILE), GIVEN(&o, CERT), GIVEN(&o, KEY), message,
                         sizeof message);
    if (r != DPS_OK) {
        return cli_report_failure(r, message, NULL, &logger);
    }
    cfg = dps_config_new();
    if (cfg == NULL) {
        SSL_CTX_free(sock.ctx);
        return cli_report_failure(DPS_ERR_INTERNAL, "out of memory", NULL, &logger);
    }
    r = configure(cfg, &o, &logger, message, sizeof message);
    if (r != DPS_OK) {
        dps_config_free(cfg);
        SSL_CTX_free(sock.ctx);
        return cli_report_failure(r, message, NULL, &logger);
    }

    memset(&transport, 0, sizeof transport);
    transport.user = &sock;
    transport.connect = tls_connect;
    transport.send = tls_send;
    transport.recv = tls_recv;
    transport.close = tls_close;
    transport.wait = tls_wait;
    transport.error_detail = tls_error_detail;
    r = dps_client_new(cfg, &transport, &client);
    dps_config_free(cfg);
    if (r != DPS_OK) {
        SSL_CTX_free(sock.ctx);
        return cli_report_failure(r, NULL, NULL, &logger);
    }
    r = dps_client_register(client);
    if (r == DPS_OK) {
        cli_report_success(client, 0);
        rc = 0;
    } else {
        rc = cli_report_failure(r, dps_client_result_detail(client), client, &logger);
    }
    dps_client_free(client);
    SSL_CTX_free(sock.ctx);
    return rc;
}
