/* The platform hooks on FreeRTOS; see freertos_dps_platform.h and docs/porting.md. */
#include "freertos_dps_platform.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "FreeRTOS.h"
#include "FreeRTOS_IP.h"
#include "portable.h"
#include "task.h"

/* The kernel's heap is thread-safe (it suspends the scheduler), which the library needs when
 * clients run on several tasks. It aligns blocks to portBYTE_ALIGNMENT only: a larger
 * alignment is served by over-allocating and keeping pvPortMalloc's pointer just below the
 * block. The library passes the same size and alignment to free, so the two paths never mix. */
static void *freertos_alloc(void *user, size_t size, size_t align) {
    uint8_t *raw, *block;

    (void)user;
    if (align <= portBYTE_ALIGNMENT) {
        return pvPortMalloc(size);
    }
    if (size > SIZE_MAX - align - sizeof(void *) ||
        (raw = pvPortMalloc(size + align + sizeof(void *))) == NULL) {
        return NULL;
    }
    block = raw + sizeof(void *);
    block += (align - (uintptr_t)block % align) % align;
    memcpy(block - sizeof(void *), &raw, sizeof raw);
    return block;
}

static void freertos_free(void *user, void *ptr, size_t size, size_t align) {
    void *raw;

    (void)user;
    (void)size;
    if (align <= portBYTE_ALIGNMENT) {
        vPortFree(ptr);
        return;
    }
    memcpy(&raw, (uint8_t *)ptr - sizeof(void *), sizeof raw);
    vPortFree(raw);
}

/* Only builds without std call it (hosted builds turn panics into DPS_ERR_PANIC). It must not
 * return: report, then stop this core; the watchdog resets the device. */
static void freertos_panic(void *user, const char *message, size_t len) {
    (void)user;
    printf("dps-mqtt panic: %.*s\n", (int)len, message);
    taskDISABLE_INTERRUPTS();
    for (;;) {
    }
}

dps_result freertos_dps_platform_init(size_t reserve) {
    dps_allocator allocator;
    dps_result r;

    memset(&allocator, 0, sizeof allocator);
    allocator.alloc = freertos_alloc;
    allocator.free = freertos_free;
    allocator.reserve = reserve;
    r = dps_set_allocator(&allocator);
    return r == DPS_OK ? dps_set_panic_hook(freertos_panic, NULL) : r;
}

/* WebSocket masks need bytes the network cannot predict, the back-off jitter only needs them
 * to differ between devices: a TRNG serves both. Returning non-zero ends the attempt with
 * DPS_ERR_ENTROPY_FAILED; never fall back to a constant. */
static int32_t freertos_entropy(void *user, uint8_t *buf, size_t len) {
    (void)user;
    while (len > 0) {
        uint32_t word;
        size_t n = len < sizeof word ? len : sizeof word;
        if (xApplicationGetRandomNumber(&word) != pdTRUE) {
            return -1;
        }
        memcpy(buf, &word, n);
        buf += n;
        len -= n;
    }
    return 0;
}

dps_result freertos_dps_set_entropy(dps_config *cfg) {
    return dps_config_set_entropy(cfg, freertos_entropy, NULL);
}
