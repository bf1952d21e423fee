/* util.c -- clock, id map, deadline heap, string map. */
#include "util.h"

#include "skc/skc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t
skci_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
skci_now_us(void)
{
    return skci_now_ns() / 1000;
}

int64_t
skci_now_ms(void)
{
    return skci_now_ns() / 1000000;
}

void
skci_cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

void
skci_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t until_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(until_ms / 1000);
    ts.tv_nsec = (long)(until_ms % 1000) * 1000000L;
    pthread_cond_timedwait(c, m, &ts);
}

char *
skci_strdup(const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

/* ---- id map ---- */

/* Key 0 marks an empty slot, UINT32_MAX a deleted one; callers never use
 * either as a key (ids start at 1 and wrap before 0x7fffffff). */
#define IDMAP_TOMB UINT32_MAX

void
skci_idmap_init(skci_idmap *m)
{
    memset(m, 0, sizeof(*m));
}

void
skci_idmap_fini(skci_idmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

static size_t
idmap_hash(uint32_t k)
{
    k ^= k >> 16;
    k *= 0x7feb352dU;
    k ^= k >> 15;
    k *= 0x846ca68bU;
    k ^= k >> 16;
    return k;
}

static int
idmap_grow(skci_idmap *m)
{
    size_t ncap = m->cap ? m->cap : 16;
    /* Grow when live entries pass half; rehash in place size otherwise
     * (clears tombstones). */
    if (m->count * 2 >= ncap) {
        ncap *= 2;
    }
    uint32_t *nk = calloc(ncap, sizeof(*nk));
    void **nv = calloc(ncap, sizeof(*nv));
    if (nk == NULL || nv == NULL) {
        free(nk);
        free(nv);
        return SKC_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        uint32_t k = m->keys[i];
        if (k != 0 && k != IDMAP_TOMB) {
            size_t j = idmap_hash(k) & (ncap - 1);
            while (nk[j] != 0) {
                j = (j + 1) & (ncap - 1);
            }
            nk[j] = k;
            nv[j] = m->vals[i];
        }
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    m->tombs = 0;
    return 0;
}

void *
skci_idmap_get(const skci_idmap *m, uint32_t key)
{
    if (m->cap == 0 || key == 0 || key == IDMAP_TOMB) {
        return NULL;
    }
    size_t j = idmap_hash(key) & (m->cap - 1);
    for (size_t n = 0; n < m->cap; n++) {
        if (m->keys[j] == key) {
            return m->vals[j];
        }
        if (m->keys[j] == 0) {
            return NULL;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

int
skci_idmap_set(skci_idmap *m, uint32_t key, void *val)
{
    if (key == 0 || key == IDMAP_TOMB) {
        return SKC_EINVAL;
    }
    if ((m->count + m->tombs + 1) * 4 >= m->cap * 3) {
        int rc = idmap_grow(m);
        if (rc != 0) {
            return rc;
        }
    }
    size_t j = idmap_hash(key) & (m->cap - 1);
    size_t tomb = SIZE_MAX;
    for (;;) {
        if (m->keys[j] == key) {
            m->vals[j] = val;
            return 0;
        }
        if (m->keys[j] == IDMAP_TOMB && tomb == SIZE_MAX) {
            tomb = j;
        }
        if (m->keys[j] == 0) {
            break;
        }
        j = (j + 1) & (m->cap - 1);
    }
    if (tomb != SIZE_MAX) {
        j = tomb;
        m->tombs--;
    }
    m->keys[j] = key;
    m->vals[j] = val;
    m->count++;
    return 0;
}

void *
skci_idmap_del(skci_idmap *m, uint32_t key)
{
    if (m->cap == 0 || key == 0 || key == IDMAP_TOMB) {
        return NULL;
    }
    size_t j = idmap_hash(key) & (m->cap - 1);
    for (size_t n = 0; n < m->cap; n++) {
        if (m->keys[j] == key) {
            void *v = m->vals[j];
            m->keys[j] = IDMAP_TOMB;
            m->vals[j] = NULL;
            m->count--;
            m->tombs++;
            return v;
        }
        if (m->keys[j] == 0) {
            return NULL;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

void
skci_idmap_each(
    const skci_idmap *m, void (*fn)(uint32_t, void *, void *), void *arg)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] != 0 && m->keys[i] != IDMAP_TOMB) {
            fn(m->keys[i], m->vals[i], arg);
        }
    }
}

/* ---- heap ---- */

void
skci_heap_init(skci_heap *h)
{
    memset(h, 0, sizeof(*h));
}

void
skci_heap_fini(skci_heap *h)
{
    free(h->v);
    memset(h, 0, sizeof(*h));
}

static void
heap_swap(skci_heap *h, size_t a, size_t b)
{
    skci_heap_node *t = h->v[a];
    h->v[a] = h->v[b];
    h->v[b] = t;
    h->v[a]->idx = a;
    h->v[b]->idx = b;
}

static void
heap_up(skci_heap *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p]->when <= h->v[i]->when) {
            break;
        }
        heap_swap(h, p, i);
        i = p;
    }
}

static void
heap_down(skci_heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->v[l]->when < h->v[m]->when) {
            m = l;
        }
        if (r < h->n && h->v[r]->when < h->v[m]->when) {
            m = r;
        }
        if (m == i) {
            break;
        }
        heap_swap(h, i, m);
        i = m;
    }
}

int
skci_heap_push(skci_heap *h, skci_heap_node *node)
{
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        skci_heap_node **nv = realloc(h->v, nc * sizeof(*nv));
        if (nv == NULL) {
            return SKC_ENOMEM;
        }
        h->v = nv;
        h->cap = nc;
    }
    node->idx = h->n;
    h->v[h->n++] = node;
    heap_up(h, node->idx);
    return 0;
}

void
skci_heap_remove(skci_heap *h, skci_heap_node *node)
{
    size_t i = node->idx;
    if (i == SKCI_HEAP_NONE || i >= h->n || h->v[i] != node) {
        return;
    }
    h->n--;
    if (i != h->n) {
        h->v[i] = h->v[h->n];
        h->v[i]->idx = i;
        heap_down(h, i);
        heap_up(h, i);
    }
    node->idx = SKCI_HEAP_NONE;
}

skci_heap_node *
skci_heap_top(const skci_heap *h)
{
    return h->n ? h->v[0] : NULL;
}

/* ---- string map ---- */

void
skci_strmap_init(skci_strmap *m)
{
    memset(m, 0, sizeof(*m));
}

void
skci_strmap_fini(skci_strmap *m)
{
    for (size_t i = 0; i < m->nb; i++) {
        skci_strmap_ent *e = m->b[i];
        while (e != NULL) {
            skci_strmap_ent *n = e->next;
            free(e->key);
            free(e);
            e = n;
        }
    }
    free(m->b);
    memset(m, 0, sizeof(*m));
}

static size_t
strmap_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

void *
skci_strmap_get(const skci_strmap *m, const char *key)
{
    if (m->nb == 0) {
        return NULL;
    }
    for (skci_strmap_ent *e = m->b[strmap_hash(key) % m->nb]; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            return e->val;
        }
    }
    return NULL;
}

int
skci_strmap_set(skci_strmap *m, const char *key, void *val)
{
    if (m->count >= m->nb) {
        size_t nb = m->nb ? m->nb * 2 : 16;
        skci_strmap_ent **b = calloc(nb, sizeof(*b));
        if (b == NULL) {
            return SKC_ENOMEM;
        }
        for (size_t i = 0; i < m->nb; i++) {
            skci_strmap_ent *e = m->b[i];
            while (e != NULL) {
                skci_strmap_ent *n = e->next;
                size_t j = strmap_hash(e->key) % nb;
                e->next = b[j];
                b[j] = e;
                e = n;
            }
        }
        free(m->b);
        m->b = b;
        m->nb = nb;
    }
    size_t j = strmap_hash(key) % m->nb;
    for (skci_strmap_ent *e = m->b[j]; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            e->val = val;
            return 0;
        }
    }
    skci_strmap_ent *e = malloc(sizeof(*e));
    if (e == NULL || (e->key = skci_strdup(key)) == NULL) {
        free(e);
        return SKC_ENOMEM;
    }
    e->val = val;
    e->next = m->b[j];
    m->b[j] = e;
    m->count++;
    return 0;
}

void *
skci_strmap_del(skci_strmap *m, const char *key)
{
    if (m->nb == 0) {
        return NULL;
    }
    skci_strmap_ent **pp = &m->b[strmap_hash(key) % m->nb];
    for (; *pp; pp = &(*pp)->next) {
        skci_strmap_ent *e = *pp;
        if (strcmp(e->key, key) == 0) {
            void *v = e->val;
            *pp = e->next;
            free(e->key);
            free(e);
            m->count--;
            return v;
        }
    }
    return NULL;
}

void
skci_strmap_each(
    const skci_strmap *m, void (*fn)(const char *, void *, void *), void *arg)
{
    for (size_t i = 0; i < m->nb; i++) {
        for (skci_strmap_ent *e = m->b[i]; e; e = e->next) {
            fn(e->key, e->val, arg);
        }
    }
}

size_t
skci_utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned min;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    unsigned cp = c & (0xff >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    /* C1 controls (U+0080..U+009F) act on terminals as ESC sequences do. */
    return cp >= 0x80 && cp <= 0x9f ? 0 : len;
}

char *
skci_text_clean(char *dst, size_t size, const char *src)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t n = strlen(src), o = 0;
    for (size_t i = 0; i < n;) {
        size_t l =
            s[i] < 0x20 || s[i] == 0x7f ? 0 : skci_utf8_len(s + i, n - i);
        if (l == 0) {
            if (o + 4 >= size) {
                break;
            }
            snprintf(dst + o, size - o, "\\x%02x", s[i]);
            o += 4;
            i++;
            continue;
        }
        if (o + l >= size) {
            break;
        }
        memcpy(dst + o, s + i, l);
        o += l;
        i += l;
    }
    dst[o] = '\0';
    return dst;
}

char *
skci_text_clean_dup(const char *src)
{
    size_t size = strlen(src) * 4 + 1;
    char *d = malloc(size);
    return d != NULL ? skci_text_clean(d, size, src) : NULL;
}
