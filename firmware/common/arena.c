#include "arena.h"

struct arena_free_block {
    size_t size; /* bytes in this free block, including this header */
    arena_free_block *next;
};

/* Rounds up to ARENA_GRAIN; 0 when that would overflow. */
static size_t round_grain(size_t n) {
    if (n > SIZE_MAX - (ARENA_GRAIN - 1u)) {
        return 0;
    }
    return (n + ARENA_GRAIN - 1u) & ~(size_t)(ARENA_GRAIN - 1u);
}

void arena_init(arena *a, void *mem, size_t len) {
    uintptr_t start = (uintptr_t)mem;
    uintptr_t aligned = (start + ARENA_GRAIN - 1u) & ~(uintptr_t)(ARENA_GRAIN - 1u);
    size_t skip = (size_t)(aligned - start);
    *a = (arena){0};
    if (mem == NULL || len <= skip) {
        return;
    }
    a->base = (uint8_t *)aligned;
    a->size = (len - skip) & ~(size_t)(ARENA_GRAIN - 1u);
    if (a->size >= sizeof(arena_free_block)) {
        a->free = (arena_free_block *)(void *)a->base;
        a->free->size = a->size;
        a->free->next = NULL;
    }
}

void *arena_alloc(arena *a, size_t size, size_t align) {
    size_t need = round_grain(size);
    if (align < ARENA_GRAIN) {
        align = ARENA_GRAIN;
    }
    if (need == 0 || (align & (align - 1u)) != 0) {
        a->failures++;
        return NULL;
    }
    arena_free_block **link = &a->free;
    for (arena_free_block *b = a->free; b != NULL; link = &b->next, b = b->next) {
        uintptr_t start = (uintptr_t)b;
        uintptr_t user = (start + align - 1u) & ~(uintptr_t)(align - 1u);
        size_t pad = (size_t)(user - start); /* a multiple of ARENA_GRAIN */
        if (pad > b->size || b->size - pad < need) {
            continue;
        }
        size_t tail = b->size - pad - need;
        arena_free_block *next = b->next;
        if (tail > 0) {
            arena_free_block *rest = (arena_free_block *)(void *)(user + need);
            rest->size = tail;
            rest->next = next;
            next = rest;
        }
        if (pad > 0) {
            b->size = pad; /* the front stays free, in place */
            b->next = next;
        } else {
            *link = next;
        }
        a->in_use += need;
        if (a->in_use > a->high_water) {
            a->high_water = a->in_use;
        }
        size_t end = (size_t)(user + need - (uintptr_t)a->base);
        if (end > a->extent) {
            a->extent = end;
        }
        a->allocations++;
        return (void *)user;
    }
    a->failures++;
    return NULL;
}

void arena_free(arena *a, void *ptr, size_t size, size_t align) {
    (void)align;
    if (ptr == NULL) {
        return;
    }
    size_t len = round_grain(size);
    uintptr_t start = (uintptr_t)ptr;
    uintptr_t base = (uintptr_t)a->base;
    if (len == 0 || start < base || (start - base) % ARENA_GRAIN != 0 ||
        start - base > a->size || a->size - (start - base) < len || len > a->in_use) {
        a->bad_frees++;
        return;
    }
    uintptr_t end = start + len;
    arena_free_block *prev = NULL;
    arena_free_block *next = a->free;
    while (next != NULL && (uintptr_t)next < start) {
        prev = next;
        next = next->next;
    }
    if ((prev != NULL && (uintptr_t)prev + prev->size > start) ||
        (next != NULL && (uintptr_t)next < end)) {
        a->bad_frees++; /* overlaps a free block: a double free or a wrong size */
        return;
    }
    arena_free_block *block = (arena_free_block *)ptr;
    block->size = len;
    block->next = next;
    if (next != NULL && end == (uintptr_t)next) {
        block->size += next->size;
        block->next = next->next;
    }
    if (prev != NULL && (uintptr_t)prev + prev->size == start) {
        prev->size += block->size;
        prev->next = block->next;
    } else if (prev != NULL) {
        prev->next = block;
    } else {
        a->free = block;
    }
    a->in_use -= len;
}

size_t arena_largest_free(const arena *a) {
    size_t largest = 0;
    for (const arena_free_block *b = a->free; b != NULL; b = b->next) {
        if (b->size > largest) {
            largest = b->size;
        }
    }
    return largest;
}

void arena_reset_high_water(arena *a) { a->high_water = a->in_use; }
