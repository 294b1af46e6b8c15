/*
 * Provisioning over FreeRTOS+TCP, TLS in the library: the firmware's provisioning task, driven
 * step by step with dps_client_do_work, sleeping in FreeRTOS_select between steps. The host
 * harness (common/example_host.c) stands in for the device's settings.
 *
 * On a device, the task is created once the network is up (FreeRTOS_IPInit, then the
 * eNetworkUp event); its stack must hold the library's steps: the task prints its high-water
 * mark (docs/porting.md has the figures).
 */
#include <stdio.h>

#include "FreeRTOS.h"
#include "example_host.h"
#include "freertos_dps_platform.h"
#include "freertos_dps_transport.h"
#include "task.h"

/* The task's stack, in words. */
#define PROVISIONING_STACK_WORDS (64u * 1024u / sizeof(StackType_t))
/* dps_allocator.reserve with the library's TLS (the header's guidance). */
#define HEAP_RESERVE 20480u

typedef struct provisioning_job {
    const example_settings *settings;
    int exit_code;
} provisioning_job;

static void provisioning_task(void *parameters) {
    provisioning_job *job = (provisioning_job *)parameters;
    UBaseType_t free_at_start = uxTaskGetStackHighWaterMark(NULL);
    freertos_dps_socket sock;
    dps_transport transport;
    dps_clock clock;
    dps_client *client = NULL;
    dps_config *cfg = example_config(job->settings, 0);
    dps_result r = cfg == NULL ? DPS_ERR_INVALID_CONFIG : DPS_OK;

    freertos_dps_clock_init(&clock);
    if (freertos_dps_transport_init(&transport, &sock) != 0) {
        r = DPS_ERR_INTERNAL;
    }
    if (r == DPS_OK) {
        r = dps_config_set_clock(cfg, &clock);
    }
    if (r == DPS_OK) {
        r = freertos_dps_set_entropy(cfg);
    }
    if (r == DPS_OK) {
        r = dps_client_new(cfg, &transport, &client);
    }
    dps_config_free(cfg);
    /* Non-blocking steps: each does what it can and says how long it may sleep at most. */
    if (r == DPS_OK) {
        uint32_t next_ms = 0;
        do {
            r = dps_client_do_work(client, &next_ms);
            if (r == DPS_PENDING) {
                freertos_dps_wait(&sock, next_ms, dps_client_wants_write(client));
            }
        } while (r == DPS_PENDING);
    }
    job->exit_code = example_report(client, r);
    dps_client_free(client);
    freertos_dps_transport_deinit(&sock);
    /* The stack the task has used, and how much of it was used before the task's own code
     * ran (on the host: the thread's start-up and thread-local storage). */
    printf("task stack used: %lu bytes, %lu of them before the task started\n",
           (unsigned long)(PROVISIONING_STACK_WORDS - uxTaskGetStackHighWaterMark(NULL)) *
               (unsigned long)sizeof(StackType_t),
           (unsigned long)(PROVISIONING_STACK_WORDS - free_at_start) *
               (unsigned long)sizeof(StackType_t));
    vTaskDelete(NULL);
}

int main(int argc, char **argv) {
    example_settings settings;
    provisioning_job job;

    /* Before any other dps_ call: the library's memory comes from the kernel's heap. */
    if (freertos_dps_platform_init(HEAP_RESERVE) != DPS_OK) {
        fprintf(stderr, "no heap for the library's reserve\n");
        return 1;
    }
    if (example_parse_args(argc, argv, &settings) != 0) {
        return 2;
    }
    job.settings = &settings;
    job.exit_code = 1;
    if (xTaskCreate(provisioning_task, "dps", PROVISIONING_STACK_WORDS, &job,
                    tskIDLE_PRIORITY + 1, NULL) != pdPASS) {
        fprintf(stderr, "cannot create the provisioning task\n");
        return 1;
    }
    vTaskStartScheduler();
    example_settings_free(&settings);
    return job.exit_code;
}
