/* Test stand-in for a board's real-time clock (see README.md): FreeRTOS keeps no wall-clock
 * time; boards read a battery-backed RTC set by SNTP, GNSS or the cellular network. */
#ifndef BOARD_RTC_STANDIN_H
#define BOARD_RTC_STANDIN_H

#include <stdint.h>

/* Seconds since 1970-01-01 UTC, or 0 when the RTC was never set (a flat coin cell). */
uint32_t board_rtc_unix_seconds(void);

#endif
