/*
 * dps-mqtt transport and clock hooks for lwIP's socket API (lwIP 2.1+, LWIP_SOCKET=1,
 * LWIP_DNS=1, NO_SYS=0: the calls run in an application thread, not the tcpip thread).
 * TLS is done by the library (rustls) over these plain TCP hooks.
 */
#ifndef LWIP_DPS_TRANSPORT_H
#define LWIP_DPS_TRANSPORT_H

#include "dps_mqtt.h"
#include "lwip/arch.h"

/* The state behind the hooks' `user` pointer: one TCP connection at a time. */
typedef struct lwip_dps_socket {
    int s;            /* -1 while closed */
    int connecting;   /* 1 while the non-blocking connect is in flight */
    int send_blocked; /* 1 after a send was refused: wait for writability too */
} lwip_dps_socket;

/* Fills `t` with the hooks, over `sock` (which must outlive the client). */
void lwip_dps_transport_init(dps_transport *t, lwip_dps_socket *sock);

/* Fills `c` with the clock hooks: sys_now() extended to 64 bits, and the SNTP time. */
void lwip_dps_clock_init(dps_clock *c);

/* The SNTP client's SNTP_SET_SYSTEM_TIME (see lwipopts.h). */
void lwip_dps_set_unix_time(u32_t unix_seconds);

/* Whether SNTP has delivered a time yet: provision only after it has. */
int lwip_dps_have_unix_time(void);

#endif
