/* Vector table and reset handler for the Cortex-M4F of mps2-an386. */
#include <stdint.h>
#include <string.h>

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[];
extern int main(void);
extern void exit(int status);
extern void _exit(int status);

void reset_handler(void);
void board_paint_stack(void);
void systick_handler(void);
void uart0_rx_handler(void);

/* Semihosting SYS_WRITE0: usable in a fault, when stdio's state cannot be trusted. */
static void semihost_write0(const char *text) {
    register uint32_t op __asm("r0") = 0x04;
    register const char *arg __asm("r1") = text;
    __asm volatile("bkpt 0xab" : "+r"(op) : "r"(arg) : "memory");
}

static void fault_handler(void) {
    semihost_write0("firmware: fault (hard fault, bus, usage or memory management)\n");
    _exit(99);
}

static void unexpected_irq(void) {
    semihost_write0("firmware: unexpected interrupt\n");
    _exit(98);
}

typedef void (*vector)(void);

__attribute__((section(".vectors"), used)) static const vector vectors[16 + 16] = {
    (vector)(uintptr_t)__stack_top,
    reset_handler,
    fault_handler,  /* NMI */
    fault_handler,  /* HardFault */
    fault_handler,  /* MemManage */
    fault_handler,  /* BusFault */
    fault_handler,  /* UsageFault */
    0, 0, 0, 0,
    unexpected_irq, /* SVCall */
    unexpected_irq, /* DebugMonitor */
    0,
    unexpected_irq, /* PendSV */
    systick_handler,
    uart0_rx_handler, /* IRQ 0: UART0 receive */
    unexpected_irq, unexpected_irq, unexpected_irq, unexpected_irq, unexpected_irq,
    unexpected_irq, unexpected_irq, unexpected_irq, unexpected_irq, unexpected_irq,
    unexpected_irq, unexpected_irq, unexpected_irq, unexpected_irq, unexpected_irq,
};

void reset_handler(void) {
    memcpy(__data_start, __data_load, (size_t)((uint8_t *)__data_end - (uint8_t *)__data_start));
    memset(__bss_start, 0, (size_t)((uint8_t *)__bss_end - (uint8_t *)__bss_start));
    /* Full access to the FPU (CP10, CP11): the library is built for the hard-float ABI. */
    *(volatile uint32_t *)0xe000ed88u |= 0xfu << 20;
    __asm volatile("dsb\n isb" ::: "memory");
    board_paint_stack();
    exit(main());
}
