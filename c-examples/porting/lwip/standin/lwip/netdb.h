/* Test stand-in for lwIP's lwip/netdb.h (see ../README.md). Like lwIP's, the lookup blocks
 * until the DNS answer or lwIP's DNS timeout, and yields at most one address. */
#ifndef LWIP_STANDIN_NETDB_H
#define LWIP_STANDIN_NETDB_H

#include <netdb.h> /* struct addrinfo, EAI_* */

int lwip_getaddrinfo(const char *nodename, const char *servname, const struct addrinfo *hints,
                     struct addrinfo **res);
void lwip_freeaddrinfo(struct addrinfo *ai);

#endif
