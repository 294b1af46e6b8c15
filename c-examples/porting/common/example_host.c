/* The host side of the porting examples; see example_host.h. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "example_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *read_text_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;

    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = (char *)malloc((size_t)size + 1)) != NULL) {
        *len = fread(buf, 1, (size_t)size, f);
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}

int example_parse_args(int argc, char **argv, example_settings *s) {
    int i;

    memset(s, 0, sizeof *s);
    s->timeout_ms = 30000;
    for (i = 1; i + 1 < argc; i += 2) {
        const char *flag = argv[i], *value = argv[i + 1];
        if (strcmp(flag, "--host") == 0) s->host = value;
        else if (strcmp(flag, "--port") == 0) s->port = (uint16_t)strtoul(value, NULL, 10);
        else if (strcmp(flag, "--ca-file") == 0) s->ca_file = value;
        else if (strcmp(flag, "--id-scope") == 0) s->id_scope = value;
        else if (strcmp(flag, "--registration-id") == 0) s->registration_id = value;
        else if (strcmp(flag, "--symmetric-key") == 0) s->symmetric_key = value;
        else if (strcmp(flag, "--timeout-ms") == 0) s->timeout_ms = (uint32_t)strtoul(value, NULL, 10);
        else {
            fprintf(stderr, "unknown option %s\n", flag);
            return -1;
        }
    }
    if (i != argc || s->host == NULL || s->port == 0 || s->id_scope == NULL ||
        s->registration_id == NULL || s->symmetric_key == NULL) {
        fprintf(stderr, "usage: %s --host HOST --port PORT [--ca-file PEM] --id-scope SCOPE "
                        "--registration-id ID --symmetric-key B64 [--timeout-ms MS]\n", argv[0]);
        return -1;
    }
    if (s->ca_file != NULL && (s->ca_pem = read_text_file(s->ca_file, &s->ca_pem_len)) == NULL) {
        fprintf(stderr, "cannot read %s\n", s->ca_file);
        return -1;
    }
    return 0;
}

dps_config *example_config(const example_settings *s, int offload) {
    dps_config *cfg = dps_config_new();
    const char *what = "dps_config_new";
    dps_result r = cfg == NULL ? DPS_ERR_INTERNAL : DPS_OK;

#define SET(call) if (r == DPS_OK && (r = (call)) != DPS_OK) what = #call
    SET(dps_config_set_id_scope(cfg, s->id_scope));
    SET(dps_config_set_registration_id(cfg, s->registration_id));
    SET(dps_config_set_symmetric_key(cfg, s->symmetric_key));
    SET(dps_config_set_endpoint(cfg, s->host, s->port));
    SET(dps_config_set_timeout_ms(cfg, s->timeout_ms));
    if (offload) {
        SET(dps_config_set_tls_offload(cfg, true));
    } else if (s->ca_pem != NULL) {
        /* A device would pass a PEM bundle from flash here; false: trust only that bundle. */
        SET(dps_config_add_trust_anchors_pem(cfg, (const uint8_t *)s->ca_pem, s->ca_pem_len,
                                             false));
    }
#undef SET
    if (r != DPS_OK) {
        fprintf(stderr, "%s: %s\n", what, dps_result_name(r));
        dps_config_free(cfg);
        return NULL;
    }
    return cfg;
}

int example_report(const dps_client *client, dps_result r) {
    size_t current = 0, peak = 0;

    if (dps_heap_usage(&current, &peak) == DPS_OK) {
        printf("library heap: %lu bytes held, peak %lu\n", (unsigned long)current,
               (unsigned long)peak);
    }
    if (r == DPS_OK) {
        printf("assigned hub: %s\ndevice id: %s\n", dps_client_assigned_hub(client),
               dps_client_device_id(client));
        return 0;
    }
    printf("error: %s\n", dps_result_name(r));
    if (client != NULL && dps_client_result_detail(client) != NULL) {
        printf("detail: %s\n", dps_client_result_detail(client));
    }
    return 1;
}

void example_settings_free(example_settings *s) {
    free(s->ca_pem);
    s->ca_pem = NULL;
}

uint32_t example_millis_near_wrap(void) {
    static uint64_t boot_ms;
    struct timespec ts;
    uint64_t ms;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if (boot_ms == 0) {
        boot_ms = ms;
    }
    return (uint32_t)(0xFFFFFFFFu - 2000u + (ms - boot_ms));
}
