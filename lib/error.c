/* error.c -- error codes, their static texts, and the thread-local detail.
 *
 * The tables are static and read-only, so skc_strerror()/skc_errname() are
 * thread-safe for every input (unlike nng_strerror in 1.5.2, which formats
 * unknown codes into a shared buffer).
 */
#include "error.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char error_detail[SKCI_ERROR_MAX];

struct error_info {
    int code;
    const char *name;
    const char *text;
};

static const struct error_info error_table[] = {
    { SKC_OK, "OK", "success" },
    { SKC_EINVAL, "EINVAL", "invalid argument" },
    { SKC_ENOMEM, "ENOMEM", "out of memory" },
    { SKC_ENONODE, "ENONODE", "unknown node" },
    { SKC_ENODEDOWN, "ENODEDOWN", "node is down" },
    { SKC_EUNREACHABLE, "EUNREACHABLE", "node unreachable" },
    { SKC_ENOSERVICE, "ENOSERVICE", "no such service" },
    { SKC_EHANDLER, "EHANDLER", "remote handler failed" },
    { SKC_ETIMEDOUT, "ETIMEDOUT", "timed out" },
    { SKC_ETOOBIG, "ETOOBIG", "message too big" },
    { SKC_ECONNLOST, "ECONNLOST", "connection lost, outcome unknown" },
    { SKC_ECLOSED, "ECLOSED", "node closed" },
    { SKC_EPROTO, "EPROTO", "protocol error" },
    { SKC_EBUSY, "EBUSY", "busy" },
    { SKC_EEXIST, "EEXIST", "already exists" },
    { SKC_ETRANSPORT, "ETRANSPORT", "transport error" },
    { SKC_ESYNTAX, "ESYNTAX", "cluster map syntax error" },
    { SKC_EIO, "EIO", "i/o error" },
    { SKC_ENOREPLY, "ENOREPLY", "service did not reply" },
    { SKC_ELIMIT, "ELIMIT", "limit reached" },
    { SKC_ESTATE, "ESTATE", "invalid state" },
    { SKC_EAUTH, "EAUTH", "not authorized" },
};

static const struct error_info *
error_find(int code)
{
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++) {
        if (error_table[i].code == code) {
            return &error_table[i];
        }
    }
    return NULL;
}

const char *
skc_strerror(int code)
{
    const struct error_info *e = error_find(code);
    return e != NULL ? e->text : "unknown error";
}

const char *
skc_errname(int code)
{
    const struct error_info *e = error_find(code);
    return e != NULL ? e->name : "EUNKNOWN";
}

const char *
skc_last_error(void)
{
    return error_detail;
}

/* Details name peers, targets and texts that come from the network:
 * they are stored cleaned (util.h), so no detail can carry a control
 * character or a broken UTF-8 sequence to a log or a terminal. */
int
skci_verror(int rc, const char *fmt, va_list ap)
{
    char raw[sizeof(error_detail)];
    vsnprintf(raw, sizeof(raw), fmt, ap);
    skci_text_clean(error_detail, sizeof(error_detail), raw);
    return rc;
}

int
skci_error(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    skci_verror(rc, fmt, ap);
    va_end(ap);
    return rc;
}

void
skci_error_set_text(const char *text)
{
    if (text == NULL) {
        text = "";
    }
    /* Texts may alias error_detail itself (a callback re-setting it). */
    if (text != error_detail) {
        skci_text_clean(error_detail, sizeof(error_detail), text);
    }
}

void
skci_error_clear(void)
{
    error_detail[0] = '\0';
}
