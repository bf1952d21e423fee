/* umem.h -- memory handed to users, released with skc_free() (umem.c). */
#ifndef SKC_LIB_UMEM_H
#define SKC_LIB_UMEM_H

#include "transport.h"

#include <stddef.h>
#include <stdint.h>

/* n bytes for the user (skc_free), NULL without memory. */
void *skci_user_alloc(size_t n);
char *skci_user_strdup(const char *s);
/* Hands payload, which lies inside message m at least 16 bytes after the
 * start of its body, to the user without copying; skc_free frees m.
 * The 16 bytes before payload are overwritten. */
void *skci_user_from_msg(skci_tmsg *m, uint8_t *payload);

#endif
