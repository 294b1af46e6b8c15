/*
 * The application's lwIP options: only the part the provisioning example needs. lwIP's SNTP
 * client calls SNTP_SET_SYSTEM_TIME with each answer; the example keeps it as its wall clock
 * (lwip_dps_clock.c), because DPS needs UNIX time for the SAS token and TLS for certificates.
 */
#ifndef LWIPOPTS_H
#define LWIPOPTS_H

#include "lwip/arch.h"

void lwip_dps_set_unix_time(u32_t unix_seconds);

#define LWIP_SOCKET 1
#define LWIP_DNS 1
#define SNTP_SERVER_DNS 1
#define SNTP_SET_SYSTEM_TIME(sec) lwip_dps_set_unix_time(sec)

#endif
