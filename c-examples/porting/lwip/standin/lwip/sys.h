/* Test stand-in for lwIP's lwip/sys.h (see ../README.md). */
#ifndef LWIP_STANDIN_SYS_H
#define LWIP_STANDIN_SYS_H

#include "lwip/arch.h"

/* Milliseconds since boot, 32 bits: it wraps after 49.7 days, as on a device. */
u32_t sys_now(void);

#endif
