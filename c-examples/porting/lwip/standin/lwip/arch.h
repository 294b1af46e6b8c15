/* Test stand-in for lwIP's lwip/arch.h (see ../README.md): the fixed-width types. */
#ifndef LWIP_STANDIN_ARCH_H
#define LWIP_STANDIN_ARCH_H
#include <stdint.h>
typedef uint8_t u8_t;
typedef uint16_t u16_t;
typedef uint32_t u32_t;
typedef int32_t s32_t;
#endif
