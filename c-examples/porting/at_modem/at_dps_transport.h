/*
 * dps-mqtt transport and clock hooks for a cellular modem with TLS offload, driven by AT
 * commands over a UART: the modem opens TCP + TLS itself (it holds the trust anchors and
 * checks the server's name), and the library sends MQTT in the clear through it
 * (dps_config_set_tls_offload). The modem's dialect here is the one of the project's modem
 * bridge (firmware/README.md, "UART protocol"):
 *
 *   AT+UNIXTIME?                 -> +UNIXTIME: <seconds>, OK       network time
 *   AT+TLSOPEN="<host>",<port>   -> CONNECT (data mode) | ERROR: <reason>
 *   data mode, both directions:  bytes with 0x10 (DLE) doubled; DLE 'C' ends the connection
 *                                (either side), DLE 'E' says the modem lost it
 *
 * Real modems differ in their command names (AT+QSSLOPEN, AT+USOCO, AT#SSLD, AT+CASSLCFG...),
 * not in the work the hooks do: command mode for the open, a transparent (or buffered) data
 * mode, one escape for the end of the connection, and the TLS errors the modem reports.
 */
#ifndef AT_DPS_TRANSPORT_H
#define AT_DPS_TRANSPORT_H

#include <stdint.h>

#include "dps_mqtt.h"

/* Fills `t` with the hooks (the modem's state is this file's: one modem, one connection). */
void at_dps_transport_init(dps_transport *t);

/* Sends a command in command mode and waits up to `timeout_ms` for its OK; the first "+..."
 * line is copied to `info`. 0 on OK, -1 on ERROR or timeout. Blocks: for start-up only. */
int at_command(const char *command, char *info, size_t info_len, uint32_t timeout_ms);

/* Reads the network time (AT+UNIXTIME?) and fills `c` with the clock hooks: the board's tick
 * extended to 64 bits, and that time advanced by it. -1 when the modem gave no time. */
int at_dps_clock_init(dps_clock *c);

#endif
