/* prom.c -- `skc stats --prometheus`: a node's statistics JSON in the
 * Prometheus text exposition format (version 0.0.4).
 *
 * The JSON (docs/OPERATIONS.md, "Statistics") is read through the CLI's
 * JSON reader into MessagePack and walked with skc_unpack: counters
 * become skc_<name>_total (failures by code get a code label), gauges
 * skc_<name>, mailboxes and peers get service and peer labels, and every
 * sample carries node="NAME".  Samples are grouped by family, each family
 * after its # TYPE line, as the format requires. */
#include "cli.h"
#include "json.h"

#include "skc/skc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAMILIES 64

typedef struct family {
    char name[64];
    const char *type; /* "counter" or "gauge" */
    char *text;       /* its samples, one per line */
    size_t len;
} family;

typedef struct prom {
    skc_unpack *u;
    family fam[MAX_FAMILIES];
    size_t nfam;
    char node[256]; /* the node label's value, escaped */
    int oom;
} prom;

/* Escapes a label value: backslash, double quote and newline. */
static void
label_escape(char *dst, size_t size, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 3 < size; i++) {
        char c = s[i];
        if (c == '\\' || c == '"') {
            dst[o++] = '\\';
            dst[o++] = c;
        } else if (c == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else {
            dst[o++] = c;
        }
    }
    dst[o] = '\0';
}

/* One sample of family name: name{node="...",<labels>} value. */
static void sample(prom *p, const char *type, const char *name,
    const char *labels, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
sample(prom *p, const char *type, const char *name, const char *labels,
    const char *fmt, ...)
{
    family *f = NULL;
    for (size_t i = 0; i < p->nfam; i++) {
        if (strcmp(p->fam[i].name, name) == 0) {
            f = &p->fam[i];
        }
    }
    if (f == NULL) {
        if (p->nfam == MAX_FAMILIES) {
            return;
        }
        f = &p->fam[p->nfam++];
        snprintf(f->name, sizeof(f->name), "%s", name);
        f->type = type;
    }
    char value[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    char line[1400];
    int n = snprintf(line, sizeof(line), "%s{node=\"%s\"%s%s} %s\n", name,
        p->node, labels[0] ? "," : "", labels, value);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        return;
    }
    char *t = realloc(f->text, f->len + (size_t)n + 1);
    if (t == NULL) {
        p->oom = 1;
        return;
    }
    memcpy(t + f->len, line, (size_t)n + 1);
    f->text = t;
    f->len += (size_t)n;
}

/* Reads the next item: 0, or -1 at the end or on malformed data. */
static int
next(prom *p, skc_item *it)
{
    it->size = sizeof(*it);
    return skc_unpack_next(p->u, it) == 1 ? 0 : -1;
}

/* Skips one value (and what it contains). */
static int
skip(prom *p, const skc_item *it)
{
    uint64_t left = it->type == SKC_T_ARRAY ? it->count
        : it->type == SKC_T_MAP             ? 2 * (uint64_t)it->count
                                            : 0;
    while (left-- > 0) {
        skc_item sub;
        if (next(p, &sub) != 0 || skip(p, &sub) != 0) {
            return -1;
        }
    }
    return 0;
}

/* The key of a map entry as a C string. */
static int
key(prom *p, char *buf, size_t size)
{
    skc_item it;
    if (next(p, &it) != 0 || it.type != SKC_T_STR || it.len >= size) {
        return -1;
    }
    memcpy(buf, it.ptr, it.len);
    buf[it.len] = '\0';
    return 0;
}

static int
is_number(const skc_item *it)
{
    return it->type == SKC_T_INT || it->type == SKC_T_UINT;
}

static uint64_t
number(const skc_item *it)
{
    return it->type == SKC_T_UINT ? it->u : (uint64_t)it->i;
}

/* "counters": numbers, and maps of failures by code. */
static int
counters(prom *p, const skc_item *m)
{
    for (uint32_t i = 0; i < m->count; i++) {
        char k[64], name[96];
        skc_item v;
        if (key(p, k, sizeof(k)) != 0 || next(p, &v) != 0) {
            return -1;
        }
        snprintf(name, sizeof(name), "skc_%s_total", k);
        if (is_number(&v)) {
            sample(p, "counter", name, "", "%" PRIu64, number(&v));
            continue;
        }
        if (v.type != SKC_T_MAP) {
            if (skip(p, &v) != 0) {
                return -1;
            }
            continue;
        }
        for (uint32_t j = 0; j < v.count; j++) {
            char code[64], lab[96];
            skc_item c;
            if (key(p, code, sizeof(code)) != 0 || next(p, &c) != 0) {
                return -1;
            }
            if (is_number(&c)) {
                snprintf(lab, sizeof(lab), "code=\"%s\"", code);
                sample(p, "counter", name, lab, "%" PRIu64, number(&c));
            } else if (skip(p, &c) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* "gauges": numbers. */
static int
gauges(prom *p, const skc_item *m)
{
    for (uint32_t i = 0; i < m->count; i++) {
        char k[64], name[96];
        skc_item v;
        if (key(p, k, sizeof(k)) != 0 || next(p, &v) != 0) {
            return -1;
        }
        snprintf(name, sizeof(name), "skc_%s", k);
        if (is_number(&v)) {
            sample(p, "gauge", name, "", "%" PRIu64, number(&v));
        } else if (skip(p, &v) != 0) {
            return -1;
        }
    }
    return 0;
}

/* A string value, escaped for a label. */
static int
str_value(prom *p, const skc_item *v, char *buf, size_t size)
{
    if (v->type != SKC_T_STR) {
        buf[0] = '\0';
        return skip(p, v);
    }
    label_escape(buf, size, v->ptr, v->len);
    return 0;
}

/* "mailboxes": [{service, names, messages, bytes}]. */
static int
mailboxes(prom *p, const skc_item *a)
{
    for (uint32_t i = 0; i < a->count; i++) {
        skc_item m;
        char service[64] = "", name[300] = "";
        uint64_t msgs = 0, bytes = 0;
        if (next(p, &m) != 0 || m.type != SKC_T_MAP) {
            return -1;
        }
        for (uint32_t j = 0; j < m.count; j++) {
            char k[32];
            skc_item v;
            if (key(p, k, sizeof(k)) != 0 || next(p, &v) != 0) {
                return -1;
            }
            if (strcmp(k, "service") == 0) {
                str_value(p, &v, service, sizeof(service));
            } else if (strcmp(k, "names") == 0 && v.type == SKC_T_ARRAY &&
                v.count > 0) {
                skc_item first;
                if (next(p, &first) != 0 ||
                    str_value(p, &first, name, sizeof(name)) != 0) {
                    return -1;
                }
                for (uint32_t r = 1; r < v.count; r++) {
                    skc_item more;
                    if (next(p, &more) != 0 || skip(p, &more) != 0) {
                        return -1;
                    }
                }
            } else if (strcmp(k, "messages") == 0 && is_number(&v)) {
                msgs = number(&v);
            } else if (strcmp(k, "bytes") == 0 && is_number(&v)) {
                bytes = number(&v);
            } else if (skip(p, &v) != 0) {
                return -1;
            }
        }
        char lab[400];
        snprintf(
            lab, sizeof(lab), "service=\"%s\",name=\"%s\"", service, name);
        sample(
            p, "gauge", "skc_service_mailbox_messages", lab, "%" PRIu64, msgs);
        sample(
            p, "gauge", "skc_service_mailbox_bytes", lab, "%" PRIu64, bytes);
    }
    return 0;
}

/* "peers": {name: {state, rtt_us, calls_queued, ...}}. */
static int
peers(prom *p, const skc_item *m)
{
    for (uint32_t i = 0; i < m->count; i++) {
        char raw[256], peer[600], lab[700];
        skc_item obj;
        if (key(p, raw, sizeof(raw)) != 0 || next(p, &obj) != 0 ||
            obj.type != SKC_T_MAP) {
            return -1;
        }
        label_escape(peer, sizeof(peer), raw, strlen(raw));
        snprintf(lab, sizeof(lab), "peer=\"%s\"", peer);
        for (uint32_t j = 0; j < obj.count; j++) {
            char k[64], name[96], state[64];
            skc_item v;
            if (key(p, k, sizeof(k)) != 0 || next(p, &v) != 0) {
                return -1;
            }
            if (strcmp(k, "state") == 0) {
                if (str_value(p, &v, state, sizeof(state)) != 0) {
                    return -1;
                }
                sample(p, "gauge", "skc_peer_up", lab, "%d",
                    strcmp(state, "up") == 0);
            } else if (is_number(&v)) {
                snprintf(name, sizeof(name), "skc_peer_%s", k);
                sample(p, "gauge", name, lab, "%" PRIu64, number(&v));
            } else if (skip(p, &v) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int
walk(prom *p)
{
    skc_item top;
    if (next(p, &top) != 0 || top.type != SKC_T_MAP) {
        return -1;
    }
    for (uint32_t i = 0; i < top.count; i++) {
        char k[64];
        skc_item v;
        if (key(p, k, sizeof(k)) != 0 || next(p, &v) != 0) {
            return -1;
        }
        int rc = 0;
        if (strcmp(k, "node") == 0) {
            rc = str_value(p, &v, p->node, sizeof(p->node));
        } else if (strcmp(k, "uptime_ms") == 0 && is_number(&v)) {
            sample(p, "gauge", "skc_uptime_seconds", "", "%.3f",
                (double)number(&v) / 1000.0);
        } else if (strcmp(k, "counters") == 0 && v.type == SKC_T_MAP) {
            rc = counters(p, &v);
        } else if (strcmp(k, "gauges") == 0 && v.type == SKC_T_MAP) {
            rc = gauges(p, &v);
        } else if (strcmp(k, "mailboxes") == 0 && v.type == SKC_T_ARRAY) {
            rc = mailboxes(p, &v);
        } else if (strcmp(k, "peers") == 0 && v.type == SKC_T_MAP) {
            rc = peers(p, &v);
        } else {
            rc = skip(p, &v);
        }
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}

int
cli_prometheus(FILE *f, const char *json, size_t len, char *err, size_t errlen)
{
    skc_pack *pk = NULL;
    prom p = { 0 };
    int rc = -1;
    size_t mlen;
    if (skc_pack_create(&pk) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cli_json_pack(pk, json, len, err, errlen) != CLI_JSON_PACKED) {
        goto done;
    }
    const void *mp = skc_pack_data(pk, &mlen);
    if (skc_unpack_create(&p.u, mp, mlen) != 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    /* The node label comes first in the JSON; samples before it (none)
     * would have an empty one. */
    if (walk(&p) != 0) {
        snprintf(
            err, errlen, "the statistics do not have the documented shape");
        goto done;
    }
    if (p.oom) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < p.nfam; i++) {
        fprintf(f, "# TYPE %s %s\n%s", p.fam[i].name, p.fam[i].type,
            p.fam[i].text);
    }
    rc = 0;
done:
    for (size_t i = 0; i < p.nfam; i++) {
        free(p.fam[i].text);
    }
    skc_unpack_destroy(p.u);
    skc_pack_destroy(pk);
    return rc;
}
