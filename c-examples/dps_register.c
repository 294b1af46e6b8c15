/*
 * dps_register: provision a device with the Azure IoT Device Provisioning Service (DPS) from
 * the command line.
 *
 *   dps_register --id-scope SCOPE --registration-id ID (--symmetric-key B64 | --group-key B64)
 *                [OPTION...]
 *   dps_register --id-scope SCOPE [--registration-id ID] --cert FILE --key FILE [OPTION...]
 *
 * The options, their usage text and the calls of their simple setters come from the option
 * table (python/dps_mqtt/_options.py), generated into cli_options.h; `dps_register --help`
 * lists them.
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
 * exit code tells the class of the result (see --help). Progress goes to stderr,
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
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "cli_common.h"
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
    uint64_t deadline_ms;      /* monotonic time the registration's deadline passes */
    char detail[DPS_ERROR_DETAIL_MAX]; /* why the last hook failed, for the error_detail hook */
} posix_socket;

#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL /* a reset peer must give EPIPE, not kill us with SIGPIPE */
#else
#define SEND_FLAGS 0 /* main() ignores SIGPIPE instead */
#endif

static int would_block(int err) {
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/* Monotonic milliseconds, for the deadline. */
static uint64_t monotonic_ms(void) {
    struct timespec t;

    (void)clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* Records why a hook fails: errno's text (saved by the caller before anything can change it)
 * after `what`. The library asks for it through sock_error_detail right after the failure. */
static void set_detail(posix_socket *s, const char *what, int err) {
    snprintf(s->detail, sizeof s->detail, "%s%s", what, strerror(err));
}

/* error_detail hook: the text set_detail recorded at the failure the library just saw. */
static size_t sock_error_detail(void *user, char *buf, size_t len) {
    const posix_socket *s = (const posix_socket *)user;
    size_t n = strlen(s->detail);

    if (n > len) {
        n = len;
    }
    memcpy(buf, s->detail, n);
    return n;
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
            set_detail(s, "socket: ", errno);
            continue;
        }
        flags = fcntl(fd, F_GETFL, 0);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
            set_detail(s, "fcntl: ", errno);
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
        set_detail(s, "", errno);
        close(fd);
    }
    return -1;
}

/* One name resolution on a helper thread: getaddrinfo cannot be cancelled and may block far
 * longer than the deadline (a DNS server that never answers costs it seconds per try), so the
 * caller waits for it with a timeout and, when that passes, abandons the job: the thread frees
 * it when getaddrinfo returns. */
typedef struct resolve_job {
    pthread_mutex_t lock;
    pthread_cond_t finished;
    int done;                /* set by the thread: rc and addrs are valid */
    int abandoned;           /* set by the caller that stopped waiting: the thread frees the job */
    int rc;
    int saved_errno;         /* errno after getaddrinfo, for EAI_SYSTEM */
    struct addrinfo *addrs;
    char service[8];
    char host[];             /* the name, NUL-terminated */
} resolve_job;

static void resolve_job_free(resolve_job *job) {
    if (job->addrs != NULL) {
        freeaddrinfo(job->addrs);
    }
    pthread_cond_destroy(&job->finished);
    pthread_mutex_destroy(&job->lock);
    free(job);
}

static void *resolve_thread(void *arg) {
    resolve_job *job = (resolve_job *)arg;
    struct addrinfo hints, *addrs = NULL;
    int rc, abandoned;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(job->host, job->service, &hints, &addrs);
    pthread_mutex_lock(&job->lock);
    job->rc = rc;
    job->saved_errno = errno;
    job->addrs = rc == 0 ? addrs : NULL;
    job->done = 1;
    abandoned = job->abandoned;
    pthread_cond_signal(&job->finished);
    pthread_mutex_unlock(&job->lock);
    if (abandoned) {
        resolve_job_free(job);
    }
    return NULL;
}

/* Resolves host:port within `budget_ms`. Returns 0 with `*out` set, or -1 with s->detail set. */
static int resolve_within(posix_socket *s, const char *host, uint16_t port, uint64_t budget_ms,
                          struct addrinfo **out) {
    size_t host_len = strlen(host);
    resolve_job *job = (resolve_job *)calloc(1, sizeof *job + host_len + 1);
    pthread_condattr_t cond_attr;
    pthread_attr_t thread_attr;
    pthread_t thread;
    struct timespec until;
    int started, rc = 0;

    *out = NULL;
    if (job == NULL) {
        set_detail(s, "cannot resolve: ", ENOMEM);
        return -1;
    }
    memcpy(job->host, host, host_len + 1);
    snprintf(job->service, sizeof job->service, "%u", (unsigned)port);
    /* The wait's timeout is measured on the monotonic clock, as the deadline is. */
    pthread_condattr_init(&cond_attr);
    pthread_condattr_setclock(&cond_attr, CLOCK_MONOTONIC);
    pthread_cond_init(&job->finished, &cond_attr);
    pthread_condattr_destroy(&cond_attr);
    pthread_mutex_init(&job->lock, NULL);
    pthread_attr_init(&thread_attr);
    pthread_attr_setdetachstate(&thread_attr, PTHREAD_CREATE_DETACHED);
    started = pthread_create(&thread, &thread_attr, resolve_thread, job);
    pthread_attr_destroy(&thread_attr);
    if (started != 0) {
        set_detail(s, "cannot resolve: no resolver thread: ", started);
        resolve_job_free(job);
        return -1;
    }
    (void)clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(budget_ms / 1000u);
    until.tv_nsec += (long)(budget_ms % 1000u) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec += 1;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&job->lock);
    while (!job->done && rc == 0) {
        rc = pthread_cond_timedwait(&job->finished, &job->lock, &until);
    }
    if (!job->done) {
        job->abandoned = 1;
        pthread_mutex_unlock(&job->lock);
        snprintf(s->detail, sizeof s->detail,
                 "cannot resolve %s: no answer from the name server within %llu ms", host,
                 (unsigned long long)budget_ms);
        return -1;
    }
    pthread_mutex_unlock(&job->lock);
    if (job->rc != 0) {
        snprintf(s->detail, sizeof s->detail, "cannot resolve %s: %s", host,
                 job->rc == EAI_SYSTEM ? strerror(job->saved_errno) : gai_strerror(job->rc));
        resolve_job_free(job);
        return -1;
    }
    *out = job->addrs;
    job->addrs = NULL;
    resolve_job_free(job);
    return 0;
}

/* connect hook: resolves the host and starts connecting without waiting for the handshake.
 * The library then calls send/recv, which report DPS_IO_WOULD_BLOCK until the connection is
 * up. Name resolution blocks (a firmware's DNS call usually does too), so it is given only the
 * time left before the registration's deadline. */
static int sock_connect(void *user, const char *host, uint16_t port) {
    posix_socket *s = (posix_socket *)user;
    uint64_t now = monotonic_ms();

    s->detail[0] = '\0';
    if (resolve_within(s, host, port, s->deadline_ms > now ? s->deadline_ms - now : 0,
                       &s->addrs) != 0) {
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
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }
        if (err == 0) {
            s->connecting = 0;
            return 1;
        }
        set_detail(s, "", err);
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
    if (would_block(errno)) {
        return DPS_IO_WOULD_BLOCK;
    }
    set_detail(s, "send: ", errno);
    return DPS_IO_ERROR;
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
    if (would_block(errno)) {
        return DPS_IO_WOULD_BLOCK;
    }
    set_detail(s, "recv: ", errno);
    return DPS_IO_ERROR;
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
/* Command line                                                                              */
/* ======================================================================================== */

typedef struct options {
    cli_options given; /* the flags as given; see cli_options.h for the table */
    /* --proxy HOST:PORT and --proxy-user USER:PASS, split. */
    char proxy_host[256], proxy_username[256], proxy_password[256];
    unsigned long proxy_port;
} options;

#define GIVEN(o, name) ((o)->given.value[CLI_OPT_##name])

/* Fills `o` from argv. Returns NULL on success, or what is wrong. */
static const char *parse_args(int argc, char **argv, options *o) {
    const char *error;

    memset(o, 0, sizeof *o);
    error = cli_parse_args(&o->given, argc, argv, CLI_PROGRAM_DPS_REGISTER);
    if (error != NULL || GIVEN(o, HELP) != NULL) {
        return error;
    }
    if ((GIVEN(o, CERT) == NULL) != (GIVEN(o, KEY) == NULL)) {
        return CLI_CERT_AND_KEY;
    }
    if (GIVEN(o, PROXY) != NULL) {
        /* HOST:PORT, split at the last ':' ([v6]:port keeps its brackets off). */
        const char *proxy = GIVEN(o, PROXY);
        const char *colon = strrchr(proxy, ':');
        const char *host = proxy;
        size_t host_len = colon == NULL ? 0 : (size_t)(colon - proxy);
        if (host_len > 1 && host[0] == '[' && host[host_len - 1] == ']') {
            host++;
            host_len -= 2;
        }
        if (colon == NULL || host_len == 0 || host_len >= sizeof o->proxy_host ||
            cli_parse_ulong(colon + 1, 0, 65535, &o->proxy_port) != 0) {
            return "--proxy must be HOST:PORT with a port from 1 to 65535";
        }
        memcpy(o->proxy_host, host, host_len);
        o->proxy_host[host_len] = '\0';
    }
    if (GIVEN(o, PROXY_USER) != NULL) {
        const char *user = GIVEN(o, PROXY_USER);
        const char *colon = strchr(user, ':');
        size_t user_len = colon == NULL ? strlen(user) : (size_t)(colon - user);
        const char *password = colon == NULL ? "" : colon + 1;
        if (GIVEN(o, PROXY) == NULL) {
            return "--proxy-user needs --proxy";
        }
        if (user_len == 0 || user_len >= sizeof o->proxy_username ||
            strlen(password) >= sizeof o->proxy_password) {
            return "--proxy-user must be USER:PASS (each under 256 bytes)";
        }
        memcpy(o->proxy_username, user, user_len);
        o->proxy_username[user_len] = '\0';
        memcpy(o->proxy_password, password, strlen(password) + 1);
    }
    if ((GIVEN(o, SYMMETRIC_KEY) != NULL) + (GIVEN(o, GROUP_KEY) != NULL) +
            (GIVEN(o, CERT) != NULL) !=
        1) {
        return CLI_ONE_CREDENTIAL;
    }
    if (GIVEN(o, ID_SCOPE) == NULL ||
        (GIVEN(o, REGISTRATION_ID) == NULL && GIVEN(o, CERT) == NULL)) {
        return "--id-scope and --registration-id are required (with --cert, the CN is the id)";
    }
    if (GIVEN(o, ISSUED_CERT_OUT) != NULL && GIVEN(o, CSR) == NULL) {
        return "--issued-cert-out needs --csr";
    }
    return NULL;
}

/* Overwrites a buffer that held a secret (a plain memset may be optimised away before free). */
static void wipe(char *buf, size_t len) {
    volatile char *p = buf;
    while (len-- > 0) {
        *p++ = 0;
    }
}

/* Reads a whole (small) file into a malloc'd buffer of about its own size; NULL on failure,
 * errno set. A regular file is read into one buffer of its size; a pipe into one that doubles
 * from 4 KiB. Key files pass through here, so a buffer outgrown is wiped before it is freed
 * (realloc could free an unwiped copy). */
static char *read_file(const char *path, size_t *len) {
    enum { MAX_SIZE = 1 << 20 }; /* a CA bundle is a few hundred kB at most */
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf;
    size_t cap = 4096, n = 0;

    if (f == NULL) {
        return NULL;
    }
    /* One byte more than the file, so that the read that reaches its end sees EOF. */
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
        (unsigned long long)st.st_size < (unsigned long long)MAX_SIZE) {
        cap = (size_t)st.st_size + 1;
    }
    buf = (char *)malloc(cap);
    while (buf != NULL) {
        char *bigger;
        size_t bigger_cap;

        n += fread(buf + n, 1, cap - n, f);
        if (ferror(f) || n < cap) {
            break; /* an error, or the end of the file */
        }
        if (cap >= MAX_SIZE) {
            wipe(buf, n);
            free(buf);
            fclose(f);
            errno = EFBIG;
            return NULL;
        }
        bigger_cap = cap * 2 < (size_t)MAX_SIZE ? cap * 2 : (size_t)MAX_SIZE;
        bigger = (char *)malloc(bigger_cap);
        if (bigger != NULL) {
            memcpy(bigger, buf, n);
        }
        wipe(buf, n);
        free(buf);
        buf = bigger;
        cap = bigger_cap;
    }
    if (buf == NULL || ferror(f)) {
        int err = buf == NULL ? ENOMEM : EIO;
        if (buf != NULL) {
            wipe(buf, n);
            free(buf);
        }
        fclose(f);
        errno = err;
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Reads --cert and --key and sets them; the key's copy is wiped at once (the library keeps its
 * own, wiped when freed). On failure, `buf` says what went wrong. */
static dps_result set_client_certificate(dps_config *cfg, const options *o, char *buf,
                                         size_t buf_len, const char *reason) {
    size_t cert_len = 0, key_len = 0;
    char *cert = read_file(GIVEN(o, CERT), &cert_len);
    char *key;
    dps_result r;

    if (cert == NULL) {
        snprintf(buf, buf_len, "--cert: cannot read %s: %s", GIVEN(o, CERT), strerror(errno));
        return DPS_ERR_INVALID_ARGUMENT;
    }
    key = read_file(GIVEN(o, KEY), &key_len);
    if (key == NULL) {
        snprintf(buf, buf_len, "--key: cannot read %s: %s", GIVEN(o, KEY), strerror(errno));
        free(cert);
        return DPS_ERR_INVALID_ARGUMENT;
    }
    r = dps_config_set_client_certificate(cfg, (const uint8_t *)cert, cert_len,
                                          (const uint8_t *)key, key_len);
    wipe(key, key_len);
    free(key);
    free(cert);
    if (r != DPS_OK) {
        cli_refused(buf, buf_len, "--cert/--key", r, reason);
    }
    return r;
}

/* Reads --ca-file and trusts only its certificates: a private CA or the emulator's replaces
 * the public roots. */
static dps_result set_ca_file(dps_config *cfg, const char *path, char *buf, size_t buf_len,
                              const char *reason) {
    size_t len = 0;
    char *pem = read_file(path, &len);
    dps_result r;

    if (pem == NULL) {
        snprintf(buf, buf_len, "--ca-file: cannot read %s: %s", path, strerror(errno));
        return DPS_ERR_INVALID_ARGUMENT;
    }
    r = dps_config_add_trust_anchors_pem(cfg, (const uint8_t *)pem, len, false);
    free(pem);
    if (r == DPS_ERR_INVALID_CERTIFICATE) {
        snprintf(buf, buf_len, "--ca-file %s: no PEM certificate in it (%s)", path,
                 reason[0] != '\0' ? reason : dps_result_str(r));
    } else if (r != DPS_OK) {
        snprintf(buf, buf_len, "--ca-file %s: %s", path,
                 reason[0] != '\0' ? reason : dps_result_str(r));
    }
    return r;
}

/* Reads --csr (DER or PEM) and sets it. */
static dps_result set_csr(dps_config *cfg, const char *path, char *buf, size_t buf_len,
                          const char *reason) {
    size_t len = 0;
    char *csr = read_file(path, &len);
    dps_result r;

    if (csr == NULL) {
        snprintf(buf, buf_len, "--csr: cannot read %s: %s", path, strerror(errno));
        return DPS_ERR_INVALID_ARGUMENT;
    }
    r = dps_config_set_csr_der(cfg, (const uint8_t *)csr, len);
    free(csr);
    if (r != DPS_OK) {
        cli_refused(buf, buf_len, "--csr", r, reason);
    }
    return r;
}

/* Applies the options to a config: the log callback first, so that a setter's reason for a
 * refusal reaches the message; then the table's simple options; then those that need code.
 * On failure returns the setter's error and points `message` at a description in `buf`. */
static dps_result configure(dps_config *cfg, const options *o, cli_log_state *logger,
                            char *buf, size_t buf_len, const char **message) {
    const char *reason = logger->last_error;
    const char *flag;
    cli_option_id failed = CLI_OPTION_COUNT;
    dps_result r;

#define TRY(option, call)                                                              \
    do {                                                                               \
        flag = (option);                                                               \
        if ((r = (call)) != DPS_OK) {                                                  \
            goto refused;                                                              \
        }                                                                              \
    } while (0)

    *message = buf;
    TRY("--verbose",
        dps_config_set_log_callback(cfg, cli_on_log, logger,
                                    GIVEN(o, VERBOSE) != NULL ? DPS_LOG_DEBUG : DPS_LOG_ERROR));
    logger->last_error[0] = '\0';
    if ((r = cli_apply_options(cfg, o->given.value, &failed)) != DPS_OK) {
        flag = cli_option_specs()[failed].flag;
        goto refused;
    }
    if (GIVEN(o, CERT) != NULL &&
        (r = set_client_certificate(cfg, o, buf, buf_len, reason)) != DPS_OK) {
        return r;
    }
    if (GIVEN(o, PORT) != NULL) { /* --host alone is the table's: dps_config_set_host */
        TRY("--port",
            dps_config_set_endpoint(cfg, cli_host(&o->given), cli_port(&o->given)));
    }
    if (GIVEN(o, TIMEOUT) != NULL) {
        TRY("--timeout", dps_config_set_timeout_ms(cfg, cli_timeout_ms(&o->given)));
    }
    if (GIVEN(o, PROXY) != NULL) {
        TRY("--proxy/--proxy-user",
            dps_config_set_proxy(cfg, o->proxy_host, (uint16_t)o->proxy_port,
                                 GIVEN(o, PROXY_USER) != NULL ? o->proxy_username : NULL,
                                 GIVEN(o, PROXY_USER) != NULL ? o->proxy_password : NULL));
    }
    if (GIVEN(o, CA_FILE) != NULL &&
        (r = set_ca_file(cfg, GIVEN(o, CA_FILE), buf, buf_len, reason)) != DPS_OK) {
        return r;
    }
    if (GIVEN(o, CSR) != NULL &&
        (r = set_csr(cfg, GIVEN(o, CSR), buf, buf_len, reason)) != DPS_OK) {
        return r;
    }
    if (GIVEN(o, VERBOSE) != NULL) {
        TRY("--verbose", dps_config_set_status_callback(cfg, cli_on_status, logger));
    }
    *message = NULL;
    return DPS_OK;
#undef TRY

refused:
    cli_refused(buf, buf_len, flag, r, reason);
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
    cli_log_state logger;
    dps_transport transport;
    dps_config *cfg;
    dps_client *client = NULL;
    dps_result r;
    int rc;

    rc = cli_handle_usage("dps_register", cli_usage_dps_register(), GIVEN(&o, HELP) != NULL,
                          usage_error);
    if (rc >= 0) {
        return rc;
    }
    memset(&logger, 0, sizeof logger);
    logger.program = "dps_register";
    logger.verbose = GIVEN(&o, VERBOSE) != NULL;
#ifndef MSG_NOSIGNAL
    signal(SIGPIPE, SIG_IGN);
#endif

    /* Configure: every setter validates its argument, so mistakes end here, before any
     * connection is made. */
    cfg = dps_config_new();
    if (cfg == NULL) {
        return cli_report_failure(DPS_ERR_INTERNAL, "out of memory", NULL, &logger);
    }
    r = configure(cfg, &o, &logger, message_buf, sizeof message_buf, &message);
    if (r != DPS_OK) {
        dps_config_free(cfg);
        return cli_report_failure(r, message, NULL, &logger);
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
    transport.error_detail = sock_error_detail;

    r = dps_client_new(cfg, &transport, &client);
    dps_config_free(cfg); /* the client keeps its own copy (keys included, zeroized on free) */
    if (r != DPS_OK) {
        /* The reason, if the library gave one, came through the log callback. */
        return cli_report_failure(r, logger.last_error[0] != '\0' ? logger.last_error : NULL, NULL,
                                  &logger);
    }

    /* Blocking: returns when assigned, refused, failed, or the deadline passed. A firmware
     * main loop would call dps_client_do_work() instead and sleep for the time it returns.
     * The library's deadline starts now too; the connect hook keeps its resolver within it. */
    sock.deadline_ms = monotonic_ms() + (uint64_t)cli_timeout_ms(&o.given);
    r = dps_client_register(client);
    message = dps_client_result_detail(client);
    /* Outputs asked for on the command line; failing to write one fails the run. */
    if (r == DPS_OK && GIVEN(&o, ISSUED_CERT_OUT) != NULL) {
        r = write_issued_chain(client, GIVEN(&o, ISSUED_CERT_OUT), message_buf,
                               sizeof message_buf);
        message = message_buf;
    }
    if (r == DPS_OK && GIVEN(&o, SAVE_ASSIGNMENT) != NULL) {
        r = write_assignment(client, GIVEN(&o, SAVE_ASSIGNMENT), message_buf, sizeof message_buf);
        message = message_buf;
    }
    if (r == DPS_OK) {
        cli_report_success(client, GIVEN(&o, CSR) != NULL);
        rc = 0;
    } else {
        rc = cli_report_failure(r, message, client, &logger);
    }
    dps_client_free(client);
    return rc;
}
