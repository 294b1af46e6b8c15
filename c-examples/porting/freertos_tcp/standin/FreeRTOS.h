/* Test stand-in for the FreeRTOS kernel's FreeRTOS.h (see README.md). */
#ifndef FREERTOS_STANDIN_H
#define FREERTOS_STANDIN_H

#include <stddef.h>
#include <stdint.h>

typedef long BaseType_t;
typedef unsigned long UBaseType_t;
typedef uint32_t TickType_t; /* configUSE_16_BIT_TICKS 0, configTICK_TYPE_WIDTH_IN_BITS 32 */
typedef uint32_t StackType_t; /* portSTACK_TYPE on Cortex-M */

#include "FreeRTOSConfig.h"

#define pdFALSE ((BaseType_t)0)
#define pdTRUE ((BaseType_t)1)
#define pdPASS pdTRUE
#define pdFAIL pdFALSE
#define portMAX_DELAY ((TickType_t)0xFFFFFFFFu)
#define portTICK_PERIOD_MS ((TickType_t)1000 / configTICK_RATE_HZ)
#define pdMS_TO_TICKS(ms) ((TickType_t)(((uint64_t)(ms) * configTICK_RATE_HZ) / 1000u))

#endif
