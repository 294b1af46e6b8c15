/* The table of every function in dps_mqtt.h (api_table.c, generated at configure time). */
#ifndef API_TABLE_H
#define API_TABLE_H

#include <stddef.h>

/* Any function pointer converts to and from this type (C99 6.3.2.3p8). */
typedef void (*dps_any_function)(void);

extern const dps_any_function dps_api_table[];
extern const size_t dps_api_count;

#endif
