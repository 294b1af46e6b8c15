/*
 * Provisioning over lwIP sockets, TLS in the library: the firmware's provisioning thread,
 * with the host harness (common/example_host.c) standing in for the device's settings.
 *
 * Under a real lwIP, lwip_dps_transport.c is unchanged; this file's main() becomes a thread
 * started after the netif is up (tcpip_init, DHCP), and the settings come from flash.
 */
#include <stdio.h>

#include "example_host.h"
#include "lwip/apps/sntp.h"
#include "lwip_dps_transport.h"

int main(int argc, char **argv) {
    example_settings settings;
    lwip_dps_socket sock;
    dps_transport transport;
    dps_clock clock;
    dps_config *cfg;
    dps_client *client = NULL;
    dps_result r;
    int rc;

    if (example_parse_args(argc, argv, &settings) != 0) {
        return 2;
    }
    /* Wall-clock time first: the SAS token's expiry and the server certificate's validity are
     * judged by it. A device waits here for the first SNTP answer. */
    sntp_setoperatingmode(SNTP_OPMODE_POLL);
    sntp_setservername(0, "pool.ntp.org");
    sntp_init();
    if (!lwip_dps_have_unix_time()) {
        fprintf(stderr, "no time from SNTP yet\n");
        return 1;
    }

    cfg = example_config(&settings, 0);
    if (cfg == NULL) {
        example_settings_free(&settings);
        return 2;
    }
    lwip_dps_clock_init(&clock);
    r = dps_config_set_clock(cfg, &clock);
    lwip_dps_transport_init(&transport, &sock);
    if (r == DPS_OK) {
        r = dps_client_new(cfg, &transport, &client);
    }
    dps_config_free(cfg);
    if (r == DPS_OK) {
        /* Blocking: the wait hook sleeps in lwip_select between steps. */
        r = dps_client_register(client);
    }
    rc = example_report(client, r);
    dps_client_free(client);
    example_settings_free(&settings);
    return rc;
}
