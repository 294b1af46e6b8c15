/* mps2-an386 board support: the 1 kHz SysTick clock, UART0 with an interrupt-driven receive
 * ring, sleeping until an interrupt, and the stack's high-water mark. */
#ifndef FW_BOARD_H
#define FW_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The CPU clock QEMU gives mps2-an386 (SYSCLK), which SysTick counts with CLKSOURCE = 1. */
#define BOARD_CPU_HZ 25000000u

/* Enables UART0 (transmit, and receive into a ring through its RX interrupt) and SysTick. */
void board_init(void);

/* Milliseconds since board_init, from the SysTick interrupt. Never goes backwards. */
uint64_t board_now_ms(void);

/* The SysTick counter's current value: it changes every CPU cycle (test entropy only). */
uint32_t board_cycle_jitter(void);

/* Sleeps (WFI) until an interrupt arrives: a received byte or the next SysTick. */
void board_sleep(void);

/* Writes one byte to UART0 if its transmit buffer has room; false when it is full. */
bool board_uart_try_write(uint8_t byte);

/* Takes one received byte from the ring; false when the ring is empty. */
bool board_uart_try_read(uint8_t *byte);

/* Whether received bytes are waiting in the ring. */
bool board_uart_readable(void);

/* Bytes of the stack ever used since reset (the part of the painted region overwritten). */
size_t board_stack_peak(void);

/* The size of the painted stack region. */
size_t board_stack_size(void);

#endif
