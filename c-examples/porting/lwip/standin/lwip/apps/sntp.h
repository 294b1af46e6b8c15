/*
 * Test stand-in for lwIP's lwip/apps/sntp.h (see ../../README.md). lwIP's SNTP client hands
 * each answer to the SNTP_SET_SYSTEM_TIME(sec) macro, which the application defines in its
 * lwipopts.h; this stand-in calls that macro once, from sntp_init, with the host's time.
 */
#ifndef LWIP_STANDIN_SNTP_H
#define LWIP_STANDIN_SNTP_H

#include "lwip/arch.h"

#define SNTP_OPMODE_POLL 0

void sntp_setoperatingmode(u8_t operating_mode);
void sntp_setservername(u8_t idx, const char *server);
void sntp_init(void);

#endif
