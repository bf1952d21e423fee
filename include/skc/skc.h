/*
 * skc.h -- the whole public API of skc, a cluster library in the style of
 * skynet's cluster mode, over NNG.
 *
 * This header is the contract: anything not declared here is not a
 * published API.  Only fixed-width integers, size_t, pointers and the option
 * structs below cross it, so any language with a C FFI can call it.
 *
 * Conventions
 *  - Fallible functions return int: SKC_OK (0) or a negative SKC_E* code.
 *    skc_strerror() gives static text for a code; skc_last_error() gives the
 *    detail of the last failure on the calling thread.
 *  - Out-parameters come first.  `T **out`: the caller owns the result.
 *    Memory handed out by skc is released with skc_free() (or the matching
 *    _destroy function), never with free().
 *  - Inputs are copied; nothing the caller passes is kept after return
 *    (the one exception, skc_unpack_create, says so).
 *
 * Threads
 *  - skc_node: thread-safe, except skc_node_destroy(), which must not run
 *    concurrently with other calls on the same node.
 *  - skc_msg: borrowed by a handler until it returns; one thread at a time.
 *  - skc_reply: one thread at a time; may move between threads.
 *  - skc_pack / skc_unpack: one thread at a time; may move between threads.
 *  - Handlers and async-call callbacks run on the node's worker threads, or,
 *    in caller-driven mode, inside skc_node_poll() on the thread that calls
 *    it; never with an skc lock held.  Only those marked inline
 *    (SKC_SERVICE_INLINE, SKC_CALL_INLINE) may run on the library's
 *    receiving threads.
 */
#ifndef SKC_SKC_H
#define SKC_SKC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SKC_API
#if defined(__GNUC__) || defined(__clang__)
#define SKC_API __attribute__((visibility("default")))
#else
#define SKC_API
#endif
#endif

/* ---------------------------------------------------------------------- */
/* Version                                                                */
/* ---------------------------------------------------------------------- */

#define SKC_VERSION_MAJOR 0
#define SKC_VERSION_MINOR 4
#define SKC_VERSION_PATCH 0
#define SKC_VERSION_STRING "0.4.0"
/* MAJOR*1000000 + MINOR*1000 + PATCH, as skc_version() returns it. */
#define SKC_VERSION_NUMBER                                                    \
    (SKC_VERSION_MAJOR * 1000000 + SKC_VERSION_MINOR * 1000 +                 \
        SKC_VERSION_PATCH)

/* The version of the library actually loaded, as SKC_VERSION_NUMBER.
 * Compare with the macro to detect a header/library mismatch. */
SKC_API uint32_t skc_version(void);

/* The same as a static string, e.g. "0.2.0". */
SKC_API const char *skc_version_string(void);

/* ---------------------------------------------------------------------- */
/* Errors                                                                 */
/* ---------------------------------------------------------------------- */

/* Error codes.  Append only; values are never renumbered.  The same values
 * (negated) travel in reply frames, see docs/PROTOCOL.md. */
enum skc_error {
    SKC_OK = 0,
    SKC_EINVAL = -1,       /* bad argument */
    SKC_ENOMEM = -2,       /* out of memory */
    SKC_ENONODE = -3,      /* node name not in the cluster map */
    SKC_ENODEDOWN = -4,    /* node marked down (false) in the cluster map */
    SKC_EUNREACHABLE = -5, /* could not connect to the node */
    SKC_ENOSERVICE = -6,   /* no such service or name on that node */
    SKC_EHANDLER = -7,     /* the remote handler failed; detail = its text */
    SKC_ETIMEDOUT = -8,    /* the deadline passed */
    SKC_ETOOBIG = -9,      /* message larger than the sender's/peer's limit */
    SKC_ECONNLOST = -10,   /* connection lost after sending: outcome unknown */
    SKC_ECLOSED = -11,     /* the node is closed or being destroyed */
    SKC_EPROTO = -12,      /* malformed frame or protocol mismatch */
    SKC_EBUSY = -13,       /* not now (e.g. destroy from the node's handler) */
    SKC_EEXIST = -14,      /* already exists (name registered, address open) */
    SKC_ETRANSPORT = -15,  /* other transport failure; detail has the cause */
    SKC_ESYNTAX = -16,  /* cluster map: syntax error (file:line in detail) */
    SKC_EIO = -17,      /* a file could not be read */
    SKC_ENOREPLY = -18, /* the service ended or returned without replying */
    SKC_ELIMIT = -19,   /* a configured limit was reached */
    SKC_ESTATE = -20,   /* not valid in this state (e.g. replied twice) */
    SKC_EAUTH = -21     /* refused: cookie, TLS or identity (since 0.4.0) */
};

/* Static text for an error code; never NULL ("unknown error" for codes this
 * library does not know).  Thread-safe. */
SKC_API const char *skc_strerror(int code);

/* The code's name without prefix, e.g. "ETIMEDOUT"; "EUNKNOWN" for unknown
 * codes, "OK" for 0.  Static, thread-safe. */
SKC_API const char *skc_errname(int code);

/* Detail text of the last failing skc call on this thread, e.g.
 * "node 'db' (tcp://127.0.0.1:7102) unreachable: connection refused".
 * Never NULL (may be ""). Valid until the next skc call on this thread.
 * Use the return code to detect failure, not this text. */
SKC_API const char *skc_last_error(void);

/* Releases memory that skc handed out (reply buffers, strings).
 * NULL is a no-op; pass nothing else that skc did not allocate. */
SKC_API void skc_free(void *ptr);

/* ---------------------------------------------------------------------- */
/* Nodes                                                                  */
/* ---------------------------------------------------------------------- */

typedef struct skc_node skc_node;

/* Log levels passed to skc_log_fn. */
#define SKC_LOG_ERROR 1
#define SKC_LOG_WARN 2
#define SKC_LOG_INFO 3
#define SKC_LOG_DEBUG 4

/* Log callback.  `node` is the node's name ("" if it has none), `text` a
 * one-line message without newline; both borrowed.  May be called from any
 * skc thread, never with an skc lock held; must not block for long. */
typedef void (*skc_log_fn)(
    int level, const char *node, const char *text, void *arg);

/* A ready log callback that writes "[skc <node>] LEVEL text" to stderr;
 * pass it as skc_node_opts.log to see what a node reports. */
SKC_API void skc_log_stderr(
    int level, const char *node, const char *text, void *arg);

/* Value for skc_node_opts.workers: no worker threads; handlers and async
 * completions run inside skc_node_poll() on the caller's thread. */
#define SKC_CALLER_DRIVEN (-1)

/* Options for skc_node_create().  Initialise with SKC_NODE_OPTS_INIT; a
 * zero field means "the default". */
typedef struct skc_node_opts {
    uint32_t size;           /* sizeof(skc_node_opts): lets the struct grow */
    const char *name;        /* this node's name; NULL = set by open(name) */
    int32_t call_timeout_ms; /* default deadline of call/query: 10000 */
    uint32_t max_msg_size;   /* payload limit in bytes: 16 MiB */
    int32_t workers;         /* worker threads: 2; or SKC_CALLER_DRIVEN */
    uint32_t max_inflight;   /* outgoing calls pending at once: 65536;
                                beyond -> SKC_ELIMIT */
    uint32_t max_serving;    /* incoming calls being served at once: 1024;
                                beyond, peers wait (back-pressure) */
    uint32_t max_conns;      /* inbound connections: 1024; extra ones are
                                closed */
    skc_log_fn log;          /* NULL = the node logs nothing */
    void *log_arg;           /* passed to log */
    int32_t log_level;       /* highest level passed to log: SKC_LOG_INFO */
    /* since 0.3.0 */
    int32_t heartbeat_ms;     /* a link idle this long is pinged: 1000;
                                 -1 = no heartbeats */
    int32_t heartbeat_misses; /* a peer silent for heartbeat_ms * this
                                 many is declared down: 3 */
    int32_t send_port;        /* port of the send listener (TCP-like
                                 addresses): 0 = the call port + 1, or any
                                 free port when the call port is 0;
                                 -1 = any free port; else this port */
    int32_t log_burst;        /* lines of one kind logged per 10 s: 20;
                                 the rest are counted and the count is
                                 logged; -1 = no limit */
    int32_t max_deadline_ms;  /* the longest deadline a peer's call gets
                                 here: 600000 (10 min); a call asking for
                                 more, or for none, gets this one */
    /* since 0.4.0: what peers can make a node hold (docs/RELIABILITY.md,
     * "Limits"); beyond them a call is answered SKC_ELIMIT at once and the
     * node stops reading sends until there is room (back-pressure) */
    uint32_t max_mailbox;       /* messages waiting per service: 100000 */
    uint32_t max_mailbox_bytes; /* their payload bytes per service: 64 MiB */
    uint32_t max_queued_bytes;  /* payload bytes waiting in all mailboxes
                                   of the node: 256 MiB */
    int32_t hello_timeout_ms;   /* a connection to the call port that sends
                                   nothing this long after connecting is
                                   closed: 10000; -1 = never */
    int32_t idle_timeout_ms;    /* while half of max_conns or more are in
                                   use on a port, a connection to it that
                                   sent nothing this long is closed: 60000;
                                   -1 = never (heartbeats keep a peer's
                                   call link busy; its send link redials);
                                   a port that refused a connection closes
                                   those quiet for hello_timeout_ms */
    /* since 0.4.0: the cluster map kept in etcd v3 (docs/OPERATIONS.md,
     * "Running skc with etcd").  etcd NULL = no etcd (the map comes from
     * files or the map functions). */
    const char *etcd;          /* "http://127.0.0.1:2379", "https://...",
                                  or "etcd://host:port/prefix" (http) */
    const char *etcd_prefix;   /* key prefix: the etcd:// path, else "/skc" */
    int32_t etcd_ttl_s;        /* lease of this node's key, seconds: 3 */
    const char *etcd_cafile;   /* https: CA file to verify etcd with */
    const char *etcd_certfile; /* https: client certificate (PEM) */
    const char *etcd_keyfile;  /* https: the certificate's key (PEM) */
    const char *etcd_listen;   /* what skc_node_open(node, name) listens on
                                  with etcd: "127.0.0.1:0" (a free port) */
    /* since 0.4.0: who may talk to this node (docs/SECURITY.md) */
    const char *cluster_cookie;      /* shared secret, 1..1024 bytes; every
                                        connection, both ports, must prove it
                                        (HMAC challenge-response in the HELLO).
                                        NULL = no cookie */
    const char *cluster_cookie_file; /* read the cookie from this file (its
                                        first line); the file must not be
                                        readable by group or others */
    const char *tls_cert;            /* PEM certificate for tls+tcp:// (both
                                        ports, listeners and dialers) */
    const char *tls_key;             /* PEM private key of tls_cert */
    const char *tls_ca;              /* PEM CA file: peers must present a
                                        certificate it signed (mutual TLS) */
    const char *tls_server_name;     /* name checked against the server's
                                        certificate when dialing; NULL = no
                                        name check (the CA still applies) */
    int32_t names_only;              /* 1 = refuse calls and sends from peers
                                        that target a raw handle (":hex") */
    /* since 0.4.0 (issue #15): lanes, more connections to each peer, so
     * that a large call does not hold up the small ones behind it
     * (docs/PERFORMANCE.md, "Lanes").  A lane is dialed when a call first
     * needs it, and proves the cluster cookie like the peer's link. */
    int32_t large_msg; /* a call whose payload has at least this many bytes
                          goes on the peer's large-message lane: 65536;
                          -1 = no such lane */
    int32_t channels;  /* lanes a call may choose with SKC_CALL_CHANNEL(k):
                          channel k (1..255) goes on lane (k - 1) % channels:
                          4; -1 = none (the channel is ignored) */
} skc_node_opts;

#define SKC_NODE_OPTS_INIT                                                    \
    {                                                                         \
        sizeof(skc_node_opts), NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0, 0, 0,   \
            0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, 0, NULL, NULL, NULL, NULL,    \
            NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0                       \
    }

/* Creates a node that is not yet listening.  It can call other nodes at
 * once (after a cluster map is loaded or entries are set).
 * opts may be NULL (all defaults).  On success *out is owned by the caller;
 * release it with skc_node_destroy().
 * With opts->etcd (since 0.4.0) the map is kept in etcd: create reads the
 * prefix once (waiting up to 3 s; an etcd that does not answer is logged
 * and retried in the background) and a thread watches it from then on.
 * Returns SKC_OK, SKC_EINVAL (bad option; also a non-NULL etcd in a
 * library built without etcd support), SKC_ENOMEM, SKC_ETRANSPORT. */
SKC_API int skc_node_create(skc_node **out, const skc_node_opts *opts);

/* Closes every listener and link, ends every pending call with SKC_ECLOSED,
 * waits for running handlers to return, and frees the node.  Deferred
 * replies still held by the application stay valid objects: answering them
 * afterwards returns SKC_ECLOSED and frees them.  NULL is a no-op.
 * A link whose first connection is still being set up gets up to 0.5 s
 * to finish it before it is closed (NNG 1.5.2 would otherwise keep that
 * connection's memory; docs/RELIABILITY.md, B7).
 * Returns SKC_OK, or SKC_EBUSY (and does nothing) when called from one of
 * this node's handlers or callbacks. */
SKC_API int skc_node_destroy(skc_node *node);

/* This node's name ("" if none yet).  Borrowed; lives as long as the node. */
SKC_API const char *skc_node_name(const skc_node *node);

/* Starts listening so other nodes can reach this one.  `where` is a node
 * name from the cluster map (its address is used, and the node takes that
 * name if it has none), or an address: "host:port" (= tcp://host:port) or
 * any NNG URL (tcp://, ipc://, inproc://, tls+tcp:// ...).  Port 0 picks a
 * free port.  May be called several times (several listeners serve the same
 * services).  If out_addr is not NULL, *out_addr receives the bound address
 * as a URL (release with skc_free).
 * The first call also opens the send listener (one-way messages): on a
 * TCP-like address, the call port + 1 since 0.3.0, so a firewall opens
 * exactly two ports (a free port instead when the call port is 0, when the
 * map gives port + 1 to another node, or, with a WARN line, when port + 1
 * is in use; skc_node_opts.send_port fixes it); on ipc:// and inproc://,
 * the address + ".send".
 * With skc_node_opts.etcd (since 0.4.0) a name is not looked up: the node
 * takes it, listens on skc_node_opts.etcd_listen, and the first open
 * announces the node under its name with the bound address (the node
 * needs a name: SKC_EINVAL otherwise); SKC_EEXIST when a live node has
 * announced that name (nothing is left open).  An etcd that does not
 * answer is logged, and the announcement retried in the background.
 * Returns SKC_OK, SKC_EINVAL, SKC_ENONODE / SKC_ENODEDOWN (name not usable),
 * SKC_EEXIST (address in use, or the send_port option's port; nothing is
 * left open), SKC_ETRANSPORT, SKC_ECLOSED. */
SKC_API int skc_node_open(skc_node *node, char **out_addr, const char *where);

/* Stops every listener opened by skc_node_open().  Requests already being
 * served are answered; outgoing calls are not affected.  Returns SKC_OK.
 * skc_node_close_listeners() (since 0.3.0) is the same function under the
 * name the Lua and Python bindings use; skc_node_close() stays. */
SKC_API int skc_node_close_listeners(skc_node *node);
SKC_API int skc_node_close(skc_node *node);

/* ---------------------------------------------------------------------- */
/* Cluster map                                                            */
/* ---------------------------------------------------------------------- */

/* The map associates node names with addresses, as skynet's cluster config:
 *   db = "127.0.0.1:7102"      -- an address (host:port or NNG URL)
 *   old = false                -- the node is down: calls fail at once
 *   db = { "db_a", "db_b" }    -- a group (since 0.3.0; see "Peer health")
 *   __nowaiting = true         -- calls to unknown names fail at once
 * A name absent from the map is unknown: a call to it waits (bounded by its
 * deadline) for a reload that defines it, unless __nowaiting is true.
 * Every change merges: names not mentioned keep their value.  Changing a
 * name's address closes the old link; calls in flight on it fail with
 * SKC_ECONNLOST, calls not yet sent go to the new address. */

/* Reads a map file (skynet's format: `name = value` assignments and/or a
 * `return { ... }` table, -- and --[[ ]] comments, ["quoted"] keys) and
 * merges it.  Remembers the path for skc_node_map_reload().  A malformed
 * file changes nothing and returns SKC_ESYNTAX with "file:line: expected
 * ..." in skc_last_error(); an unreadable one SKC_EIO. */
SKC_API int skc_node_map_load(skc_node *node, const char *path);

/* Re-reads the file last given to skc_node_map_load() and merges it.
 * SKC_ESTATE if no file was loaded. */
SKC_API int skc_node_map_reload(skc_node *node);

/* Outcome of a reload made by skc_node_map_watch() (since 0.3.0): status
 * SKC_OK (detail: the file) or the error (detail: "file:line: expected
 * ..." for a malformed edit, which changed nothing).  Runs on a worker or
 * in skc_node_poll(), never with an skc lock held. */
typedef void (*skc_map_reload_fn)(void *arg, int status, const char *detail);

/* Watches the file last given to skc_node_map_load() (since 0.3.0): when
 * it changes on disk -- edited in place, replaced by a rename, a symlink
 * swapped -- the node reloads it (a merge, as skc_node_map_reload) about
 * 100 ms after the last change and then calls fn (may be NULL).  A
 * malformed edit changes nothing and is logged at WARN with file:line.
 * Loading another file moves the watch to it.  on = 0 stops watching.
 * Returns SKC_OK, SKC_ESTATE (no file loaded), SKC_EIO (the directory
 * cannot be watched). */
SKC_API int skc_node_map_watch(
    skc_node *node, int on, skc_map_reload_fn fn, void *arg);

/* Merges a map given as text in the file format.  `origin` names it in
 * error messages (NULL = "<string>"). */
SKC_API int skc_node_map_parse(
    skc_node *node, const char *text, const char *origin);

/* Sets one entry.  addr NULL = down (false).  Options: name "__nowaiting"
 * with addr "true" or "false" (NULL = false). */
SKC_API int skc_node_map_set(
    skc_node *node, const char *name, const char *addr);

/* Sets several entries at once, all or nothing (same rules as
 * skc_node_map_set for each pair; addrs[i] NULL = down). */
SKC_API int skc_node_map_update(skc_node *node, const char *const *names,
    const char *const *addrs, size_t count);

/* Looks up an entry.  On SKC_OK *out_addr is the address as a URL (release
 * with skc_free), or NULL if the node is marked down; for a group (since
 * 0.3.0) it is the group in the map's syntax, e.g. {"db_a","db_b"} or
 * {"a","b",policy="random"}.  SKC_ENONODE if the name is absent. */
SKC_API int skc_node_map_get(
    skc_node *node, char **out_addr, const char *name);

/* Every name the map has an entry for (since 0.4.0): nodes with an
 * address, nodes marked down and groups (not options, nor names only
 * waited for), sorted, each followed by a newline, in *out (release with
 * skc_free; "" for an empty map).  Returns SKC_OK, SKC_EINVAL,
 * SKC_ENOMEM. */
SKC_API int skc_node_map_names(skc_node *node, char **out);

/* Where the map comes from (since 0.4.0), in *out (release with skc_free):
 * "etcd <endpoint> prefix <prefix>" for a node created with
 * skc_node_opts.etcd, else "file <path>" for the last file loaded, else
 * "" (entries set by calls only).  Returns SKC_OK, SKC_EINVAL,
 * SKC_ENOMEM. */
SKC_API int skc_node_map_source(skc_node *node, char **out);

/* ---------------------------------------------------------------------- */
/* Services, messages, replies                                            */
/* ---------------------------------------------------------------------- */

typedef struct skc_msg skc_msg;
typedef struct skc_reply skc_reply;

/* Message kinds, from skc_msg_kind(). */
#define SKC_MSG_CALL 1 /* a request: the caller waits for a reply */
#define SKC_MSG_SEND 2 /* one-way: no reply is possible */

/* A service's handler.  It runs for one message at a time, in arrival
 * order (a service is an actor); different services run in parallel.
 * `msg` is borrowed until the handler returns.  For a call, the handler
 * answers with skc_msg_reply()/skc_msg_fail(), or takes the reply with
 * skc_msg_defer() to answer later from any thread; if it does none of
 * these, the caller gets SKC_ENOREPLY. */
typedef void (*skc_handler_fn)(
    skc_node *node, uint32_t service, skc_msg *msg, void *arg);

/* Creates a service; *out receives its handle (never 0), unique within the
 * node for the node's lifetime.  Returns SKC_OK, SKC_EINVAL, SKC_ENOMEM,
 * SKC_ECLOSED. */
SKC_API int skc_service_create(
    skc_node *node, uint32_t *out, skc_handler_fn fn, void *arg);

/* Flags for skc_service_create_ex(). */
#define SKC_SERVICE_INLINE 0x1u

/* skc_service_create() with flags (0 = the same as skc_service_create).
 * Since 0.2.0.
 *
 * SKC_SERVICE_INLINE: when a message arrives for this service while it is
 * idle with an empty mailbox, the handler runs at once on the library's
 * thread that received the message, instead of being handed to a worker.
 * This saves a thread hand-off per message (see docs/PERFORMANCE.md); the
 * actor rules are unchanged (one message at a time, arrival order).  Mail
 * that arrives meanwhile waits in the mailbox; the thread that ran the
 * handler goes on with it for up to 255 more messages or 5 ms more, and
 * then a worker takes over the rest.
 * The handler must not block: while it runs, that thread receives
 * nothing else.  It may reply, fail, defer, send and call asynchronously;
 * skc_node_call(), skc_node_query(), skc_node_poll(), skc_node_close()
 * and skc_node_destroy() return SKC_EBUSY there.  On a caller-driven node
 * (SKC_CALLER_DRIVEN) the flag is ignored: user code runs only in
 * skc_node_poll().
 * Returns as skc_service_create(), and SKC_EINVAL for an unknown flag. */
SKC_API int skc_service_create_ex(skc_node *node, uint32_t *out,
    skc_handler_fn fn, void *arg, uint32_t flags);

/* Destroys a service: its names are unregistered, messages still queued
 * for it get SKC_ENOREPLY replies, and when this returns its handler is not
 * running and will never run again (except when called from that very
 * handler: then it finishes the current message).  SKC_ENOSERVICE if no
 * such handle. */
SKC_API int skc_service_destroy(skc_node *node, uint32_t service);

/* Registers a name for a service.  "@name" is a cluster name, ".name" a
 * node-local name (both reachable by other nodes as targets); a bare name
 * means "@name".  Names are 1..255 bytes.  SKC_EEXIST if the name is taken
 * by another service; registering the same pair again is SKC_OK.  A
 * service may have several names. */
SKC_API int skc_name_register(
    skc_node *node, const char *name, uint32_t service);

/* Removes a name (same forms as skc_name_register).  SKC_ENOSERVICE if it
 * was not registered. */
SKC_API int skc_name_unregister(skc_node *node, const char *name);

/* Looks a name up on this node.  SKC_ENOSERVICE if unknown. */
SKC_API int skc_name_lookup(skc_node *node, uint32_t *out, const char *name);

/* The payload of a message, borrowed from msg. len may be NULL. */
SKC_API const void *skc_msg_data(const skc_msg *msg, size_t *len);

/* SKC_MSG_CALL or SKC_MSG_SEND. */
SKC_API int skc_msg_kind(const skc_msg *msg);

/* Milliseconds left before the caller gives up (>= 0), or -1 if the message
 * has no deadline (sends).  A call never waits in a mailbox longer than
 * this node's max_deadline_ms, whatever its caller asked for. */
SKC_API int32_t skc_msg_remaining_ms(const skc_msg *msg);

/* The name the message was addressed to ("@sdb", ".db", ":0000000a").
 * Borrowed from msg. */
SKC_API const char *skc_msg_target(const skc_msg *msg);

/* Replies to a call with a payload (copied).  SKC_ESTATE if msg is a send or
 * was already answered or deferred; SKC_ETOOBIG if larger than the caller
 * accepts (the caller then gets SKC_ETOOBIG).  After this call the bytes
 * from skc_msg_data() must not be read again: when the reply is the
 * request's own payload (an echo) skc sends it in place, without a copy. */
SKC_API int skc_msg_reply(skc_msg *msg, const void *data, size_t len);

/* Replies to a call with an error: the caller gets SKC_EHANDLER and `text`
 * (truncated to 4096 bytes) as its detail. */
SKC_API int skc_msg_fail(skc_msg *msg, const char *text);

/* Takes the reply of a call out of the handler, to answer later from any
 * thread with skc_reply_send()/skc_reply_fail(), or abandon it with
 * skc_reply_free().  SKC_ESTATE if msg is a send or already answered. */
SKC_API int skc_msg_defer(skc_msg *msg, skc_reply **out);

/* Answers a deferred reply and frees it (always, whatever the result).
 * Returns SKC_OK, SKC_ETOOBIG (caller gets SKC_ETOOBIG instead),
 * SKC_ECLOSED (the node is gone), SKC_EINVAL (NULL). */
SKC_API int skc_reply_send(skc_reply *reply, const void *data, size_t len);

/* Answers a deferred reply with an error text and frees it. */
SKC_API int skc_reply_fail(skc_reply *reply, const char *text);

/* Abandons a deferred reply: the caller gets SKC_ENOREPLY.  NULL is a no-op.
 */
SKC_API void skc_reply_free(skc_reply *reply);

/* ---------------------------------------------------------------------- */
/* Calling other nodes                                                    */
/* ---------------------------------------------------------------------- */

/* Targets: "@name" (cluster name), ".name" (node-local name) or ":hex"
 * (service handle, e.g. ":0000000a").  timeout_ms: 0 = the node's default,
 * > 0 = that many milliseconds; every call ends by its deadline. */

/* Calls a service on node `peer` and waits for the reply.  On SKC_OK *out
 * and *out_len receive the reply payload (release with skc_free; *out may be
 * non-NULL for an empty reply).  On failure *out is NULL and
 * skc_last_error() says what happened and where.
 * In caller-driven mode, handlers of this node do not run while this
 * waits: use skc_node_call_async() to call your own node from a handler.
 * Returns SKC_OK or SKC_EINVAL, SKC_ENONODE, SKC_ENODEDOWN,
 * SKC_EUNREACHABLE, SKC_ENOSERVICE, SKC_EHANDLER, SKC_ETIMEDOUT,
 * SKC_ETOOBIG, SKC_ECONNLOST, SKC_ECLOSED, SKC_EPROTO, SKC_ELIMIT,
 * SKC_ENOREPLY. */
SKC_API int skc_node_call(skc_node *node, void **out, size_t *out_len,
    const char *peer, const char *target, const void *data, size_t len,
    int32_t timeout_ms);

/* Completion of skc_node_call_async().  status is SKC_OK (data/len hold the
 * reply payload) or an error code (detail holds the text, data is NULL).
 * Everything is borrowed until the callback returns. */
typedef void (*skc_call_fn)(
    int status, const void *data, size_t len, const char *detail, void *arg);

/* Starts a call; `cb` runs exactly once with the outcome, on a worker
 * thread or in skc_node_poll() (never inside this function).  If this
 * returns an error, cb never runs. */
SKC_API int skc_node_call_async(skc_node *node, const char *peer,
    const char *target, const void *data, size_t len, int32_t timeout_ms,
    skc_call_fn cb, void *arg);

/* Flags for skc_node_call_async_ex() and skc_node_call_ex(). */
#define SKC_CALL_INLINE 0x1u
/* The call's channel (since 0.4.0), k = 1..255, in bits 8..15 of the
 * flags; 0 = none.  Calls with the same channel to one peer travel on one
 * connection of their own (a lane, see skc_node_opts.channels), in the
 * order made, and are not held up by calls on other lanes: skynet's
 * dedicated channels, `channel = key % N + 1` (k must be 1..255: the
 * macro keeps the low 8 bits).  Ignored by a node created with channels
 * -1; a call to a node that is not up yet waits for it as any call. */
#define SKC_CALL_CHANNEL(k) ((((uint32_t)(k)) & 0xffu) << 8)
#define SKC_CALL_CHANNEL_MASK 0xff00u

/* skc_node_call_async() with flags (0 = the same).  Since 0.2.0.
 *
 * SKC_CALL_INLINE: when the reply arrives, `cb` runs at once on the
 * library's thread that received it, instead of being handed to a worker.
 * The same rules as for SKC_SERVICE_INLINE handlers apply: cb must not
 * block, blocking skc functions return SKC_EBUSY in it, and the flag is
 * ignored on a caller-driven node.  Errors that do not come with a reply
 * (timeouts, lost connections, shutdown) still run cb on a worker. */
SKC_API int skc_node_call_async_ex(skc_node *node, const char *peer,
    const char *target, const void *data, size_t len, int32_t timeout_ms,
    uint32_t flags, skc_call_fn cb, void *arg);

/* skc_node_call() with flags (since 0.4.0): 0 = the same, or a channel,
 * SKC_CALL_CHANNEL(k) (SKC_CALL_INLINE means nothing here: SKC_EINVAL). */
SKC_API int skc_node_call_ex(skc_node *node, void **out, size_t *out_len,
    const char *peer, const char *target, const void *data, size_t len,
    int32_t timeout_ms, uint32_t flags);

/* Sends a one-way message.  Returns once the message is queued; delivery is
 * not acknowledged (like skynet's cluster.send).  Fails at once with
 * SKC_ENODEDOWN, SKC_ENONODE (only with __nowaiting), SKC_ETOOBIG,
 * SKC_EINVAL, SKC_ELIMIT (send backlog full), or SKC_EUNREACHABLE when
 * the peer's send port has not kept a connection for 3 s (refused, full
 * or unreachable: the message would go nowhere); a message that cannot
 * be delivered later is dropped with a log line.  A receiver whose
 * mailbox for it is full stops reading sends until there is room, so the
 * sender's backlog fills and this returns SKC_ELIMIT.  Sends from one
 * node to one peer are handled in the order sent, and a call to that peer
 * started after this returned (skc_node_call, skc_node_call_async) is put in
 * its service's mailbox after this send, so a call to the same service sees
 * the send's effect (skynet's order).  A send lost with its connection holds
 * that call at most 500 ms (a quarter of its deadline if shorter); the peer
 * then runs it and logs a WARN line.  A peer running an older skc (no order
 * feature in its HELLO reply) may handle the call first.  See
 * docs/PROTOCOL.md, "Order of sends and calls". */
SKC_API int skc_node_send(skc_node *node, const char *peer, const char *target,
    const void *data, size_t len);

/* Asks node `peer` for the handle registered under `name` ("@x", ".x" or
 * bare = "@x").  SKC_ENOSERVICE if the peer has no such name; other errors
 * as skc_node_call. */
SKC_API int skc_node_query(skc_node *node, uint32_t *out, const char *peer,
    const char *name, int32_t timeout_ms);

/* Completion of skc_node_query_async(): status SKC_OK with the handle, or
 * an error code with detail (borrowed until the callback returns). */
typedef void (*skc_query_fn)(
    int status, uint32_t handle, const char *detail, void *arg);

/* skc_node_query without waiting: `cb` runs exactly once, on a worker
 * thread or in skc_node_poll() (never inside this function).  If this
 * returns an error, cb never runs. */
SKC_API int skc_node_query_async(skc_node *node, const char *peer,
    const char *name, int32_t timeout_ms, skc_query_fn cb, void *arg);

/* ---------------------------------------------------------------------- */
/* Peer health and groups (since 0.3.0)                                   */
/* ---------------------------------------------------------------------- */

/* Each peer this node talks to is watched: a link that has been idle for
 * heartbeat_ms is pinged, and a peer that stays silent for heartbeat_ms *
 * heartbeat_misses (3 s by default: a partition, a host that lost power)
 * is declared down; a peer that closes its connections (a crash, kill -9)
 * is down at once.  A peer declared down fails the calls already sent to
 * it with SKC_ECONNLOST (their outcome is unknown) and is redialled with
 * backoff (100 ms doubling to 5 s).
 *
 * A map name may stand for a group of other names (see the map format):
 *   db = { "db_a", "db_b" }                         -- failover
 *   sdb = { "db_a", "db_b", policy = "roundrobin" } -- or "random"
 * A call, send, query or ping to a group goes to one member chosen by the
 * policy among the members that are up ("failover": the first one up, in
 * order, so it returns to the first member when that comes back).  Group
 * members are connected and watched as soon as the group is in the map.
 * A request moves to another member only while it provably never left
 * this node (no connection, refused, marked down); a request already sent
 * to a member that dies ends with SKC_ECONNLOST and is never repeated. */

/* Peer states, from skc_node_peer_state() and monitors. */
#define SKC_PEER_UNKNOWN 0    /* not contacted yet, or not in the map */
#define SKC_PEER_CONNECTING 1 /* connecting or reconnecting */
#define SKC_PEER_UP 2         /* connected and answering */
#define SKC_PEER_DOWN 3       /* unreachable, lost, silent or marked down */

/* A peer changed state: up is 1 (SKC_PEER_UP) or 0 (SKC_PEER_DOWN).
 * reason is one of "connected", "refused", "unreachable", "reset" (the
 * connection was closed or lost), "heartbeat timeout", "marked down" (false
 * in the map), "address changed", "hello refused" (not a compatible skc
 * node), "removed" (the node is being destroyed).  addr is the peer's
 * address as a URL ("" if it has none).  Everything is borrowed until the
 * callback returns.  Runs on a worker thread or in skc_node_poll() (as call
 * completions do), never with an skc lock held, one report at a time and
 * in the order the changes happened; it may call skc functions. */
typedef void (*skc_monitor_fn)(
    void *arg, const char *peer, int up, const char *reason, const char *addr);

/* Sets the node's monitor (NULL stops reporting).  Only changes after
 * this call are reported; ask skc_node_peer_state() for the present.
 * Returns SKC_OK or SKC_EINVAL. */
SKC_API int skc_node_monitor(skc_node *node, skc_monitor_fn fn, void *arg);

/* The present state of peer `peer` (a node or a group name): *state is
 * SKC_PEER_*; for a group, UP if a member is up, DOWN if every member is
 * down, else CONNECTING.  If detail is not NULL it receives a text such as
 * "tcp://127.0.0.1:7311 down (heartbeat timeout)" or "group (failover):
 * db_a up, db_b down (refused)" (release with skc_free).  Returns SKC_OK,
 * or SKC_EINVAL. */
SKC_API int skc_node_peer_state(
    skc_node *node, const char *peer, int *state, char **detail);

/* Pings peer `peer` (a group: one member, chosen as for a call) and waits
 * for the answer: *rtt_us receives the round-trip time in microseconds.
 * Errors as skc_node_call (no service is involved). */
SKC_API int skc_node_ping(
    skc_node *node, const char *peer, int32_t timeout_ms, int64_t *rtt_us);

/* Completion of skc_node_ping_async(): status SKC_OK with the round-trip
 * time, or an error code with detail (borrowed until it returns). */
typedef void (*skc_ping_fn)(
    int status, int64_t rtt_us, const char *detail, void *arg);

/* skc_node_ping without waiting: cb runs exactly once, on a worker thread
 * or in skc_node_poll().  If this returns an error, cb never runs. */
SKC_API int skc_node_ping_async(skc_node *node, const char *peer,
    int32_t timeout_ms, skc_ping_fn cb, void *arg);

/* Sets a group entry in the map: name stands for members[0..count-1]
 * (node names, not groups) with policy "failover" (NULL), "roundrobin" or
 * "random".  Same merge rules as skc_node_map_set().  SKC_EINVAL for an
 * empty or repeated member or an unknown policy; SKC_ESYNTAX for a member
 * that is a group (as a map file would). */
SKC_API int skc_node_map_set_group(skc_node *node, const char *name,
    const char *const *members, size_t count, const char *policy);

/* ---------------------------------------------------------------------- */
/* Statistics (since 0.4.0)                                              */
/* ---------------------------------------------------------------------- */

/* The node's counters and gauges as one JSON object (UTF-8, NUL-ended;
 * the schema is in docs/OPERATIONS.md, "Statistics"): calls and sends
 * made and how they ended (failures by error name), requests and sends
 * received, replies, bytes, calls in flight and being served, connections,
 * workers, mailboxes, and per peer its address, state, link, round-trip
 * time, queued and sent calls, send backlog and last error.  Always on;
 * the counting costs one add per event.  On SKC_OK *json is released with
 * skc_free().  Any thread, also from handlers and callbacks. */
SKC_API int skc_node_stats(skc_node *node, char **json);

/* The same JSON, asked of node `peer` over the network (a STATS request,
 * docs/PROTOCOL.md; what `skc stats NODE` prints).  Blocks like
 * skc_node_call; timeout_ms 0 = the node's default.  On SKC_OK *json is
 * released with skc_free().  Errors as skc_node_ping; SKC_EPROTO from a
 * node older than 0.4.0, which does not know the request. */
SKC_API int skc_node_stats_remote(
    skc_node *node, const char *peer, int32_t timeout_ms, char **json);

/* ---------------------------------------------------------------------- */
/* Caller-driven execution (for single-threaded hosts: Lua, Python, loops) */
/* ---------------------------------------------------------------------- */

/* A file descriptor that becomes readable when skc_node_poll() has work.
 * Owned by the node; do not read or close it.  SKC_ESTATE if the node has
 * worker threads. */
SKC_API int skc_node_fd(skc_node *node, int *out_fd);

/* Runs ready handlers and call completions on this thread, waiting up to
 * timeout_ms (0 = do not wait, < 0 = wait until something is ready) for the
 * first one.  Returns how many it ran (>= 0), or SKC_ESTATE (node has
 * workers), SKC_EBUSY (called from inside a handler). */
SKC_API int skc_node_poll(skc_node *node, int32_t timeout_ms);

/* Wakes a thread blocked in skc_node_poll() (it returns 0).  Safe from any
 * thread and from signal-free contexts. */
SKC_API int skc_node_wakeup(skc_node *node);

/* ---------------------------------------------------------------------- */
/* Payloads: zero or more MessagePack values back to back                 */
/* ---------------------------------------------------------------------- */

typedef struct skc_pack skc_pack;
typedef struct skc_unpack skc_unpack;

/* Value types reported by skc_unpack_next(). */
#define SKC_T_NIL 0
#define SKC_T_BOOL 1
#define SKC_T_INT 2   /* signed, fits int64 (item.i) */
#define SKC_T_UINT 3  /* unsigned beyond INT64_MAX (item.u) */
#define SKC_T_FLOAT 4 /* item.d */
#define SKC_T_STR 5   /* item.ptr / item.len, not NUL-terminated */
#define SKC_T_BIN 6   /* item.ptr / item.len */
#define SKC_T_ARRAY 7 /* item.count elements follow */
#define SKC_T_MAP 8   /* item.count key/value pairs follow (2*count items) */
#define SKC_T_EXT 9   /* item.ext_type, item.ptr / item.len */

/* One value read by skc_unpack_next().  Containers are flattened: an array
 * item is followed by its elements, a map item by key, value, key, value. */
typedef struct skc_item {
    uint32_t size;    /* sizeof(skc_item), set by the caller */
    int32_t type;     /* SKC_T_* */
    int64_t i;        /* BOOL (0/1) and INT */
    uint64_t u;       /* UINT */
    double d;         /* FLOAT */
    const char *ptr;  /* STR, BIN, EXT bytes: borrowed from the reader */
    size_t len;       /* STR, BIN, EXT length */
    uint32_t count;   /* ARRAY elements, MAP pairs */
    int32_t ext_type; /* EXT */
} skc_item;

#define SKC_ITEM_INIT                                                         \
    {                                                                         \
        sizeof(skc_item), 0, 0, 0, 0.0, NULL, 0, 0, 0                         \
    }

/* Payload builder.  Every skc_pack_* append returns SKC_OK, SKC_EINVAL
 * (pack NULL, or data NULL with a length), SKC_ENOMEM or SKC_ETOOBIG (a
 * string or binary over 4 GiB - 1); a failed append leaves the builder as it
 * was, so it always holds whole values. */

/* Creates an empty payload builder; *out is NULL on failure. */
SKC_API int skc_pack_create(skc_pack **out);
/* Frees it.  NULL is a no-op. */
SKC_API void skc_pack_destroy(skc_pack *pack);
/* Empties it for reuse. */
SKC_API void skc_pack_reset(skc_pack *pack);
/* Appends one value.  Containers: append the header, then its elements. */
SKC_API int skc_pack_nil(skc_pack *pack);
SKC_API int skc_pack_bool(skc_pack *pack, int value);
SKC_API int skc_pack_int(skc_pack *pack, int64_t value);
SKC_API int skc_pack_uint(skc_pack *pack, uint64_t value);
SKC_API int skc_pack_double(skc_pack *pack, double value);
SKC_API int skc_pack_str(skc_pack *pack, const char *s, size_t len);
SKC_API int skc_pack_bin(skc_pack *pack, const void *data, size_t len);
SKC_API int skc_pack_array(skc_pack *pack, uint32_t count);
SKC_API int skc_pack_map(skc_pack *pack, uint32_t count);
/* The bytes built so far, borrowed until the next change to pack; never
 * NULL for a valid pack (an empty one gives length 0).  len may be NULL;
 * pack NULL returns NULL. */
SKC_API const void *skc_pack_data(const skc_pack *pack, size_t *len);

/* Creates a reader over data.  The data is NOT copied: it must stay valid
 * and unchanged while the reader and the items it returned are used.
 * (NULL, 0) is an empty payload.  *out is NULL on failure. */
SKC_API int skc_unpack_create(skc_unpack **out, const void *data, size_t len);
/* Frees it.  NULL is a no-op. */
SKC_API void skc_unpack_destroy(skc_unpack *unpack);
/* Reads the next value into *item (whose size field must be set).
 * Returns 1 for a value, 0 at the end of the data, SKC_EPROTO for malformed
 * or truncated data (detail names the byte offset), SKC_EINVAL for bad
 * arguments.  Containers nest at most 64 deep (deeper is SKC_EPROTO), and
 * a container announcing more items than bytes remain is rejected at its
 * header.  Reading is a stream: items before an error were already
 * returned, so trust a payload only once next() returned 0.  After
 * SKC_EPROTO every further call returns it again.  item->ptr points into
 * the reader's data (never NULL for STR/BIN/EXT, even when empty).  Map keys
 * are passed through as they come (duplicates are not checked). */
SKC_API int skc_unpack_next(skc_unpack *unpack, skc_item *item);

#ifdef __cplusplus
}
#endif

#endif /* SKC_SKC_H */
