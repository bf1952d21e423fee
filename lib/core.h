/* core.h -- the node's internal structures and the declarations every
 * lib/ file shares, grouped by the file that defines them (the modules and
 * their layers: docs/ARCHITECTURE.md).
 *
 * Locks, in the order they may be taken (never the reverse):
 *   open_lock -> call_lock -> reg.lock -> dq.lock -> serve.lock
 *   call_lock -> bg.lk;  call_lock -> a link's clk and push_tx.lk
 *   serve.lock -> the server's lk (transport.c)
 *   a link's pipe_lk (held while on_conn runs) -> call_lock
 *   order.lock is taken with no other skc lock held; only bg.lk under it.
 *   a link's lk is held across its sockets' close, which waits for the
 *   link's NNG callbacks (they take call_lock); it is only taken on the
 *   transport's own threads, never under call_lock.
 *   logq.lock is a leaf; so are auth.lock (auth.c) and the etcd source's
 *   lock (etcd.c), whose thread holds no skc lock while it waits on etcd.
 * No skc lock is held while user code runs (handlers, callbacks, the log
 * callback) or while an NNG socket is closed or dialed.
 */
#ifndef SKC_LIB_CORE_H
#define SKC_LIB_CORE_H

#include "skc/skc.h"

#include "auth.h"
#include "bg.h"
#include "error.h"
#include "list.h"
#include "map.h"
#include "transport.h"
#include "umem.h"
#include "util.h"
#include "wire.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* Longest detail text an error carries through the core. */
#define SKCI_DETAIL_MAX 1024

typedef struct skci_task skci_task;
typedef struct skci_service skci_service;
typedef struct skci_call skci_call;
typedef struct skci_peer skci_peer;
typedef struct skci_linkref skci_linkref;
typedef struct skci_logline skci_logline;

/* Something a worker (or skc_node_poll) runs: a service with mail
 * (dispatch.c), or the completion of an async call (call.c).  A task
 * carries its own run function, as NNG's nni_task does. */

struct skci_task {
    void (*run)(skc_node *n, skci_task *t);
    skci_lnode ready; /* on dq.ready */
};

/* Where the reply to an incoming call goes.  Owned by the skc_msg, then
 * by the skc_reply if the handler defers; linked in node->serving so that
 * destroy can detach it from the transport. */
typedef struct skci_route {
    skc_node *node;
    skci_rctx *rctx; /* NULL once answered or detached */
    uint64_t id;
    uint32_t max_reply;
    skci_lnode link; /* on serve.routes while not answered */
    char target[];   /* "@name" etc., allocated to its length */
} skci_route;

/* A message delivered to a service (skc_msg in the API). */
struct skc_msg {
    skc_node *node;
    int kind;         /* SKC_MSG_CALL / SKC_MSG_SEND */
    skci_tmsg *frame; /* owns the bytes payload points into */
    const uint8_t *payload;
    size_t len;
    int64_t deadline;  /* 0 = none */
    skci_route *route; /* calls only; NULL once answered or deferred */
    skci_lnode mail;   /* on its service's mailbox */
    char target[];     /* allocated to its length */
};

struct skc_reply {
    skci_route *route;
};

struct skci_service {
    skci_task task;
    uint32_t handle;
    skc_handler_fn fn;
    void *arg;
    skci_list mail;    /* dq.lock: skc_msg by .mail, oldest first */
    size_t mail_bytes; /* dq.lock: their payload bytes */
    size_t mail_calls; /* dq.lock: how many of them are calls */
    int scheduled;     /* in the ready queue or running */
    int running;
    pthread_t runner;
    int dead;
    int refs;      /* under dq.lock: registry + ready queue + waiters */
    int inline_ok; /* SKC_SERVICE_INLINE */
};

/* Outgoing call states. */
#define SKCI_CALL_QUEUED 1 /* waiting in its peer's queue */
#define SKCI_CALL_SENT 2   /* handed to the transport, awaiting a reply */
#define SKCI_CALL_LANE 3   /* waiting for its lane's handshake (lane.c) */

/* Who is told when a call ends. */
#define SKCI_MODE_SYNC 1     /* a thread blocked in skc_node_call */
#define SKCI_MODE_ASYNC 2    /* a callback run by dispatch */
#define SKCI_MODE_INTERNAL 3 /* hello: internal_done runs under call_lock */
#define SKCI_MODE_SEND 4     /* a one-way message waiting for its peer */

struct skci_call {
    skci_task task;    /* for ASYNC completion */
    skci_heap_node hn; /* deadline */
    uint32_t id;
    int mode;
    int kind; /* SKCI_KIND_* */
    int state;
    skci_peer *peer;
    skci_lnode link; /* on its peer's queued or sent list */
    skci_tmsg *req;  /* the frame, until handed to the transport */
    size_t payload_len;
    int64_t start;
    int32_t timeout_ms;
    /* outcome */
    int done;
    int status;
    skci_tmsg *rep; /* reply frame owning data */
    const uint8_t *data;
    size_t len;
    char *detail;
    /* SYNC */
    pthread_cond_t cond;
    /* ASYNC: cb for calls, qcb for queries */
    skc_call_fn cb;
    skc_query_fn qcb;
    void *arg;
    skc_ping_fn pcb;  /* ASYNC ping */
    int64_t start_us; /* pings, hello, heartbeat: when it was sent (us) */
    int64_t end_us;   /* when it ended (pings) */
    skci_peer *group; /* the group it was addressed to, or NULL */
    int inline_cb;    /* SKC_CALL_INLINE */
    int inline_take;  /* on_reply runs the completion itself */
    int channel;      /* SKC_CALL_CHANNEL(k): k, or 0 */
    int lane;         /* the lane it went on or waits for; 0 = the link */
    /* INTERNAL: told of the outcome (call_lock held), then c is freed */
    void (*internal_done)(skc_node *n, skci_call *c);
    char target[]; /* for error texts, allocated to its length */
};

/* Map state of a peer name. */
#define SKCI_PEER_NOT_IN_MAP 0
#define SKCI_PEER_MARKED_DOWN 1
#define SKCI_PEER_HAS_ADDR 2
#define SKCI_PEER_GROUP 3 /* a name for other names (group.c) */

/* A group's members and policy (group.c), under call_lock. */
typedef struct skci_group {
    char **members; /* node names, in order */
    size_t n;
    int policy;      /* SKCI_GROUP_* (map.h) */
    size_t rr;       /* roundrobin: the member after the last pick */
    uint32_t rnd;    /* random: xorshift state */
    char *last_pick; /* failover: the member picked last, for the log */
} skci_group;

/* Link state of a peer. */
#define SKCI_LINK_NONE 0    /* no link yet, or the last dial failed */
#define SKCI_LINK_DIALING 1 /* first connect in progress (dial thread) */
#define SKCI_LINK_HELLO 2   /* connected, hello exchange in progress */
#define SKCI_LINK_UP 3      /* ready */
#define SKCI_LINK_RETRY 4   /* connection lost; NNG reconnects */

/* What a link's callbacks know their peer by.  Owned by the link from
 * skci_link_create until it is handed back through on_released. */
struct skci_linkref {
    skci_link *link;
    skci_peer *peer;
    skc_node *node;
    int lane; /* 0: the peer's link; k: its lane k (lane.c) */
};

/* Lane numbers (lane.c): 0 is the peer's own link (p->lr), 1 its
 * large-message lane, 2.. its channel lanes; lane k is p->lanes[k - 1]. */
#define SKCI_LANE_LARGE 1

/* One more connection to a peer (lane.c, docs/PERFORMANCE.md "Lanes"): a
 * REQ socket of its own, dialed when a call first needs it, with its own
 * cookie handshake; no sends, no heartbeats (the link has them). */
typedef struct skci_lane {
    skci_linkref *lr; /* NULL: not connected */
    int state;        /* SKCI_LINK_NONE, _DIALING, _HELLO, _UP */
    skci_call *hello; /* its challenge or hello in flight */
    skci_list queued; /* skci_call: waiting for the handshake, in order */
    uint8_t auth_nc[SKCI_AUTH_NONCE];
    uint8_t auth_ns[SKCI_AUTH_NONCE];
    int64_t retry_at;   /* ms: after a failure, not dialed before this;
                           its calls go on the link meanwhile */
    int32_t backoff_ms; /* the next failure's wait */
    uint64_t calls;     /* calls sent on it */
    uint64_t dials;     /* connections made (handshakes started) */
} skci_lane;

struct skci_peer {
    char *name;
    int map;   /* SKCI_MAP_* */
    char *url; /* when SKCI_PEER_HAS_ADDR */
    int link_state;
    skci_linkref *lr;
    char *last_error; /* last dial failure text */
    uint32_t max_msg; /* the peer's limit, from hello */
    char *push_url;   /* from hello */
    int warned_waiting;
    skci_list queued;  /* skci_call: not yet sent, in order */
    skci_list sent;    /* skci_call: sent, awaiting replies */
    skci_call *hello;  /* hello in progress */
    skci_group *group; /* SKCI_PEER_GROUP */
    /* health (health.c) */
    int health;         /* SKC_PEER_* */
    const char *reason; /* of the last change of health, static */
    int64_t last_rx;    /* ms: the last frame from the peer */
    skci_call *hb;      /* heartbeat ping in flight */
    int64_t rtt_us;     /* of the last heartbeat or ping, 0 = none */
    int64_t dial_start; /* ms: when the current dial began */
    int64_t redial_at;  /* ms: when to dial again, 0 = not planned */
    int32_t backoff_ms; /* the next redial's delay */
    int watched;        /* a group member: connected eagerly */
    int ever_up;        /* has been up once: redialled when down */
    /* send/call order (peer.c, PROTOCOL.md "Order"): the stream this
     * link's sends are numbered on, chosen at each HELLO; 0 when the peer
     * did not announce ordering (its frames go without the order block) */
    uint64_t ostream;
    uint64_t osent;     /* sends pushed on ostream */
    int64_t olast_send; /* ms: when the last of them was pushed */
    /* the cluster cookie handshake of the current link (peer.c) */
    uint8_t auth_nc[SKCI_AUTH_NONCE]; /* our challenge nonce */
    uint8_t auth_ns[SKCI_AUTH_NONCE]; /* the server's */
    skci_call *ticket;                /* a send ticket request in flight */
    /* lanes (lane.c): allocated when one is first needed */
    skci_lane *lanes;
    int nlanes;
};

/* A monitor report waiting to be delivered (health.c). */
typedef struct skci_monev {
    skci_lnode link; /* on health.events */
    int up;
    const char *reason;
    char *addr;
    char peer[];
} skci_monev;

/* health.c: monitors and heartbeats, under call_lock. */
typedef struct skci_health {
    int32_t hb_ms; /* set at create; 0 = no heartbeats */
    int hb_misses; /* set at create */
    skc_monitor_fn fn;
    void *arg;
    skci_list events; /* skci_monev by .link: reports to deliver, in order */
    int running;      /* the delivery task is queued or running */
    skci_task task;
    int any; /* a peer needs the tick (up, redial) */
} skci_health;

/* Each module's state; struct skc_node composes them.  The lock that
 * guards a field is named beside it ("set at create": written before the
 * node is shared, read-only afterwards). */

/* log.c: how many lines of one kind (format) were let through lately. */
typedef struct skci_logkind {
    const char *fmt; /* the kind */
    int64_t since;   /* ms: start of the window */
    int count;       /* lines let through in the window */
    long dropped;    /* lines suppressed since the last one let through */
} skci_logkind;

#define SKCI_LOG_KINDS 64

/* log.c: lines logged under call_lock, delivered after it; the rate
 * limit per kind of line. */
typedef struct skci_logq {
    pthread_mutex_t lock; /* a leaf: nothing is called under it */
    skci_list lines;      /* lock: skci_logline, oldest first */
    atomic_int queued;    /* head != NULL, read without the lock */
    skci_logkind kinds[SKCI_LOG_KINDS]; /* lock */
} skci_logq;

/* pending.c and timer.c: the calls in flight and their deadlines. */
typedef struct skci_pending {
    skci_idmap calls;          /* call_lock: id -> skci_call */
    skci_heap deadlines;       /* call_lock */
    uint32_t next_id;          /* call_lock */
    uint32_t inflight;         /* call_lock: counted against max_inflight */
    pthread_cond_t timer_cond; /* with call_lock: the timer's sleep */
    pthread_t timer;           /* set at create, joined at destroy */
    int timer_stop;            /* call_lock */
    int64_t timer_until;       /* call_lock: when the timer wakes itself */
    int64_t sweep_at;          /* call_lock: the next idle-connection sweep */
    int64_t unpark_at;         /* call_lock: retry the parked send; 0 = none */
    long trim_base_kb;         /* timer thread: timer.c's gap after the
                                  last trim, or the RSS if lower since */
    int64_t trim_at;           /* timer thread: no trim before then */
} skci_pending;

/* peer.c and node.c: the cluster map as applied, and the peers it names. */
typedef struct skci_peers {
    skci_strmap byname; /* call_lock: name -> skci_peer */
    int nowaiting;      /* call_lock: the map's __nowaiting */
    char *map_path;     /* call_lock: the file the map came from */
} skci_peers;

/* registry.c: services, handles and names. */
typedef struct skci_registry {
    pthread_rwlock_t lock;
    skci_idmap services;  /* lock: handle -> skci_service */
    skci_strmap names;    /* lock: "@x" / ".x" -> handle (as uintptr_t) */
    uint32_t next_handle; /* lock */
} skci_registry;

/* dispatch.c: the ready queue, workers and the caller-driven poll. */
typedef struct skci_dispatch {
    pthread_mutex_t lock;     /* also guards each service's mailbox */
    pthread_cond_t cond;      /* with lock: work for workers / poll */
    pthread_cond_t idle_cond; /* with lock: a service stopped running */
    skci_list ready;          /* lock: skci_task by .ready, in order */
    int busy;                 /* lock: workers running a task */
    size_t queued_bytes;      /* lock: payload bytes in all mailboxes */
    int stop;                 /* lock */
    pthread_t *threads;       /* set at create */
    int nthreads;             /* set at create */
    int efd;                  /* set at create: poll's eventfd, or -1 */
    int efd_armed;            /* lock */
    int efd_wanted;           /* lock: skc_node_fd was called, so the host
                                 may wait on efd; until then only the
                                 condvar wakes skc_node_poll */
    int woken;                /* lock: efd was written, not yet read */
    int inline_running;       /* lock: inline turns and completions */
} skci_dispatch;

/* A sender's call waits for no send when its last send to that peer is
 * older than this (peer.c); order.c forgets an idle stream well after. */
#define SKCI_ORDER_SENDER_IDLE_MS 30000

/* order.c: incoming calls held until the sends before them are in their
 * mailboxes, per sender stream. */
typedef struct skci_ostream skci_ostream;
typedef struct skci_order {
    pthread_mutex_t lock; /* taken with no other skc lock held */
    pthread_cond_t cond;  /* with lock: the waiter thread's sleep */
    skci_ostream **b;     /* lock: stream id -> state, chained */
    size_t nb, count;     /* lock */
    skci_list ages;       /* lock: skci_ostream, least active first */
    int64_t wake_at;      /* lock: when the waiter thread wakes */
    int thread;           /* lock: the waiter thread was started */
    int stop;             /* lock: destroy: the thread ends */
} skci_order;

/* watch.c: the map file watched for changes. */
typedef struct skci_watch {
    pthread_mutex_t ctl;  /* serializes start and stop */
    pthread_mutex_t lock; /* fn, arg; taken with no other skc lock */
    skc_map_reload_fn fn; /* lock */
    void *arg;            /* lock */
    int running;          /* ctl */
    pthread_t thread;     /* ctl */
    int ifd, efd;         /* ctl: inotify, stop */
    char *path;           /* ctl; read by the thread while it runs */
} skci_watch;

/* stats.c: what a node counts (docs/OPERATIONS.md, "Statistics").  The
 * fields bumped under call_lock are plain; those bumped on the transport's
 * threads with no lock are relaxed atomics (one locked add each). */
#define SKCI_STAT_CODES 32 /* failures by -code, SKC_E* codes up to -31 */
typedef atomic_uint_least64_t skci_counter;
typedef struct skci_stats {
    int64_t start_ms; /* set at create */
    /* call_lock: this node's own calls, queries, pings and sends */
    uint64_t calls_ok;
    uint64_t calls_failed[SKCI_STAT_CODES];
    uint64_t sends_ok; /* handed to a link */
    uint64_t sends_failed[SKCI_STAT_CODES];
    uint64_t bytes_out_lk; /* payloads of the above */
    uint64_t bytes_in_lk;  /* payloads of their replies */
    /* atomics: what peers ask of this node */
    skci_counter requests_in;   /* every request frame: calls, queries, ... */
    skci_counter calls_in;      /* calls put in a service's mailbox */
    skci_counter calls_refused; /* answered at once with an error */
    skci_counter replies_ok, replies_failed;
    skci_counter sends_in, sends_dropped;
    skci_counter sends_lost; /* this node's, told OK, then dropped (B9) */
    skci_counter bad_frames;
    skci_counter mailbox_full; /* calls and sends refused by the limits */
    skci_counter conns_closed; /* by the hello and idle timeouts */
    skci_counter sends_paused; /* times the send port stopped being read */
    skci_counter mem_trims;    /* freed memory given back to the system */
    skci_counter bytes_in, bytes_out; /* payloads: requests in, replies out */
} skci_stats;

/* The index of a failure code in calls_failed and sends_failed. */
#define SKCI_STAT_CODE(rc) ((rc) < 0 && (rc) > -SKCI_STAT_CODES ? -(rc) : 0)

/* Counts v more at an atomic counter. */
#define SKCI_COUNT(n, field, v)                                               \
    atomic_fetch_add_explicit(&(n)->stats.field, (v), memory_order_relaxed)

/* msg.c: calls being served, detached from the transport at destroy. */
typedef struct skci_serving {
    pthread_mutex_t lock;
    skci_list routes; /* lock: skci_route by .link */
    /* A send whose service's mailbox was full: the send port is not read
     * until it is in (back-pressure; serve.c, timer.c). */
    skc_msg *parked;      /* lock */
    skci_target parked_t; /* lock: its target (names point into its frame) */
    int parked_order;     /* lock: it carries an order block */
    uint64_t parked_stream, parked_seq; /* lock */
    int64_t parked_since;               /* lock: ms */
    int resume; /* lock: delivered; the send port is to be read */
} skci_serving;

struct skc_node {
    atomic_int refs; /* the user's + deferred replies */
    /* options: set at create */
    char name[SKCI_NAME_MAX + 1];
    int32_t call_timeout_ms;
    uint32_t max_msg;
    int workers; /* 0 = caller-driven */
    uint32_t max_inflight;
    uint32_t max_serving;
    uint32_t max_conns;
    int32_t send_port;       /* skc_node_opts.send_port */
    int32_t log_burst;       /* lines of one kind per window; < 0 = no limit */
    int32_t max_deadline_ms; /* cap on a peer's call deadline */
    uint32_t max_mailbox;    /* messages waiting per service */
    uint32_t max_mailbox_bytes; /* their payload bytes per service */
    uint32_t max_queued_bytes;  /* payload bytes in all mailboxes */
    int32_t hello_timeout_ms;   /* < 0: never */
    int32_t idle_timeout_ms;    /* < 0: never */
    int names_only;             /* refuse peers' targets by raw handle */
    uint32_t large_msg; /* calls this large go on a lane; 0 = no lane */
    int channels;       /* channel lanes per peer; 0 = none */
    /* who may talk to the node (set at create; auth's tables have their
     * own lock, a leaf) */
    skci_auth auth; /* the cluster cookie; auth.key NULL = none */
    skci_tls tls;   /* TLS settings for tls+tcp:// */
    int secure;     /* a cookie or TLS: peers' names are checked */
    skc_log_fn log;
    void *log_arg;
    int log_level;
    atomic_int closing; /* set once by destroy */

    /* open / close */
    pthread_mutex_t open_lock;
    skci_server *server; /* open_lock */

    /* call_lock guards pend and peers */
    pthread_mutex_t call_lock;
    atomic_ulong call_lock_owner; /* pthread_self() of the holder, or 0 */
    skci_pending pend;
    skci_peers peers;
    skci_health health;
    skci_bg bg; /* the transport's threads for dials and closes */

    skci_logq logq;
    skci_registry reg;
    skci_dispatch dq;
    skci_serving serve;
    skci_watch watch;
    skci_order order;
    skci_stats stats;
    struct skci_etcd *etcd; /* etcd.c: set at create, NULL without etcd */
};

/* The node whose handler/callback runs on this thread, if any. */
extern _Thread_local skc_node *skci_current_node;
/* > 0 while this thread runs an inline handler or callback: it is a
 * transport thread, so nothing here may block on the network. */
extern _Thread_local int skci_inline_depth;

/* log.c */
void skci_log_init(skc_node *n);
/* Delivers what is still queued, then frees (destroy). */
void skci_log_fini(skc_node *n);
/* Logs a line at level (when the node's level lets it through); under
 * call_lock it is queued and delivered once the lock is released. */
void skci_node_log(skc_node *n, int level, const char *fmt, ...)
    SKCI_PRINTF(3, 4);
/* The same for a line made elsewhere: kind (a format's address) is what
 * it is rate-limited as. */
void skci_node_log_kind(
    skc_node *n, int level, const char *kind, const char *text);
/* call_lock, always taken, released and waited on through these (the
 * log rule needs to know who holds it). */
void skci_call_lock(skc_node *n);
void skci_call_unlock(skc_node *n);
/* Waits on cond (call_lock held) until signalled or `until` (ms,
 * skci_now_ms clock; INT64_MAX = no bound). */
void skci_call_wait(skc_node *n, pthread_cond_t *cond, int64_t until);
int skci_call_lock_held(skc_node *n);

/* core.c */
/* Drops a reference; the last one frees the node. */
void skci_node_unref(skc_node *n);
/* SKC_EINVAL for NULL, SKC_ECLOSED while closing, else 0 (sets detail). */
int skci_node_check(skc_node *n);

/* registry.c */
void skci_registry_init(skc_node *n);
void skci_registry_fini(skc_node *n);
/* Finds the service a target names and takes a reference (dq.lock
 * inside); NULL if none.  Caller releases with skci_service_release. */
skci_service *skci_registry_find(skc_node *n, const skci_target *t);
void skci_service_release(skc_node *n, skci_service *s);
int skci_registry_deliver(skc_node *n, const skci_target *t, skc_msg *m);

/* dispatch.c */
int skci_dispatch_init(skc_node *n);
/* Stops workers after they drain the queue; in caller-driven mode runs
 * what is left on this thread. */
void skci_dispatch_stop(skc_node *n);
void skci_dispatch_fini(skc_node *n);
/* Queues msg for service s (takes msg). Returns 0, SKC_ENOSERVICE when
 * the service died meanwhile, SKC_ELIMIT when its mailbox or the node's
 * queued bytes are at their limit (msg untouched, the reason in the
 * thread's detail), or 1: s is an inline service
 * and idle, its turn is taken, and the caller must run msg at once with
 * skci_dispatch_run (after releasing its own locks). */
int skci_dispatch_deliver(skc_node *n, skci_service *s, skc_msg *msg);
/* Runs an inline turn that skci_dispatch_deliver returned 1 for. */
void skci_dispatch_run(skc_node *n, skci_service *s, skc_msg *msg);
/* For an inline completion: returns 1 (and counts it) if it may run on
 * this thread now, 0 if it must go to the queue.  Pair 1 with _end. */
int skci_dispatch_inline_begin(skc_node *n);
void skci_dispatch_inline_end(skc_node *n);
/* SKC_EBUSY for `what` on node target, called from inline code (sets the
 * detail, naming both nodes). */
int skci_inline_busy(const char *what, const skc_node *target);
void skci_dispatch_push(skc_node *n, skci_task *t);
/* A service's mailbox (dq.lock held): the oldest message off it (NULL
 * when empty), and all of it moved to `to`. */
skc_msg *skci_mail_pop(skc_node *n, skci_service *s);
void skci_mail_take(skc_node *n, skci_service *s, skci_list *to);
/* The run function of a service's task (its mailbox has mail). */
void skci_dispatch_run_service(skc_node *n, skci_task *t);
/* msg.c: the message lifecycle and reply routes */
/* Frees a message that was never run: answers calls with SKC_ENOREPLY. */
void skci_msg_drop(skc_msg *m, int code, const char *why);
/* After a handler returns: auto-reply if the call was not answered. */
void skci_msg_finish(skc_msg *m);
/* Links a route into n->serving (destroy detaches them all). */
void skci_route_link(skc_node *n, skci_route *r);
/* Detaches every route from the transport (destroy). */
void skci_detach_routes(skc_node *n);
/* Reply frames: a payload, or an error code with its text.  NULL without
 * memory. */
skci_tmsg *skci_reply_frame(
    uint32_t status, uint64_t id, const void *data, size_t len);
skci_tmsg *skci_error_frame(int code, uint64_t id, const char *fmt, ...)
    SKCI_PRINTF(3, 4);

/* serve.c: the transport's server callbacks */
void skci_on_request(void *arg, skci_rctx *rctx, skci_tmsg *msg);
int skci_on_push(void *arg, skci_tmsg *msg);
/* A connection is gone: its cookie state goes with it. */
void skci_on_pipe_gone(void *arg, uint32_t pipe);
/* The timer's retry of a parked send (no lock held): delivers it if its
 * mailbox has room (and reads the send port again), else leaves it.
 * Returns when to try again (ms), or 0 when nothing is parked. */
int64_t skci_serve_unpark(skc_node *n);
/* destroy, once no thread reads or retries: frees a parked send. */
void skci_serve_parked_drop(skc_node *n);
/* Puts an incoming call (takes m) in the mailbox of the service t names,
 * or answers it with SKC_ENOSERVICE. */
void skci_serve_call(skc_node *n, const skci_target *t, skc_msg *m);

/* order.c: a call after the sends before it (PROTOCOL.md "Order") */
void skci_order_init(skc_node *n);
/* Frees the streams (after skci_order_close; no thread runs). */
void skci_order_fini(skc_node *n);
/* destroy: held calls are answered SKC_ECLOSED and the waiter thread
 * ends (joined with the node's bg set). */
void skci_order_close(skc_node *n);
/* Send number seq of stream is in its mailbox: calls waiting for it go
 * on. */
void skci_order_sent(skc_node *n, uint64_t stream, uint64_t seq);
/* An incoming call (takes m) that follows `need` sends of stream: goes to
 * its service now if they have arrived, else when they do, or after a
 * bounded wait scaled by timeout_ms (its remaining deadline, 0 = none). */
void skci_order_call(skc_node *n, const skci_target *t, skc_msg *m,
    uint64_t stream, uint64_t need, uint32_t timeout_ms);

/* pending.c: the table of calls in flight (call_lock held unless said) */
void skci_pending_init(skc_node *n);
/* Ends every pending call with status (destroy). */
void skci_pending_fail_all(skc_node *n, int status, const char *detail);
void skci_pending_fini(skc_node *n);
/* Gives c an id, enters it in the table and its deadline in the heap
 * (waking the timer if it is the earliest).  0 or SKC_ENOMEM. */
int skci_call_register(skc_node *n, skci_call *c);
/* Ends a call: rep (consumed) owns data when not NULL. */
void skci_call_finish(skc_node *n, skci_call *c, int status, skci_tmsg *rep,
    const uint8_t *data, size_t len, const char *detail);
void skci_call_fail(skc_node *n, skci_call *c, int status, const char *fmt,
    ...) SKCI_PRINTF(4, 5);
/* Ends every call on one of a peer's lists (queued or sent); each
 * leaves the list as it ends. */
void skci_call_fail_list(
    skc_node *n, skci_list *calls, int status, const char *detail);
/* The call on a list node of a peer's queued or sent list. */
#define SKCI_CALL_OF(e) SKCI_LIST_ENTRY(e, skci_call, link)
/* Frees a call that has ended, or was never registered (no lock). */
void skci_call_free(skci_call *c);
/* The timer thread sleeps past `when`: wake it. */
void skci_timer_wake(skc_node *n, int64_t when);

/* timer.c: the thread that fires deadlines */
int skci_timer_start(skc_node *n);
void skci_timer_stop(skc_node *n);

/* peer.c: peers and their links (call_lock held unless said) */
/* Finds or creates a peer. */
skci_peer *skci_peer_get(skc_node *n, const char *name, int create);
const char *skci_peer_addr(const skci_peer *p);
/* health.c: p's state as skc_node_peer_state reports it (call_lock), and
 * its name ("up", "down", ...). */
int skci_peer_state(skc_node *n, const skci_peer *p);
const char *skci_peer_state_name(int state);
/* stats.c: the node's statistics as JSON (malloc'd, *len bytes, no lock
 * held); NULL without memory. */
char *skci_stats_json(skc_node *n, size_t *len);
/* call.c: a request with no target or payload (ping, stats) run to its
 * end on this thread; on 0 the reply frame *rep owns *d (*l bytes). */
int skci_call_plain(skc_node *node, int kind, const char *peer,
    int32_t timeout_ms, skci_tmsg **rep, const uint8_t **d, size_t *l);
/* 0 if peer p can take call c now or later, else the error (detail set). */
int skci_peer_admit(const skc_node *n, const skci_peer *p, const skci_call *c);
/* Sends a registered call, or queues it (dialing if needed). */
void skci_peer_route(skc_node *n, skci_peer *p, skci_call *c);
void skci_peer_queue(skci_peer *p, skci_call *c);
/* Hands a call to the peer's link (link UP). */
void skci_peer_transmit(skc_node *n, skci_peer *p, skci_call *c);
/* Starts connecting (the map has an address). */
void skci_peer_dial(skc_node *n, skci_peer *p);
/* A send's fast path (takes call_lock): pushes frame m (len payload bytes)
 * at once when the peer's link is up and nothing is queued ahead; returns
 * 1 with *rc set (m consumed), or 0 (m still the caller's). */
int skci_peer_push_now(
    skc_node *n, const char *name, skci_tmsg *m, size_t len, int *rc);
/* Map changed for peer p: close/redirect links, fail or re-route calls. */
void skci_peer_map_changed(skc_node *n, skci_peer *p);
/* __nowaiting was turned on: fail calls waiting for names that are not in
 * the map. */
void skci_nowaiting_changed(skc_node *n);
/* Closes every peer's link (destroy). */
void skci_peers_close_links(skc_node *n);
void skci_peers_init(skc_node *n);
/* Frees every peer (no lock; after the links are closed). */
void skci_peers_fini(skc_node *n);

/* health.c: peer health, heartbeats, redials, monitors (call_lock held
 * unless said) */
void skci_health_init(skc_node *n, int32_t hb_ms, int32_t misses);
/* Frees reports not delivered (destroy, no lock). */
void skci_health_fini(skc_node *n);
/* Peer p's health changed (or not): logs, reports to the monitor, moves
 * calls queued on p through a group elsewhere, plans a redial. */
void skci_health_set(skc_node *n, skci_peer *p, int state, const char *reason);
/* The timer's periodic work: heartbeats, heartbeat timeouts, redials.
 * Returns when it wants to run next (INT64_MAX: when woken). */
int64_t skci_health_tick(skc_node *n, int64_t now);

/* watch.c: a map file that reloads itself */
void skci_watch_init(skc_node *n);
/* Stops watching (destroy, no lock held). */
void skci_watch_fini(skc_node *n);
/* skc_node_map_load loaded another file: watch that one instead. */
void skci_watch_path_changed(skc_node *n);
/* mapapply.c: reads path and merges it (the watch's reload). */
int skci_map_reload_from(skc_node *n, const char *path);
/* mapapply.c: checks the entries of l and merges them all, or none (the
 * error names origin and the entry's line).  0 or the error. */
int skci_map_apply_list(
    skc_node *n, const skci_map_list *l, const char *origin);

/* group.c: groups of peers (call_lock held) */
/* The member of group g a call should go to, never `skip`; NULL (why
 * written) when no member can take it now or later. */
skci_peer *skci_group_pick(
    skc_node *n, skci_peer *g, skci_peer *skip, char *why, size_t whylen);
/* Replaces g's group with grp (taken; NULL: none). */
void skci_group_set(skci_peer *g, skci_group *grp);
void skci_group_free(skci_group *grp);
/* Recomputes which peers are group members and dials those not
 * connected. */
void skci_groups_watch(skc_node *n);
/* The group in the map's syntax, malloc'd. */
char *skci_group_text(const skci_group *grp);

/* peer.c, for lane.c */
/* A link's or lane's callbacks (their arg is its skci_linkref): a reply
 * arrived (NNG thread), a line to log, the link is gone (frees arg). */
void skci_peer_on_reply(void *arg, skci_tmsg *msg);
void skci_peer_on_link_log(void *arg, int level, const char *text);
void skci_peer_on_released(void *arg);
/* Sends an internal request (hello, challenge, heartbeat) of `kind` on
 * lane `lane` of p (0 = its link; connected); done runs under call_lock
 * when it ends.  The call, or NULL when it could not be made. */
skci_call *skci_peer_request(skc_node *n, skci_peer *p, int lane, int kind,
    const char *target, const void *data, size_t len, int32_t timeout_ms,
    void (*done)(skc_node *n, skci_call *c));
/* The HELLO with our cookie proof over the nonces nc (ours) and ns (the
 * server's), on lane `lane`; NULL when it could not be made. */
skci_call *skci_peer_auth_hello(skc_node *n, skci_peer *p, int lane,
    const uint8_t *nc, const uint8_t *ns,
    void (*done)(skc_node *n, skci_call *c));
/* Checks a HELLO reply c (status 0) made over the nonces nc/ns: the
 * server's cookie proof, the body and the identity.  0 with *h (pointing
 * into c's data) and *ticket (NULL without a cookie), or -1 with c's
 * status and detail set to why. */
int skci_peer_hello_verify(skc_node *n, skci_peer *p, skci_call *c,
    const uint8_t *nc, const uint8_t *ns, skci_hello *h,
    const uint8_t **ticket);
#define SKCI_HELLO_TIMEOUT_MS 5000

/* lane.c: a peer's lanes (call_lock held) */
/* The link call c (a CALL, the peer's link UP) goes on: the peer's, or a
 * lane's (c->lane set); NULL when c now waits in a lane's queue for its
 * handshake (sent when it is done). */
skci_link *skci_lane_link(skc_node *n, skci_peer *p, skci_call *c);
/* Takes c (state SKCI_CALL_LANE) off its lane's queue. */
void skci_lane_unqueue(skci_peer *p, skci_call *c);
/* Ends the calls sent on lane `lane` of p (0 = the link) with status. */
void skci_lane_fail_sent(
    skc_node *n, skci_peer *p, int lane, int status, const char *detail);
/* The link left UP: the calls waiting for a lane go back to the peer's
 * queue (they never left), in order. */
void skci_lanes_requeue(skci_peer *p);
/* Gives every lane up (the link is detached): their calls wait in the
 * peer's queue again, and a lane is dialed afresh when next needed. */
void skci_lanes_detach(skc_node *n, skci_peer *p);
/* Frees the lanes (no lock; after the links are released). */
void skci_lanes_free(skci_peer *p);

/* peer.c, for health.c */
/* Gives up the peer's link (state NONE). */
void skci_peer_detach(skc_node *n, skci_peer *p);
/* Sends a heartbeat ping on the peer's link (link UP). */
void skci_peer_heartbeat(skc_node *n, skci_peer *p);
/* The node took its name (open): stop watching the peer of that name. */
void skci_peer_self_named(skc_node *n);

#endif
