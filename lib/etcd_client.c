/* etcd_client.c -- an etcd v3 client over etcd's HTTP/JSON gateway, with
 * libcurl's multi interface and cJSON (etcd_client.h).
 *
 * Every transfer runs in one multi handle, so that a wakeup from another
 * thread ends a wait at once, and so that the watch (a long POST whose
 * answer is a stream of JSON lines) runs on while a request waits for its
 * answer: the watch's complete lines are handed to its callbacks from
 * whichever of the two pumps the multi.  The gateway carries keys and
 * values in base64.  Compiled only with etcd support.
 */
#include "etcd_client.h"

#include "util.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A request's deadline; the watch has none. */
#define ETCD_REQ_MS 2000
#define ETCD_CONNECT_MS 1000
/* A response (or a watch line) larger than this is an error. */
#define ETCD_BODY_MAX (64u * 1024 * 1024)

typedef struct ebuf {
    char *p;
    size_t len, cap;
    int over; /* more than ETCD_BODY_MAX was sent */
} ebuf;

struct skci_etcd_client {
    char *endpoint; /* "http(s)://host:port", no trailing '/' */
    char *cafile, *certfile, *keyfile;
    CURLM *multi;
    struct curl_slist *headers;
    int (*stopped)(void *arg);
    void *stopped_arg;

    CURL *watch; /* the watch transfer, or NULL */
    int watch_ended;
    ebuf wbuf;
    skci_etcd_kv_fn watch_kv;
    skci_etcd_watch_fn watch_msg;
    void *watch_arg;
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
/* JSON                                                                   */
/* ---------------------------------------------------------------------- */

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

/* The text of o, which is freed; NULL without memory. */
static char *
json_print_free(cJSON *o)
{
    char *s = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* A request's body: {"<name>": "<value>"}; NULL without memory. */
static char *
json_one(const char *name, const char *value)
{
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, name, value);
    return json_print_free(q);
}

/* The keys that start with key as a range, base64'd for the gateway:
 * *begin = key, *end = key cut after its last byte below 0xff, which is
 * made one higher ("\0", every key, if there is none), as etcd's own
 * clients do.  NULL without memory. */
static void
prefix_range(const char *key, char **begin, char **end)
{
    size_t n = strlen(key);
    char *k = skci_strdup(key);
    if (k == NULL) {
        *begin = *end = NULL;
        return;
    }
    *begin = b64_encode(k, n);
    while (n > 0 && (unsigned char)k[n - 1] == 0xff) {
        n--;
    }
    if (n > 0) {
        k[n - 1]++;
    } else {
        k[0] = '\0';
    }
    *end = b64_encode(k, n > 0 ? n : 1);
    free(k);
}

/* The b64 key and value of a gateway kv into kv (pointers to malloc'd
 * copies, freed by kv_fini).  0, or -1 when the key is not a string. */
static int
kv_init(skci_etcd_kv *kv, const cJSON *o, int deleted)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "key");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
    memset(kv, 0, sizeof(*kv));
    if (!cJSON_IsString(k)) {
        return -1;
    }
    kv->deleted = deleted;
    kv->key = b64_decode(k->valuestring, &kv->klen);
    if (!deleted) {
        kv->value = cJSON_IsString(v) ? b64_decode(v->valuestring, &kv->vlen)
                                      : skci_strdup("");
    }
    return 0;
}

static void
kv_fini(skci_etcd_kv *kv)
{
    free((char *)kv->key);
    free((char *)kv->value);
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

static CURL *
easy_new(skci_etcd_client *c, const char *path, const char *body, ebuf *b,
    long timeout_ms)
{
    CURL *e = curl_easy_init();
    if (e == NULL) {
        return NULL;
    }
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", c->endpoint, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
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
    if (c->cafile != NULL) {
        curl_easy_setopt(e, CURLOPT_CAINFO, c->cafile);
    }
    if (c->certfile != NULL) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, c->certfile);
    }
    if (c->keyfile != NULL) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, c->keyfile);
    }
    return e;
}

static void handle_watch_lines(skci_etcd_client *c);

/* Waits up to ms for the transfers, runs them, and notes the watch's end
 * (the watch's lines are handed on here).  Returns the easy handle that
 * ended other than the watch, with its result in *res, or NULL. */
static CURL *
pump(skci_etcd_client *c, int ms, CURLcode *res)
{
    int running;
    curl_multi_poll(c->multi, NULL, 0, ms, NULL);
    curl_multi_perform(c->multi, &running);
    CURL *done = NULL;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        if (m->easy_handle == c->watch) {
            c->watch_ended = 1;
        } else {
            done = m->easy_handle;
            *res = m->data.result;
        }
    }
    if (c->watch != NULL) {
        handle_watch_lines(c);
    }
    return done;
}

static int
stopped(skci_etcd_client *c)
{
    return c->stopped(c->stopped_arg);
}

/* POSTs body to path and parses the JSON answer into *out.  0, or -1
 * with why in err (etcd unreachable, an HTTP error, not JSON, stop). */
static int
request(skci_etcd_client *c, const char *path, const char *body, cJSON **out,
    char *err, size_t errlen)
{
    ebuf b = { 0 };
    *out = NULL;
    CURL *e = easy_new(c, path, body, &b, ETCD_REQ_MS);
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    curl_multi_add_handle(c->multi, e);
    CURLcode res = CURLE_OK;
    int64_t until = skci_now_ms() + ETCD_REQ_MS + 500;
    int ended = 0;
    while (!ended && !stopped(c) && skci_now_ms() < until) {
        ended = pump(c, 100, &res) == e;
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(c->multi, e);
    curl_easy_cleanup(e);
    int rc = -1;
    if (!ended) {
        snprintf(err, errlen, "%s%s: %s", c->endpoint, path,
            stopped(c) ? "stopped" : "no answer");
    } else if (res != CURLE_OK) {
        snprintf(err, errlen, "%s%s: %s", c->endpoint, path,
            b.over ? "answer too large" : curl_easy_strerror(res));
    } else if ((*out = cJSON_Parse(b.p ? b.p : "")) == NULL) {
        snprintf(err, errlen, "%s%s: HTTP %ld, not JSON", c->endpoint, path,
            status);
    } else if (status != 200) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(*out, "error");
        snprintf(err, errlen, "%s%s: HTTP %ld: %s", c->endpoint, path, status,
            cJSON_IsString(m) ? m->valuestring : "error");
        cJSON_Delete(*out);
        *out = NULL;
    } else {
        rc = 0;
    }
    free(b.p);
    return rc;
}

/* request() with a body that may be NULL (out of memory); frees it. */
static int
request_free(skci_etcd_client *c, const char *path, char *body, cJSON **out,
    char *err, size_t errlen)
{
    int rc = body != NULL ? request(c, path, body, out, err, errlen)
                          : (snprintf(err, errlen, "out of memory"), -1);
    free(body);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* The client                                                             */
/* ---------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void
curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
skci_etcd_client_new(skci_etcd_client **out, const char *endpoint,
    const char *cafile, const char *certfile, const char *keyfile,
    int (*stopped_fn)(void *arg), void *arg)
{
    pthread_once(&curl_once, curl_init_once);
    skci_etcd_client *c = calloc(1, sizeof(*c));
    *out = NULL;
    if (c == NULL) {
        return -1;
    }
    c->stopped = stopped_fn;
    c->stopped_arg = arg;
    c->endpoint = skci_strdup(endpoint);
    c->cafile = skci_strdup(cafile);
    c->certfile = skci_strdup(certfile);
    c->keyfile = skci_strdup(keyfile);
    c->headers = curl_slist_append(NULL, "Content-Type: application/json");
    c->multi = curl_multi_init();
    if (c->endpoint == NULL || c->headers == NULL || c->multi == NULL ||
        (cafile && !c->cafile) || (certfile && !c->certfile) ||
        (keyfile && !c->keyfile)) {
        skci_etcd_client_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void
skci_etcd_client_free(skci_etcd_client *c)
{
    if (c == NULL) {
        return;
    }
    skci_etcd_client_unwatch(c);
    if (c->multi != NULL) {
        curl_multi_cleanup(c->multi);
    }
    curl_slist_free_all(c->headers);
    free(c->wbuf.p);
    free(c->endpoint);
    free(c->cafile);
    free(c->certfile);
    free(c->keyfile);
    free(c);
}

void
skci_etcd_client_wakeup(skci_etcd_client *c)
{
    curl_multi_wakeup(c->multi);
}

void
skci_etcd_client_poll(skci_etcd_client *c, int ms)
{
    CURLcode res;
    pump(c, ms, &res);
}

int
skci_etcd_client_range(skci_etcd_client *c, const char *key, int64_t *rev,
    skci_etcd_kv_fn fn, void *arg, char *err, size_t errlen)
{
    char *begin, *end;
    prefix_range(key, &begin, &end);
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "key", begin ? begin : "");
    cJSON_AddStringToObject(q, "range_end", end ? end : "");
    free(begin);
    free(end);
    cJSON *r = NULL;
    int rc =
        request_free(c, "/v3/kv/range", json_print_free(q), &r, err, errlen);
    if (rc != 0) {
        return rc;
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(r, "header");
    *rev = json_i64(h, "revision", 0);
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(r, "kvs"))
    {
        skci_etcd_kv kv;
        if (kv_init(&kv, o, 0) == 0) {
            fn(arg, &kv);
            kv_fini(&kv);
        }
    }
    cJSON_Delete(r);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* The watch                                                              */
/* ---------------------------------------------------------------------- */

void
skci_etcd_client_unwatch(skci_etcd_client *c)
{
    if (c->watch != NULL) {
        curl_multi_remove_handle(c->multi, c->watch);
        curl_easy_cleanup(c->watch);
        c->watch = NULL;
    }
    c->wbuf.len = 0;
    c->wbuf.over = 0;
    c->watch_ended = 0;
}

int
skci_etcd_client_watch(skci_etcd_client *c, const char *key, int64_t start_rev,
    skci_etcd_kv_fn on_kv, skci_etcd_watch_fn on_msg, void *arg)
{
    char *begin, *end;
    prefix_range(key, &begin, &end);
    char rev[32];
    snprintf(rev, sizeof(rev), "%lld", (long long)start_rev);
    cJSON *w = cJSON_CreateObject();
    cJSON_AddStringToObject(w, "key", begin ? begin : "");
    cJSON_AddStringToObject(w, "range_end", end ? end : "");
    cJSON_AddStringToObject(w, "start_revision", rev);
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "create_request", w);
    char *body = json_print_free(q);
    free(begin);
    free(end);
    if (body == NULL) {
        return -1;
    }
    c->watch_kv = on_kv;
    c->watch_msg = on_msg;
    c->watch_arg = arg;
    c->wbuf.len = 0;
    c->watch = easy_new(c, "/v3/watch", body, &c->wbuf, 0);
    free(body);
    if (c->watch == NULL) {
        return -1;
    }
    curl_multi_add_handle(c->multi, c->watch);
    return 0;
}

int
skci_etcd_client_watching(const skci_etcd_client *c)
{
    return c->watch != NULL;
}

int
skci_etcd_client_watch_ended(const skci_etcd_client *c)
{
    return c->watch != NULL && c->watch_ended;
}

void
skci_etcd_client_watch_lost(skci_etcd_client *c)
{
    c->watch_ended = c->watch != NULL;
}

/* One line of the watch stream: {"result": {"events": [...], ...}}. */
static void
watch_line(skci_etcd_client *c, const char *line, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(line, len);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "result");
    if (!cJSON_IsObject(r)) {
        c->watch_ended = 1;
        c->watch_msg(c->watch_arg, SKCI_ETCD_WATCH_BAD, 0);
        cJSON_Delete(j);
        return;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "canceled"))) {
        c->watch_ended = 1;
        c->watch_msg(c->watch_arg, SKCI_ETCD_WATCH_CANCELED,
            json_i64(r, "compact_revision", 0));
        cJSON_Delete(j);
        return;
    }
    int64_t rev = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(r, "events"))
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "type");
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(ev, "kv");
        int del = cJSON_IsString(t) && strcmp(t->valuestring, "DELETE") == 0;
        int64_t mr = json_i64(o, "mod_revision", 0);
        rev = mr > rev ? mr : rev;
        skci_etcd_kv kv;
        if (kv_init(&kv, o, del) == 0) {
            c->watch_kv(c->watch_arg, &kv);
            kv_fini(&kv);
        }
    }
    c->watch_msg(c->watch_arg, SKCI_ETCD_WATCH_EVENTS, rev);
    cJSON_Delete(j);
}

static void
handle_watch_lines(skci_etcd_client *c)
{
    ebuf *b = &c->wbuf;
    size_t start = 0;
    char *nl;
    while (!c->watch_ended && start < b->len &&
        (nl = memchr(b->p + start, '\n', b->len - start)) != NULL) {
        size_t len = (size_t)(nl - (b->p + start));
        if (len > 0) {
            watch_line(c, b->p + start, len);
        }
        start += len + 1;
    }
    if (start > 0) {
        memmove(b->p, b->p + start, b->len - start);
        b->len -= start;
    }
}

/* ---------------------------------------------------------------------- */
/* Leases and the put-if-absent                                           */
/* ---------------------------------------------------------------------- */

int
skci_etcd_client_lease_grant(
    skci_etcd_client *c, int ttl_s, int64_t *id, char *err, size_t errlen)
{
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", ttl_s);
    cJSON *r = NULL;
    if (request_free(c, "/v3/lease/grant", json_one("TTL", ttl), &r, err,
            errlen) != 0) {
        return -1;
    }
    *id = json_i64(r, "ID", 0);
    cJSON_Delete(r);
    if (*id == 0) {
        snprintf(err, errlen, "etcd granted no lease");
        return -1;
    }
    return 0;
}

int
skci_etcd_client_lease_keepalive(
    skci_etcd_client *c, int64_t id, int64_t *ttl, char *err, size_t errlen)
{
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    cJSON *r = NULL;
    int rc = request_free(
        c, "/v3/lease/keepalive", json_one("ID", ids), &r, err, errlen);
    /* The answer is a stream of one message: {"result": {..., "TTL"}}, or
     * {"error": {...}} (etcd busy, say), which says nothing of the lease. */
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(r, "result");
    if (rc == 0 && !cJSON_IsObject(res)) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        snprintf(err, errlen, "%s",
            cJSON_IsString(m) ? m->valuestring : "an answer without a result");
        rc = -1;
    }
    if (rc == 0) {
        *ttl = json_i64(res, "TTL", 0);
    }
    cJSON_Delete(r);
    return rc;
}

int
skci_etcd_client_lease_revoke(
    skci_etcd_client *c, int64_t id, char *err, size_t errlen)
{
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    cJSON *r = NULL;
    int rc = request_free(
        c, "/v3/lease/revoke", json_one("ID", ids), &r, err, errlen);
    cJSON_Delete(r);
    return rc;
}

int
skci_etcd_client_put_new(skci_etcd_client *c, const char *key,
    const char *value, int64_t lease, char **had, char *err, size_t errlen)
{
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", (long long)lease);
    char *k = b64_encode(key, strlen(key));
    char *v = b64_encode(value, strlen(value));
    cJSON *cmp = cJSON_CreateObject();
    cJSON_AddStringToObject(cmp, "key", k ? k : "");
    cJSON_AddStringToObject(cmp, "result", "EQUAL");
    cJSON_AddStringToObject(cmp, "target", "CREATE");
    cJSON_AddStringToObject(cmp, "create_revision", "0");
    cJSON *put = cJSON_CreateObject();
    cJSON_AddStringToObject(put, "key", k ? k : "");
    cJSON_AddStringToObject(put, "value", v ? v : "");
    cJSON_AddStringToObject(put, "lease", ids);
    cJSON *get = cJSON_CreateObject();
    cJSON_AddStringToObject(get, "key", k ? k : "");
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(q, "compare"), cmp);
    cJSON *succ = cJSON_CreateObject();
    cJSON_AddItemToObject(succ, "request_put", put);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(q, "success"), succ);
    cJSON *fail = cJSON_CreateObject();
    cJSON_AddItemToObject(fail, "request_range", get);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(q, "failure"), fail);
    char *body = json_print_free(q);
    if (k == NULL || v == NULL) {
        free(body);
        body = NULL; /* out of memory */
    }
    free(k);
    free(v);
    cJSON *r = NULL;
    *had = NULL;
    if (request_free(c, "/v3/kv/txn", body, &r, err, errlen) != 0) {
        return -1;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "succeeded"))) {
        cJSON_Delete(r);
        return 0;
    }
    /* Who has it: responses[0].response_range.kvs[0].value */
    const cJSON *rr = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(
            cJSON_GetObjectItemCaseSensitive(r, "responses"), 0),
        "response_range");
    const cJSON *kv =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rr, "kvs"), 0);
    const cJSON *hv = cJSON_GetObjectItemCaseSensitive(kv, "value");
    size_t hl = 0;
    *had = cJSON_IsString(hv) ? b64_decode(hv->valuestring, &hl) : NULL;
    cJSON_Delete(r);
    return 1;
}
