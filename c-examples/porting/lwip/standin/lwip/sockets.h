/*
 * Test stand-in for lwIP's lwip/sockets.h (see ../README.md). lwIP defines these constants and
 * structures itself; the stand-in takes them from the host's headers, which have the same
 * names, and declares lwIP's function names over them.
 */
#ifndef LWIP_STANDIN_SOCKETS_H
#define LWIP_STANDIN_SOCKETS_H

#include <errno.h> /* lwIP with LWIP_ERRNO_STDINCLUDE: the C library's errno */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>

#include "lwip/arch.h"

int lwip_socket(int domain, int type, int protocol);
int lwip_connect(int s, const struct sockaddr *name, socklen_t namelen);
ssize_t lwip_send(int s, const void *dataptr, size_t size, int flags);
ssize_t lwip_recv(int s, void *mem, size_t len, int flags);
int lwip_close(int s);
int lwip_fcntl(int s, int cmd, int val);
int lwip_ioctl(int s, long cmd, void *argp);
int lwip_setsockopt(int s, int level, int optname, const void *optval, socklen_t optlen);
int lwip_getsockopt(int s, int level, int optname, void *optval, socklen_t *optlen);
int lwip_select(int maxfdp1, fd_set *readset, fd_set *writeset, fd_set *exceptset,
                struct timeval *timeout);

#endif
