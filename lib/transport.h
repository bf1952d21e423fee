/* transport.h -- the NNG layer, seen from the rest of skc.  Only
 * transport.c includes <nng/nng.h>; nothing here exposes NNG types.
 *
 * Server: one REP socket (calls, queries, hellos, pings) served through a
 * pool of contexts that grows up to max_serving, and one PULL socket
 * (sends).  Client: per peer a "link" = one REQ socket with resend
 * disabled and a pool of contexts, one per request in flight (skc matches
 * replies by its own request id), and one PUSH socket.  Callbacks named on_*
 * run on NNG threads: they must only queue work and never block, dial, close
 * or free NNG objects.
 */
#ifndef SKC_LIB_TRANSPORT_H
#define SKC_LIB_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct skci_tmsg skci_tmsg; /* a message: one frame */

int skci_tmsg_alloc(skci_tmsg **out, size_t len);
void skci_tmsg_free(skci_tmsg *m);
uint8_t *skci_tmsg_body(skci_tmsg *m);
size_t skci_tmsg_len(const skci_tmsg *m);
/* Drops n bytes from the front of the body (n <= length), without
 * copying. */
void skci_tmsg_trim_front(skci_tmsg *m, size_t n);

/* The pipe (connection) id a received message came in on; 0 if none. */
uint32_t skci_tmsg_pipe(const skci_tmsg *m);
/* 1 while the connection of that pipe id exists. */
int skci_pipe_alive(uint32_t pipe);
/* Closes a connection by its pipe id (any thread, never blocks). */
void skci_pipe_close(uint32_t pipe);
/* The peer's address of a connection ("tcp://1.2.3.4:5678"), or "?". */
void skci_pipe_addr(uint32_t pipe, char *buf, size_t len);

/* TLS settings for tls+tcp:// URLs (files in PEM); NULL fields are unset.
 * A CA makes TLS mutual: a server then requires a client certificate it
 * signed, a client checks the server's.  Ignored for other schemes. */
typedef struct skci_tls {
    char *cert;
    char *key;
    char *ca;
    char *server_name;
} skci_tls;

/* 1 when t has any setting. */
int skci_tls_configured(const skci_tls *t);
/* Loads the settings as a server and as a client would, to report a bad
 * file or key at create.  0, or SKC_EINVAL/SKC_EIO with the detail. */
int skci_tls_check(const skci_tls *t);

/* ---- server ---- */

typedef struct skci_server skci_server;
typedef struct skci_rctx skci_rctx; /* one request awaiting its reply */

typedef struct skci_server_cfg {
    size_t max_recv;      /* largest frame accepted, bytes */
    uint32_t max_serving; /* requests awaiting replies at once */
    uint32_t max_conns;   /* inbound connections on the REP socket */
    /* A request arrived: answer exactly once with skci_server_reply(). */
    void (*on_request)(void *arg, skci_rctx *rctx, skci_tmsg *msg);
    /* A one-way message arrived on the PULL socket; msg is the callee's.
     * Returns 0, or 1 to stop reading the send port (back-pressure) until
     * skci_server_pull_resume(). */
    int (*on_push)(void *arg, skci_tmsg *msg);
    /* kind: the line's format (lines are rate-limited per kind) */
    void (*on_log)(void *arg, int level, const char *kind, const char *text);
    /* A connection (pipe id) is gone (NNG thread; never blocks). */
    void (*on_pipe_gone)(void *arg, uint32_t pipe);
    const skci_tls *tls; /* NULL = none; must outlive the server */
    void *arg;
} skci_server_cfg;

int skci_server_create(skci_server **out, const skci_server_cfg *cfg);

/* Starts a listener on url.  The first one also starts the PULL listener
 * (if that fails the call listener is closed again) on TCP-like URLs at
 * port send_port: 0 = the call port + 1 (any when that is 0), -1 = any;
 * on other URLs at url + ".send".  *bound (if not NULL) receives the
 * bound URL, malloc'd. */
int skci_server_listen(
    skci_server *s, const char *url, int32_t send_port, char **bound);

/* Closes the inbound connections that sent nothing on the call port
 * within hello_ms of connecting; on a port with half its max_conns or
 * more in use, those that sent nothing for idle_ms (<= 0: that rule is
 * off); and on a port that refused a connection (max_conns) since the
 * last sweep, those that sent nothing for hello_ms (idle_ms if shorter;
 * not when idle_ms <= 0).  Logs how many and returns that number.  Not
 * from a transport callback, nor under a lock the close's callbacks take.
 */
uint32_t skci_server_sweep(skci_server *s, int32_t hello_ms, int32_t idle_ms);

/* Reads the send port again after on_push returned 1.  Not from a
 * transport callback. */
void skci_server_pull_resume(skci_server *s);

/* Connections to the call port and to the send port now. */
void skci_server_conns(skci_server *s, uint32_t *calls, uint32_t *sends);

/* URL of the PULL listener, NULL before the first listen.  Borrowed. */
const char *skci_server_pull_url(skci_server *s);

/* Closes every listener; sockets stay so replies in progress go out. */
void skci_server_stop(skci_server *s);

/* Answers a request: msg (consumed) is the reply frame; NULL drops the
 * request without answer.  Any thread, including on_request. */
void skci_server_reply(skci_rctx *rctx, skci_tmsg *msg);

/* Stops serving: listeners closed, every receive cancelled; when it
 * returns no on_request/on_push runs any more and on_log is not called.
 * Not from a callback. */
void skci_server_shutdown(skci_server *s);

/* Closes the sockets and frees (after skci_server_shutdown, which it
 * calls if needed).  Every rctx is invalid afterwards.  Waits for NNG to
 * tear down the connections.  Not from a callback. */
void skci_server_destroy(skci_server *s);

/* ---- client link to one peer ---- */

typedef struct skci_link skci_link;
typedef struct skci_bg skci_bg;

/* The link's blocking work (its first dial, its close) runs on threads of
 * cfg.bg, so callers never block and may hold their own locks; callbacks
 * on_dialed, on_log and on_released run on those threads, on_reply and
 * on_conn on NNG's.  None runs after on_released. */
typedef struct skci_link_cfg {
    size_t max_recv;       /* largest reply frame accepted */
    uint32_t push_backlog; /* queued one-way messages before SKC_ELIMIT */
    skci_bg *bg;           /* threads for dials and closes */
    void (*on_reply)(void *arg, skci_tmsg *msg); /* msg: callee's */
    /* The connection came up (1) or went down (0): reported once each,
     * in order, a down only after its up.  NNG reconnects by itself. */
    void (*on_conn)(void *arg, int up);
    /* The first connect of skci_link_dial ended: rc 0, SKC_EUNREACHABLE
     * (detail: url and cause).  Not called once the link is released,
     * except when it had already begun. */
    void (*on_dialed)(void *arg, int rc, const char *detail);
    /* A push dial failed (text says why). */
    void (*on_log)(void *arg, int level, const char *text);
    /* The link is closed and freed: arg may be freed. */
    void (*on_released)(void *arg);
    /* An authenticated send connection (skci_link_push_dial with an auth
     * frame) was lost: it needs a new auth frame (NNG thread). */
    void (*on_push_lost)(void *arg);
    /* n sends told OK will not arrive, or may not (text says which and
     * why): dropped from the backlog when the link closed, or given to a
     * send connection that died young (B9).  Any thread, no lock held;
     * also while the link closes, before on_released.  NULL = ignored. */
    void (*on_sends_lost)(void *arg, size_t n, const char *text);
    const skci_tls *tls; /* NULL = none; must outlive the link */
    void *arg;
} skci_link_cfg;

int skci_link_create(skci_link **out, const skci_link_cfg *cfg);

/* Starts connecting the REQ socket to url; the first attempt's result
 * comes to on_dialed, after which NNG reconnects by itself (backoff
 * 100 ms -> 5 s).  Returns 0, SKC_ECLOSED or SKC_ENOMEM (not started). */
int skci_link_dial(skci_link *l, const char *url);

/* 1 while the REQ socket has a connection. */
int skci_link_connected(skci_link *l);

/* Sends a request frame on a context of its own; consumes msg whatever
 * the result.  Never blocks.  The reply (matched by the caller through
 * the id in the frame) comes to on_reply; the context waits for it
 * reply_ms (the caller's remaining deadline) plus a grace period, then is
 * reused.  Returns 0, SKC_ECLOSED or SKC_ENOMEM. */
int skci_link_send(skci_link *l, skci_tmsg *msg, int32_t reply_ms);

/* (Re)connects the PUSH socket to url in the background.  With an auth
 * frame (consumed, also on failure) the PUSH socket is replaced by a new
 * one whose first message is that frame and which keeps one connection
 * only: when it is lost, on_push_lost asks for a new frame. */
int skci_link_push_dial(skci_link *l, const char *url, skci_tmsg *auth);

/* Queues a one-way frame; consumes msg.  0, SKC_ELIMIT, SKC_ECLOSED. */
int skci_link_push(skci_link *l, skci_tmsg *msg);
/* Sends not yet given to a connection: the link's push backlog, held
 * while the send connection is missing or younger than its hold time. */
size_t skci_link_send_backlog(skci_link *l);

/* Gives the link up: from now on it sends nothing and reports nothing but
 * on_released, which comes once its sockets are closed (on a cfg.bg
 * thread; a dial in progress is aborted).  Never blocks; any thread, not
 * from on_released.  0, or SKC_ENOMEM when no thread could be started
 * (the link is then left open). */
int skci_link_release(skci_link *l);

#endif
