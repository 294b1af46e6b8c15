/*
 * dps-mqtt transport and clock hooks for FreeRTOS+TCP (V2.3 to V3.x API; see
 * standin/README.md for V4's address structure). TLS is done by the library (rustls) over
 * these plain TCP hooks. Call the hooks, i.e. drive the client, from one task.
 */
#ifndef FREERTOS_DPS_TRANSPORT_H
#define FREERTOS_DPS_TRANSPORT_H

#include "FreeRTOS.h"
#include "FreeRTOS_Sockets.h"
#include "dps_mqtt.h"

/* The state behind the hooks' `user` pointer: one TCP connection at a time. */
typedef struct freertos_dps_socket {
    Socket_t socket;    /* FREERTOS_INVALID_SOCKET while closed */
    int received_any;   /* a byte arrived on this connection: -ENOTCONN is then the peer's close */
    SocketSet_t set;    /* for freertos_dps_wait */
} freertos_dps_socket;

/* Fills `t` with the hooks over `sock` (which must outlive the client). Returns -1 when the
 * socket set cannot be allocated. */
int freertos_dps_transport_init(dps_transport *t, freertos_dps_socket *sock);

void freertos_dps_transport_deinit(freertos_dps_socket *sock);

/* Blocks the calling task until the connection is readable (or writable, with `want_write`)
 * or `timeout_ms` passed: FreeRTOS_select, or vTaskDelay between connections. */
void freertos_dps_wait(freertos_dps_socket *sock, uint32_t timeout_ms, bool want_write);

/* Fills `c` with the clock hooks: the tick count extended to 64 bits, and the board's RTC. */
void freertos_dps_clock_init(dps_clock *c);

#endif
