/*
 * Provisioning through an AT-command cellular modem that does TLS itself (TLS offload): the
 * library sends MQTT in the clear over at_dps_transport.c's hooks, the modem wraps it in TLS.
 * The host harness (common/example_host.c) stands in for the device's settings; --serial
 * names the modem's UART (the modem bridge's TCP port on the host).
 */
#include <stdio.h>
#include <string.h>

#include "at_dps_transport.h"
#include "example_host.h"
#include "uart.h"

int main(int argc, char **argv) {
    const char *serial = NULL;
    example_settings settings;
    dps_transport transport;
    dps_clock clock;
    dps_config *cfg;
    dps_client *client = NULL;
    dps_result r;
    int rc;

    /* --serial HOST:PORT first, the shared options after it. */
    if (argc >= 3 && strcmp(argv[1], "--serial") == 0) {
        serial = argv[2];
        argv[2] = argv[0];
        argc -= 2;
        argv += 2;
    }
    if (serial == NULL || example_parse_args(argc, argv, &settings) != 0) {
        fprintf(stderr, "usage: --serial HOST:PORT, then the shared options\n");
        return 2;
    }
    at_dps_transport_init(&transport);
    if (uart_init(serial) != 0 || at_command("AT", NULL, 0, 2000) != 0) {
        fprintf(stderr, "no modem on %s\n", serial);
        example_settings_free(&settings);
        return 2;
    }
    /* The modem's network time: the SAS token's expiry is computed from it. (The server
     * certificate's validity is the modem's TLS stack's business under offload.) */
    if (at_dps_clock_init(&clock) != 0) {
        fprintf(stderr, "the modem has no network time yet\n");
        uart_deinit();
        example_settings_free(&settings);
        return 1;
    }
    cfg = example_config(&settings, 1);
    r = cfg == NULL ? DPS_ERR_INVALID_CONFIG : dps_config_set_clock(cfg, &clock);
    if (r == DPS_OK) {
        r = dps_client_new(cfg, &transport, &client);
    }
    dps_config_free(cfg);
    if (r == DPS_OK) {
        r = dps_client_register(client); /* sleeps in the wait hook, on the UART */
    }
    rc = example_report(client, r);
    dps_client_free(client);
    uart_deinit();
    example_settings_free(&settings);
    return rc;
}
