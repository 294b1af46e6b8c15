/* The firmware side of the UART modem protocol (see README.md, "UART protocol"): AT commands,
 * then a DLE-escaped transparent data mode per TLS connection. The bridge on the other end of
 * UART0 plays a cellular modem with TLS offload. The connect/send/recv/close/wait functions
 * have the signatures of the library's dps_transport hooks and never block (except
 * modem_command, used before the library runs). */
#ifndef FW_MODEM_H
#define FW_MODEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sends `command` (without line ending) and waits up to `timeout_ms` for OK or ERROR. The
 * first `+...` information line, if any, is copied to `info` (NUL-terminated, truncated to
 * `info_len`). Returns 0 on OK, -1 on ERROR, -2 on timeout. Only while no connection is open. */
int modem_command(const char *command, char *info, size_t info_len, uint32_t timeout_ms);

/* Seconds since 1970 from the modem's network time (AT+UNIXTIME?); 0 on failure. */
uint64_t modem_unix_time(void);

int modem_connect(void *user, const char *host, uint16_t port);
ptrdiff_t modem_send(void *user, const uint8_t *buf, size_t len);
ptrdiff_t modem_recv(void *user, uint8_t *buf, size_t len);
void modem_close(void *user);
void modem_wait(void *user, uint32_t timeout_ms, bool want_write);

#endif
