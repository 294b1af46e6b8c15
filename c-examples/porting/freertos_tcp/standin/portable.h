/* Test stand-in for the FreeRTOS kernel's portable.h (see README.md): the kernel's heap
 * (heap_4 on a device: first fit with coalescing, blocks aligned to portBYTE_ALIGNMENT,
 * thread-safe by suspending the scheduler). */
#ifndef FREERTOS_STANDIN_PORTABLE_H
#define FREERTOS_STANDIN_PORTABLE_H

#include "FreeRTOS.h"

void *pvPortMalloc(size_t xWantedSize);
void vPortFree(void *pv);

#endif
