/* A fixed-size heap arena: first-fit over an address-ordered free list, with neighbouring
 * free blocks merged on free, for firmware that gives the library a static array instead of
 * malloc. The caller passes the size and alignment back to arena_free (as the library's
 * allocator hook does), so blocks carry no header: what the arena counts as in use is exactly
 * the requested bytes rounded up to ARENA_GRAIN, plus nothing.
 *
 * Not thread-safe: use one arena from one thread (or lock around it). Plain C99, no
 * dependencies beyond <stddef.h>/<stdint.h>, so host tests use the same file. */
#ifndef FW_ARENA_H
#define FW_ARENA_H

#include <stddef.h>
#include <stdint.h>

/* Every block's size and address is a multiple of this: room for a free block's size and link,
 * stored in the block itself (8 bytes on a 32-bit MCU, 16 on a 64-bit host, as malloc). */
#define ARENA_GRAIN (2u * sizeof(void *))

typedef struct arena_free_block arena_free_block;

typedef struct arena {
    uint8_t *base;          /* first byte, aligned to ARENA_GRAIN */
    size_t size;            /* usable bytes from base, a multiple of ARENA_GRAIN */
    arena_free_block *free; /* address-ordered free list */
    size_t in_use;          /* bytes handed out and not yet freed (rounded to ARENA_GRAIN) */
    size_t high_water;      /* the largest in_use ever reached */
    size_t extent;          /* the highest offset from base ever handed out (fragmentation shows
                               as extent > high_water) */
    size_t allocations;     /* successful arena_alloc calls */
    size_t failures;        /* arena_alloc calls that found no room */
    size_t bad_frees;       /* arena_free calls outside the arena or overlapping a free block
                               (ignored, never corrupting the list) */
} arena;

/* Takes `len` bytes at `mem` (any alignment: the edges that are not ARENA_GRAIN-aligned are
 * left unused). All counters start at zero. */
void arena_init(arena *a, void *mem, size_t len);

/* `size` bytes aligned to `align` (a power of two; 0 or values below ARENA_GRAIN mean
 * ARENA_GRAIN), or NULL when no free block fits (or size is 0). */
void *arena_alloc(arena *a, size_t size, size_t align);

/* Returns a block from arena_alloc; `size` must be the size it was allocated with (`align` is
 * accepted for the hook's signature and not needed). NULL is a no-op. */
void arena_free(arena *a, void *ptr, size_t size, size_t align);

/* The largest single block arena_alloc could return now with ARENA_GRAIN alignment. */
size_t arena_largest_free(const arena *a);

/* Sets high_water to the current in_use, to measure a next phase on its own. */
void arena_reset_high_water(arena *a);

#endif
