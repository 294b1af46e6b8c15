/* Test stand-in (see README.md): the board's millisecond tick. */
#ifndef BOARD_STANDIN_H
#define BOARD_STANDIN_H

#include <stdint.h>

/* Milliseconds since reset, 32 bits (SysTick): wraps after 49.7 days. */
uint32_t board_millis(void);

#endif
