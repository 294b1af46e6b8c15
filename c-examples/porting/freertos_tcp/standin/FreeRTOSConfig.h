/* Test stand-in (see README.md): the configuration values the example's code depends on. */
#ifndef FREERTOS_CONFIG_H
#define FREERTOS_CONFIG_H

#define configTICK_RATE_HZ 1000
#define configSTACK_DEPTH_TYPE uint32_t
#define portBYTE_ALIGNMENT 8
/* The kernel starts its tick count here; 2 s before the 32-bit wrap, so every run wraps. */
#define configINITIAL_TICK_COUNT ((TickType_t)(0xFFFFFFFFu - 2000u))

#endif
