/* Host test of arena.c: a seeded random sequence of allocations (sizes, alignments) and frees
 * in random order, checked against a shadow list for overlap, alignment, counters and full
 * coalescing; then refusals (too big, double free, foreign pointer). Exits non-zero on the
 * first failed check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define SLOTS 64

static int failed;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "arena_test: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            failed = 1;                                                     \
        }                                                                   \
    } while (0)

static uint32_t rng = 12345u;
static uint32_t next_random(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

struct slot {
    uint8_t *ptr;
    size_t size;
    size_t align;
};

static size_t rounded(size_t n) { return (n + ARENA_GRAIN - 1u) / ARENA_GRAIN * ARENA_GRAIN; }

int main(void) {
    static _Alignas(64) uint8_t mem[1u << 16];
    arena a;
    /* Deliberately misaligned start: the arena trims it. */
    arena_init(&a, mem + 3, sizeof mem - 3);
    CHECK((uintptr_t)a.base % ARENA_GRAIN == 0);
    const size_t capacity = a.size;
    CHECK(arena_largest_free(&a) == capacity);

    struct slot slots[SLOTS] = {{0}};
    size_t live = 0, peak = 0;
    for (int step = 0; step < 200000 && !failed; step++) {
        struct slot *s = &slots[next_random() % SLOTS];
        if (s->ptr != NULL) {
            for (size_t i = 0; i < s->size; i++) {
                CHECK(s->ptr[i] == (uint8_t)((uintptr_t)s->ptr + i));
            }
            arena_free(&a, s->ptr, s->size, s->align);
            live -= rounded(s->size);
            s->ptr = NULL;
        } else {
            size_t size = 1u + next_random() % (next_random() % 4 == 0 ? 4096u : 64u);
            size_t align = (size_t)1u << (next_random() % 7); /* 1 .. 64 */
            uint8_t *p = arena_alloc(&a, size, align);
            if (p == NULL) {
                continue; /* full for now: fine, frees will follow */
            }
            CHECK((uintptr_t)p % align == 0 && (uintptr_t)p % ARENA_GRAIN == 0);
            CHECK(p >= a.base && p + size <= a.base + a.size);
            for (int j = 0; j < SLOTS; j++) {
                if (slots[j].ptr != NULL) {
                    CHECK(p + size <= slots[j].ptr || slots[j].ptr + slots[j].size <= p);
                }
            }
            for (size_t i = 0; i < size; i++) {
                p[i] = (uint8_t)((uintptr_t)p + i);
            }
            *s = (struct slot){p, size, align};
            live += rounded(size);
            if (live > peak) {
                peak = live;
            }
        }
        CHECK(a.in_use == live);
    }
    CHECK(a.high_water == peak);
    CHECK(a.extent >= a.high_water && a.extent <= capacity);
    for (int j = 0; j < SLOTS; j++) {
        arena_free(&a, slots[j].ptr, slots[j].size, slots[j].align);
    }
    CHECK(a.in_use == 0);
    CHECK(a.bad_frees == 0);
    /* Everything merged back into one block. */
    CHECK(arena_largest_free(&a) == capacity);

    CHECK(arena_alloc(&a, capacity + 1, 8) == NULL);
    CHECK(arena_alloc(&a, 0, 8) == NULL);
    CHECK(arena_alloc(&a, 8, 24) == NULL); /* not a power of two */
    size_t failures = a.failures;
    uint8_t *whole = arena_alloc(&a, capacity, 8);
    CHECK(whole == a.base && a.in_use == capacity);
    CHECK(arena_alloc(&a, 1, 8) == NULL && a.failures == failures + 1);
    arena_free(&a, whole, capacity, 8);
    arena_free(&a, whole, capacity, 8); /* double free: refused, counted */
    CHECK(a.bad_frees == 1 && a.in_use == 0);
    uint8_t outside[32];
    arena_free(&a, outside, sizeof outside, 8);
    CHECK(a.bad_frees == 2);
    uint8_t *x = arena_alloc(&a, 40, 8);
    uint8_t *y = arena_alloc(&a, 40, 8);
    arena_free(&a, x, 40, 8);
    arena_free(&a, x + ARENA_GRAIN, 8, 8); /* inside a free block */
    CHECK(a.bad_frees == 3);
    arena_free(&a, y, 40, 8);
    CHECK(a.in_use == 0 && arena_largest_free(&a) == capacity);

    arena_reset_high_water(&a);
    CHECK(a.high_water == 0);

    if (failed) {
        return 1;
    }
    printf("arena_test: ok (%zu bytes, peak %zu, extent %zu, %zu allocations)\n", capacity, peak,
           a.extent, a.allocations);
    return 0;
}
