/*
 * dps-mqtt hooks over lwIP's BSD-style sockets; see lwip_dps_transport.h and docs/porting.md.
 *
 * What the library needs from them: connect returns at once (the TCP handshake goes on in
 * lwIP), send and recv never block (DPS_IO_WOULD_BLOCK instead), recv says 0 only when the
 * peer closed, and errors are negative. lwIP reports errors the BSD way: -1 and errno.
 */
#include "lwip_dps_transport.h"

#include <stdio.h>
#include <string.h>

#include "lwip/netdb.h"
#include "lwip/sockets.h"
#include "lwip/sys.h"

static int would_block(int err) { return err == EWOULDBLOCK || err == EAGAIN || err == EINTR; }

static void close_socket(lwip_dps_socket *k) {
    if (k->s >= 0) {
        lwip_close(k->s);
    }
    k->s = -1;
    k->connecting = 0;
    k->send_blocked = 0;
}

/* connect hook. lwip_getaddrinfo blocks until lwIP's DNS answers or gives up (DNS_MAX_RETRIES
 * tries, a few seconds each): that time counts against the registration's deadline, which the
 * library checks only once the hook returns. The TCP handshake itself does not block. */
static int lwip_hook_connect(void *user, const char *host, uint16_t port) {
    lwip_dps_socket *k = (lwip_dps_socket *)user;
    struct addrinfo hints, *ai = NULL;
    char service[6];
    int one = 1;

    close_socket(k);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%u", (unsigned)port);
    if (lwip_getaddrinfo(host, service, &hints, &ai) != 0 || ai == NULL) {
        return -1;
    }
    k->s = lwip_socket(ai->ai_family, SOCK_STREAM, IPPROTO_TCP);
    if (k->s < 0 || lwip_fcntl(k->s, F_SETFL, O_NONBLOCK) != 0) {
        lwip_freeaddrinfo(ai);
        close_socket(k);
        return -1;
    }
    /* CONNECT, SUBSCRIBE and the register request leave in one flight: no Nagle delay. */
    (void)lwip_setsockopt(k->s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (lwip_connect(k->s, ai->ai_addr, ai->ai_addrlen) == 0) {
        k->connecting = 0;
    } else if (errno == EINPROGRESS) {
        k->connecting = 1;
    } else {
        lwip_freeaddrinfo(ai);
        close_socket(k);
        return -1;
    }
    lwip_freeaddrinfo(ai);
    return 0;
}

/* 1 = connected, 0 = still connecting, -1 = the connect failed. lwIP refuses send/recv on a
 * connecting socket (EINPROGRESS), so ask select for writability, then SO_ERROR. */
static int connection_ready(lwip_dps_socket *k) {
    fd_set writable;
    struct timeval now = {0, 0};
    int err = 0;
    socklen_t len = sizeof err;

    if (k->s < 0) {
        return -1;
    }
    if (!k->connecting) {
        return 1;
    }
    FD_ZERO(&writable);
    FD_SET(k->s, &writable);
    if (lwip_select(k->s + 1, NULL, &writable, NULL, &now) <= 0) {
        return 0;
    }
    if (lwip_getsockopt(k->s, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        return -1;
    }
    k->connecting = 0;
    return 1;
}

/* send hook: the library keeps whatever is not taken and offers it again, so a short count
 * is fine; it never needs a retry loop here. */
static ptrdiff_t lwip_hook_send(void *user, const uint8_t *buf, size_t len) {
    lwip_dps_socket *k = (lwip_dps_socket *)user;
    ssize_t n;
    int ready = connection_ready(k);

    if (ready <= 0) {
        k->send_blocked = ready == 0;
        return ready == 0 ? DPS_IO_WOULD_BLOCK : DPS_IO_ERROR;
    }
    n = lwip_send(k->s, buf, len, MSG_DONTWAIT);
    if (n > 0) {
        k->send_blocked = 0;
        return (ptrdiff_t)n;
    }
    if (n == 0 || would_block(errno)) {
        k->send_blocked = 1;
        return DPS_IO_WOULD_BLOCK;
    }
    return DPS_IO_ERROR;
}

/* recv hook: 0 only for a closed connection. lwIP reports a peer's reset as ECONNRESET;
 * the library treats it as closed too, so that it first acts on what it already received
 * (DPS answers a wrong key with a 401 and hangs up at once). */
static ptrdiff_t lwip_hook_recv(void *user, uint8_t *buf, size_t len) {
    lwip_dps_socket *k = (lwip_dps_socket *)user;
    ssize_t n;
    int ready = connection_ready(k);

    if (ready <= 0) {
        return ready == 0 ? DPS_IO_WOULD_BLOCK : DPS_IO_ERROR;
    }
    n = lwip_recv(k->s, buf, len, MSG_DONTWAIT);
    if (n >= 0) {
        return (ptrdiff_t)n;
    }
    if (would_block(errno)) {
        return DPS_IO_WOULD_BLOCK;
    }
    return errno == ECONNRESET ? 0 : DPS_IO_ERROR;
}

/* close hook: once per successful connect. */
static void lwip_hook_close(void *user) { close_socket((lwip_dps_socket *)user); }

/* wait hook, used by the blocking dps_client_register: sleep in lwip_select until the socket
 * is readable (or writable, while bytes wait to go out) or the library's next timer is due. */
static void lwip_hook_wait(void *user, uint32_t timeout_ms, bool want_write) {
    lwip_dps_socket *k = (lwip_dps_socket *)user;
    fd_set readable, writable;
    struct timeval tv;

    tv.tv_sec = (long)(timeout_ms / 1000u);
    tv.tv_usec = (long)(timeout_ms % 1000u) * 1000;
    FD_ZERO(&readable);
    FD_ZERO(&writable);
    if (k->s < 0) {
        (void)lwip_select(0, NULL, NULL, NULL, &tv); /* between connections: just sleep */
        return;
    }
    FD_SET(k->s, &readable);
    if (want_write || k->connecting || k->send_blocked) {
        FD_SET(k->s, &writable);
    }
    (void)lwip_select(k->s + 1, &readable, &writable, NULL, &tv);
}

void lwip_dps_transport_init(dps_transport *t, lwip_dps_socket *sock) {
    memset(sock, 0, sizeof *sock);
    sock->s = -1;
    memset(t, 0, sizeof *t);
    t->user = sock;
    t->connect = lwip_hook_connect;
    t->send = lwip_hook_send;
    t->recv = lwip_hook_recv;
    t->close = lwip_hook_close;
    t->wait = lwip_hook_wait;
}

/* ---- clock ----------------------------------------------------------------------------- */

/* The library wants milliseconds that never go backwards (it holds the largest value seen, so
 * a 32-bit counter that wraps would freeze its timers and its deadline): extend sys_now's 32
 * bits to 64. Called at least every few seconds while provisioning, far more often than the
 * 49.7 days a wrap takes. Not thread-safe: call it from the provisioning thread only. */
static uint64_t lwip_clock_now_ms(void *user) {
    static u32_t last;
    static uint64_t high;
    u32_t now = sys_now();

    (void)user;
    if (now < last) {
        high += (uint64_t)1 << 32;
    }
    last = now;
    return high | now;
}

/* UNIX seconds from the last SNTP answer, advanced by sys_now since. */
static u32_t sntp_seconds;
static uint64_t sntp_at_ms;
static int sntp_valid;

void lwip_dps_set_unix_time(u32_t unix_seconds) {
    sntp_seconds = unix_seconds;
    sntp_at_ms = lwip_clock_now_ms(NULL);
    sntp_valid = 1;
}

int lwip_dps_have_unix_time(void) { return sntp_valid; }

/* 0 before SNTP answered: the library's TLS then refuses to judge certificates rather than
 * check them against 1970 (DPS_ERR_TLS_HANDSHAKE). */
static uint64_t lwip_clock_unix_seconds(void *user) {
    (void)user;
    if (!sntp_valid) {
        return 0;
    }
    return (uint64_t)sntp_seconds + (lwip_clock_now_ms(NULL) - sntp_at_ms) / 1000u;
}

void lwip_dps_clock_init(dps_clock *c) {
    memset(c, 0, sizeof *c);
    c->now_ms = lwip_clock_now_ms;
    c->unix_seconds = lwip_clock_unix_seconds;
}
