/* Test stand-in for FreeRTOS+TCP's FreeRTOS_IP.h (see README.md). */
#ifndef FREERTOS_STANDIN_IP_H
#define FREERTOS_STANDIN_IP_H

#include "FreeRTOS.h"

uint16_t FreeRTOS_htons(uint16_t usIn);

#endif
