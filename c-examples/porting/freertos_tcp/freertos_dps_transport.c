/*
 * dps-mqtt hooks over FreeRTOS+TCP; see freertos_dps_transport.h and docs/porting.md.
 *
 * FreeRTOS+TCP has no errno: calls return negative pdFREERTOS_ERRNO_* values. Two of its
 * conventions differ from BSD sockets and matter here:
 * - FreeRTOS_recv returns 0 when no data is there yet (block time 0), not when the peer closed;
 *   a closed connection is -pdFREERTOS_ERRNO_ENOTCONN. The library's recv hook contract is the
 *   BSD one (0 = closed), so the two must be translated, never passed through.
 * - FreeRTOS_connect with a receive block time of 0 returns -pdFREERTOS_ERRNO_EWOULDBLOCK:
 *   the connect is under way, which is what the library's connect hook may return 0 for.
 */
#include "freertos_dps_transport.h"

#include <string.h>

#include "FreeRTOS_DNS.h"
#include "FreeRTOS_IP.h"
#include "board_rtc.h"
#include "task.h"

static void close_socket(freertos_dps_socket *k) {
    if (k->socket != FREERTOS_INVALID_SOCKET) {
        /* A FIN rather than a reset; the library has already sent its DISCONNECT. */
        (void)FreeRTOS_shutdown(k->socket, FREERTOS_SHUT_RDWR);
        (void)FreeRTOS_closesocket(k->socket);
    }
    k->socket = FREERTOS_INVALID_SOCKET;
    k->received_any = 0;
}

/* connect hook. FreeRTOS_gethostbyname blocks the task until the DNS answer, or for up to
 * ipconfigDNS_REQUEST_ATTEMPTS x ipconfigDNS_RECEIVE_BLOCK_TIME_TICKS: that time counts against
 * the registration's deadline, which the library checks only once the hook returns. */
static int freertos_hook_connect(void *user, const char *host, uint16_t port) {
    freertos_dps_socket *k = (freertos_dps_socket *)user;
    struct freertos_sockaddr address;
    const TickType_t no_wait = 0;
    uint32_t ip = FreeRTOS_inet_addr(host);
    BaseType_t rc;

    close_socket(k);
    if (ip == 0) {
        ip = FreeRTOS_gethostbyname(host);
    }
    if (ip == 0) {
        return -1;
    }
    k->socket = FreeRTOS_socket(FREERTOS_AF_INET, FREERTOS_SOCK_STREAM, FREERTOS_IPPROTO_TCP);
    if (k->socket == FREERTOS_INVALID_SOCKET) {
        return -1;
    }
    /* Block time 0 for connect, send and recv: the library must never be blocked inside a
     * hook (dps_client_do_work's timers and the deadline run between calls). */
    if (FreeRTOS_setsockopt(k->socket, 0, FREERTOS_SO_RCVTIMEO, &no_wait, sizeof no_wait) != 0 ||
        FreeRTOS_setsockopt(k->socket, 0, FREERTOS_SO_SNDTIMEO, &no_wait, sizeof no_wait) != 0) {
        close_socket(k);
        return -1;
    }
    memset(&address, 0, sizeof address);
    address.sin_len = (uint8_t)sizeof address;
    address.sin_family = FREERTOS_AF_INET;
    address.sin_port = FreeRTOS_htons(port);
    address.sin_addr = ip;
    rc = FreeRTOS_connect(k->socket, &address, sizeof address);
    if (rc != 0 && rc != -pdFREERTOS_ERRNO_EWOULDBLOCK) {
        close_socket(k);
        return -1;
    }
    return 0;
}

/* send hook: FreeRTOS_send copies into the socket's TX stream (even while connecting) and
 * returns how much fitted; 0 means the stream is full. */
static ptrdiff_t freertos_hook_send(void *user, const uint8_t *buf, size_t len) {
    freertos_dps_socket *k = (freertos_dps_socket *)user;
    BaseType_t n = FreeRTOS_send(k->socket, buf, len, 0);

    if (n > 0) {
        return (ptrdiff_t)n;
    }
    if (n == 0 || n == -pdFREERTOS_ERRNO_EWOULDBLOCK || n == -pdFREERTOS_ERRNO_ENOSPC) {
        return DPS_IO_WOULD_BLOCK;
    }
    return DPS_IO_ERROR; /* -ENOTCONN (refused, reset), -ENOMEM, -EINVAL */
}

/* recv hook: FreeRTOS's 0 ("nothing yet") becomes DPS_IO_WOULD_BLOCK; -ENOTCONN after data
 * becomes 0, the peer's close, so the library first acts on what it received (DPS answers a
 * wrong key with a 401 and hangs up). Before any data, -ENOTCONN is a failed connect. */
static ptrdiff_t freertos_hook_recv(void *user, uint8_t *buf, size_t len) {
    freertos_dps_socket *k = (freertos_dps_socket *)user;
    BaseType_t n = FreeRTOS_recv(k->socket, buf, len, 0);

    if (n > 0) {
        k->received_any = 1;
        return (ptrdiff_t)n;
    }
    if (n == 0 || n == -pdFREERTOS_ERRNO_EWOULDBLOCK || n == -pdFREERTOS_ERRNO_EINTR) {
        return DPS_IO_WOULD_BLOCK;
    }
    if (n == -pdFREERTOS_ERRNO_ENOTCONN && k->received_any) {
        return 0;
    }
    return DPS_IO_ERROR;
}

static void freertos_hook_close(void *user) { close_socket((freertos_dps_socket *)user); }

void freertos_dps_wait(freertos_dps_socket *k, uint32_t timeout_ms, bool want_write) {
    TickType_t ticks = pdMS_TO_TICKS(timeout_ms);

    if (k->socket == FREERTOS_INVALID_SOCKET) {
        vTaskDelay(ticks); /* between connections (back-off): nothing to wake on */
        return;
    }
    FreeRTOS_FD_SET(k->socket, k->set, eSELECT_READ | eSELECT_EXCEPT);
    if (want_write || FreeRTOS_issocketconnected(k->socket) != pdTRUE) {
        FreeRTOS_FD_SET(k->socket, k->set, eSELECT_WRITE);
    } else {
        FreeRTOS_FD_CLR(k->socket, k->set, eSELECT_WRITE);
    }
    (void)FreeRTOS_select(k->set, ticks);
    FreeRTOS_FD_CLR(k->socket, k->set, eSELECT_ALL);
}

static void freertos_hook_wait(void *user, uint32_t timeout_ms, bool want_write) {
    freertos_dps_wait((freertos_dps_socket *)user, timeout_ms, want_write);
}

int freertos_dps_transport_init(dps_transport *t, freertos_dps_socket *sock) {
    memset(sock, 0, sizeof *sock);
    sock->socket = FREERTOS_INVALID_SOCKET;
    sock->set = FreeRTOS_CreateSocketSet();
    memset(t, 0, sizeof *t);
    t->user = sock;
    t->connect = freertos_hook_connect;
    t->send = freertos_hook_send;
    t->recv = freertos_hook_recv;
    t->close = freertos_hook_close;
    t->wait = freertos_hook_wait;
    return sock->set == NULL ? -1 : 0;
}

void freertos_dps_transport_deinit(freertos_dps_socket *sock) {
    close_socket(sock);
    if (sock->set != NULL) {
        FreeRTOS_DeleteSocketSet(sock->set);
    }
    sock->set = NULL;
}

/* ---- clock ----------------------------------------------------------------------------- */

/* The library wants milliseconds that never go backwards; it holds the largest value it saw,
 * so a 32-bit tick count that wraps (after 49.7 days at 1 kHz) would freeze its timers and its
 * deadline. Extend the tick count to 64 bits: this is called many times a second while a
 * registration runs, far more often than the counter wraps. One provisioning task only (or
 * guard it with taskENTER_CRITICAL). */
static uint64_t freertos_clock_now_ms(void *user) {
    static TickType_t last;
    static uint64_t wraps;
    static int started;
    TickType_t now = xTaskGetTickCount();
    uint64_t ticks;

    (void)user;
    if (started && now < last) {
        wraps++;
    }
    started = 1;
    last = now;
    ticks = wraps * ((uint64_t)portMAX_DELAY + 1u) + now;
    return ticks * 1000u / configTICK_RATE_HZ;
}

/* The board's RTC: 0 when it was never set, which the library's TLS refuses to judge
 * certificates with (DPS_ERR_TLS_HANDSHAKE) rather than checking them against 1970. */
static uint64_t freertos_clock_unix_seconds(void *user) {
    (void)user;
    return board_rtc_unix_seconds();
}

void freertos_dps_clock_init(dps_clock *c) {
    memset(c, 0, sizeof *c);
    c->now_ms = freertos_clock_now_ms;
    c->unix_seconds = freertos_clock_unix_seconds;
}
