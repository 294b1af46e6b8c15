/*
 * Test stand-in (see README.md): the UART as a non-blocking TCP connection to the modem
 * bridge, and the tick from the host's monotonic clock. Not a HAL, not for firmware.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "board.h"
#include "uart.h"
#include "example_host.h"

static int fd = -1;

int uart_init(const char *port) {
    char host[256];
    const char *colon = strrchr(port, ':');
    struct addrinfo hints, *ai = NULL;
    int one = 1;

    if (colon == NULL || (size_t)(colon - port) >= sizeof host) {
        return -1;
    }
    memcpy(host, port, (size_t)(colon - port));
    host[colon - port] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        freeaddrinfo(ai);
        uart_deinit();
        return -1;
    }
    freeaddrinfo(ai);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

size_t uart_write(const uint8_t *data, size_t len) {
    ssize_t n = fd < 0 ? -1 : send(fd, data, len, MSG_NOSIGNAL);
    return n > 0 ? (size_t)n : 0;
}

/* A UART never reports a close: when the bridge goes away the line just falls silent. */
size_t uart_read(uint8_t *data, size_t len) {
    ssize_t n = fd < 0 ? -1 : recv(fd, data, len, 0);
    return n > 0 ? (size_t)n : 0;
}

void uart_wait(uint32_t timeout_ms, bool want_write) {
    struct pollfd p;

    p.fd = fd;
    p.events = (short)(POLLIN | (want_write ? POLLOUT : 0));
    p.revents = 0;
    (void)poll(&p, fd < 0 ? 0 : 1, timeout_ms > 60000u ? 60000 : (int)timeout_ms);
}

void uart_deinit(void) {
    if (fd >= 0) {
        close(fd);
    }
    fd = -1;
}

/* Starts 2 s before the 32-bit wrap (example_host.c), so every run exercises the example's wrap
 * handling. */
uint32_t board_millis(void) { return (uint32_t)example_millis_near_wrap(); }
