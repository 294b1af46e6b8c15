/*
 * The host side of the porting examples: what a device gets from its build or its flash
 * (the id scope, the registration id, the key, the CA bundle) comes from the command line here,
 * so the tests can point each example at a fresh emulator. Nothing in this file belongs in
 * firmware; the transport and clock hooks next to each example's main.c do.
 *
 *   <example> --host HOST --port PORT --ca-file PEM --id-scope SCOPE
 *             --registration-id ID --symmetric-key B64 [--timeout-ms MS]
 *
 * Output, read by porting_test.py: "assigned hub: H" and "device id: D" on success (exit 0), or
 * "error: DPS_ERR_..." and "detail: ..." (exit 1).
 */
#ifndef DPS_PORTING_EXAMPLE_HOST_H
#define DPS_PORTING_EXAMPLE_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "dps_mqtt.h"

typedef struct example_settings {
    const char *host, *ca_file, *id_scope, *registration_id, *symmetric_key;
    uint16_t port;
    uint32_t timeout_ms;
    char *ca_pem; /* the CA file's contents, NUL-terminated; NULL without --ca-file */
    size_t ca_pem_len;
} example_settings;

/* Parses argv and reads the CA file; prints why and returns -1 on a usage error. */
int example_parse_args(int argc, char **argv, example_settings *s);

/* A config with the settings applied (and the CA as the only trust anchor unless `offload`),
 * or NULL after printing which setter refused what. */
dps_config *example_config(const example_settings *s, int offload);

/* Prints the outcome in the format above and returns the exit code. */
int example_report(const dps_client *client, dps_result r);

void example_settings_free(example_settings *s);

/* A 32-bit millisecond tick that starts 2 s before it wraps, for the stand-ins' clocks: every
 * run then exercises the example's wrap handling. */
uint32_t example_millis_near_wrap(void);

#endif
