/* Test stand-in (see README.md): a non-blocking UART with driver FIFOs. */
#ifndef UART_STANDIN_H
#define UART_STANDIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opens the UART the modem is wired to ("HOST:PORT" of the modem bridge here). 0 or -1. */
int uart_init(const char *port);

/* Queues up to `len` bytes for transmission; returns how many fitted (0 when the TX FIFO is
 * full). Never blocks. */
size_t uart_write(const uint8_t *data, size_t len);

/* Takes up to `len` received bytes; 0 when none is waiting. Never blocks. */
size_t uart_read(uint8_t *data, size_t len);

/* Sleeps until a byte was received (or the TX FIFO has room, with `want_write`) or
 * `timeout_ms` passed. */
void uart_wait(uint32_t timeout_ms, bool want_write);

void uart_deinit(void);

#endif
