/* error.h -- internal error helpers: thread-local detail text. */
#ifndef SKC_LIB_ERROR_H
#define SKC_LIB_ERROR_H

#include "skc/skc.h"

#include <stdarg.h>

#if defined(__GNUC__) || defined(__clang__)
#define SKCI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SKCI_PRINTF(a, b)
#endif

/* Sets this thread's detail text (printf-style) and returns rc, so that
 * `return skci_error(SKC_EINVAL, "name is empty");` reads naturally. */
int skci_error(int rc, const char *fmt, ...) SKCI_PRINTF(2, 3);

/* Same with a va_list. */
int skci_verror(int rc, const char *fmt, va_list ap);

/* Sets the detail text verbatim (NULL = ""). */
void skci_error_set_text(const char *text);

/* Clears the detail text. */
void skci_error_clear(void);

/* Maximum detail text length kept, including the NUL. */
#define SKCI_ERROR_MAX 1024

#endif
