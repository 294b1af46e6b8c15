/* Test stand-in for FreeRTOS+TCP's FreeRTOS_IP.h (see README.md). */
#ifndef FREERTOS_STANDIN_IP_H
#define FREERTOS_STANDIN_IP_H

#include "FreeRTOS.h"

uint16_t FreeRTOS_htons(uint16_t usIn);

/* Application hook FreeRTOS+TCP requires (TCP sequence numbers, DNS ids): the board supplies
 * it, usually from the MCU's TRNG. pdTRUE when *pulNumber was written. */
BaseType_t xApplicationGetRandomNumber(uint32_t *pulNumber);

#endif
