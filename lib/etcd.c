/* etcd.c -- the cluster map kept in etcd v3: the node announces itself
 * under a prefix with a lease, and a thread watches the prefix and merges
 * every change into the map (docs/OPERATIONS.md, "Running skc with etcd").
 *
 * The thread talks to etcd's HTTP/JSON gateway with libcurl's multi
 * interface (so that stop wakes it at once): one range read gives the map
 * and a revision, a watch from revision + 1 every change after it.  A
 * broken watch is re-read and re-watched with backoff while the node keeps
 * serving with the map it has.  Changes are ordinary merges (mapapply.c).
 * etcd->lock guards the fields marked so; it is a leaf, and no skc lock
 * is held while the thread waits on etcd.  Without libcurl and cJSON at
 * build time, the option is refused with a clear error.
 */
#include "core.h"
#include "etcd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ETCD_DEFAULT_PREFIX "/skc"
#define ETCD_DEFAULT_LISTEN "127.0.0.1:0"
#define ETCD_DEFAULT_TTL_S 3

#ifndef SKC_HAVE_ETCD

#define NO_ETCD "built without etcd support (libcurl/cJSON missing)"

int
skci_etcd_start(skc_node *n, const skc_node_opts *o)
{
    (void)n;
    return skci_error(SKC_EINVAL, "etcd %s: " NO_ETCD, o->etcd);
}

void
skci_etcd_stop(skc_node *n)
{
    (void)n;
}

int
skci_etcd_announce(skc_node *n, const char *url)
{
    (void)n, (void)url;
    return 0;
}

const char *
skci_etcd_listen(const skc_node *n)
{
    (void)n;
    return NULL;
}

int
skci_etcd_source(const skc_node *n, char *buf, size_t len)
{
    (void)n, (void)buf, (void)len;
    return -1;
}

int
skci_etcd_decode(skci_map_entry *e, const char *prefix, const char *key,
    size_t klen, const char *value, size_t vlen, char *err, size_t errlen)
{
    (void)e, (void)prefix, (void)key, (void)klen, (void)value, (void)vlen;
    snprintf(err, errlen, NO_ETCD);
    return -1;
}

void
skci_etcd_entry_free(skci_map_entry *e)
{
    (void)e;
}

#else

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>

/* A request's deadline; the watch has none. */
#define ETCD_REQ_MS 2000
#define ETCD_CONNECT_MS 1000
/* Backoff between two failed reads of the prefix. */
#define ETCD_BACKOFF_MIN_MS 100
#define ETCD_BACKOFF_MAX_MS 2000
/* How long create waits for the first read, open for its announcement. */
#define ETCD_START_WAIT_MS 3000
#define ETCD_ANNOUNCE_WAIT_MS 5000
/* A response (or a watch line) larger than this is an error. */
#define ETCD_BODY_MAX (64u * 1024 * 1024)

typedef struct ebuf {
    char *p;
    size_t len, cap;
    int over; /* more than ETCD_BODY_MAX was sent */
} ebuf;

/* A name the map has from etcd, and where. */
typedef struct known {
    int seen; /* in the last full read */
} known;

struct skci_etcd {
    skc_node *node;
    /* set at start */
    char *endpoint; /* "http(s)://host:port", no trailing '/' */
    char *prefix;   /* "/skc/prod", no trailing '/' */
    char *cafile, *certfile, *keyfile;
    char *listen;
    int ttl_s;
    pthread_t thread;
    CURLM *multi;
    struct curl_slist *headers;

    pthread_mutex_t lock; /* a leaf */
    pthread_cond_t cond;  /* with lock: synced, announced */
    int stop;             /* lock */
    int synced;           /* lock: the first read was tried */
    char *announce_url;   /* lock: set by open, NULL = nothing to announce */
    int announce_asked;   /* lock: open waits for an answer */
    int announce_done;    /* lock: the answer is there */
    int announce_rc;      /* lock */
    char announce_err[SKCI_DETAIL_MAX]; /* lock */

    /* the thread's own */
    int revoking;     /* lock: stop, but the revoke may still run */
    int64_t lease;    /* 0 = none */
    int64_t next_ka;  /* when the lease is kept alive next (ms) */
    int64_t next_ann; /* when announcing is tried again (ms) */
    int64_t rev;      /* the revision the map reflects */
    skci_strmap known;
    CURL *watch; /* the watch transfer, or NULL */
    int watch_ended;
    ebuf wbuf;
    int down_logged; /* etcd unreachable was logged */
    int backoff;     /* ms before the next read after a failure */
    int ka_failing;  /* keepalives failed in a row */
};

/* ---------------------------------------------------------------------- */
/* Base64 (etcd's JSON gateway carries keys and values in it)             */
/* ---------------------------------------------------------------------- */

static const char b64c[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *
b64_encode(const char *s, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL) {
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        v |= i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0;
        v |= i + 2 < len ? p[i + 2] : 0;
        out[o++] = b64c[(v >> 18) & 63];
        out[o++] = b64c[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64c[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64c[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int
b64_val(int c)
{
    const char *p = c != '\0' ? strchr(b64c, c) : NULL;
    return p != NULL ? (int)(p - b64c) : -1;
}

/* Decodes s into a malloc'd NUL-terminated buffer (*len bytes before the
 * NUL); NULL for bad base64 or without memory. */
static char *
b64_decode(const char *s, size_t *len)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '=') {
        n--;
    }
    char *out = malloc(n * 3 / 4 + 1);
    if (out == NULL) {
        return NULL;
    }
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

/* ---------------------------------------------------------------------- */
/* Keys and values                                                        */
/* ---------------------------------------------------------------------- */

void
skci_etcd_entry_free(skci_map_entry *e)
{
    skci_map_entry_clear(e);
}

static int
decode_group(skci_map_entry *e, const cJSON *v, char *err, size_t errlen)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, "members");
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(v, "policy");
    int n = cJSON_GetArraySize(m);
    if (!cJSON_IsArray(m) || n == 0) {
        snprintf(err, errlen, "expected \"members\": a list of node names");
        return -1;
    }
    e->policy = SKCI_GROUP_FAILOVER;
    if (pol != NULL &&
        (!cJSON_IsString(pol) ||
            skci_group_policy_parse(pol->valuestring, &e->policy) != 0)) {
        snprintf(err, errlen,
            "\"policy\" must be \"failover\", \"roundrobin\" or \"random\"");
        return -1;
    }
    if ((e->members = calloc((size_t)n, sizeof(char *))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, m)
    {
        if (!cJSON_IsString(it)) {
            snprintf(err, errlen, "a member is not a string");
            return -1;
        }
        if ((e->members[e->nmembers] = skci_strdup(it->valuestring)) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        e->nmembers++;
    }
    e->kind = SKCI_MAP_GROUP;
    return 1;
}

int
skci_etcd_decode(skci_map_entry *e, const char *prefix, const char *key,
    size_t klen, const char *value, size_t vlen, char *err, size_t errlen)
{
    static const char *const kinds[] = { "/nodes/", "/groups/" };
    memset(e, 0, sizeof(*e));
    size_t pl = strlen(prefix);
    if (klen <= pl || memcmp(key, prefix, pl) != 0) {
        return 0;
    }
    int kind = -1;
    size_t kl = 0;
    for (int i = 0; i < 2 && kind < 0; i++) {
        kl = strlen(kinds[i]);
        if (klen > pl + kl && memcmp(key + pl, kinds[i], kl) == 0) {
            kind = i;
        }
    }
    if (kind < 0) {
        return 0;
    }
    const char *name = key + pl + kl;
    size_t nl = klen - pl - kl;
    if (memchr(name, '\0', nl) != NULL || memchr(name, '/', nl) != NULL) {
        return 0; /* deeper keys are not skc's */
    }
    if ((e->name = malloc(nl + 1)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(e->name, name, nl);
    e->name[nl] = '\0';
    if (nl >= 2 && name[0] == '_' && name[1] == '_') {
        /* the map's options (__nowaiting) are each node's own */
        snprintf(err, errlen, "a name may not start with \"__\"");
        skci_etcd_entry_free(e);
        return -1;
    }
    if (value == NULL) {
        e->kind = SKCI_MAP_DOWN;
        return 1;
    }
    cJSON *v = cJSON_ParseWithLength(value, vlen);
    int rc = -1;
    if (!cJSON_IsObject(v)) {
        snprintf(err, errlen, "expected a JSON object");
    } else if (kind == 1) {
        rc = decode_group(e, v, err, errlen);
    } else {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(v, "addr");
        if (!cJSON_IsString(a) || a->valuestring[0] == '\0') {
            snprintf(err, errlen, "expected \"addr\": an address string");
        } else if ((e->value = skci_strdup(a->valuestring)) == NULL) {
            snprintf(err, errlen, "out of memory");
        } else {
            e->kind = SKCI_MAP_ADDR;
            rc = 1;
        }
    }
    cJSON_Delete(v);
    if (rc < 0) {
        skci_etcd_entry_free(e);
    }
    return rc;
}

/* ---------------------------------------------------------------------- */
/* HTTP                                                                   */
/* ---------------------------------------------------------------------- */

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    ebuf *b = arg;
    size_t n = size * nmemb;
    if (b->len + n + 1 > ETCD_BODY_MAX) {
        b->over = 1;
        return 0; /* aborts the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            return 0;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static int
stopping(skci_etcd *es)
{
    pthread_mutex_lock(&es->lock);
    int s = es->stop && !es->revoking;
    pthread_mutex_unlock(&es->lock);
    return s;
}

static CURL *
easy_new(skci_etcd *es, const char *path, const char *body, ebuf *b,
    long timeout_ms)
{
    CURL *e = curl_easy_init();
    if (e == NULL) {
        return NULL;
    }
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", es->endpoint, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, es->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ETCD_CONNECT_MS);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 5L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 2L);
    if (timeout_ms > 0) {
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    }
    if (es->cafile != NULL) {
        curl_easy_setopt(e, CURLOPT_CAINFO, es->cafile);
    }
    if (es->certfile != NULL) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, es->certfile);
    }
    if (es->keyfile != NULL) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, es->keyfile);
    }
    return e;
}

static void handle_watch_lines(skci_etcd *es);

/* Waits up to ms for the transfers, runs them, and notes the watch's end
 * (the watch's lines are applied here).  Returns the easy handle that
 * ended other than the watch, with its result in *res, or NULL. */
static CURL *
pump(skci_etcd *es, int ms, CURLcode *res)
{
    int running;
    curl_multi_poll(es->multi, NULL, 0, ms, NULL);
    curl_multi_perform(es->multi, &running);
    CURL *done = NULL;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(es->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        if (m->easy_handle == es->watch) {
            es->watch_ended = 1;
        } else {
            done = m->easy_handle;
            *res = m->data.result;
        }
    }
    if (es->watch != NULL) {
        handle_watch_lines(es);
    }
    return done;
}

/* POSTs body to path and parses the JSON answer into *out.  0, or -1
 * with why in err (etcd unreachable, an HTTP error, not JSON, stop). */
static int
request(skci_etcd *es, const char *path, const char *body, cJSON **out,
    char *err, size_t errlen)
{
    ebuf b = { 0 };
    *out = NULL;
    CURL *e = easy_new(es, path, body, &b, ETCD_REQ_MS);
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    curl_multi_add_handle(es->multi, e);
    CURLcode res = CURLE_OK;
    int64_t until = skci_now_ms() + ETCD_REQ_MS + 500;
    int ended = 0;
    while (!ended && !stopping(es) && skci_now_ms() < until) {
        ended = pump(es, 100, &res) == e;
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(es->multi, e);
    curl_easy_cleanup(e);
    int rc = -1;
    if (!ended) {
        snprintf(err, errlen, "%s%s: %s", es->endpoint, path,
            stopping(es) ? "stopped" : "no answer");
    } else if (res != CURLE_OK) {
        snprintf(err, errlen, "%s%s: %s", es->endpoint, path,
            b.over ? "answer too large" : curl_easy_strerror(res));
    } else if ((*out = cJSON_Parse(b.p ? b.p : "")) == NULL) {
        snprintf(err, errlen, "%s%s: HTTP %ld, not JSON", es->endpoint, path,
            status);
    } else if (status != 200) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(*out, "error");
        snprintf(err, errlen, "%s%s: HTTP %ld: %s", es->endpoint, path, status,
            cJSON_IsString(m) ? m->valuestring : "error");
        cJSON_Delete(*out);
        *out = NULL;
    } else {
        rc = 0;
    }
    free(b.p);
    return rc;
}

/* An int64 of etcd's JSON: a string of digits, or a number; def if
 * absent. */
static int64_t
json_i64(const cJSON *o, const char *name, int64_t def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsString(v)) {
        return strtoll(v->valuestring, NULL, 10);
    }
    if (cJSON_IsNumber(v)) {
        return (int64_t)v->valuedouble;
    }
    return def;
}

/* The string of a JSON object with one more member, each field a string
 * (keys and values are base64'd by the caller). */
static char *
json_print_free(cJSON *o)
{
    char *s = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* ---------------------------------------------------------------------- */
/* The map                                                                */
/* ---------------------------------------------------------------------- */

/* Applies l all at once; when that fails (an entry the map refuses), one
 * by one, so that one bad value never holds back the others. */
static void
list_apply(skci_etcd *es, skci_map_list *l)
{
    skc_node *n = es->node;
    char origin[300];
    snprintf(origin, sizeof(origin), "etcd %s", es->prefix);
    if (l->n == 0 || skci_map_apply_list(n, l, origin) == 0) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        skci_map_list one = { &l->v[i], 1 };
        if (skci_map_apply_list(n, &one, origin) != 0) {
            skci_node_log(n, SKC_LOG_WARN, "etcd: %s/%s/%s ignored: %s",
                es->prefix,
                l->v[i].kind == SKCI_MAP_GROUP ? "groups" : "nodes",
                l->v[i].name, skc_last_error());
        }
    }
}

/* Adds the entry a kv (a gateway JSON object) stands for to l; a
 * malformed one is logged and left out. */
static void
list_add_kv(skci_etcd *es, skci_map_list *l, const cJSON *kv, int deleted)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(kv, "key");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(kv, "value");
    if (!cJSON_IsString(k)) {
        return;
    }
    size_t klen = 0, vlen = 0;
    char *key = b64_decode(k->valuestring, &klen);
    char *val = NULL;
    if (!deleted) {
        val = cJSON_IsString(v) ? b64_decode(v->valuestring, &vlen)
                                : skci_strdup("");
    }
    char err[256] = "";
    skci_map_entry e;
    int rc = key == NULL || (!deleted && val == NULL)
        ? (snprintf(err, sizeof(err), "bad base64 from etcd"), -1)
        : skci_etcd_decode(
              &e, es->prefix, key, klen, val, vlen, err, sizeof(err));
    if (rc < 0) {
        char *clean = skci_text_clean_dup(key != NULL ? key : "?");
        skci_node_log(es->node, SKC_LOG_WARN,
            "etcd: malformed value at %s ignored: %s", clean ? clean : "?",
            err);
        free(clean);
    } else if (rc > 0) {
        skci_map_entry *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
        if (nv == NULL) {
            skci_etcd_entry_free(&e);
        } else {
            l->v = nv;
            l->v[l->n++] = e;
            known *kn = skci_strmap_get(&es->known, e.name);
            if (kn == NULL && (kn = calloc(1, sizeof(*kn))) != NULL &&
                skci_strmap_set(&es->known, e.name, kn) != 0) {
                free(kn);
                kn = NULL;
            }
            if (kn != NULL) {
                kn->seen = 1;
            }
        }
    }
    free(key);
    free(val);
}

static void
known_clear_seen(const char *name, void *val, void *arg)
{
    (void)name, (void)arg;
    ((known *)val)->seen = 0;
}

/* Names etcd had before and not in this read: down. */
static void
known_gone(const char *name, void *val, void *arg)
{
    skci_map_list *l = arg;
    if (((known *)val)->seen) {
        return;
    }
    skci_map_entry *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
    if (nv == NULL) {
        return;
    }
    l->v = nv;
    memset(&l->v[l->n], 0, sizeof(l->v[0]));
    if ((l->v[l->n].name = skci_strdup(name)) != NULL) {
        l->v[l->n++].kind = SKCI_MAP_DOWN;
    }
}

/* The prefix as a range: key "<prefix>/", range_end "<prefix>0". */
static void
range_keys(skci_etcd *es, char **key, char **end)
{
    size_t pl = strlen(es->prefix);
    char *k = malloc(pl + 2);
    if (k == NULL) {
        *key = *end = NULL;
        return;
    }
    memcpy(k, es->prefix, pl);
    k[pl] = '/';
    k[pl + 1] = '\0';
    *key = b64_encode(k, pl + 1);
    k[pl] = '/' + 1;
    *end = b64_encode(k, pl + 1);
    free(k);
}

/* Reads the whole prefix and merges it.  0 or -1 (err). */
static int
resync(skci_etcd *es, char *err, size_t errlen)
{
    char *key, *end;
    range_keys(es, &key, &end);
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "key", key ? key : "");
    cJSON_AddStringToObject(q, "range_end", end ? end : "");
    char *body = json_print_free(q);
    free(key);
    free(end);
    cJSON *r = NULL;
    int rc = body != NULL ? request(es, "/v3/kv/range", body, &r, err, errlen)
                          : (snprintf(err, errlen, "out of memory"), -1);
    free(body);
    if (rc != 0) {
        return rc;
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(r, "header");
    es->rev = json_i64(h, "revision", 0);
    skci_strmap_each(&es->known, known_clear_seen, NULL);
    skci_map_list l = { NULL, 0 };
    const cJSON *kv;
    cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(r, "kvs"))
    {
        list_add_kv(es, &l, kv, 0);
    }
    skci_strmap_each(&es->known, known_gone, &l);
    list_apply(es, &l);
    skci_map_list_free(&l);
    cJSON_Delete(r);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* The watch                                                              */
/* ---------------------------------------------------------------------- */

static void
watch_end(skci_etcd *es)
{
    if (es->watch != NULL) {
        curl_multi_remove_handle(es->multi, es->watch);
        curl_easy_cleanup(es->watch);
        es->watch = NULL;
    }
    es->wbuf.len = 0;
    es->wbuf.over = 0;
    es->watch_ended = 0;
}

static int
watch_begin(skci_etcd *es)
{
    char *key, *end;
    range_keys(es, &key, &end);
    char rev[32];
    snprintf(rev, sizeof(rev), "%lld", (long long)(es->rev + 1));
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "key", key ? key : "");
    cJSON_AddStringToObject(c, "range_end", end ? end : "");
    cJSON_AddStringToObject(c, "start_revision", rev);
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "create_request", c);
    char *body = json_print_free(q);
    free(key);
    free(end);
    if (body == NULL) {
        return -1;
    }
    es->wbuf.len = 0;
    es->watch = easy_new(es, "/v3/watch", body, &es->wbuf, 0);
    free(body);
    if (es->watch == NULL) {
        return -1;
    }
    curl_multi_add_handle(es->multi, es->watch);
    return 0;
}

/* One line of the watch stream: {"result": {"events": [...], ...}}. */
static void
watch_line(skci_etcd *es, const char *line, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(line, len);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "result");
    if (!cJSON_IsObject(r)) {
        skci_node_log(es->node, SKC_LOG_WARN,
            "etcd: the watch of %s answered something else than a result; watching again",
            es->prefix);
        es->watch_ended = 1;
        cJSON_Delete(j);
        return;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "canceled"))) {
        skci_node_log(es->node, SKC_LOG_WARN,
            "etcd: the watch of %s was canceled (compacted at %lld); reading it again",
            es->prefix, (long long)json_i64(r, "compact_revision", 0));
        es->watch_ended = 1;
        cJSON_Delete(j);
        return;
    }
    es->backoff = ETCD_BACKOFF_MIN_MS; /* the watch works */
    skci_map_list l = { NULL, 0 };
    const cJSON *ev;
    cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(r, "events"))
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "type");
        const cJSON *kv = cJSON_GetObjectItemCaseSensitive(ev, "kv");
        int del = cJSON_IsString(t) && strcmp(t->valuestring, "DELETE") == 0;
        int64_t mr = json_i64(kv, "mod_revision", 0);
        es->rev = mr > es->rev ? mr : es->rev;
        list_add_kv(es, &l, kv, del);
    }
    list_apply(es, &l);
    skci_map_list_free(&l);
    cJSON_Delete(j);
}

static void
handle_watch_lines(skci_etcd *es)
{
    ebuf *b = &es->wbuf;
    size_t start = 0;
    char *nl;
    while (!es->watch_ended && start < b->len &&
        (nl = memchr(b->p + start, '\n', b->len - start)) != NULL) {
        size_t len = (size_t)(nl - (b->p + start));
        if (len > 0) {
            watch_line(es, b->p + start, len);
        }
        start += len + 1;
    }
    if (start > 0) {
        memmove(b->p, b->p + start, b->len - start);
        b->len -= start;
    }
}

/* ---------------------------------------------------------------------- */
/* The lease and the announcement                                         */
/* ---------------------------------------------------------------------- */

static void
lease_revoke(skci_etcd *es, int64_t id)
{
    char ids[32], err[SKCI_DETAIL_MAX] = "";
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "ID", ids);
    char *body = json_print_free(q);
    cJSON *r = NULL;
    if (body != NULL &&
        request(es, "/v3/lease/revoke", body, &r, err, sizeof(err)) != 0) {
        skci_node_log(es->node, SKC_LOG_WARN,
            "etcd: cannot revoke lease %s: %s", ids, err);
    }
    cJSON_Delete(r);
    free(body);
}

/* Grants a lease and puts <prefix>/nodes/<name> if nobody has it.
 * 0, SKC_EEXIST (err: who has it) or -1 (etcd did not answer: err). */
static int
announce(skci_etcd *es, const char *url, char *err, size_t errlen)
{
    skc_node *n = es->node;
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", es->ttl_s);
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "TTL", ttl);
    char *body = json_print_free(q);
    cJSON *r = NULL;
    if (body == NULL ||
        request(es, "/v3/lease/grant", body, &r, err, errlen) != 0) {
        free(body);
        return -1;
    }
    free(body);
    int64_t id = json_i64(r, "ID", 0);
    cJSON_Delete(r);
    if (id == 0) {
        snprintf(err, errlen, "etcd granted no lease");
        return -1;
    }
    char ids[32], keyt[SKCI_NAME_MAX + 600];
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    snprintf(keyt, sizeof(keyt), "%s/nodes/%s", es->prefix, n->name);
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "addr", url);
    cJSON_AddStringToObject(v, "version", SKC_VERSION_STRING);
    char *vs = json_print_free(v);
    char *key = b64_encode(keyt, strlen(keyt));
    char *val = vs != NULL ? b64_encode(vs, strlen(vs)) : NULL;
    free(vs);
    cJSON *cmp = cJSON_CreateObject();
    cJSON_AddStringToObject(cmp, "key", key ? key : "");
    cJSON_AddStringToObject(cmp, "result", "EQUAL");
    cJSON_AddStringToObject(cmp, "target", "CREATE");
    cJSON_AddStringToObject(cmp, "create_revision", "0");
    cJSON *put = cJSON_CreateObject();
    cJSON_AddStringToObject(put, "key", key ? key : "");
    cJSON_AddStringToObject(put, "value", val ? val : "");
    cJSON_AddStringToObject(put, "lease", ids);
    cJSON *get = cJSON_CreateObject();
    cJSON_AddStringToObject(get, "key", key ? key : "");
    q = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(q, "compare"), cmp);
    cJSON *succ = cJSON_CreateObject();
    cJSON_AddItemToObject(succ, "request_put", put);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(q, "success"), succ);
    cJSON *fail = cJSON_CreateObject();
    cJSON_AddItemToObject(fail, "request_range", get);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(q, "failure"), fail);
    body = json_print_free(q);
    free(key);
    free(val);
    int rc = body != NULL && key != NULL
        ? request(es, "/v3/kv/txn", body, &r, err, errlen)
        : (snprintf(err, errlen, "out of memory"), -1);
    free(body);
    if (rc != 0) {
        lease_revoke(es, id);
        return -1;
    }
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "succeeded"))) {
        /* Who has it: responses[0].response_range.kvs[0].value */
        const cJSON *rr = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(
                cJSON_GetObjectItemCaseSensitive(r, "responses"), 0),
            "response_range");
        const cJSON *kv =
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rr, "kvs"), 0);
        const cJSON *hv = cJSON_GetObjectItemCaseSensitive(kv, "value");
        size_t hl = 0;
        char *had =
            cJSON_IsString(hv) ? b64_decode(hv->valuestring, &hl) : NULL;
        char *clean = skci_text_clean_dup(had ? had : "?");
        snprintf(err, errlen,
            "etcd: node name '%s' is already announced by a live node (%s = %s); stop that node or wait for its lease to expire",
            n->name, keyt, clean ? clean : "?");
        free(clean);
        free(had);
        cJSON_Delete(r);
        lease_revoke(es, id);
        return SKC_EEXIST;
    }
    cJSON_Delete(r);
    es->lease = id;
    es->next_ka = skci_now_ms() + es->ttl_s * 1000 / 3;
    skci_node_log(n, SKC_LOG_INFO,
        "etcd: announced %s = %s (lease %s, TTL %d s)", keyt, url, ids,
        es->ttl_s);
    return 0;
}

/* Announces what open asked for, and tells open. */
static void
announce_step(skci_etcd *es)
{
    pthread_mutex_lock(&es->lock);
    char *url = skci_strdup(es->announce_url);
    int asked = es->announce_asked;
    pthread_mutex_unlock(&es->lock);
    if (url == NULL || es->lease != 0 || skci_now_ms() < es->next_ann) {
        free(url);
        return;
    }
    char err[SKCI_DETAIL_MAX] = "";
    int rc = announce(es, url, err, sizeof(err));
    if (rc != 0) {
        es->next_ann = skci_now_ms() + ETCD_BACKOFF_MAX_MS;
        if (!asked) {
            skci_node_log(es->node, SKC_LOG_WARN,
                "etcd: cannot announce %s yet: %s", url, err);
        }
    }
    free(url);
    if (!asked) {
        return;
    }
    pthread_mutex_lock(&es->lock);
    es->announce_asked = 0;
    es->announce_done = 1;
    es->announce_rc = rc;
    snprintf(es->announce_err, sizeof(es->announce_err), "%s", err);
    if (rc == SKC_EEXIST) {
        free(es->announce_url); /* refused: nothing to announce */
        es->announce_url = NULL;
    }
    pthread_cond_broadcast(&es->cond);
    pthread_mutex_unlock(&es->lock);
}

static void
keepalive_step(skci_etcd *es)
{
    if (es->lease == 0 || skci_now_ms() < es->next_ka) {
        return;
    }
    es->next_ka = skci_now_ms() + es->ttl_s * 1000 / 3;
    char ids[32], err[SKCI_DETAIL_MAX] = "";
    snprintf(ids, sizeof(ids), "%lld", (long long)es->lease);
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "ID", ids);
    char *body = json_print_free(q);
    cJSON *r = NULL;
    int rc = body != NULL
        ? request(es, "/v3/lease/keepalive", body, &r, err, sizeof(err))
        : -1;
    free(body);
    /* The answer is a stream of one message: {"result": {..., "TTL"}}, or
     * {"error": {...}} (etcd busy, say), which says nothing of the lease. */
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(r, "result");
    if (rc == 0 && !cJSON_IsObject(res)) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        snprintf(err, sizeof(err), "%s",
            cJSON_IsString(m) ? m->valuestring : "an answer without a result");
        rc = -1;
    }
    if (rc == 0 && es->ka_failing > 0) {
        skci_node_log(es->node, SKC_LOG_INFO,
            "etcd: lease %s kept alive again (after %d failed keepalives)",
            ids, es->ka_failing);
        es->ka_failing = 0;
    }
    if (rc == 0 && json_i64(res, "TTL", 0) <= 0) {
        /* etcd no longer has it (its key went with it) */
        skci_node_log(es->node, SKC_LOG_WARN,
            "etcd: lease %s expired; announcing again", ids);
        es->lease = 0;
        es->next_ann = 0;
    } else if (rc != 0) {
        if (es->ka_failing++ == 0) {
            skci_node_log(es->node, SKC_LOG_WARN,
                "etcd: keepalive of lease %s: %s; trying again", ids, err);
        }
        /* Soon again: the lease has a TTL's worth of time left at most. */
        es->next_ka = skci_now_ms() + ETCD_BACKOFF_MIN_MS * 2;
        /* The watch may be as cut off as this request, with no sign of it
         * for a long while (TCP): read and watch again. */
        es->watch_ended = es->watch != NULL;
    }
    cJSON_Delete(r);
}

/* ---------------------------------------------------------------------- */
/* The thread                                                             */
/* ---------------------------------------------------------------------- */

static void
set_synced(skci_etcd *es)
{
    pthread_mutex_lock(&es->lock);
    es->synced = 1;
    pthread_cond_broadcast(&es->cond);
    pthread_mutex_unlock(&es->lock);
}

/* The wait before the next read of the prefix; the one after is longer,
 * until a watch works again (watch_line). */
static int
backoff_next(skci_etcd *es)
{
    int b = es->backoff;
    es->backoff = b * 2 > ETCD_BACKOFF_MAX_MS ? ETCD_BACKOFF_MAX_MS : b * 2;
    return b;
}

static void *
etcd_main(void *arg)
{
    skci_etcd *es = arg;
    int64_t next_read = 0;
    while (!stopping(es)) {
        if (es->watch != NULL && es->watch_ended) {
            skci_node_log(es->node, SKC_LOG_WARN,
                "etcd: the watch of %s ended; reading it again", es->prefix);
            watch_end(es);
            next_read = skci_now_ms() + backoff_next(es);
        }
        if (es->watch == NULL && skci_now_ms() >= next_read) {
            char err[SKCI_DETAIL_MAX] = "";
            if (resync(es, err, sizeof(err)) == 0 && watch_begin(es) == 0) {
                if (es->down_logged) {
                    skci_node_log(es->node, SKC_LOG_INFO,
                        "etcd: %s answers again; watching %s from revision %lld",
                        es->endpoint, es->prefix, (long long)es->rev + 1);
                }
                es->down_logged = 0;
            } else if (!stopping(es)) {
                if (!es->down_logged) {
                    skci_node_log(es->node, SKC_LOG_WARN,
                        "etcd: cannot read %s: %s; keeping the map as it is and trying again",
                        es->prefix, err);
                }
                es->down_logged = 1;
                next_read = skci_now_ms() + backoff_next(es);
            }
            set_synced(es);
        }
        announce_step(es);
        keepalive_step(es);
        int64_t now = skci_now_ms();
        int64_t wake = es->watch == NULL ? next_read : now + 1000;
        if (es->lease != 0 && es->next_ka < wake) {
            wake = es->next_ka;
        }
        int ms = wake - now < 1 ? 1
            : wake - now > 1000 ? 1000
                                : (int)(wake - now);
        CURLcode res;
        pump(es, ms, &res);
    }
    watch_end(es);
    pthread_mutex_lock(&es->lock);
    es->revoking = 1; /* the revoke below still runs */
    pthread_mutex_unlock(&es->lock);
    if (es->lease != 0) {
        lease_revoke(es, es->lease); /* others see this node down now */
        es->lease = 0;
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Start, stop, announce                                                  */
/* ---------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void
curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void
known_free(const char *name, void *val, void *arg)
{
    (void)name, (void)arg;
    free(val);
}

static void
etcd_free(skci_etcd *es)
{
    if (es->multi != NULL) {
        curl_multi_cleanup(es->multi);
    }
    curl_slist_free_all(es->headers);
    skci_strmap_each(&es->known, known_free, NULL);
    skci_strmap_fini(&es->known);
    free(es->wbuf.p);
    free(es->endpoint);
    free(es->prefix);
    free(es->cafile);
    free(es->certfile);
    free(es->keyfile);
    free(es->listen);
    free(es->announce_url);
    pthread_mutex_destroy(&es->lock);
    pthread_cond_destroy(&es->cond);
    free(es);
}

/* A prefix without its trailing '/' (and with a leading one). */
static char *
prefix_norm(const char *p, size_t len)
{
    while (len > 0 && p[len - 1] == '/') {
        len--;
    }
    int lead = len == 0 || p[0] != '/';
    char *s = malloc(len + 2);
    if (s != NULL) {
        snprintf(s, len + 2, "%s%.*s", lead ? "/" : "", (int)len, p);
    }
    return s;
}

/* Endpoint and prefix from the options: "http(s)://host:port[/]" plus
 * etcd_prefix, or "etcd://host:port/prefix".  0 or SKC_EINVAL. */
static int
parse_endpoint(skci_etcd *es, const skc_node_opts *o)
{
    const char *e = o->etcd;
    const char *path = NULL;
    size_t hl;
    if (strncmp(e, "etcd://", 7) == 0) {
        const char *host = e + 7;
        path = strchr(host, '/');
        hl = path != NULL ? (size_t)(path - host) : strlen(host);
        if (hl == 0) {
            return skci_error(SKC_EINVAL, "etcd '%s': no host:port", e);
        }
        if ((es->endpoint = malloc(hl + 8)) != NULL) {
            snprintf(es->endpoint, hl + 8, "http://%.*s", (int)hl, host);
        }
    } else if (strncmp(e, "http://", 7) == 0 ||
        strncmp(e, "https://", 8) == 0) {
        hl = strlen(e);
        while (hl > 0 && e[hl - 1] == '/') {
            hl--;
        }
        if ((es->endpoint = malloc(hl + 1)) != NULL) {
            snprintf(es->endpoint, hl + 1, "%.*s", (int)hl, e);
        }
    } else {
        return skci_error(SKC_EINVAL,
            "etcd '%s': expected http://host:port, https://host:port or etcd://host:port/prefix",
            e);
    }
    if (o->etcd_prefix != NULL) {
        es->prefix = prefix_norm(o->etcd_prefix, strlen(o->etcd_prefix));
    } else if (path != NULL && strlen(path) > 1) {
        es->prefix = prefix_norm(path, strlen(path));
    } else {
        es->prefix = skci_strdup(ETCD_DEFAULT_PREFIX);
    }
    if (es->endpoint == NULL || es->prefix == NULL) {
        return skci_error(SKC_ENOMEM, "etcd");
    }
    if (strcmp(es->prefix, "/") == 0 || es->prefix[1] == '\0') {
        return skci_error(SKC_EINVAL, "etcd: the prefix is empty");
    }
    return 0;
}

int
skci_etcd_start(skc_node *n, const skc_node_opts *o)
{
    pthread_once(&curl_once, curl_init_once);
    skci_etcd *es = calloc(1, sizeof(*es));
    if (es == NULL) {
        return skci_error(SKC_ENOMEM, "etcd");
    }
    es->node = n;
    pthread_mutex_init(&es->lock, NULL);
    skci_cond_init_mono(&es->cond);
    skci_strmap_init(&es->known);
    es->ttl_s = o->etcd_ttl_s > 0 ? o->etcd_ttl_s : ETCD_DEFAULT_TTL_S;
    es->backoff = ETCD_BACKOFF_MIN_MS;
    int rc = parse_endpoint(es, o);
    if (rc != 0) {
        etcd_free(es);
        return rc;
    }
    es->cafile = skci_strdup(o->etcd_cafile);
    es->certfile = skci_strdup(o->etcd_certfile);
    es->keyfile = skci_strdup(o->etcd_keyfile);
    es->listen =
        skci_strdup(o->etcd_listen ? o->etcd_listen : ETCD_DEFAULT_LISTEN);
    es->headers = curl_slist_append(NULL, "Content-Type: application/json");
    es->multi = curl_multi_init();
    if (es->listen == NULL || es->headers == NULL || es->multi == NULL ||
        (o->etcd_cafile && !es->cafile) ||
        (o->etcd_certfile && !es->certfile) ||
        (o->etcd_keyfile && !es->keyfile)) {
        etcd_free(es);
        return skci_error(SKC_ENOMEM, "etcd");
    }
    if (pthread_create(&es->thread, NULL, etcd_main, es) != 0) {
        etcd_free(es);
        return skci_error(SKC_ENOMEM, "cannot start the etcd thread");
    }
    n->etcd = es;
    skci_node_log(n, SKC_LOG_INFO, "cluster map: etcd %s prefix %s",
        es->endpoint, es->prefix);
    pthread_mutex_lock(&es->lock);
    int64_t until = skci_now_ms() + ETCD_START_WAIT_MS;
    while (!es->synced && skci_now_ms() < until) {
        skci_cond_wait_until(&es->cond, &es->lock, until);
    }
    pthread_mutex_unlock(&es->lock);
    return 0;
}

void
skci_etcd_stop(skc_node *n)
{
    skci_etcd *es = n->etcd;
    if (es == NULL) {
        return;
    }
    pthread_mutex_lock(&es->lock);
    es->stop = 1;
    pthread_mutex_unlock(&es->lock);
    curl_multi_wakeup(es->multi);
    pthread_join(es->thread, NULL);
    n->etcd = NULL;
    etcd_free(es);
}

int
skci_etcd_announce(skc_node *n, const char *url)
{
    skci_etcd *es = n->etcd;
    if (es == NULL) {
        return 0;
    }
    if (n->name[0] == '\0') {
        return skci_error(SKC_EINVAL,
            "etcd: a node that listens must have a name to announce (skc_node_opts.name, or open(name))");
    }
    pthread_mutex_lock(&es->lock);
    if (es->announce_url != NULL) {
        pthread_mutex_unlock(&es->lock);
        return 0; /* the first listener is the one announced */
    }
    es->announce_url = skci_strdup(url);
    es->announce_asked = 1;
    es->announce_done = 0;
    pthread_mutex_unlock(&es->lock);
    curl_multi_wakeup(es->multi);
    pthread_mutex_lock(&es->lock);
    int64_t until = skci_now_ms() + ETCD_ANNOUNCE_WAIT_MS;
    while (!es->announce_done && skci_now_ms() < until) {
        skci_cond_wait_until(&es->cond, &es->lock, until);
    }
    int rc = es->announce_done ? es->announce_rc : -1;
    char err[SKCI_DETAIL_MAX] = "";
    snprintf(err, sizeof(err), "%s",
        es->announce_done ? es->announce_err : "etcd did not answer in time");
    es->announce_asked = 0;
    pthread_mutex_unlock(&es->lock);
    if (rc == SKC_EEXIST) {
        return skci_error(SKC_EEXIST, "%s", err);
    }
    if (rc != 0) {
        skci_node_log(n, SKC_LOG_WARN,
            "etcd: %s not announced yet (%s); trying again in the background",
            url, err);
    }
    return 0;
}

const char *
skci_etcd_listen(const skc_node *n)
{
    return n->etcd != NULL ? n->etcd->listen : NULL;
}

int
skci_etcd_source(const skc_node *n, char *buf, size_t len)
{
    if (n->etcd == NULL) {
        return -1;
    }
    snprintf(
        buf, len, "etcd %s prefix %s", n->etcd->endpoint, n->etcd->prefix);
    return 0;
}

#endif
