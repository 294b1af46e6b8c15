/*
 * The platform hooks below the transport, on FreeRTOS: the library's memory from the kernel's
 * heap (pvPortMalloc), its unpredictable bytes from the TRNG behind FreeRTOS+TCP's
 * xApplicationGetRandomNumber, and a panic hook for builds without std.
 */
#ifndef FREERTOS_DPS_PLATFORM_H
#define FREERTOS_DPS_PLATFORM_H

#include "dps_mqtt.h"

/* Installs the allocator and the panic hook, process-wide: call it before any other dps_
 * function. `reserve` bytes are taken from the heap at once and kept for the library to end a
 * registration cleanly when the heap runs out (dps_allocator.reserve). */
dps_result freertos_dps_platform_init(size_t reserve);

/* Sets the config's entropy source to the TRNG (dps_config_set_entropy). */
dps_result freertos_dps_set_entropy(dps_config *cfg);

#endif
