/* Test stand-in for the FreeRTOS kernel's task.h (see README.md). */
#ifndef FREERTOS_STANDIN_TASK_H
#define FREERTOS_STANDIN_TASK_H

#include "FreeRTOS.h"

TickType_t xTaskGetTickCount(void);
void vTaskDelay(TickType_t xTicksToDelay);

#endif
