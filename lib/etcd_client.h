/* etcd_client.h -- a small etcd v3 client over etcd's HTTP/JSON gateway
 * (etcd_client.c): requests with deadlines, a prefix's range read and
 * watch, leases (grant, keepalive, revoke) and a put-if-absent.
 *
 * It knows nothing of skc nodes or of what the keys mean (etcd_keys.c
 * says that, etcd.c is the node's side).  One thread uses a client at a
 * time, except skci_etcd_client_wakeup, which any thread may call.
 * Errors are returned as -1 with why in err (no skc detail text is set).
 * Built only with etcd support (libcurl and cJSON).
 */
#ifndef SKC_LIB_ETCD_CLIENT_H
#define SKC_LIB_ETCD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct skci_etcd_client skci_etcd_client;

/* One key of an answer, decoded from the gateway's base64; key and value
 * are NUL-terminated as well (etcd's need not be text).  Borrowed for the
 * callback's duration.  key NULL: its base64 was bad.  value NULL: a
 * deletion (deleted = 1), or bad base64; a put without a value is "". */
typedef struct skci_etcd_kv {
    const char *key;
    size_t klen;
    const char *value;
    size_t vlen;
    int deleted;
} skci_etcd_kv;

/* Called for each key of a range read or a watch message, in etcd's
 * order; a key that is not a string in etcd's answer is left out. */
typedef void (*skci_etcd_kv_fn)(void *arg, const skci_etcd_kv *kv);

/* What a message of the watch stream was, told after its keys went to
 * the kv callback. */
#define SKCI_ETCD_WATCH_EVENTS                                                \
    0                         /* events (maybe none); rev: the highest        \
                                 mod_revision among them, 0 if none */
#define SKCI_ETCD_WATCH_BAD 1 /* not a result; the watch has ended */
#define SKCI_ETCD_WATCH_CANCELED                                              \
    2 /* canceled by etcd; rev: the compact                                   \
         revision; the watch has ended */
typedef void (*skci_etcd_watch_fn)(void *arg, int what, int64_t rev);

/* A client of the etcd at endpoint ("http(s)://host:port", no trailing
 * '/'), with TLS files for https (each NULL for none; all copied).
 * stopped(arg), when it returns nonzero, makes a request in progress give
 * up ("stopped"); it is called on the client's thread.  0 (*out: release
 * with skci_etcd_client_free) or -1 (out of memory). */
int skci_etcd_client_new(skci_etcd_client **out, const char *endpoint,
    const char *cafile, const char *certfile, const char *keyfile,
    int (*stopped)(void *arg), void *arg);
/* Ends the watch if any and frees the client; NULL is a no-op. */
void skci_etcd_client_free(skci_etcd_client *c);

/* Wakes skci_etcd_client_poll, or a request, from any thread (so that a
 * stop is seen at once). */
void skci_etcd_client_wakeup(skci_etcd_client *c);
/* Waits up to ms for the watch's data (or a wakeup) and hands the watch
 * messages that are complete to its callbacks. */
void skci_etcd_client_poll(skci_etcd_client *c, int ms);

/* Reads every key that starts with key (a range read, at most a few
 * seconds): fn for each, then *rev = the revision of the answer.  0, or
 * -1 with why in err (etcd unreachable, an HTTP error, not JSON, a
 * stop). */
int skci_etcd_client_range(skci_etcd_client *c, const char *key, int64_t *rev,
    skci_etcd_kv_fn fn, void *arg, char *err, size_t errlen);

/* Starts watching every key that starts with key, from revision
 * start_rev on; the messages go to on_kv and on_msg (with arg) inside
 * skci_etcd_client_poll and the requests.  A client has one watch at a
 * time: call skci_etcd_client_unwatch first.  0, or -1 (out of memory). */
int skci_etcd_client_watch(skci_etcd_client *c, const char *key,
    int64_t start_rev, skci_etcd_kv_fn on_kv, skci_etcd_watch_fn on_msg,
    void *arg);
/* Ends the watch (no-op without one). */
void skci_etcd_client_unwatch(skci_etcd_client *c);
/* 1 while a watch is there (ended or not), else 0. */
int skci_etcd_client_watching(const skci_etcd_client *c);
/* 1 if there is a watch and it has ended (etcd closed it, its transfer
 * failed, it was canceled, or skci_etcd_client_watch_lost said so): the
 * owner reads again and watches anew.  Else 0. */
int skci_etcd_client_watch_ended(const skci_etcd_client *c);
/* Marks the watch (if any) as ended: the owner has seen another request
 * fail and the watch may be as cut off, with no sign of it for a while. */
void skci_etcd_client_watch_lost(skci_etcd_client *c);

/* Grants a lease of ttl_s seconds: 0 (*id != 0) or -1 (err). */
int skci_etcd_client_lease_grant(
    skci_etcd_client *c, int ttl_s, int64_t *id, char *err, size_t errlen);
/* Keeps lease id alive once: 0 with *ttl = what etcd says is left (0 or
 * less: etcd no longer has the lease), or -1 (err: no answer, or an
 * answer without a result). */
int skci_etcd_client_lease_keepalive(
    skci_etcd_client *c, int64_t id, int64_t *ttl, char *err, size_t errlen);
/* Revokes lease id (its keys go with it).  0 or -1 (err). */
int skci_etcd_client_lease_revoke(
    skci_etcd_client *c, int64_t id, char *err, size_t errlen);

/* Puts key = value with lease id if key does not exist (one
 * transaction).  0 (put), 1 (key exists: *had = its value, malloc'd and
 * NUL-terminated, or NULL if it cannot be decoded; the caller frees it)
 * or -1 (err). */
int skci_etcd_client_put_new(skci_etcd_client *c, const char *key,
    const char *value, int64_t lease, char **had, char *err, size_t errlen);

#endif
