/* umem.c -- memory handed to users and skc_free(): each block carries 16
 * bytes in front of the pointer, a magic word and, for a reply handed out
 * in place inside its message, the message to free.
 */
#include "umem.h"

#include "skc/skc.h"

#include <stdlib.h>
#include <string.h>

#define UMAGIC_HEAP 0x7061656863736b01ULL /* a malloc'd block */
#define UMAGIC_MSG 0x67736d6d63736b02ULL  /* inside a message */

void *
skci_user_alloc(size_t n)
{
    if (n > SIZE_MAX - 16) {
        return NULL;
    }
    unsigned char *b = malloc(16 + n);
    if (b == NULL) {
        return NULL;
    }
    uint64_t magic = UMAGIC_HEAP;
    memcpy(b, &magic, sizeof(magic));
    memset(b + 8, 0, 8);
    return b + 16;
}

char *
skci_user_strdup(const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *d = skci_user_alloc(n);
    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

void *
skci_user_from_msg(skci_tmsg *m, uint8_t *payload)
{
    uint64_t magic = UMAGIC_MSG;
    memcpy(payload - 16, &magic, sizeof(magic));
    memcpy(payload - 8, &m, sizeof(m));
    return payload;
}

void
skc_free(void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    unsigned char *b = (unsigned char *)ptr - 16;
    uint64_t magic;
    memcpy(&magic, b, sizeof(magic));
    if (magic == UMAGIC_HEAP) {
        magic = 0; /* a double free then finds no magic */
        memcpy(b, &magic, sizeof(magic));
        free(b);
    } else if (magic == UMAGIC_MSG) {
        skci_tmsg *m;
        memcpy(&m, b + 8, sizeof(m));
        magic = 0;
        memcpy(b, &magic, sizeof(magic));
        skci_tmsg_free(m);
    }
    /* Anything else was not allocated by skc: ignored rather than passed
     * to free(), which would corrupt the heap. */
}
