/*
 * Memory over many registrations: N cycles of
 *   dps_config_new / set... / dps_client_new / dps_client_register / dps_client_free /
 *   dps_config_free
 * against a running emulator (see with_emulator.py), with the built-in TCP transport and a
 * full TLS handshake each time. The resident set size (from /proc/self/statm) is sampled
 * after a warm-up, when allocator arenas and lazily initialised state have settled, and at
 * the end; the test fails when it grew by more than the bound, or when any cycle did not end
 * assigned.
 *
 *   rss_cycles --host H --port P --ca-file CA [--cycles N] [--warmup W] [--max-growth-kib K]
 *
 * Prints one line of figures: "rss_cycles: cycles=... warmup_rss_kib=... final_rss_kib=...
 * growth_kib=... peak_rss_kib=... seconds=... ms_per_cycle=...".
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dps_mqtt.h"

/* The group enrollment of c-tests/api_enrollments.json: any registration id is assigned at
 * once, without polling. */
static const char *const GROUP_KEY = "b28l409KTA3CcURml1MYEvrIB7n0c5dd+86OyF5s7QQ=";

static long rss_kib(void) {
    long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) {
        return -1;
    }
    if (fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) {
        pages_resident = -1;
    }
    fclose(f);
    if (pages_resident < 0) {
        return -1;
    }
    return pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;
    if (f == NULL) {
        return NULL;
    }
    buf = (char *)malloc(1 << 20);
    if (buf != NULL) {
        n = fread(buf, 1, (1 << 20) - 1, f);
    }
    fclose(f);
    if (buf == NULL || n == 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One whole cycle; returns the registration's result (or the first setup error). */
static dps_result cycle(const char *host, uint16_t port, const char *ca, size_t ca_len) {
    dps_config *cfg = dps_config_new();
    dps_client *client = NULL;
    dps_result r;
    if (cfg == NULL) {
        return DPS_ERR_INTERNAL;
    }
    r = dps_config_set_id_scope(cfg, "0ne00000001");
    if (r == DPS_OK) {
        r = dps_config_set_registration_id(cfg, "rss-device");
    }
    if (r == DPS_OK) {
        r = dps_config_set_group_key(cfg, GROUP_KEY);
    }
    if (r == DPS_OK) {
        r = dps_config_set_endpoint(cfg, host, port);
    }
    if (r == DPS_OK) {
        r = dps_config_add_trust_anchors_pem(cfg, (const uint8_t *)ca, ca_len, false);
    }
    if (r == DPS_OK) {
        r = dps_config_set_timeout_ms(cfg, 30000);
    }
    if (r == DPS_OK) {
        r = dps_client_new(cfg, NULL, &client);
    }
    dps_config_free(cfg);
    if (r == DPS_OK) {
        r = dps_client_register(client);
        if (r != DPS_OK) {
            fprintf(stderr, "rss_cycles: %s: %s\n", dps_result_name(r),
                    dps_client_result_detail(client) ? dps_client_result_detail(client) : "");
        }
    }
    dps_client_free(client);
    return r;
}

int main(int argc, char **argv) {
    const char *host = NULL, *ca_file = NULL;
    long port = 0, cycles = 10000, warmup = 500, max_growth_kib = 256;
    long warm_rss = -1, final_rss = -1, peak_rss = 0;
    char *ca;
    size_t ca_len = 0;
    double started, elapsed;
    long i;
    int i_arg;

    for (i_arg = 1; i_arg + 1 < argc; i_arg += 2) {
        const char *k = argv[i_arg], *v = argv[i_arg + 1];
        if (strcmp(k, "--host") == 0) {
            host = v;
        } else if (strcmp(k, "--port") == 0) {
            port = strtol(v, NULL, 10);
        } else if (strcmp(k, "--ca-file") == 0) {
            ca_file = v;
        } else if (strcmp(k, "--cycles") == 0) {
            cycles = strtol(v, NULL, 10);
        } else if (strcmp(k, "--warmup") == 0) {
            warmup = strtol(v, NULL, 10);
        } else if (strcmp(k, "--max-growth-kib") == 0) {
            max_growth_kib = strtol(v, NULL, 10);
        } else {
            fprintf(stderr, "rss_cycles: unknown option %s\n", k);
            return 2;
        }
    }
    if (host == NULL || ca_file == NULL || port <= 0 || port > 65535 || cycles <= warmup ||
        warmup < 1) {
        fprintf(stderr, "usage: rss_cycles --host H --port P --ca-file CA [--cycles N] "
                        "[--warmup W < N] [--max-growth-kib K]\n");
        return 2;
    }
    ca = read_file(ca_file, &ca_len);
    if (ca == NULL) {
        fprintf(stderr, "rss_cycles: cannot read %s\n", ca_file);
        return 2;
    }

    started = now_s();
    for (i = 1; i <= cycles; i++) {
        long rss;
        dps_result r = cycle(host, (uint16_t)port, ca, ca_len);
        if (r != DPS_OK) {
            fprintf(stderr, "rss_cycles: cycle %ld ended with %s\n", i, dps_result_name(r));
            free(ca);
            return 1;
        }
        rss = rss_kib();
        if (rss > peak_rss) {
            peak_rss = rss;
        }
        if (i == warmup) {
            warm_rss = rss;
        }
        if (i % 1000 == 0) {
            fprintf(stderr, "rss_cycles: %ld cycles, rss %ld KiB\n", i, rss);
        }
    }
    elapsed = now_s() - started;
    final_rss = rss_kib();
    free(ca);

    printf("rss_cycles: cycles=%ld warmup=%ld warmup_rss_kib=%ld final_rss_kib=%ld "
           "growth_kib=%ld peak_rss_kib=%ld bound_kib=%ld seconds=%.1f ms_per_cycle=%.2f\n",
           cycles, warmup, warm_rss, final_rss, final_rss - warm_rss, peak_rss, max_growth_kib,
           elapsed, elapsed * 1000.0 / (double)cycles);
    if (warm_rss <= 0 || final_rss <= 0) {
        fprintf(stderr, "rss_cycles: could not read /proc/self/statm\n");
        return 1;
    }
    if (final_rss - warm_rss > max_growth_kib) {
        fprintf(stderr, "rss_cycles: RSS grew by %ld KiB after warm-up (bound %ld KiB)\n",
                final_rss - warm_rss, max_growth_kib);
        return 1;
    }
    return 0;
}
