/* Test stand-in for FreeRTOS+TCP's FreeRTOS_DNS.h (see README.md). */
#ifndef FREERTOS_STANDIN_DNS_H
#define FREERTOS_STANDIN_DNS_H

#include "FreeRTOS.h"

/* The IPv4 address in network byte order, or 0. Blocks: ipconfigDNS_REQUEST_ATTEMPTS tries of
 * ipconfigDNS_RECEIVE_BLOCK_TIME_TICKS each (about 5 s each by default). */
uint32_t FreeRTOS_gethostbyname(const char *pcHostName);

#endif
