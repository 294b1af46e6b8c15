#include "board.h"

/* CMSDK APB UART0. */
#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08))
#define UART_INTCLEAR (*(volatile uint32_t *)(UART0_BASE + 0x0c))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10))
#define UART_STATE_TX_FULL 0x1u
#define UART_STATE_RX_FULL 0x2u
#define UART_CTRL_TX_EN 0x1u
#define UART_CTRL_RX_EN 0x2u
#define UART_CTRL_RX_INT_EN 0x8u
#define UART_INT_RX 0x2u
/* UART0's receive interrupt is external interrupt 0 on the AN385/AN386 images. */
#define UART0_RX_IRQ 0

#define NVIC_ISER0 (*(volatile uint32_t *)0xe000e100u)
#define SYST_CSR (*(volatile uint32_t *)0xe000e010u)
#define SYST_RVR (*(volatile uint32_t *)0xe000e014u)
#define SYST_CVR (*(volatile uint32_t *)0xe000e018u)
#define STACK_PAINT 0x5ac5ac5au

/* A power of two, so the indices wrap with a mask. */
#define RX_RING_SIZE 1024u

static volatile uint8_t rx_ring[RX_RING_SIZE];
static volatile uint32_t rx_head;
static volatile uint32_t rx_tail;
static volatile uint32_t ticks_lo;
static volatile uint32_t ticks_hi;

extern uint32_t __stack_limit[], __stack_top[];

static inline void irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }

void board_init(void) {
    UART_BAUDDIV = 16; /* the smallest divider the CMSDK UART accepts */
    UART_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN | UART_CTRL_RX_INT_EN;
    NVIC_ISER0 = 1u << UART0_RX_IRQ;
    SYST_RVR = BOARD_CPU_HZ / 1000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = 0x7; /* enable, interrupt, processor clock */
}

void systick_handler(void) {
    uint32_t lo = ticks_lo + 1u;
    if (lo == 0) {
        ticks_hi = ticks_hi + 1u;
    }
    ticks_lo = lo;
}

/* Moves received bytes from the UART into the ring while it has room. When the ring is full the
 * byte stays in the UART, which holds the sender back instead of losing bytes; the main loop
 * pulls it once it has taken bytes from the ring. */
static void pull_uart(void) {
    while ((UART_STATE & UART_STATE_RX_FULL) && rx_head - rx_tail < RX_RING_SIZE) {
        rx_ring[rx_head & (RX_RING_SIZE - 1u)] = (uint8_t)UART_DATA;
        rx_head = rx_head + 1u;
    }
}

void uart0_rx_handler(void) {
    pull_uart();
    UART_INTCLEAR = UART_INT_RX;
}

uint64_t board_now_ms(void) {
    uint32_t hi, lo;
    do {
        hi = ticks_hi;
        lo = ticks_lo;
    } while (hi != ticks_hi);
    return ((uint64_t)hi << 32) | lo;
}

uint32_t board_cycle_jitter(void) { return SYST_CVR; }

void board_sleep(void) {
    /* With interrupts masked, WFI still wakes on a pending interrupt, so a byte that arrives
     * between the check and the WFI is not slept through. */
    irq_disable();
    if (rx_head == rx_tail) {
        __asm volatile("wfi");
    }
    irq_enable();
}

bool board_uart_try_write(uint8_t byte) {
    if (UART_STATE & UART_STATE_TX_FULL) {
        return false;
    }
    UART_DATA = byte;
    return true;
}

bool board_uart_readable(void) { return rx_head != rx_tail; }

bool board_uart_try_read(uint8_t *byte) {
    bool got = false;
    irq_disable();
    if (rx_head != rx_tail) {
        *byte = rx_ring[rx_tail & (RX_RING_SIZE - 1u)];
        rx_tail = rx_tail + 1u;
        got = true;
    }
    pull_uart();
    irq_enable();
    return got;
}

void board_paint_stack(void) {
    /* Runs before main, on the stack at its top: paint up to a safe margin below the
     * current stack pointer. */
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = __stack_limit; p < sp - 16; p++) {
        *p = STACK_PAINT;
    }
}

size_t board_stack_size(void) {
    return (size_t)((uint8_t *)__stack_top - (uint8_t *)__stack_limit);
}

size_t board_stack_peak(void) {
    const uint32_t *p = __stack_limit;
    while (p < __stack_top && *p == STACK_PAINT) {
        p++;
    }
    return (size_t)((const uint8_t *)__stack_top - (const uint8_t *)p);
}
