/* util.h -- small internal containers and helpers: clock, id map, deadline
 * heap, string map.  No locking: callers hold their own locks. */
#ifndef SKC_LIB_UTIL_H
#define SKC_LIB_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in milliseconds / nanoseconds. */
int64_t skci_now_ms(void);
int64_t skci_now_ns(void);
int64_t skci_now_us(void);

/* A condition variable whose timed waits use the monotonic clock, and a
 * wait on it (m held) until signalled or skci_now_ms() reaches until_ms. */
void skci_cond_init_mono(pthread_cond_t *c);
void skci_cond_wait_until(
    pthread_cond_t *c, pthread_mutex_t *m, int64_t until_ms);

/* malloc'd copy of s (NULL if s is NULL or out of memory). */
char *skci_strdup(const char *s);
/* Copies NUL-terminated src into dst (size > 0) so that it is safe to
 * print on one line: control characters (C0, DEL, C1) and bytes that are
 * not valid UTF-8 become \xNN; valid UTF-8 passes.  Truncates at a
 * character boundary; returns dst. */
char *skci_text_clean(char *dst, size_t size, const char *src);
/* Length of the valid UTF-8 sequence at p (n > 0 bytes left), 0 if
 * invalid: no overlongs, no surrogates, nothing above U+10FFFF, and no C1
 * controls (they act on terminals as ESC sequences do). */
size_t skci_utf8_len(const unsigned char *p, size_t n);
/* The same into a malloc'd copy (NULL without memory). */
char *skci_text_clean_dup(const char *src);

/* ---- id map: uint32 key (non-zero) -> pointer, open addressing ---- */
typedef struct skci_idmap {
    uint32_t *keys;
    void **vals;
    size_t cap; /* power of two or 0 */
    size_t count;
    size_t tombs;
} skci_idmap;

void skci_idmap_init(skci_idmap *m);
void skci_idmap_fini(skci_idmap *m);
void *skci_idmap_get(const skci_idmap *m, uint32_t key);
/* Returns 0 or SKC_ENOMEM; replaces an existing value. */
int skci_idmap_set(skci_idmap *m, uint32_t key, void *val);
/* Returns the removed value or NULL. */
void *skci_idmap_del(skci_idmap *m, uint32_t key);
/* Calls fn for each entry; fn must not modify the map. */
void skci_idmap_each(
    const skci_idmap *m, void (*fn)(uint32_t, void *, void *), void *arg);

/* ---- deadline heap: entries embed a skci_heap_node ---- */
typedef struct skci_heap_node {
    int64_t when;
    size_t idx; /* SKCI_HEAP_NONE when not in a heap */
} skci_heap_node;

#define SKCI_HEAP_NONE ((size_t)-1)

typedef struct skci_heap {
    skci_heap_node **v;
    size_t n, cap;
} skci_heap;

void skci_heap_init(skci_heap *h);
void skci_heap_fini(skci_heap *h);
int skci_heap_push(skci_heap *h, skci_heap_node *node);
void skci_heap_remove(skci_heap *h, skci_heap_node *node);
skci_heap_node *skci_heap_top(const skci_heap *h);

/* ---- string map: NUL-terminated key (copied) -> pointer ---- */
typedef struct skci_strmap_ent {
    char *key;
    void *val;
    struct skci_strmap_ent *next;
} skci_strmap_ent;

typedef struct skci_strmap {
    skci_strmap_ent **b;
    size_t nb, count;
} skci_strmap;

void skci_strmap_init(skci_strmap *m);
/* Frees the entries (not the values). */
void skci_strmap_fini(skci_strmap *m);
void *skci_strmap_get(const skci_strmap *m, const char *key);
int skci_strmap_set(skci_strmap *m, const char *key, void *val);
void *skci_strmap_del(skci_strmap *m, const char *key);
void skci_strmap_each(
    const skci_strmap *m, void (*fn)(const char *, void *, void *), void *arg);

/* Little-endian helpers for the wire codec. */
static inline void
skci_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void
skci_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}
static inline void
skci_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}
static inline uint16_t
skci_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t
skci_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
        ((uint32_t)p[3] << 24);
}
static inline uint64_t
skci_get_u64(const uint8_t *p)
{
    return (uint64_t)skci_get_u32(p) | ((uint64_t)skci_get_u32(p + 4) << 32);
}

#endif
