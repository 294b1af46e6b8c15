/* Provisions the device against DPS over the UART modem (TLS in the modem), using only the
 * library's public C API and newlib: the transport, clock, entropy, allocator and panic hooks
 * are this firmware's. Prints the result, the assignment and the memory figures over
 * semihosting, and exits 0 when assigned.
 *
 * Built with -DFW_MALLOC, it installs neither the arena nor the panic hook: the library's
 * defaults (newlib's malloc/free) must link and work with nothing else defined.
 *
 * Built with -DNO_DPS, every library call is compiled out and the rest (board, modem, arena,
 * the hook functions, the same printf lines) stays: the size script subtracts that image from
 * this one to get the library's share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board/board.h"
#include "common/arena.h"
#include "device_config.h"
#include "dps_mqtt.h"
#include "modem.h"

extern void initialise_monitor_handles(void);

static _Alignas(8) uint8_t arena_memory[FW_ARENA_SIZE];
static arena heap;
static uint64_t boot_unix_seconds;

static void *heap_alloc(void *user, size_t size, size_t align) {
    return arena_alloc(user, size, align);
}

static void heap_free(void *user, void *ptr, size_t size, size_t align) {
    arena_free(user, ptr, size, align);
}

static uint64_t clock_now_ms(void *user) {
    (void)user;
    return board_now_ms();
}

/* The modem's network time at boot, carried forward by SysTick. */
static uint64_t clock_unix_seconds(void *user) {
    (void)user;
    return boot_unix_seconds + board_now_ms() / 1000u;
}

/* TEST-ONLY ENTROPY. mps2-an386 has no random number generator, so this is xorshift32 stirred
 * with the SysTick counter at each call: predictable, fine for the emulator, NOT for a
 * product. A product fills `buf` from its TRNG (or its modem's / secure element's). */
static uint32_t test_entropy_state = 0x9e3779b9u;

static int32_t test_only_entropy(void *user, uint8_t *buf, size_t len) {
    (void)user;
    test_entropy_state ^= board_cycle_jitter() ^ (uint32_t)board_now_ms();
    for (size_t i = 0; i < len; i++) {
        uint32_t x = test_entropy_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        test_entropy_state = x != 0 ? x : 0x9e3779b9u;
        buf[i] = (uint8_t)(x >> 24);
    }
    return 0;
}

/* Called by the library's panic handler; must not return. A product would log the message to
 * its fault record and reset. */
static void panic_hook(void *user, const char *message, size_t len) {
    (void)user;
    printf("firmware: library panic: %.*s\n", (int)len, message);
    exit(101);
}

static void log_line(void *user, dps_log_level level, const char *message) {
    (void)user;
    (void)level;
    printf("firmware: dps: %s\n", message);
}

static const dps_transport modem_transport = {
    .user = NULL,
    .connect = modem_connect,
    .send = modem_send,
    .recv = modem_recv,
    .close = modem_close,
    .wait = modem_wait,
};

static const dps_clock board_clock = {
    .user = NULL,
    .now_ms = clock_now_ms,
    .unix_seconds = clock_unix_seconds,
};

#ifdef NO_DPS
/* Keeps the hook functions linked in the image without the library, so that the size
 * difference is the library alone. */
struct hooks {
    const dps_transport *transport;
    const dps_clock *clock;
    void *(*alloc)(void *, size_t, size_t);
    void (*free)(void *, void *, size_t, size_t);
    int32_t (*entropy)(void *, uint8_t *, size_t);
    void (*panic)(void *, const char *, size_t);
    void (*log)(void *, dps_log_level, const char *);
};
static const struct hooks hooks = {&modem_transport, &board_clock, heap_alloc, heap_free,
                                   test_only_entropy, panic_hook, log_line};
const struct hooks *volatile fw_hooks_sink;
#endif

/* The command line QEMU passes with -semihosting-config arg=... (SYS_GET_CMDLINE); "" when
 * none. The test uses `arena=N` to run the same image with a smaller arena. */
static void semihost_cmdline(char *buf, size_t len) {
    struct {
        char *buf;
        size_t len;
    } block = {buf, len - 1};
    register uint32_t op __asm("r0") = 0x15;
    register void *arg __asm("r1") = &block;
    __asm volatile("bkpt 0xab" : "+r"(op) : "r"(arg) : "memory");
    buf[op == 0 ? block.len : 0] = '\0';
}

/* The arena's size: all of arena_memory, or less with `arena=N` on the command line. */
static size_t arena_limit(void) {
    char cmdline[64];
    semihost_cmdline(cmdline, sizeof cmdline);
    const char *arg = strstr(cmdline, "arena=");
    if (arg != NULL) {
        unsigned long n = strtoul(arg + 6, NULL, 10);
        if (n > 0 && n < sizeof arena_memory) {
            return n;
        }
    }
    return sizeof arena_memory;
}

static void print_bytes(const char *what, size_t n) {
    printf("firmware: %s: %u bytes\n", what, (unsigned)n);
}

#ifndef NO_DPS
/* One registration with this firmware's hooks; on DPS_OK, *hub and *device_id point into
 * *client. */
static dps_result provision(const char **hub, const char **device_id, dps_client **client) {
    dps_config *cfg = dps_config_new();
    if (cfg == NULL) {
        return DPS_ERR_OUT_OF_MEMORY;
    }
    dps_result r = dps_config_set_id_scope(cfg, FW_ID_SCOPE);
    if (r == DPS_OK) r = dps_config_set_registration_id(cfg, FW_REGISTRATION_ID);
    if (r == DPS_OK) r = dps_config_set_symmetric_key(cfg, FW_SYMMETRIC_KEY);
    if (r == DPS_OK) r = dps_config_set_endpoint(cfg, FW_DPS_HOST, FW_DPS_PORT);
    if (r == DPS_OK) r = dps_config_set_tls_offload(cfg, true);
    if (r == DPS_OK) r = dps_config_set_clock(cfg, &board_clock);
    if (r == DPS_OK) r = dps_config_set_entropy(cfg, test_only_entropy, NULL);
    if (r == DPS_OK) r = dps_config_set_timeout_ms(cfg, FW_TIMEOUT_MS);
    if (r == DPS_OK) r = dps_config_set_log_callback(cfg, log_line, NULL, FW_LOG_LEVEL);
    if (r == DPS_OK) r = dps_client_new(cfg, &modem_transport, client);
    dps_config_free(cfg);
    if (r != DPS_OK) {
        return r;
    }
    r = dps_client_register(*client);
    if (r == DPS_OK) {
        *hub = dps_client_assigned_hub(*client);
        *device_id = dps_client_device_id(*client);
    }
    return r;
}
#endif

int main(void) {
    initialise_monitor_handles();
    board_init();
    arena_init(&heap, arena_memory, arena_limit());

    if (modem_command("AT", NULL, 0, 2000) != 0) {
        printf("firmware: the modem does not answer AT\n");
        return 2;
    }
    uint64_t network_time = modem_unix_time();
    if (network_time == 0) {
        printf("firmware: the modem gave no network time (needed for the SAS token's expiry)\n");
        return 2;
    }
    boot_unix_seconds = network_time - board_now_ms() / 1000u;

    const char *hub = "(none)";
    const char *device_id = "(none)";
    const char *result = "(built without the library)";
    size_t lib_now = 0, lib_peak = 0;
    uint64_t started = board_now_ms();
    bool assigned = false;
#ifndef NO_DPS
    const dps_allocator allocator = {
        .user = &heap,
        .alloc = heap_alloc,
        .free = heap_free,
        .reserve = FW_HEAP_RESERVE,
    };
    dps_client *client = NULL;
#ifdef FW_MALLOC
    /* The library's defaults: newlib's malloc/free, and a panic halts. */
    (void)allocator;
    (void)panic_hook;
    dps_result r = provision(&hub, &device_id, &client);
#else
    dps_result r = dps_set_allocator(&allocator);
    if (r == DPS_OK) r = dps_set_panic_hook(panic_hook, NULL);
    if (r == DPS_OK) r = provision(&hub, &device_id, &client);
#endif
    result = dps_result_name(r);
    assigned = r == DPS_OK;
    dps_heap_usage(&lib_now, &lib_peak);
#else
    fw_hooks_sink = &hooks;
#endif
    uint64_t elapsed = board_now_ms() - started;
    printf("firmware: result: %s\n", result);
    printf("firmware: assigned hub: %s\n", hub);
    printf("firmware: device id: %s\n", device_id);
    printf("firmware: registration time: %u ms\n", (unsigned)elapsed);
    print_bytes("arena size", heap.size);
    print_bytes("arena high water", heap.high_water);
    print_bytes("arena extent", heap.extent);
    print_bytes("library peak heap", lib_peak);
    print_bytes("library heap in use", lib_now);
#ifndef NO_DPS
    dps_client_free(client);
#endif
    /* Only the reserve should be left: anything more is a leak. */
    print_bytes("arena in use after free", heap.in_use);
#if defined(FW_MALLOC)
    print_bytes("heap reserve", 0);
#elif !defined(NO_DPS)
    print_bytes("heap reserve", allocator.reserve);
#else
    print_bytes("heap reserve", 0);
#endif
    printf("firmware: arena allocations: %u, failed: %u, refused frees: %u\n",
           (unsigned)heap.allocations, (unsigned)heap.failures, (unsigned)heap.bad_frees);
    print_bytes("stack peak", board_stack_peak());
    print_bytes("stack size", board_stack_size());
    return assigned ? 0 : 1;
}
