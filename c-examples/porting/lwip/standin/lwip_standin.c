/*
 * Test stand-in (see README.md): lwIP's socket, netdb, sys_now and SNTP entry points over POSIX,
 * so the example's hooks run against a real TCP peer on the host. Not lwIP, not for firmware.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "lwip/apps/sntp.h"
#include "lwip/netdb.h"
#include "lwip/sockets.h"
#include "lwip/sys.h"
#include "lwipopts.h" /* the application's SNTP_SET_SYSTEM_TIME */
#include "example_host.h"

int lwip_socket(int domain, int type, int protocol) { return socket(domain, type, protocol); }

int lwip_connect(int s, const struct sockaddr *name, socklen_t namelen) {
    return connect(s, name, namelen);
}

ssize_t lwip_send(int s, const void *dataptr, size_t size, int flags) {
#ifdef MSG_NOSIGNAL
    flags |= MSG_NOSIGNAL; /* lwIP has no signals: a reset peer is an error return */
#endif
    return send(s, dataptr, size, flags);
}

ssize_t lwip_recv(int s, void *mem, size_t len, int flags) { return recv(s, mem, len, flags); }

int lwip_close(int s) { return close(s); }

/* lwIP's fcntl knows F_GETFL and F_SETFL with O_NONBLOCK only. */
int lwip_fcntl(int s, int cmd, int val) {
    int flags;

    if (cmd == F_GETFL) {
        flags = fcntl(s, F_GETFL, 0);
        return flags < 0 ? -1 : (flags & O_NONBLOCK);
    }
    if (cmd == F_SETFL && (val & ~O_NONBLOCK) == 0) {
        flags = fcntl(s, F_GETFL, 0);
        return flags < 0 ? -1 : fcntl(s, F_SETFL, (flags & ~O_NONBLOCK) | val);
    }
    errno = ENOSYS;
    return -1;
}

int lwip_ioctl(int s, long cmd, void *argp) { return ioctl(s, (unsigned long)cmd, argp); }

int lwip_setsockopt(int s, int level, int optname, const void *optval, socklen_t optlen) {
    return setsockopt(s, level, optname, optval, optlen);
}

int lwip_getsockopt(int s, int level, int optname, void *optval, socklen_t *optlen) {
    return getsockopt(s, level, optname, optval, optlen);
}

int lwip_select(int maxfdp1, fd_set *readset, fd_set *writeset, fd_set *exceptset,
                struct timeval *timeout) {
    return select(maxfdp1, readset, writeset, exceptset, timeout);
}

/* lwIP resolves through its DNS client and returns one address: IPv4 unless the hints ask
 * otherwise (LWIP_IPV6 builds). */
int lwip_getaddrinfo(const char *nodename, const char *servname, const struct addrinfo *hints,
                     struct addrinfo **res) {
    int rc = getaddrinfo(nodename, servname, hints, res);

    if (rc == 0 && (*res)->ai_next != NULL) {
        freeaddrinfo((*res)->ai_next);
        (*res)->ai_next = NULL;
    }
    return rc;
}

void lwip_freeaddrinfo(struct addrinfo *ai) { freeaddrinfo(ai); }

/* Starts 2 s before the 32-bit wrap (example_host.c), so every run exercises the example's wrap
 * handling. */
u32_t sys_now(void) { return (u32_t)example_millis_near_wrap(); }

void sntp_setoperatingmode(u8_t operating_mode) { (void)operating_mode; }

void sntp_setservername(u8_t idx, const char *server) {
    (void)idx;
    (void)server;
}

/* A real SNTP client answers a few hundred ms later from the tcpip thread; here the answer is
 * the host's clock, at once, or DPS_STANDIN_UNIX_TIME when set: a server with the wrong time,
 * for the tests of what a wrong wall clock does. */
void sntp_init(void) {
    const char *forced = getenv("DPS_STANDIN_UNIX_TIME");
    SNTP_SET_SYSTEM_TIME(forced != NULL ? (u32_t)strtoul(forced, NULL, 10) : (u32_t)time(NULL));
}
