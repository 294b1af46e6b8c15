/* Test stand-in for the FreeRTOS kernel's task.h (see README.md). Tasks are host threads
 * whose stacks are painted, so uxTaskGetStackHighWaterMark measures what a task really used. */
#ifndef FREERTOS_STANDIN_TASK_H
#define FREERTOS_STANDIN_TASK_H

#include "FreeRTOS.h"

typedef void (*TaskFunction_t)(void *);
typedef struct tskTaskControlBlock *TaskHandle_t;

TickType_t xTaskGetTickCount(void);
void vTaskDelay(TickType_t xTicksToDelay);
BaseType_t xTaskCreate(TaskFunction_t pxTaskCode, const char *pcName,
                       configSTACK_DEPTH_TYPE uxStackDepth, void *pvParameters,
                       UBaseType_t uxPriority, TaskHandle_t *pxCreatedTask);
/* The real scheduler never returns; the stand-in's returns when every task has deleted
 * itself, so the host program can exit. */
void vTaskStartScheduler(void);
void vTaskDelete(TaskHandle_t xTaskToDelete);
/* The least free stack the task has had, in words (StackType_t). */
UBaseType_t uxTaskGetStackHighWaterMark(TaskHandle_t xTask);

#define taskDISABLE_INTERRUPTS()
#define tskIDLE_PRIORITY ((UBaseType_t)0)

#endif
