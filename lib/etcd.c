/* etcd.c -- the cluster map kept in etcd v3: the node announces itself
 * under a prefix with a lease, and a thread watches the prefix and merges
 * every change into the map (docs/OPERATIONS.md, "Running skc with etcd").
 *
 * The thread talks to etcd through etcd_client.c (its HTTP/JSON gateway,
 * with libcurl's multi interface, so that stop wakes it at once): one
 * range read gives the map and a revision, a watch from revision + 1
 * every change after it.  What the keys and values mean is etcd_keys.c's.
 * A broken watch is re-read and re-watched with backoff while the node
 * keeps serving with the map it has.  Changes are ordinary merges
 * (mapapply.c).  etcd->lock guards the fields marked so; it is a leaf,
 * and no skc lock is held while the thread waits on etcd.  Without libcurl
 * and cJSON at build time, the option is refused with a clear error.
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

#else

#include "etcd_client.h"

/* Backoff between two failed reads of the prefix. */
#define ETCD_BACKOFF_MIN_MS 100
#define ETCD_BACKOFF_MAX_MS 2000
/* How long create waits for the first read, open for its announcement. */
#define ETCD_START_WAIT_MS 3000
#define ETCD_ANNOUNCE_WAIT_MS 5000

/* A name the map has from etcd, and where. */
typedef struct known {
    int seen; /* in the last full read */
} known;

/* The entries of one read or one watch message, applied together. */
typedef struct batch {
    skci_etcd *es;
    skci_map_list l;
} batch;

struct skci_etcd {
    skc_node *node;
    /* set at start */
    char *endpoint; /* "http(s)://host:port", no trailing '/' */
    char *prefix;   /* "/skc/prod", no trailing '/' */
    char *dir;      /* prefix + "/": the keys read and watched */
    char *listen;
    int ttl_s;
    pthread_t thread;
    skci_etcd_client *client;

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
    batch wbatch;    /* the watch message being read */
    int down_logged; /* etcd unreachable was logged */
    int backoff;     /* ms before the next read after a failure */
    int ka_failing;  /* keepalives failed in a row */
};

static int
stopping(void *arg)
{
    skci_etcd *es = arg;
    pthread_mutex_lock(&es->lock);
    int s = es->stop && !es->revoking;
    pthread_mutex_unlock(&es->lock);
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
                es->prefix, skci_etcd_kind_dir(l->v[i].kind), l->v[i].name,
                skc_last_error());
        }
    }
}

/* Adds the entry a kv stands for to the batch (a skci_etcd_kv_fn); a
 * malformed one is logged and left out. */
static void
batch_add_kv(void *arg, const skci_etcd_kv *kv)
{
    batch *bt = arg;
    skci_etcd *es = bt->es;
    skci_map_list *l = &bt->l;
    char err[256] = "";
    skci_map_entry e;
    int rc = kv->key == NULL || (!kv->deleted && kv->value == NULL)
        ? (snprintf(err, sizeof(err), "bad base64 from etcd"), -1)
        : skci_etcd_decode(&e, es->prefix, kv->key, kv->klen, kv->value,
              kv->vlen, err, sizeof(err));
    if (rc < 0) {
        char *clean = skci_text_clean_dup(kv->key != NULL ? kv->key : "?");
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

/* Reads the whole prefix and merges it.  0 or -1 (err). */
static int
resync(skci_etcd *es, char *err, size_t errlen)
{
    batch bt = { es, { NULL, 0 } };
    /* Only this read marks names seen (the watch's marks are not read). */
    skci_strmap_each(&es->known, known_clear_seen, NULL);
    int rc = skci_etcd_client_range(
        es->client, es->dir, &es->rev, batch_add_kv, &bt, err, errlen);
    if (rc == 0) {
        skci_strmap_each(&es->known, known_gone, &bt.l);
        list_apply(es, &bt.l);
    }
    skci_map_list_free(&bt.l);
    return rc;
}

/* The end of one message of the watch stream (a skci_etcd_watch_fn). */
static void
watch_msg(void *arg, int what, int64_t rev)
{
    batch *bt = arg;
    skci_etcd *es = bt->es;
    if (what == SKCI_ETCD_WATCH_BAD) {
        skci_node_log(es->node, SKC_LOG_WARN,
            "etcd: the watch of %s answered something else than a result; watching again",
            es->prefix);
    } else if (what == SKCI_ETCD_WATCH_CANCELED) {
        skci_node_log(es->node, SKC_LOG_WARN,
            "etcd: the watch of %s was canceled (compacted at %lld); reading it again",
            es->prefix, (long long)rev);
    } else {
        es->backoff = ETCD_BACKOFF_MIN_MS; /* the watch works */
        es->rev = rev > es->rev ? rev : es->rev;
        list_apply(es, &bt->l);
    }
    skci_map_list_free(&bt->l);
}

/* ---------------------------------------------------------------------- */
/* The lease and the announcement                                         */
/* ---------------------------------------------------------------------- */

static void
lease_revoke(skci_etcd *es, int64_t id)
{
    char err[SKCI_DETAIL_MAX] = "";
    if (skci_etcd_client_lease_revoke(es->client, id, err, sizeof(err)) != 0) {
        skci_node_log(es->node, SKC_LOG_WARN,
            "etcd: cannot revoke lease %lld: %s", (long long)id, err);
    }
}

/* Grants a lease and puts <prefix>/nodes/<name> if nobody has it.
 * 0, SKC_EEXIST (err: who has it) or -1 (etcd did not answer: err). */
static int
announce(skci_etcd *es, const char *url, char *err, size_t errlen)
{
    skc_node *n = es->node;
    int64_t id;
    if (skci_etcd_client_lease_grant(
            es->client, es->ttl_s, &id, err, errlen) != 0) {
        return -1;
    }
    char *key = skci_etcd_node_key(es->prefix, n->name);
    char *val = skci_etcd_node_value(url);
    char *had = NULL;
    int rc = key != NULL && val != NULL
        ? skci_etcd_client_put_new(es->client, key, val, id, &had, err, errlen)
        : (snprintf(err, errlen, "out of memory"), -1);
    free(val);
    if (rc > 0) {
        char *clean = skci_text_clean_dup(had ? had : "?");
        snprintf(err, errlen,
            "etcd: node name '%s' is already announced by a live node (%s = %s); stop that node or wait for its lease to expire",
            n->name, key, clean ? clean : "?");
        free(clean);
        free(had);
        rc = SKC_EEXIST;
    } else if (rc == 0) {
        es->lease = id;
        es->next_ka = skci_now_ms() + es->ttl_s * 1000 / 3;
        skci_node_log(n, SKC_LOG_INFO,
            "etcd: announced %s = %s (lease %lld, TTL %d s)", key, url,
            (long long)id, es->ttl_s);
    }
    free(key);
    if (rc != 0) {
        lease_revoke(es, id);
    }
    return rc;
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
    char err[SKCI_DETAIL_MAX] = "";
    long long id = (long long)es->lease;
    int64_t ttl = 0;
    int rc = skci_etcd_client_lease_keepalive(
        es->client, es->lease, &ttl, err, sizeof(err));
    if (rc == 0 && es->ka_failing > 0) {
        skci_node_log(es->node, SKC_LOG_INFO,
            "etcd: lease %lld kept alive again (after %d failed keepalives)",
            id, es->ka_failing);
        es->ka_failing = 0;
    }
    if (rc == 0 && ttl <= 0) {
        /* etcd no longer has it (its key went with it) */
        skci_node_log(es->node, SKC_LOG_WARN,
            "etcd: lease %lld expired; announcing again", id);
        es->lease = 0;
        es->next_ann = 0;
    } else if (rc != 0) {
        if (es->ka_failing++ == 0) {
            skci_node_log(es->node, SKC_LOG_WARN,
                "etcd: keepalive of lease %lld: %s; trying again", id, err);
        }
        /* Soon again: the lease has a TTL's worth of time left at most. */
        es->next_ka = skci_now_ms() + ETCD_BACKOFF_MIN_MS * 2;
        /* The watch may be as cut off as this request, with no sign of it
         * for a long while (TCP): read and watch again. */
        skci_etcd_client_watch_lost(es->client);
    }
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
 * until a watch works again (watch_msg). */
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
    skci_etcd_client *c = es->client;
    int64_t next_read = 0;
    while (!stopping(es)) {
        if (skci_etcd_client_watch_ended(c)) {
            skci_node_log(es->node, SKC_LOG_WARN,
                "etcd: the watch of %s ended; reading it again", es->prefix);
            skci_etcd_client_unwatch(c);
            next_read = skci_now_ms() + backoff_next(es);
        }
        if (!skci_etcd_client_watching(c) && skci_now_ms() >= next_read) {
            char err[SKCI_DETAIL_MAX] = "";
            if (resync(es, err, sizeof(err)) == 0 &&
                skci_etcd_client_watch(c, es->dir, es->rev + 1, batch_add_kv,
                    watch_msg, &es->wbatch) == 0) {
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
        int64_t wake = !skci_etcd_client_watching(c) ? next_read : now + 1000;
        if (es->lease != 0 && es->next_ka < wake) {
            wake = es->next_ka;
        }
        int ms = wake - now < 1 ? 1
            : wake - now > 1000 ? 1000
                                : (int)(wake - now);
        skci_etcd_client_poll(c, ms);
    }
    skci_etcd_client_unwatch(c);
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

static void
known_free(const char *name, void *val, void *arg)
{
    (void)name, (void)arg;
    free(val);
}

static void
etcd_free(skci_etcd *es)
{
    skci_etcd_client_free(es->client);
    skci_strmap_each(&es->known, known_free, NULL);
    skci_strmap_fini(&es->known);
    skci_map_list_free(&es->wbatch.l);
    free(es->endpoint);
    free(es->prefix);
    free(es->dir);
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
    skci_etcd *es = calloc(1, sizeof(*es));
    if (es == NULL) {
        return skci_error(SKC_ENOMEM, "etcd");
    }
    es->node = n;
    es->wbatch.es = es;
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
    size_t dl = strlen(es->prefix) + 2;
    if ((es->dir = malloc(dl)) != NULL) {
        snprintf(es->dir, dl, "%s/", es->prefix);
    }
    es->listen =
        skci_strdup(o->etcd_listen ? o->etcd_listen : ETCD_DEFAULT_LISTEN);
    if (es->dir == NULL || es->listen == NULL ||
        skci_etcd_client_new(&es->client, es->endpoint, o->etcd_cafile,
            o->etcd_certfile, o->etcd_keyfile, stopping, es) != 0) {
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
    skci_etcd_client_wakeup(es->client);
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
    skci_etcd_client_wakeup(es->client);
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
