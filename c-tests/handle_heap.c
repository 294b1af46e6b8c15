/* The library's own heap (dps_heap_usage, its counting allocator) for one TLS handle against
 * the emulator: idle after dps_client_new, the peak during dps_client_register, and what a
 * finished handle still holds. A report, run by tools/handle_heap.sh and tools/bench.sh; not a
 * test.
 *
 *   handle_heap HOST PORT CA_FILE [REGISTRATION_ID SYMMETRIC_KEY]   (default: api-device) */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dps_mqtt.h"

static char ca[65536];

int main(int argc, char **argv) {
    size_t before = 0, now = 0, peak = 0, idle, ca_len;
    dps_config *cfg;
    dps_client *client = NULL;
    dps_result r;
    FILE *f;

    const char *registration_id = argc == 6 ? argv[4] : "api-device";
    const char *key = argc == 6 ? argv[5] : "pmImfq0KLX6Pz0Cn55CDokkQ7dC3rEhAfggusfpcyJw=";

    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: handle_heap HOST PORT CA_FILE [REGISTRATION_ID KEY]\n");
        return 2;
    }
    f = fopen(argv[3], "rb");
    if (f == NULL) {
        perror(argv[3]);
        return 2;
    }
    ca_len = fread(ca, 1, sizeof ca, f);
    fclose(f);
    dps_heap_usage(&before, NULL);
    cfg = dps_config_new();
    if (cfg == NULL) {
        return 1;
    }
    r = dps_config_set_id_scope(cfg, "0ne00000001");
    if (r == DPS_OK) {
        r = dps_config_set_registration_id(cfg, registration_id);
    }
    if (r == DPS_OK) {
        r = dps_config_set_symmetric_key(cfg, key);
    }
    if (r == DPS_OK) {
        r = dps_config_set_endpoint(cfg, argv[1], (uint16_t)atoi(argv[2]));
    }
    if (r == DPS_OK) {
        r = dps_config_add_trust_anchors_pem(cfg, (const uint8_t *)ca, ca_len, false);
    }
    if (r == DPS_OK) {
        r = dps_client_new(cfg, NULL, &client);
    }
    dps_config_free(cfg);
    if (r != DPS_OK) {
        fprintf(stderr, "handle_heap: %s\n", dps_result_name(r));
        return 1;
    }
    dps_heap_usage(&now, NULL);
    idle = now - before;
    dps_heap_reset_peak();
    r = dps_client_register(client);
    if (r != DPS_OK) {
        fprintf(stderr, "handle_heap: %s\n", dps_result_name(r));
        dps_client_free(client);
        return 1;
    }
    dps_heap_usage(&now, &peak);
    printf("%-28s %8s\n", "one TLS handle", "bytes");
    printf("%-28s %8zu\n", "idle (after dps_client_new)", idle);
    printf("%-28s %8zu\n", "in flight (peak)", peak - before);
    printf("%-28s %8zu\n", "finished (assigned)", now - before);
    dps_client_free(client);
    return 0;
}
