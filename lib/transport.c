/* transport.c -- the only file that includes <nng/nng.h>.
 *
 * NNG 1.5.2 traps this file is written around (see
 * shared/reference/nng-1.5.2.md):
 *  - REQ resend would run a request twice: the client's REQ socket has
 *    NNG_OPT_REQ_RESENDTIME 0 (never resend; a lost connection fails the
 *    pending receive) and skc matches replies by its own id.  One REQ
 *    context per request in flight, reused from a pool.
 *  - RECVMAXSZ defaults to unlimited: always set on every socket.
 *  - A fresh aio waits forever: every aio gets a timeout.
 *  - Callbacks run on NNG task threads: they only queue work (short locks),
 *    never block, dial, close or free their own aio.
 *  - nng_msg_insert overflows for > 32 bytes: frames are built by callers
 *    in a body allocated at full size, never inserted.
 *  - TLS: NNG_OPT_TLS_CONFIG goes on each listener and dialer before it
 *    starts, never on the socket (nanomsg/nng#1835); mbedTLS's refusals
 *    come back only as "Cryptographic error" or a closed connection, so
 *    dial errors name the likely causes.
 *  - An authenticated PUSH socket (cluster cookie) keeps one connection:
 *    its auth frame must be the first frame on it, and NNG would redial
 *    the same socket and send queued frames first (link_push_dial_auth).
 */
#include "transport.h"

#include "bg.h"
#include "error.h"
#include "url.h"
#include "util.h"

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Overhead NNG adds on top of our frame when it counts RECVMAXSZ. */
#define TRANSPORT_SLACK 64
#define RECV_TIMEOUT_MS 60000 /* re-posted on expiry: just a heartbeat */
#define SEND_TIMEOUT_MS 10000
/* How long a link's PUSH socket may have no connection (its first connect,
 * or a reconnect) before skci_link_push refuses sends. */
#define PUSH_GRACE_MS 3000
/* The most a link's send backlog holds, besides its message count. */
#define SEND_BACKLOG_BYTES (64 << 20)
/* A PUSH connection that lived this long was really accepted. */
#define PUSH_STABLE_MS 500
/* Sends go to a new PUSH connection once it has lived this long (B9): a
 * peer whose send port is full closes it within milliseconds. */
#define PUSH_HOLD_MS 100
/* ... or this long when the one before died young (a refusal can take
 * longer to come on a loaded machine). */
#define PUSH_HOLD_YOUNG_MS 500
/* A PUSH connection closed within this of coming up died young. */
#define PUSH_YOUNG_MS 1000
#define DRAIN_MAX 32

static int
transport_error(int rv, int fallback, const char *what, const char *url)
{
    int rc;
    switch (rv) {
    case NNG_ETIMEDOUT:
        rc = SKC_ETIMEDOUT;
        break;
    case NNG_ECLOSED:
        rc = SKC_ECLOSED;
        break;
    case NNG_ENOMEM:
        rc = SKC_ENOMEM;
        break;
    case NNG_EADDRINUSE:
        rc = SKC_EEXIST;
        break;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
        rc = SKC_EINVAL;
        break;
    case NNG_ECRYPTO:
    case NNG_EPEERAUTH:
        rc = SKC_EAUTH;
        break;
    default:
        rc = fallback;
        break;
    }
    return skci_error(rc, "%s %s: %s", what, url ? url : "", nng_strerror(rv));
}

/* ---- messages ---- */

int
skci_tmsg_alloc(skci_tmsg **out, size_t len)
{
    nng_msg *m;
    int rv = nng_msg_alloc(&m, len);
    if (rv != 0) {
        return skci_error(
            SKC_ENOMEM, "cannot allocate a %zu-byte message", len);
    }
    *out = (skci_tmsg *)m;
    return 0;
}

void
skci_tmsg_free(skci_tmsg *m)
{
    if (m != NULL) {
        nng_msg_free((nng_msg *)m);
    }
}

uint8_t *
skci_tmsg_body(skci_tmsg *m)
{
    return nng_msg_body((nng_msg *)m);
}

size_t
skci_tmsg_len(const skci_tmsg *m)
{
    return nng_msg_len((const nng_msg *)m);
}

void
skci_tmsg_trim_front(skci_tmsg *m, size_t n)
{
    nng_msg_trim((nng_msg *)m, n);
}

uint32_t
skci_tmsg_pipe(const skci_tmsg *m)
{
    nng_pipe p = nng_msg_get_pipe((const nng_msg *)m);
    return nng_pipe_id(p) > 0 ? (uint32_t)nng_pipe_id(p) : 0;
}

int
skci_pipe_alive(uint32_t pipe)
{
    nng_pipe p = NNG_PIPE_INITIALIZER;
    p.id = pipe;
    nng_sockaddr sa;
    return nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != NNG_ENOENT;
}

void
skci_pipe_close(uint32_t pipe)
{
    nng_pipe p = NNG_PIPE_INITIALIZER;
    p.id = pipe;
    nng_pipe_close(p);
}

void
skci_pipe_addr(uint32_t pipe, char *buf, size_t len)
{
    nng_pipe p = NNG_PIPE_INITIALIZER;
    p.id = pipe;
    nng_sockaddr sa;
    snprintf(buf, len, "?");
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0) {
        return;
    }
    if (sa.s_family == NNG_AF_INET) {
        const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr;
        const uint8_t *pt = (const uint8_t *)&sa.s_in.sa_port;
        snprintf(buf, len, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3],
            (unsigned)(pt[0] << 8 | pt[1]));
    } else if (sa.s_family == NNG_AF_INET6) {
        const uint8_t *a = sa.s_in6.sa_addr;
        const uint8_t *pt = (const uint8_t *)&sa.s_in6.sa_port;
        snprintf(buf, len, "[%x:%x:%x:%x:%x:%x:%x:%x]:%u", a[0] << 8 | a[1],
            a[2] << 8 | a[3], a[4] << 8 | a[5], a[6] << 8 | a[7],
            a[8] << 8 | a[9], a[10] << 8 | a[11], a[12] << 8 | a[13],
            a[14] << 8 | a[15], (unsigned)(pt[0] << 8 | pt[1]));
    } else if (sa.s_family == NNG_AF_IPC) {
        snprintf(buf, len, "ipc://%s", sa.s_ipc.sa_path);
    } else if (sa.s_family == NNG_AF_INPROC) {
        snprintf(buf, len, "inproc://%s", sa.s_inproc.sa_name);
    }
}

/* ---- TLS ---- */

static int
url_is_tls(const char *url)
{
    return strncmp(url, "tls+", 4) == 0;
}

int
skci_tls_configured(const skci_tls *t)
{
    return t != NULL &&
        (t->cert != NULL || t->key != NULL || t->ca != NULL ||
            t->server_name != NULL);
}

/* A whole PEM file, NUL-terminated, malloc'd; NULL with the detail set. */
static char *
tls_read_file(const char *what, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        skci_error(SKC_EIO, "TLS %s %s: cannot open it", what, path);
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = cap <= (1u << 24) ? realloc(buf, cap) : NULL;
            if (nb == NULL) {
                free(buf);
                fclose(f);
                skci_error(SKC_EINVAL, "TLS %s %s: too big", what, path);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) {
            break;
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* A TLS config for a server (listener) or a client (dialer).  0, or an
 * skc error with the detail set. */
static int
tls_config_make(nng_tls_config **out, const skci_tls *t, int server)
{
    nng_tls_config *c;
    int rv = nng_tls_config_alloc(
        &c, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT);
    if (rv != 0) {
        return transport_error(rv, SKC_ETRANSPORT, "TLS config", NULL);
    }
    int rc = 0;
    if (server && (t->cert == NULL || t->key == NULL)) {
        rc = skci_error(
            SKC_EINVAL, "a tls+tcp:// listener needs tls_cert and tls_key");
    }
    if (rc == 0 && (t->cert != NULL) != (t->key != NULL)) {
        rc = skci_error(SKC_EINVAL, "tls_cert and tls_key go together");
    }
    if (rc == 0 && t->cert != NULL) {
        char *cert = tls_read_file("certificate", t->cert);
        char *key = cert ? tls_read_file("key", t->key) : NULL;
        if (cert == NULL || key == NULL) {
            rc = SKC_EIO;
        } else if ((rv = nng_tls_config_own_cert(c, cert, key, NULL)) != 0) {
            rc = skci_error(SKC_EINVAL,
                "TLS certificate %s with key %s: %s (not PEM, or the key does not match)",
                t->cert, t->key, nng_strerror(rv));
        }
        free(cert);
        free(key);
    }
    if (rc == 0 && t->ca != NULL &&
        (rv = nng_tls_config_ca_file(c, t->ca)) != 0) {
        rc = skci_error(
            SKC_EINVAL, "TLS CA file %s: %s", t->ca, nng_strerror(rv));
    }
    if (rc == 0 && !server && t->server_name != NULL &&
        (rv = nng_tls_config_server_name(c, t->server_name)) != 0) {
        rc =
            transport_error(rv, SKC_EINVAL, "TLS server name", t->server_name);
    }
    if (rc == 0) {
        /* A CA: the peer must show a certificate it signed (mutual on the
         * server side).  Without one, encryption only. */
        rv = nng_tls_config_auth_mode(c,
            t->ca != NULL ? NNG_TLS_AUTH_MODE_REQUIRED
                          : NNG_TLS_AUTH_MODE_NONE);
        if (rv != 0) {
            rc = transport_error(rv, SKC_ETRANSPORT, "TLS auth mode", NULL);
        }
    }
    if (rc != 0) {
        nng_tls_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int
skci_tls_check(const skci_tls *t)
{
    nng_tls_config *c;
    int rc = 0;
    if (t->cert != NULL || t->key != NULL) {
        if ((rc = tls_config_make(&c, t, 1)) != 0) {
            return rc;
        }
        nng_tls_config_free(c);
    }
    if ((rc = tls_config_make(&c, t, 0)) != 0) {
        return rc;
    }
    nng_tls_config_free(c);
    return 0;
}

/* Takes the message an aio holds, if any (NULL if none). */
static nng_msg *
aio_take_msg(nng_aio *a)
{
    nng_msg *m = nng_aio_get_msg(a);
    nng_aio_set_msg(a, NULL);
    return m;
}

/* Stops an aio and frees the message it still holds. */
static void
aio_stop_drop(nng_aio *a)
{
    nng_aio_stop(a);
    nng_msg_free(aio_take_msg(a)); /* nng_msg_free(NULL) is a no-op */
}

/* Non-blocking receive/send on a persistent aio without callback: what
 * nng_recvmsg/nng_sendmsg(NNG_FLAG_NONBLOCK) do, minus the nng_aio_alloc
 * (a getrandom system call in 1.5.2) and free on every call. */
static int
nb_recv(nng_socket sock, nng_aio *a, nng_msg **out)
{
    nng_aio_set_timeout(a, NNG_DURATION_ZERO);
    nng_recv_aio(sock, a);
    nng_aio_wait(a);
    int rv = nng_aio_result(a);
    if (rv == 0) {
        *out = aio_take_msg(a);
    }
    return rv;
}

static int
nb_send(nng_socket sock, nng_aio *a, nng_msg *m)
{
    nng_aio_set_msg(a, m);
    nng_aio_set_timeout(a, NNG_DURATION_ZERO);
    nng_send_aio(sock, a);
    nng_aio_wait(a);
    int rv = nng_aio_result(a);
    nng_aio_set_msg(a, NULL);
    if (rv == NNG_ETIMEDOUT) {
        rv = NNG_EAGAIN;
    }
    return rv;
}

/* ---- ordered sender: a socket plus a backlog drained by one aio ----
 *
 * The fast path hands a message to NNG without waiting
 * (NNG_FLAG_NONBLOCK); otherwise the message joins our backlog, which one
 * aio drains in order.  Direct sends only happen when the backlog is
 * empty and the aio idle, so order is kept.
 *
 * What NNG may hold is kept small on purpose (B9, docs/RELIABILITY.md):
 * a PUSH socket has no queue of its own (NNG_OPT_SENDBUF 0), so a message
 * NNG accepted went to a connection, and the aio's message waits in NNG
 * until a connection takes it; if none does (cancelled, timed out,
 * closed) it comes back to the front of the backlog, never sent.  A peer
 * whose send port is full (max_conns) completes NNG's SP header exchange
 * and only then closes the connection; PUSH sees a connection and hands
 * it what it holds, which goes nowhere.  So the backlog is gated: sends go
 * to a connection only once it has lived PUSH_HOLD_MS (PUSH_HOLD_YOUNG_MS
 * when the one before it died young: a refusal on a loaded machine can
 * take longer to arrive), and a new connection closes the gate before NNG
 * starts it (ADD_PRE: the aio's message is taken back, so NNG cannot hand
 * it to the newcomer).  A connection that dies young after the gate
 * opened may have taken sends nobody read: they cannot be taken back
 * (the peer may have read them: at most once), so they are counted as
 * lost and logged (sender_pipe_down), as is a backlog dropped when the
 * link closes. */

typedef struct sender {
    nng_socket sock;
    pthread_mutex_t lk;
    nng_aio *aio;
    nng_aio *nb;   /* fast-path sends, under lk */
    nng_aio *hold; /* the gate's timer */
    nng_msg **ring;
    size_t cap, head, count, limit;
    size_t bytes; /* of the messages in the ring */
    int busy;     /* aio holds a message (or its callback runs) */
    int holding;  /* hold is running */
    int closed;
    int gated; /* hold everything in the backlog (no connection to send on
                  yet, or one too young) */
    /* the connection sends go to (0: none), and since when (ms) */
    uint32_t pipe;
    uint32_t dead_pipe; /* removed before it was reported up */
    int64_t pipe_up;
    int64_t opened; /* ms: the gate opened for pipe (0: not yet) */
    int young;      /* the last connection died young */
    size_t handed;  /* sends taken by pipe since the gate opened */
    size_t dropped; /* sends freed because the link closed */
} sender;

static void sender_cb(void *arg);
static void sender_hold_cb(void *arg);

static int
sender_init(sender *s, nng_socket sock, size_t limit)
{
    memset(s, 0, sizeof(*s));
    s->sock = sock;
    s->limit = limit;
    s->gated = 1;
    pthread_mutex_init(&s->lk, NULL);
    int rv = nng_aio_alloc(&s->nb, NULL, NULL);
    if (rv == 0 && (rv = nng_aio_alloc(&s->aio, sender_cb, s)) != 0) {
        nng_aio_free(s->nb);
    }
    if (rv == 0 && (rv = nng_aio_alloc(&s->hold, sender_hold_cb, s)) != 0) {
        nng_aio_free(s->aio);
        nng_aio_free(s->nb);
    }
    if (rv != 0) {
        pthread_mutex_destroy(&s->lk);
        return transport_error(rv, SKC_ETRANSPORT, "aio", NULL);
    }
    return 0;
}

/* Takes the next backlog message; lock held. */
static nng_msg *
sender_pop(sender *s)
{
    nng_msg *m = s->ring[s->head];
    s->head = (s->head + 1) % s->cap;
    s->count--;
    s->bytes -= nng_msg_len(m);
    return m;
}

/* Makes room for one more message in the ring; lock held.  0 or -1. */
static int
sender_room(sender *s)
{
    if (s->count < s->cap) {
        return 0;
    }
    size_t nc = s->cap ? s->cap * 2 : 64;
    nng_msg **nr = malloc(nc * sizeof(*nr));
    if (nr == NULL) {
        return -1;
    }
    for (size_t i = 0; i < s->count; i++) {
        nr[i] = s->ring[(s->head + i) % s->cap];
    }
    free(s->ring);
    s->ring = nr;
    s->cap = nc;
    s->head = 0;
    return 0;
}

/* Puts m back at the front of the backlog (no connection took it); lock
 * held.  Dropped (counted) only if there is no memory for the ring. */
static void
sender_unpop(sender *s, nng_msg *m)
{
    if (s->closed || sender_room(s) != 0) {
        s->dropped++;
        nng_msg_free(m);
        return;
    }
    s->head = (s->head + s->cap - 1) % s->cap;
    s->ring[s->head] = m;
    s->count++;
    s->bytes += nng_msg_len(m);
}

/* Starts the aio on the next backlog message if the gate is open and the
 * aio idle; lock held.  Started under lk so that a new connection's
 * ADD_PRE (sender_pipe_up, which takes lk) finds the aio either not
 * started or waiting in NNG, where it can be cancelled. */
static void
sender_next(sender *s)
{
    if (s->busy || s->closed || s->gated || s->count == 0) {
        return;
    }
    s->busy = 1;
    nng_aio_set_msg(s->aio, sender_pop(s));
    nng_aio_set_timeout(s->aio, SEND_TIMEOUT_MS);
    nng_send_aio(s->sock, s->aio);
}

static void
sender_cb(void *arg)
{
    sender *s = arg;
    int rv = nng_aio_result(s->aio);

    pthread_mutex_lock(&s->lk);
    if (rv == 0) {
        s->handed++;
    } else {
        /* PUSH never gave it to a connection (timed out: the connection
         * does not take more yet; cancelled: a new connection came;
         * closed): it goes first again. */
        nng_msg *failed = aio_take_msg(s->aio);
        if (failed != NULL) {
            sender_unpop(s, failed);
        }
    }
    s->busy = 0;
    /* Retried at once after a timeout (or a cancel, which gated the
     * sender); after any other error at the next send or connection, not
     * in a loop of failures. */
    if (rv == 0 || rv == NNG_ETIMEDOUT || rv == NNG_ECANCELED) {
        sender_next(s);
    }
    pthread_mutex_unlock(&s->lk);
}

/* The hold time of a new connection, in ms; lock held. */
static int64_t
sender_hold_ms(const sender *s)
{
    return s->young ? PUSH_HOLD_YOUNG_MS : PUSH_HOLD_MS;
}

/* Opens the gate once the current connection has lived its hold time, or
 * waits for the rest of it; lock held. */
static void
sender_hold_check(sender *s)
{
    if (s->closed || s->pipe == 0 || s->opened != 0) {
        return;
    }
    int64_t now = skci_now_ms();
    int64_t left = s->pipe_up + sender_hold_ms(s) - now;
    if (left <= 0) {
        s->opened = now;
        s->handed = 0;
        s->gated = 0;
        sender_next(s);
    } else if (!s->holding) {
        s->holding = 1;
        nng_sleep_aio((nng_duration)left, s->hold);
    }
}

static void
sender_hold_cb(void *arg)
{
    sender *s = arg;
    pthread_mutex_lock(&s->lk);
    s->holding = 0;
    if (nng_aio_result(s->hold) == 0) {
        sender_hold_check(s);
    }
    pthread_mutex_unlock(&s->lk);
}

/* Sends go to socket sock from now on, once it has a connection that
 * lived its hold time (an authenticated link replaces its PUSH socket,
 * see link_push_dial_auth). */
static void
sender_move(sender *s, nng_socket sock)
{
    pthread_mutex_lock(&s->lk);
    s->sock = sock;
    s->pipe = 0;
    s->opened = 0;
    s->gated = 1;
    pthread_mutex_unlock(&s->lk);
}

/* Connection pipe of socket sock is about to start (ADD_PRE, NNG
 * thread; ignored unless sock is the sender's): the gate closes until it has
 * lived its hold time, and a message waiting in NNG comes back (cancelled)
 * before NNG can give it to pipe.  Never blocks. */
static void
sender_pipe_up(sender *s, nng_socket sock, uint32_t pipe)
{
    pthread_mutex_lock(&s->lk);
    if (pipe == s->dead_pipe ||
        nng_socket_id(sock) != nng_socket_id(s->sock)) {
        pthread_mutex_unlock(&s->lk);
        return; /* removed already */
    }
    s->pipe = pipe;
    s->pipe_up = skci_now_ms();
    s->opened = 0;
    s->gated = 1;
    if (s->busy) {
        nng_aio_cancel(s->aio);
    }
    sender_hold_check(s);
    pthread_mutex_unlock(&s->lk);
}

/* Connection pipe is gone (pipe 0: the current one, whichever it is; NNG
 * thread).  Returns how many sends it took that may be lost: those given
 * to it since the gate opened, when it died young (a refusal that came
 * late; otherwise a dropped connection, whose loss PUSH shares with
 * skynet).  *age receives its age in ms. */
static size_t
sender_pipe_down(sender *s, uint32_t pipe, int64_t *age)
{
    size_t lost = 0;
    *age = 0;
    pthread_mutex_lock(&s->lk);
    if (pipe != 0 && pipe != s->pipe) {
        s->dead_pipe = pipe; /* its ADD_PRE, if it comes, is ignored */
        pthread_mutex_unlock(&s->lk);
        return 0;
    }
    if (s->pipe != 0) {
        *age = skci_now_ms() - s->pipe_up;
        s->young = *age < PUSH_YOUNG_MS;
        if (s->young && s->opened != 0 && !s->closed) {
            lost = s->handed;
        }
        s->dead_pipe = s->pipe;
    }
    s->pipe = 0;
    s->opened = 0;
    s->handed = 0;
    s->gated = 1;
    if (s->busy) {
        nng_aio_cancel(s->aio);
    }
    pthread_mutex_unlock(&s->lk);
    return lost;
}

static int
sender_send(sender *s, nng_msg *m)
{
    pthread_mutex_lock(&s->lk);
    if (s->closed) {
        pthread_mutex_unlock(&s->lk);
        nng_msg_free(m);
        return skci_error(SKC_ECLOSED, "link closed");
    }
    if (!s->busy && s->count == 0 && !s->gated) {
        int rv = nb_send(s->sock, s->nb, m);
        if (rv == 0) {
            s->handed++;
            pthread_mutex_unlock(&s->lk);
            return 0;
        }
        if (rv != NNG_EAGAIN) {
            pthread_mutex_unlock(&s->lk);
            nng_msg_free(m);
            return transport_error(rv, SKC_ETRANSPORT, "send", NULL);
        }
    }
    if (s->count >= s->limit) {
        pthread_mutex_unlock(&s->lk);
        nng_msg_free(m);
        return skci_error(
            SKC_ELIMIT, "send backlog full (%zu messages)", s->limit);
    }
    if (s->bytes + nng_msg_len(m) > SEND_BACKLOG_BYTES) {
        size_t b = s->bytes;
        pthread_mutex_unlock(&s->lk);
        nng_msg_free(m);
        return skci_error(SKC_ELIMIT,
            "send backlog full (%zu bytes waiting; the limit is %d MiB)", b,
            SEND_BACKLOG_BYTES >> 20);
    }
    if (sender_room(s) != 0) {
        pthread_mutex_unlock(&s->lk);
        nng_msg_free(m);
        return skci_error(SKC_ENOMEM, "send backlog");
    }
    s->ring[(s->head + s->count) % s->cap] = m;
    s->count++;
    s->bytes += nng_msg_len(m);
    sender_next(s);
    pthread_mutex_unlock(&s->lk);
    return 0;
}

/* Sends not yet taken by a connection: the backlog and the aio's. */
static size_t
sender_waiting(sender *s)
{
    pthread_mutex_lock(&s->lk);
    size_t n = s->count + (size_t)s->busy;
    pthread_mutex_unlock(&s->lk);
    return n;
}

/* After the socket is closed: stop the aios, free the backlog.  Returns
 * how many sends were dropped (told OK, never given to a connection). */
static size_t
sender_fini(sender *s)
{
    pthread_mutex_lock(&s->lk);
    s->closed = 1;
    pthread_mutex_unlock(&s->lk);
    size_t dropped = 0;
    if (s->aio != NULL) {
        nng_aio_stop(s->hold);
        nng_aio_stop(s->aio);
        /* a stopped aio's callback has run, or never will: its message
         * may still be on it */
        nng_msg *m = aio_take_msg(s->aio);
        if (m != NULL) {
            nng_msg_free(m);
            dropped++;
        }
        nng_aio_free(s->hold);
        nng_aio_free(s->aio);
        nng_aio_free(s->nb);
        s->aio = NULL;
    }
    dropped += s->dropped + s->count;
    while (s->count > 0) {
        nng_msg_free(sender_pop(s));
    }
    free(s->ring);
    s->ring = NULL;
    pthread_mutex_destroy(&s->lk);
    return dropped;
}

/* ---- server ---- */

struct skci_rctx {
    skci_server *s;
    nng_ctx ctx;
    nng_aio *aio;
    int sending;
    struct skci_rctx *next;
    /* lk: a request that arrived before its connection's earlier ones
     * (server_dispatch), in its connection's list by number */
    nng_msg *parked;
    uint32_t seq;
    struct skci_rctx *pnext;
};

struct skci_server {
    skci_server_cfg cfg;
    nng_socket rep;
    nng_socket pull;
    int pull_open;
    char *pull_url;
    nng_aio *pull_aio;
    nng_aio *pull_nb;                /* drains in pull_cb */
    unsigned pull_misses, pull_tick; /* pull_cb only (one at a time) */
    atomic_int pull_paused;          /* on_push asked for back-pressure */
    pthread_mutex_t lk;
    skci_rctx *ctxs; /* all contexts */
    uint32_t nctx;
    uint32_t nidle; /* contexts with a receive posted */
    atomic_int closing;
    nng_listener *listeners;
    size_t nlisteners;
    skci_idmap pipes; /* counted inbound pipe id -> server_conn */
    /* closed connections still in pipes, oldest first (server_conn_reap) */
    struct server_conn *gone_head, *gone_tail;
    uint32_t npipes_rep;  /* connections to the call port */
    uint32_t npipes_pull; /* connections to the send port */
    /* ms: the last max_conns refusal on each port (0: none yet) */
    int64_t refused_rep_at, refused_pull_at;
    nng_tls_config *tls; /* for tls+tcp:// listeners, made at the first */
};

static void server_log(skci_server *s, int level, const char *fmt, ...)
    SKCI_PRINTF(3, 4);

static void
server_log(skci_server *s, int level, const char *fmt, ...)
{
    if (s->cfg.on_log == NULL) {
        return;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    s->cfg.on_log(s->cfg.arg, level, fmt, buf);
}

static void
rctx_post_recv(skci_rctx *rctx)
{
    skci_server *s = rctx->s;
    pthread_mutex_lock(&s->lk);
    s->nidle++;
    pthread_mutex_unlock(&s->lk);
    nng_aio_set_timeout(rctx->aio, RECV_TIMEOUT_MS);
    nng_ctx_recv(rctx->ctx, rctx->aio);
}

static void rctx_cb(void *arg);
static void server_conn_active(skci_server *s, nng_msg *m);
static void server_dispatch(skci_server *s, skci_rctx *rctx, nng_msg *m);

/* Opens one more context with a receive posted. */
static int
server_add_ctx(skci_server *s)
{
    skci_rctx *rctx = calloc(1, sizeof(*rctx));
    if (rctx == NULL) {
        return SKC_ENOMEM;
    }
    rctx->s = s;
    int rv = nng_aio_alloc(&rctx->aio, rctx_cb, rctx);
    if (rv != 0) {
        free(rctx);
        return SKC_ENOMEM;
    }
    rv = nng_ctx_open(&rctx->ctx, s->rep);
    if (rv != 0) {
        nng_aio_free(rctx->aio);
        free(rctx);
        return transport_error(rv, SKC_ETRANSPORT, "context", NULL);
    }
    pthread_mutex_lock(&s->lk);
    if (atomic_load(&s->closing)) {
        /* skci_server_shutdown has taken its list of contexts to stop
         * (closing is set before it takes lk): a context added now would
         * escape it.  Its caller is an rctx_cb that shutdown waits for, so
         * this close comes before the socket's. */
        pthread_mutex_unlock(&s->lk);
        nng_ctx_close(rctx->ctx);
        nng_aio_free(rctx->aio);
        free(rctx);
        return SKC_ECLOSED; /* as SKC_ENOMEM above: no detail on NNG's thread
                             */
    }
    rctx->next = s->ctxs;
    s->ctxs = rctx;
    s->nctx++;
    pthread_mutex_unlock(&s->lk);
    rctx_post_recv(rctx);
    return 0;
}

static void
rctx_cb(void *arg)
{
    skci_rctx *rctx = arg;
    skci_server *s = rctx->s;
    int rv = nng_aio_result(rctx->aio);

    if (rctx->sending) {
        rctx->sending = 0;
        if (rv != 0) {
            /* The client is gone or stuck: the reply is dropped, as a REP
             * reply to a vanished peer always is. */
            nng_msg_free(aio_take_msg(rctx->aio));
        }
        if (!atomic_load(&s->closing)) {
            rctx_post_recv(rctx);
        }
        return;
    }
    pthread_mutex_lock(&s->lk);
    s->nidle--;
    int grow = s->nidle == 0 && s->nctx < s->cfg.max_serving && rv == 0 &&
        !atomic_load(&s->closing);
    pthread_mutex_unlock(&s->lk);
    if (rv != 0) {
        if (rv != NNG_ECLOSED && !atomic_load(&s->closing)) {
            rctx_post_recv(rctx);
        }
        return;
    }
    nng_msg *m = aio_take_msg(rctx->aio);
    if (grow) {
        /* All contexts busy (handlers or deferred replies hold them):
         * add one so other callers keep being served, up to the limit. */
        server_add_ctx(s);
    }
    server_dispatch(s, rctx, m);
}

void
skci_server_reply(skci_rctx *rctx, skci_tmsg *msg)
{
    if (atomic_load(&rctx->s->closing)) {
        /* Shutting down: the context's aio is stopped. */
        skci_tmsg_free(msg);
        return;
    }
    if (msg == NULL) {
        rctx_post_recv(rctx);
        return;
    }
    rctx->sending = 1;
    nng_aio_set_msg(rctx->aio, (nng_msg *)msg);
    nng_aio_set_timeout(rctx->aio, SEND_TIMEOUT_MS);
    nng_ctx_send(rctx->ctx, rctx->aio);
}

static void
pull_cb(void *arg)
{
    skci_server *s = arg;
    int rv = nng_aio_result(s->pull_aio);
    if (rv == NNG_ECLOSED || atomic_load(&s->closing)) {
        if (rv == 0) {
            nng_msg_free(aio_take_msg(s->pull_aio));
        }
        return;
    }
    if (rv == 0) {
        nng_msg *m = aio_take_msg(s->pull_aio);
        server_conn_active(s, m);
        if (s->cfg.on_push(s->cfg.arg, (skci_tmsg *)m) != 0) {
            atomic_store(&s->pull_paused, 1); /* no receive posted */
            return;
        }
        /* Drain what is already queued without another callback hop, but
         * only while draining finds something (probing every 64th time
         * otherwise): a 1.5.2 PULL socket holds one message per pipe, so
         * with one sender the drain finds nothing, and a failing
         * non-blocking receive is not free (docs/PERFORMANCE.md, "Changes
         * for lib/", item 2). */
        if (s->pull_misses < 2 || (++s->pull_tick & 63) == 0) {
            int got = 0;
            while (got < DRAIN_MAX && nb_recv(s->pull, s->pull_nb, &m) == 0) {
                server_conn_active(s, m);
                got++;
                if (s->cfg.on_push(s->cfg.arg, (skci_tmsg *)m) != 0) {
                    atomic_store(&s->pull_paused, 1);
                    return;
                }
            }
            s->pull_misses = got > 0 ? 0 : s->pull_misses + 1;
        }
    }
    nng_aio_set_timeout(s->pull_aio, RECV_TIMEOUT_MS);
    nng_recv_aio(s->pull, s->pull_aio);
}

/* An inbound connection, for its port's count, the idle sweep and the
 * order of its requests. */
typedef struct server_conn {
    uint32_t *count;   /* its port's counter */
    int64_t since;     /* ms: when it connected */
    int64_t last;      /* ms: its last frame, 0 = none yet */
    int pull;          /* on the send port */
    uint32_t next;     /* the number of the request to hand on next */
    int dispatching;   /* a thread is handing this connection's requests on */
    skci_rctx *parked; /* requests that came before their turn, by number */
    /* Closed: kept for GONE_KEEP_MS (and until no request of it is being
     * handed on) for the requests NNG took off it before its close and
     * has not handed to a context callback yet, so they keep its order. */
    int gone;
    uint32_t id;
    int64_t gone_at;
    struct server_conn *gone_next;
} server_conn;

#define GONE_KEEP_MS 10000

/* A frame arrived on pipe p: its connection is not idle. */
static void
server_conn_active(skci_server *s, nng_msg *m)
{
    uint32_t id = nng_pipe_id(nng_msg_get_pipe(m));
    int64_t now = skci_now_ms();
    pthread_mutex_lock(&s->lk);
    server_conn *c = skci_idmap_get(&s->pipes, id);
    if (c != NULL) {
        c->last = now;
    }
    pthread_mutex_unlock(&s->lk);
}

/* The number NNG's REP (with skc's patch) put in a request's header: its
 * place among the requests taken from its connection (0: none, as with an
 * NNG without the patch). */
static uint32_t
request_seq(nng_msg *m)
{
    if (nng_msg_header_len(m) != 4) {
        return 0;
    }
    const uint8_t *h = nng_msg_header(m);
    uint32_t seq = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
        (uint32_t)h[2] << 8 | h[3];
    nng_msg_header_clear(m);
    return seq;
}

/* Hands a request on in its connection's order.  Each context's callback
 * runs on its own NNG thread, so two requests from one connection can
 * reach here in either order (the second may even be handed on while the
 * first is still being read off the context); skc promises the order they
 * were sent in (PROTOCOL.md, "Guarantees").  A request that is early
 * waits, parked on its context, and the thread that hands on its
 * predecessor hands it on next.  Every numbered request reaches here
 * (NNG finishes each context's receive with it), so no parked request
 * waits for one that will not come; a closed connection's record stays
 * (GONE_KEEP_MS) for the requests that were on their way when it closed. */
static void
server_dispatch(skci_server *s, skci_rctx *rctx, nng_msg *m)
{
    uint32_t id = nng_pipe_id(nng_msg_get_pipe(m));
    uint32_t seq = request_seq(m);
    int64_t now = skci_now_ms();
    pthread_mutex_lock(&s->lk);
    server_conn *c = skci_idmap_get(&s->pipes, id);
    if (c != NULL) {
        c->last = now;
    }
    if (c == NULL || seq == 0) {
        pthread_mutex_unlock(&s->lk);
        s->cfg.on_request(s->cfg.arg, rctx, (skci_tmsg *)m);
        return;
    }
    if (c->dispatching || seq != c->next) {
        skci_rctx **at = &c->parked;
        while (*at != NULL && (int32_t)((*at)->seq - seq) < 0) {
            at = &(*at)->pnext;
        }
        rctx->parked = m;
        rctx->seq = seq;
        rctx->pnext = *at;
        *at = rctx;
        pthread_mutex_unlock(&s->lk);
        return;
    }
    c->dispatching = 1;
    for (;;) {
        c->next = seq + 1;
        pthread_mutex_unlock(&s->lk);
        s->cfg.on_request(s->cfg.arg, rctx, (skci_tmsg *)m);
        pthread_mutex_lock(&s->lk);
        rctx = c->parked;
        if (rctx == NULL || rctx->seq != c->next) {
            break;
        }
        c->parked = rctx->pnext;
        m = rctx->parked;
        seq = rctx->seq;
        rctx->parked = NULL;
    }
    c->dispatching = 0;
    pthread_mutex_unlock(&s->lk);
}

/* lk held: puts a closed connection at the back of the gone line. */
static void
server_conn_gone(skci_server *s, server_conn *c, int64_t now)
{
    c->gone = 1;
    c->gone_at = now;
    c->gone_next = NULL;
    if (s->gone_tail != NULL) {
        s->gone_tail->gone_next = c;
    } else {
        s->gone_head = c;
    }
    s->gone_tail = c;
}

/* lk held: frees the connections closed GONE_KEEP_MS ago that no request
 * waits on; one still in use goes to the back of the line. */
static void
server_conn_reap(skci_server *s, int64_t now)
{
    server_conn *c;
    while ((c = s->gone_head) != NULL && now - c->gone_at >= GONE_KEEP_MS) {
        s->gone_head = c->gone_next;
        if (s->gone_head == NULL) {
            s->gone_tail = NULL;
        }
        if (c->dispatching || c->parked != NULL) {
            server_conn_gone(s, c, now);
        } else {
            skci_idmap_del(&s->pipes, c->id);
            free(c);
        }
    }
}

/* Each port has its own budget of max_conns connections; the two sockets
 * register the two thin callbacks below. */
static void
server_pipe_event(skci_server *s, nng_pipe p, nng_pipe_ev ev, int pull)
{
    uint32_t id = nng_pipe_id(p);
    int reject = 0;
    uint32_t *count = pull ? &s->npipes_pull : &s->npipes_rep;
    pthread_mutex_lock(&s->lk);
    if (ev == NNG_PIPE_EV_ADD_PRE) {
        server_conn *c = NULL;
        if (*count >= s->cfg.max_conns) {
            reject = 1;
            *(pull ? &s->refused_pull_at : &s->refused_rep_at) = skci_now_ms();
        } else if ((c = calloc(1, sizeof(*c))) != NULL &&
            skci_idmap_set(&s->pipes, id, c) == 0) {
            c->count = count;
            c->since = skci_now_ms();
            c->pull = pull;
            c->next = 1;
            c->id = id;
            (*count)++;
        } else {
            free(c); /* no memory: served, not counted or swept */
        }
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        server_conn *c = skci_idmap_get(&s->pipes, id);
        if (c != NULL && !c->gone) {
            (*c->count)--;
            server_conn_gone(s, c, skci_now_ms());
        }
    }
    server_conn_reap(s, skci_now_ms());
    pthread_mutex_unlock(&s->lk);
    if (ev == NNG_PIPE_EV_REM_POST && s->cfg.on_pipe_gone != NULL) {
        s->cfg.on_pipe_gone(s->cfg.arg, id);
    }
    if (reject) {
        nng_pipe_close(p);
        if (!atomic_load(&s->closing)) {
            server_log(s, SKC_LOG_WARN,
                "refused a connection to the %s port: %u connections is the limit (max_conns)",
                pull ? "send" : "call", s->cfg.max_conns);
        }
    }
}

static void
server_rep_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    server_pipe_event(arg, p, ev, 0);
}

static void
server_pull_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    server_pipe_event(arg, p, ev, 1);
}

int
skci_server_create(skci_server **out, const skci_server_cfg *cfg)
{
    skci_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return skci_error(SKC_ENOMEM, "server");
    }
    s->cfg = *cfg;
    pthread_mutex_init(&s->lk, NULL);
    skci_idmap_init(&s->pipes);
    int rv = nng_rep0_open(&s->rep);
    if (rv != 0) {
        pthread_mutex_destroy(&s->lk);
        free(s);
        return transport_error(rv, SKC_ETRANSPORT, "open rep socket", NULL);
    }
    nng_socket_set_size(
        s->rep, NNG_OPT_RECVMAXSZ, cfg->max_recv + TRANSPORT_SLACK);
    nng_pipe_notify(s->rep, NNG_PIPE_EV_ADD_PRE, server_rep_pipe_cb, s);
    nng_pipe_notify(s->rep, NNG_PIPE_EV_REM_POST, server_rep_pipe_cb, s);
    rv = nng_pull0_open(&s->pull);
    if (rv != 0) {
        nng_close(s->rep);
        pthread_mutex_destroy(&s->lk);
        free(s);
        return transport_error(rv, SKC_ETRANSPORT, "open pull socket", NULL);
    }
    nng_socket_set_size(
        s->pull, NNG_OPT_RECVMAXSZ, cfg->max_recv + TRANSPORT_SLACK);
    nng_pipe_notify(s->pull, NNG_PIPE_EV_ADD_PRE, server_pull_pipe_cb, s);
    nng_pipe_notify(s->pull, NNG_PIPE_EV_REM_POST, server_pull_pipe_cb, s);
    nng_socket_set_int(s->pull, NNG_OPT_RECVBUF, 1024);
    *out = s;
    return 0;
}

static int
server_start_listener(
    skci_server *s, nng_socket sock, const char *url, char **bound)
{
    nng_listener l;
    if (url_is_tls(url) && s->tls == NULL) {
        if (!skci_tls_configured(s->cfg.tls)) {
            return skci_error(SKC_EINVAL,
                "listen %s: a tls+tcp:// address needs tls_cert and tls_key",
                url);
        }
        int rc = tls_config_make(&s->tls, s->cfg.tls, 1);
        if (rc != 0) {
            return rc;
        }
    }
    int rv = nng_listener_create(&l, sock, url);
    if (rv != 0) {
        return transport_error(rv, SKC_ETRANSPORT, "listen", url);
    }
    if (url_is_tls(url) &&
        (rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, s->tls)) != 0) {
        nng_listener_close(l);
        return transport_error(rv, SKC_ETRANSPORT, "listen (TLS)", url);
    }
    rv = nng_listener_start(l, 0);
    if (rv != 0) {
        nng_listener_close(l);
        return transport_error(rv, SKC_ETRANSPORT, "listen", url);
    }
    nng_listener *nl =
        realloc(s->listeners, (s->nlisteners + 1) * sizeof(*nl));
    if (nl == NULL) {
        nng_listener_close(l);
        return skci_error(SKC_ENOMEM, "listener");
    }
    s->listeners = nl;
    s->listeners[s->nlisteners++] = l;
    if (bound != NULL) {
        int port = -1;
        if (skci_url_is_tcpish(url) &&
            nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
            *bound = skci_url_with_port(url, port);
        } else {
            *bound = skci_strdup(url);
        }
        if (*bound == NULL) {
            return skci_error(SKC_ENOMEM, "bound url");
        }
    }
    return 0;
}

/* The PULL address derived from the first REP address: same host, free
 * port for TCP-like transports; a sibling name for ipc and inproc. */
/* The URL of the send (PULL) listener for a call listener asked for as
 * `asked` and bound as `bound`: for TCP-like URLs the call port + 1 when
 * send_port is 0 (any free port when the call port was 0), any free port
 * when it is -1, else send_port; otherwise the call URL + ".send".  NULL
 * without memory. */
static char *
server_pull_candidate(int32_t send_port, const char *asked, const char *bound)
{
    if (skci_url_is_tcpish(bound)) {
        int sp = send_port;
        if (sp == 0) {
            int asked_port = skci_url_port(asked);
            int bound_port = skci_url_port(bound);
            sp = asked_port == 0 || bound_port >= 65535 ? 0 : bound_port + 1;
        } else if (sp < 0) {
            sp = 0;
        }
        return skci_url_with_port(bound, sp);
    }
    size_t n = strlen(bound);
    char *out = malloc(n + 8);
    if (out != NULL) {
        snprintf(out, n + 8, "%s.send", bound);
    }
    return out;
}

int
skci_server_listen(
    skci_server *s, const char *url, int32_t send_port, char **bound)
{
    char *b = NULL;
    int rc = server_start_listener(s, s->rep, url, &b);
    if (rc != 0) {
        return rc;
    }
    if (!s->pull_open) {
        char *cand = server_pull_candidate(send_port, url, b);
        rc = cand == NULL
            ? skci_error(SKC_ENOMEM, "pull url")
            : server_start_listener(s, s->pull, cand, &s->pull_url);
        if (rc == SKC_EEXIST && send_port == 0) {
            /* The default (port + 1) is taken: any free port rather than
             * no node; the HELLO announces it. */
            char *any = server_pull_candidate(-1, url, b);
            rc = any == NULL
                ? skci_error(SKC_ENOMEM, "pull url")
                : server_start_listener(s, s->pull, any, &s->pull_url);
            if (rc == 0) {
                server_log(s, SKC_LOG_WARN,
                    "send port: %s (the call port + 1) is in use; listening for sends on %s instead (set the send_port option to fix it)",
                    cand, s->pull_url);
            }
            free(any);
        } else if (rc == SKC_EEXIST) {
            rc = skci_error(SKC_EEXIST,
                "the send port of %s, %s, is in use (the send_port option)", b,
                cand);
        }
        free(cand);
        if (rc != 0) {
            /* No node half-open: the call listener goes too. */
            nng_listener_close(s->listeners[--s->nlisteners]);
            free(b);
            return rc;
        }
        s->pull_open = 1;
        int rv = nng_aio_alloc(&s->pull_nb, NULL, NULL);
        if (rv == 0) {
            rv = nng_aio_alloc(&s->pull_aio, pull_cb, s);
        }
        if (rv != 0) {
            free(b);
            return transport_error(rv, SKC_ETRANSPORT, "aio", NULL);
        }
        nng_aio_set_timeout(s->pull_aio, RECV_TIMEOUT_MS);
        nng_recv_aio(s->pull, s->pull_aio);
        /* A small pool to start; it grows while all are busy. */
        for (int i = 0; i < 8 && (uint32_t)i < s->cfg.max_serving; i++) {
            if ((rc = server_add_ctx(s)) != 0) {
                free(b);
                return rc;
            }
        }
    }
    if (bound != NULL) {
        *bound = b;
    } else {
        free(b);
    }
    return 0;
}

static void
conn_free(uint32_t id, void *val, void *arg)
{
    (void)id;
    (void)arg;
    free(val);
}

/* The idle sweep's pick: connections to close, by id. */
typedef struct sweep {
    int64_t now, hello_ms, idle_ms, full_ms;
    int busy_rep, busy_pull; /* half of max_conns or more in use */
    int full_rep, full_pull; /* refused a connection within full_ms */
    uint32_t *ids;
    size_t n, cap;
    uint32_t silent, idle, drained;
} sweep;

static void
sweep_visit(uint32_t id, void *val, void *arg)
{
    sweep *w = arg;
    server_conn *c = val;
    if (c->gone) {
        return;
    }
    int silent = !c->pull && c->last == 0 && w->hello_ms > 0 &&
        w->now - c->since >= w->hello_ms;
    int64_t quiet = w->now - (c->last ? c->last : c->since);
    int idle = w->idle_ms > 0 && (c->pull ? w->busy_pull : w->busy_rep) &&
        quiet >= w->idle_ms;
    /* A port that had to refuse a connection gives the slots of
     * connections quiet for full_ms to newcomers now, not after idle_ms
     * (a peer holding every slot with silent connections; nginx drains
     * its keep-alive connections the same way). */
    int drained = !silent && !idle && w->full_ms > 0 &&
        (c->pull ? w->full_pull : w->full_rep) && quiet >= w->full_ms;
    if (!silent && !idle && !drained) {
        return;
    }
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 16;
        uint32_t *v = realloc(w->ids, nc * sizeof(*v));
        if (v == NULL) {
            return; /* the next sweep gets it */
        }
        w->ids = v;
        w->cap = nc;
    }
    w->ids[w->n++] = id;
    if (silent) {
        w->silent++;
    } else if (idle) {
        w->idle++;
    } else {
        w->drained++;
    }
}

uint32_t
skci_server_sweep(skci_server *s, int32_t hello_ms, int32_t idle_ms)
{
    sweep w = {
        .now = skci_now_ms(), .hello_ms = hello_ms, .idle_ms = idle_ms
    };
    /* On a full port: idle for the hello timeout (the idle timeout when
     * that is shorter or the hello timeout is off); never with the idle
     * rule off. */
    if (idle_ms > 0) {
        w.full_ms = hello_ms > 0 && hello_ms < idle_ms ? hello_ms : idle_ms;
    }
    pthread_mutex_lock(&s->lk);
    w.busy_rep = s->npipes_rep >= s->cfg.max_conns / 2;
    w.busy_pull = s->npipes_pull >= s->cfg.max_conns / 2;
    /* A port that refused within full_ms drains every connection quiet
     * for full_ms, not only those that were at the first sweep after the
     * refusal: an attacker's connections made over several seconds all
     * go, not just the first of them (once a newcomer is let in, the port
     * refuses no more). */
    w.full_rep =
        s->refused_rep_at != 0 && w.now - s->refused_rep_at < w.full_ms;
    w.full_pull =
        s->refused_pull_at != 0 && w.now - s->refused_pull_at < w.full_ms;
    skci_idmap_each(&s->pipes, sweep_visit, &w);
    pthread_mutex_unlock(&s->lk);
    /* Closed without the lock: the close runs server_pipe_event. */
    for (size_t i = 0; i < w.n; i++) {
        nng_pipe p = NNG_PIPE_INITIALIZER;
        p.id = w.ids[i];
        nng_pipe_close(p);
    }
    free(w.ids);
    if (w.n > 0 && !atomic_load(&s->closing)) {
        server_log(s, SKC_LOG_INFO,
            "closed %zu connection(s): %u sent nothing within %d ms of connecting, %u were idle for %d ms, %u for %lld ms on a port that refused connections (max_conns)",
            w.n, w.silent, hello_ms, w.idle, idle_ms, w.drained,
            (long long)w.full_ms);
    }
    return (uint32_t)w.n;
}

void
skci_server_pull_resume(skci_server *s)
{
    if (atomic_exchange(&s->pull_paused, 0) && !atomic_load(&s->closing)) {
        nng_aio_set_timeout(s->pull_aio, RECV_TIMEOUT_MS);
        nng_recv_aio(s->pull, s->pull_aio);
    }
}

void
skci_server_conns(skci_server *s, uint32_t *calls, uint32_t *sends)
{
    pthread_mutex_lock(&s->lk);
    *calls = s->npipes_rep;
    *sends = s->npipes_pull;
    pthread_mutex_unlock(&s->lk);
}

const char *
skci_server_pull_url(skci_server *s)
{
    return s->pull_url;
}

void
skci_server_stop(skci_server *s)
{
    for (size_t i = 0; i < s->nlisteners; i++) {
        nng_listener_close(s->listeners[i]);
    }
    s->nlisteners = 0;
}

void
skci_server_shutdown(skci_server *s)
{
    if (atomic_exchange(&s->closing, 1)) {
        return;
    }
    /* Listeners are left to nng_close in skci_server_destroy, which waits
     * for them: closing them one by one first leaks their memory in NNG
     * 1.5.2 when the socket is closed right after. */
    /* Stop every aio (cancels receives, waits for callbacks) before any
     * context or the socket closes (see skci_link_close for why; no
     * context is added once closing is set, see server_add_ctx);
     * contexts, aios and sockets are freed in skci_server_destroy. */
    pthread_mutex_lock(&s->lk);
    skci_rctx *all = s->ctxs;
    pthread_mutex_unlock(&s->lk);
    for (skci_rctx *rctx = all; rctx; rctx = rctx->next) {
        aio_stop_drop(rctx->aio);
    }
    if (s->pull_aio != NULL) {
        nng_aio_stop(s->pull_aio);
    }
}

void
skci_server_destroy(skci_server *s)
{
    if (s == NULL) {
        return;
    }
    skci_server_shutdown(s);
    skci_rctx *rctx = s->ctxs;
    while (rctx != NULL) {
        skci_rctx *n = rctx->next;
        nng_ctx_close(rctx->ctx);
        nng_aio_free(rctx->aio);
        if (rctx->parked != NULL) {
            nng_msg_free(rctx->parked);
        }
        free(rctx);
        rctx = n;
    }
    if (s->pull_aio != NULL) {
        nng_aio_free(s->pull_aio);
    }
    if (s->pull_nb != NULL) {
        nng_aio_free(s->pull_nb);
    }
    nng_close(s->rep);
    nng_close(s->pull);
    skci_idmap_each(&s->pipes, conn_free, NULL);
    if (s->tls != NULL) {
        nng_tls_config_free(s->tls);
    }
    skci_idmap_fini(&s->pipes);
    pthread_mutex_destroy(&s->lk);
    free(s->listeners);
    free(s->pull_url);
    free(s);
}

/* ---- client link ---- */

/* A request in flight on a link: a REQ context and its aio, which sends
 * the request and then waits for the reply.  Contexts are reused from a
 * free list; the pool grows to the most requests in flight at once. */
typedef struct lctx {
    skci_link *l;
    nng_ctx ctx;
    nng_aio *aio;
    int recving;      /* 0: sending, 1: awaiting the reply */
    int32_t reply_ms; /* how long to wait for the reply */
    struct lctx *next_free;
    struct lctx *next_all;
} lctx;

struct skci_link {
    skci_link_cfg cfg;
    nng_socket req;
    nng_socket push;
    sender push_tx;
    pthread_mutex_t clk; /* contexts */
    lctx *free_ctx;
    lctx *all_ctx;
    nng_dialer dialer;
    int has_dialer;
    nng_dialer push_dialer;
    int has_push_dialer;
    char *push_url;
    pthread_mutex_t lk; /* dialers */
    atomic_int closed;  /* set by skci_link_release */
    atomic_int refs;    /* the owner's (until released) + one per job */
    /* the REQ connection, as reported by on_conn: pipe_lk, which is held
     * while on_conn runs (so reports arrive in order) */
    pthread_mutex_t pipe_lk;
    uint32_t pipe;      /* current pipe id, 0 = none */
    uint32_t dead_pipe; /* a pipe removed before its ADD arrived */
    atomic_int connected;
    atomic_int push_pipes;        /* connections of the PUSH socket */
    atomic_llong push_added_at;   /* ms: when the last one came up */
    atomic_llong push_down_since; /* ms: since when none has held */
    nng_tls_config *tls;          /* for tls+tcp:// dialers; NULL = none */
    /* authenticated sends (cfg.on_push_lost set): the PUSH socket in use
     * and its one connection (link_push_dial_auth) */
    atomic_uint push_id;
    atomic_uint push_pipe;
    atomic_llong push_up_at; /* ms: when its connection came up */
    atomic_int push_lost;    /* on_push_lost was called for this socket */
    atomic_int push_backoff; /* ms to wait before the next socket */
    char push_addr[256];     /* push_url for log lines (push_tx.lk) */
};

/* Beyond the caller's deadline, a context keeps waiting this long for a
 * late reply before it is reused (skc has ended the call by then). */
#define REPLY_GRACE_MS 2000

static void
lctx_put(skci_link *l, lctx *c)
{
    pthread_mutex_lock(&l->clk);
    c->next_free = l->free_ctx;
    l->free_ctx = c;
    pthread_mutex_unlock(&l->clk);
}

static void
lctx_cb(void *arg)
{
    lctx *c = arg;
    skci_link *l = c->l;
    int rv = nng_aio_result(c->aio);
    int closed = atomic_load(&l->closed) || rv == NNG_ECLOSED;
    if (!c->recving) {
        if (rv == 0 && !closed) {
            c->recving = 1;
            nng_aio_set_timeout(c->aio, c->reply_ms);
            nng_ctx_recv(c->ctx, c->aio);
            return;
        }
        if (rv == NNG_ETIMEDOUT && !closed) {
            /* No connection to send on yet: keep trying; the caller's
             * own deadline decides when to give up. */
            nng_ctx_send(c->ctx, c->aio);
            return;
        }
        nng_msg_free(aio_take_msg(c->aio));
        lctx_put(l, c);
        return;
    }
    nng_msg *m = rv == 0 ? aio_take_msg(c->aio) : NULL;
    /* Free before the reply is handled: a completion that runs inline
     * may send the next request on this very context. */
    lctx_put(l, c);
    if (m != NULL) {
        if (closed) {
            nng_msg_free(m);
        } else {
            l->cfg.on_reply(l->cfg.arg, (skci_tmsg *)m);
        }
    }
}

/* *out = a free context, or a new one.  0, or an error code (detail
 * set) if none can be made. */
static int
lctx_get(skci_link *l, lctx **out)
{
    pthread_mutex_lock(&l->clk);
    lctx *c = l->free_ctx;
    if (c != NULL) {
        l->free_ctx = c->next_free;
        pthread_mutex_unlock(&l->clk);
        *out = c;
        return 0;
    }
    pthread_mutex_unlock(&l->clk);
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return skci_error(SKC_ENOMEM, "request context");
    }
    c->l = l;
    int rv = nng_aio_alloc(&c->aio, lctx_cb, c);
    if (rv == 0 && (rv = nng_ctx_open(&c->ctx, l->req)) != 0) {
        nng_aio_free(c->aio);
    }
    if (rv != 0) {
        free(c);
        return transport_error(rv, SKC_ETRANSPORT, "request context", NULL);
    }
    pthread_mutex_lock(&l->clk);
    if (atomic_load(&l->closed)) {
        /* skci_link_close has taken the list already. */
        pthread_mutex_unlock(&l->clk);
        nng_ctx_close(c->ctx);
        nng_aio_free(c->aio);
        free(c);
        return skci_error(SKC_ECLOSED, "link closed");
    }
    c->next_all = l->all_ctx;
    l->all_ctx = c;
    pthread_mutex_unlock(&l->clk);
    *out = c;
    return 0;
}

/* Reports the REQ connection going up or down, once each and in order:
 * NNG may report a pipe's removal before its addition, on another thread. */
static void
link_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    skci_link *l = arg;
    uint32_t id = nng_pipe_id(p);
    pthread_mutex_lock(&l->pipe_lk);
    int report = -1;
    if (ev == NNG_PIPE_EV_ADD_POST) {
        if (id != l->dead_pipe) {
            l->pipe = id;
            report = 1;
        }
    } else if (l->pipe != id) {
        l->dead_pipe = id; /* its ADD, if it comes, is ignored */
    } else {
        l->pipe = 0;
        report = 0;
    }
    atomic_store(&l->connected, l->pipe != 0);
    if (report >= 0 && !atomic_load(&l->closed)) {
        l->cfg.on_conn(l->cfg.arg, report);
    }
    pthread_mutex_unlock(&l->pipe_lk);
}

/* l's send address, for log lines: set by the push dials, read by NNG
 * callbacks, which must not take lk (push_tx.lk, a leaf, guards it). */
static void
link_push_addr_set(skci_link *l, const char *url)
{
    pthread_mutex_lock(&l->push_tx.lk);
    snprintf(l->push_addr, sizeof(l->push_addr), "%s", url);
    pthread_mutex_unlock(&l->push_tx.lk);
}

static void
link_push_addr(skci_link *l, char *buf, size_t len)
{
    pthread_mutex_lock(&l->push_tx.lk);
    snprintf(buf, len, "%s",
        l->push_addr[0] != '\0' ? l->push_addr : "(not dialed yet)");
    pthread_mutex_unlock(&l->push_tx.lk);
}

/* A PUSH connection is gone (pipe 0: the current one): the gate closes,
 * and sends it may have lost are reported. */
static void
link_push_down(skci_link *l, uint32_t pipe)
{
    int64_t age;
    size_t lost = sender_pipe_down(&l->push_tx, pipe, &age);
    if (lost > 0 && !atomic_load(&l->closed) && l->cfg.on_sends_lost != NULL) {
        char url[sizeof(l->push_addr)], text[512];
        link_push_addr(l, url, sizeof(url));
        snprintf(text, sizeof(text),
            "%zu send(s) went to a send connection to %s that was closed %lld ms after it came up (refused by the peer, max_conns?); they may be lost",
            lost, url, (long long)age);
        l->cfg.on_sends_lost(l->cfg.arg, lost, text);
    }
}

/* The PUSH socket's connections, for skci_link_push and the sender's
 * gate.  A connection that the peer closes at once (its max_conns is
 * full: NNG redials, is let in and closed again, over and over) does not
 * end the outage, and gets no sends. */
static void
push_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    skci_link *l = arg;
    long long now = (long long)skci_now_ms();
    if (ev == NNG_PIPE_EV_ADD_PRE) {
        sender_pipe_up(&l->push_tx, nng_pipe_socket(p), nng_pipe_id(p));
        return;
    }
    if (ev == NNG_PIPE_EV_REM_POST) {
        link_push_down(l, nng_pipe_id(p));
    }
    if (ev == NNG_PIPE_EV_ADD_POST) {
        atomic_store(&l->push_added_at, now);
        atomic_fetch_add(&l->push_pipes, 1);
    } else if (atomic_fetch_sub(&l->push_pipes, 1) == 1 &&
        now - atomic_load(&l->push_added_at) >= PUSH_STABLE_MS) {
        atomic_store(&l->push_down_since, now);
    }
}

/* Whether sends on l have had nowhere to go for longer than the grace:
 * no connection, or none that held PUSH_STABLE_MS, since
 * push_down_since.  *down receives that time (ms). */
static int
push_stuck(skci_link *l, long long *down)
{
    long long now = (long long)skci_now_ms();
    if (atomic_load(&l->push_pipes) > 0 &&
        now - atomic_load(&l->push_added_at) >= PUSH_STABLE_MS) {
        return 0;
    }
    *down = now - atomic_load(&l->push_down_since);
    return *down > PUSH_GRACE_MS;
}

int
skci_link_create(skci_link **out, const skci_link_cfg *cfg)
{
    skci_link *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return skci_error(SKC_ENOMEM, "link");
    }
    l->cfg = *cfg;
    atomic_init(&l->refs, 1);
    pthread_mutex_init(&l->lk, NULL);
    pthread_mutex_init(&l->clk, NULL);
    pthread_mutex_init(&l->pipe_lk, NULL);
    int rv;
    if ((rv = nng_req0_open(&l->req)) != 0) {
        goto fail0;
    }
    if ((rv = nng_push0_open(&l->push)) != 0) {
        goto fail1;
    }
    if (skci_tls_configured(cfg->tls) &&
        tls_config_make(&l->tls, cfg->tls, 0) != 0) {
        nng_close(l->push);
        nng_close(l->req);
        pthread_mutex_destroy(&l->pipe_lk);
        pthread_mutex_destroy(&l->clk);
        pthread_mutex_destroy(&l->lk);
        free(l);
        return SKC_EAUTH;
    }
    /* NNG never resends a request (it could run twice): skc owns
     * deadlines and retries.  Set before any context is opened, which
     * copies it. */
    nng_socket_set_ms(l->req, NNG_OPT_REQ_RESENDTIME, 0);
    nng_socket_set_size(
        l->req, NNG_OPT_RECVMAXSZ, cfg->max_recv + TRANSPORT_SLACK);
    nng_socket_set_size(l->push, NNG_OPT_RECVMAXSZ, 1024);
    /* No queue in NNG: what it holds it gives to a connection at once
     * (see "ordered sender"). */
    nng_socket_set_int(l->push, NNG_OPT_SENDBUF, 0);
    nng_pipe_notify(l->req, NNG_PIPE_EV_ADD_POST, link_pipe_cb, l);
    nng_pipe_notify(l->req, NNG_PIPE_EV_REM_POST, link_pipe_cb, l);
    atomic_init(&l->push_pipes, 0);
    atomic_init(&l->push_added_at, 0);
    atomic_init(&l->push_down_since, (long long)skci_now_ms());
    nng_pipe_notify(l->push, NNG_PIPE_EV_ADD_PRE, push_pipe_cb, l);
    nng_pipe_notify(l->push, NNG_PIPE_EV_ADD_POST, push_pipe_cb, l);
    nng_pipe_notify(l->push, NNG_PIPE_EV_REM_POST, push_pipe_cb, l);
    if (sender_init(&l->push_tx, l->push,
            cfg->push_backlog ? cfg->push_backlog : 65536) != 0) {
        rv = NNG_ENOMEM;
        goto fail2;
    }
    /* Sends wait in the backlog until a connection has lived its hold
     * time (authenticated ones on a socket whose first frame is the auth
     * frame). */
    *out = l;
    return 0;
fail2:
    nng_close(l->push);
    if (l->tls != NULL) {
        nng_tls_config_free(l->tls);
    }
fail1:
    nng_close(l->req);
fail0:
    pthread_mutex_destroy(&l->pipe_lk);
    pthread_mutex_destroy(&l->clk);
    pthread_mutex_destroy(&l->lk);
    free(l);
    return skci_error(
        SKC_ETRANSPORT, "cannot open link sockets: %s", nng_strerror(rv));
}

static void
dialer_backoff(nng_dialer d)
{
    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 100);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 5000);
}

/* Creates a dialer for url on sock (lk held).  Created under lk, which
 * skci_link_close takes before closing the sockets: NNG 1.5.2 can use a
 * dialer after freeing it when it is created while its socket closes
 * (nanomsg/nng#1657, #1658; fixed in 1.6.0, not patched by skc).  Returns
 * an NNG error. */
static int
dial_create_locked(
    skci_link *l, nng_socket sock, const char *url, nng_dialer *d)
{
    if (atomic_load(&l->closed)) {
        return NNG_ECLOSED;
    }
    int rv = nng_dialer_create(d, sock, url);
    if (rv == 0) {
        dialer_backoff(*d);
        if (url_is_tls(url) && l->tls != NULL &&
            (rv = nng_dialer_set_ptr(*d, NNG_OPT_TLS_CONFIG, l->tls)) != 0) {
            nng_dialer_close(*d);
        }
    }
    return rv;
}

/* skc's error for a dial that ended with NNG error rv (0: none). */
static int
dial_error(int rv, const char *url)
{
    if (rv == 0) {
        return 0;
    }
    if (rv == NNG_ECLOSED) {
        return skci_error(SKC_ECLOSED, "dial %s: link closed", url);
    }
    if (rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH) {
        return skci_error(SKC_EAUTH,
            "dial %s: TLS handshake failed (%s): a certificate refused by either side (none, expired, not signed by the CA, or another server name), or the peer does not speak TLS",
            url, nng_strerror(rv));
    }
    if (rv == NNG_ECONNSHUT || rv == NNG_EPROTO || rv == NNG_ECONNRESET) {
        /* The peer hung up in the middle of the handshake: with TLS it
         * refused us (mbedTLS says no more), without it may want TLS. */
        if (url_is_tls(url)) {
            return skci_error(SKC_EAUTH,
                "dial %s: %s during the TLS handshake: the peer refused our TLS certificate (none, expired or not signed by its CA), or it does not speak TLS",
                url, nng_strerror(rv));
        }
        return skci_error(SKC_EUNREACHABLE,
            "dial %s: %s during the connection handshake: the peer may be a TLS port (tls+tcp://), or not an skc node",
            url, nng_strerror(rv));
    }
    return transport_error(rv, SKC_EUNREACHABLE, "dial", url);
}

/* Connects the REQ socket to url, waiting for the first attempt. */
static int
link_dial(skci_link *l, const char *url)
{
    nng_dialer d;
    pthread_mutex_lock(&l->lk);
    int rv = dial_create_locked(l, l->req, url, &d);
    pthread_mutex_unlock(&l->lk);
    if (rv != 0) {
        return dial_error(rv, url);
    }
    rv = nng_dialer_start(d, 0);
    if (rv != 0) {
        /* Under lk, never beside the socket's close (#1657/#1658). */
        pthread_mutex_lock(&l->lk);
        if (!atomic_load(&l->closed)) {
            nng_dialer_close(d);
        }
        pthread_mutex_unlock(&l->lk);
        if (atomic_load(&l->closed)) {
            return skci_error(SKC_ECLOSED, "dial %s: link closed", url);
        }
        return dial_error(rv, url);
    }
    pthread_mutex_lock(&l->lk);
    l->dialer = d;
    l->has_dialer = 1;
    pthread_mutex_unlock(&l->lk);
    return 0;
}

int
skci_link_send(skci_link *l, skci_tmsg *msg, int32_t reply_ms)
{
    nng_msg *m = (nng_msg *)msg;
    if (atomic_load(&l->closed)) {
        nng_msg_free(m);
        return skci_error(SKC_ECLOSED, "link closed");
    }
    lctx *c = NULL;
    int rc = lctx_get(l, &c);
    if (rc != 0) {
        nng_msg_free(m);
        return rc;
    }
    c->recving = 0;
    c->reply_ms = reply_ms > INT32_MAX - REPLY_GRACE_MS
        ? INT32_MAX
        : (reply_ms > 0 ? reply_ms : 1) + REPLY_GRACE_MS;
    nng_aio_set_msg(c->aio, m);
    nng_aio_set_timeout(c->aio, SEND_TIMEOUT_MS);
    nng_ctx_send(c->ctx, c->aio);
    return 0;
}

/* (Re)connects the PUSH socket to url; a failed first attempt leaves NNG
 * retrying in the background. */
static int
link_push_dial(skci_link *l, const char *url)
{
    pthread_mutex_lock(&l->lk);
    if (atomic_load(&l->closed)) {
        pthread_mutex_unlock(&l->lk);
        return skci_error(SKC_ECLOSED, "dial %s: link closed", url);
    }
    if (l->has_push_dialer && l->push_url != NULL &&
        strcmp(l->push_url, url) == 0) {
        pthread_mutex_unlock(&l->lk);
        return 0;
    }
    if (l->has_push_dialer) {
        nng_dialer_close(l->push_dialer);
        l->has_push_dialer = 0;
    }
    nng_dialer d;
    int rv = dial_create_locked(l, l->push, url, &d);
    if (rv == 0) {
        free(l->push_url);
        l->push_url = skci_strdup(url);
        l->push_dialer = d;
        l->has_push_dialer = 1;
        link_push_addr_set(l, url);
    }
    pthread_mutex_unlock(&l->lk);
    if (rv != 0) {
        return dial_error(rv, url);
    }
    rv = nng_dialer_start(d, 0);
    if (rv != 0 && rv != NNG_ECLOSED && !atomic_load(&l->closed)) {
        /* The first connect failed; sends wait in the socket while NNG
         * keeps trying with back-off.  (A blocking start that fails
         * leaves the dialer stopped.) */
        rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    }
    if (rv != 0 && rv != NNG_ECLOSED) {
        /* Not started: forget it, so that the next push dial tries again. */
        pthread_mutex_lock(&l->lk);
        if (!atomic_load(&l->closed) && l->has_push_dialer &&
            l->push_dialer.id == d.id) {
            nng_dialer_close(d);
            l->has_push_dialer = 0;
        }
        pthread_mutex_unlock(&l->lk);
    }
    return dial_error(rv, url);
}

/* The current authenticated PUSH socket has lost its connection (or
 * never kept one): sends wait, and the owner is asked once for a new
 * auth frame.  A connection refused at once (the peer's max_conns, a bad
 * ticket) is not redialed at once: 100 ms, doubling to 1 s. */
static void
link_push_lost(skci_link *l, uint32_t pipe)
{
    if (atomic_exchange(&l->push_lost, 1) || atomic_load(&l->closed)) {
        return;
    }
    link_push_down(l, pipe);
    int b = atomic_load(&l->push_backoff);
    b = skci_now_ms() - atomic_load(&l->push_up_at) >= 1000 ? 0
        : b == 0                                            ? 100
                                                            : b * 2;
    atomic_store(&l->push_backoff, b < 1000 ? b : 1000);
    l->cfg.on_push_lost(l->cfg.arg);
}

/* The PUSH socket of an authenticated link keeps its first connection
 * only (the auth frame went out on it, or is lost with it); a later one
 * means the first is gone, even if NNG never reported its removal.  Sends
 * wait in the backlog until that connection is up (behind the auth frame
 * in the socket's queue).  NNG thread: only closes pipes, starts sends
 * and reports. */
static void
link_push_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    skci_link *l = arg;
    uint32_t sock = (uint32_t)nng_socket_id(nng_pipe_socket(p));
    uint32_t id = (uint32_t)nng_pipe_id(p);
    int current = sock == atomic_load(&l->push_id);
    if (ev == NNG_PIPE_EV_ADD_PRE) {
        unsigned none = 0;
        if (current &&
            atomic_compare_exchange_strong(&l->push_pipe, &none, id)) {
            atomic_store(&l->push_up_at, skci_now_ms());
            return;
        }
        nng_pipe_close(p);
        if (current) {
            link_push_lost(l, atomic_load(&l->push_pipe));
        }
        return;
    }
    if (ev == NNG_PIPE_EV_ADD_POST) {
        if (current && id == atomic_load(&l->push_pipe) &&
            !atomic_load(&l->push_lost)) {
            /* The auth frame has gone to this connection (NNG's queue
             * held it alone): from now on NNG keeps no queue, and sends
             * come once the connection has lived its hold time.  (Nothing
             * of the sender's waits in this new socket, so the gate can
             * start here rather than at ADD_PRE.) */
            nng_socket_set_int(nng_pipe_socket(p), NNG_OPT_SENDBUF, 0);
            sender_pipe_up(&l->push_tx, nng_pipe_socket(p), id);
        }
        return;
    }
    if (current && id == atomic_load(&l->push_pipe)) {
        link_push_lost(l, id);
    }
}

/* Replaces the PUSH socket by a new one dialing url whose first message is
 * auth (consumed): the receiver handles nothing on a send connection
 * before its auth frame.  Sends wait in the backlog until its connection
 * is up; what the old socket still held is lost with it, as a dropped
 * connection's messages are. */
static int
link_push_dial_auth(skci_link *l, const char *url, nng_msg *auth)
{
    for (int w = atomic_load(&l->push_backoff);
         w > 0 && !atomic_load(&l->closed); w -= 20) {
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    nng_socket ns;
    int rv = nng_push0_open(&ns);
    if (rv != 0) {
        nng_msg_free(auth);
        return transport_error(rv, SKC_ETRANSPORT, "open push socket", url);
    }
    nng_socket_set_size(ns, NNG_OPT_RECVMAXSZ, 1024);
    /* room for the auth frame alone (none once it is out: ADD_POST) */
    nng_socket_set_int(ns, NNG_OPT_SENDBUF, 1);
    nng_pipe_notify(ns, NNG_PIPE_EV_ADD_PRE, link_push_pipe_cb, l);
    nng_pipe_notify(ns, NNG_PIPE_EV_ADD_POST, link_push_pipe_cb, l);
    nng_pipe_notify(ns, NNG_PIPE_EV_REM_POST, link_push_pipe_cb, l);
    /* Queued in the new socket before it has any connection: it is the
     * first frame on the first one. */
    if ((rv = nng_sendmsg(ns, auth, NNG_FLAG_NONBLOCK)) != 0) {
        nng_msg_free(auth);
        nng_close(ns);
        return transport_error(rv, SKC_ETRANSPORT, "push auth frame", url);
    }
    nng_dialer d;
    pthread_mutex_lock(&l->lk);
    rv = dial_create_locked(l, ns, url, &d);
    if (rv != 0) {
        pthread_mutex_unlock(&l->lk);
        nng_close(ns);
        return dial_error(rv, url);
    }
    atomic_store(&l->push_pipe, 0);
    atomic_store(&l->push_lost, 0);
    atomic_store(&l->push_id, (unsigned)nng_socket_id(ns));
    nng_socket old = l->push;
    l->push = ns;
    free(l->push_url);
    l->push_url = skci_strdup(url);
    l->push_dialer = d;
    l->has_push_dialer = 1;
    link_push_addr_set(l, url);
    /* Gated until the new socket's connection has lived its hold time
     * (ADD_POST starts it); a send waiting in the old socket comes back
     * when it closes. */
    sender_move(&l->push_tx, ns);
    rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    /* Under lk, as in link_close (no dialer beside a socket's close). */
    nng_close(old);
    pthread_mutex_unlock(&l->lk);
    return dial_error(rv, url);
}

int
skci_link_push(skci_link *l, skci_tmsg *msg)
{
    long long down;
    /* (An authenticated link gates its sends until its PUSH connection is
     * up and re-authenticates a lost one: link_push_pipe_cb.) */
    if (l->cfg.on_push_lost == NULL && push_stuck(l, &down)) {
        /* Never OK for a send that cannot go anywhere: past a grace for
         * the connect (and a reconnect), the send fails instead of
         * waiting in a backlog nobody drains. */
        nng_msg_free((nng_msg *)msg);
        return skci_error(SKC_EUNREACHABLE,
            "the peer's send port has not kept a connection for %lld ms (refused, full or unreachable; its log says why); the send was not queued",
            down);
    }
    return sender_send(&l->push_tx, (nng_msg *)msg);
}

size_t
skci_link_send_backlog(skci_link *l)
{
    return sender_waiting(&l->push_tx);
}

int
skci_link_connected(skci_link *l)
{
    return atomic_load(&l->connected);
}

/* Closes the sockets (closed is set): aborts a dial in progress on
 * another thread; when it returns no NNG callback of this link runs. */
static void
link_close(skci_link *l)
{
    pthread_mutex_lock(&l->push_tx.lk);
    l->push_tx.closed = 1;
    pthread_mutex_unlock(&l->push_tx.lk);
    /* Stop every context's aio before the socket closes (nng_aio_stop
     * waits for a running callback, and a stopped aio never calls back):
     * an operation that a callback starts on a context while its socket
     * closes can use the socket after NNG freed it.  In NNG 1.5.2 (and
     * 1.6) nni_ctx_rele lets nng_close go on before it runs the context's
     * ctx_fini, which locks the socket's mutex; seen as "panic:
     * pthread_mutex_lock: Invalid argument" under nng_ctx_recv.  No
     * context is added after closed is set (lctx_get checks it). */
    pthread_mutex_lock(&l->clk);
    lctx *all = l->all_ctx;
    l->all_ctx = l->free_ctx = NULL;
    pthread_mutex_unlock(&l->clk);
    for (lctx *c = all; c != NULL; c = c->next_all) {
        aio_stop_drop(c->aio);
    }
    /* Under lk: no dialer is created or closed beside the sockets' close
     * (they check closed under lk; see dial_create_locked).  No callback
     * takes lk, so nng_close's wait for them cannot deadlock. */
    pthread_mutex_lock(&l->lk);
    nng_close(l->req);
    nng_close(l->push);
    pthread_mutex_unlock(&l->lk);
    char url[sizeof(l->push_addr)], text[512];
    link_push_addr(l, url, sizeof(url));
    size_t dropped = sender_fini(&l->push_tx);
    if (dropped > 0 && l->cfg.on_sends_lost != NULL) {
        snprintf(text, sizeof(text),
            "%zu send(s) still waiting for a send connection to %s were dropped: the link was closed",
            dropped, url);
        l->cfg.on_sends_lost(l->cfg.arg, dropped, text);
    }
    while (all != NULL) {
        lctx *next = all->next_all;
        nng_aio_free(all->aio);
        free(all);
        all = next;
    }
}

/* Drops a reference; the last one tells the owner and frees the link
 * (closed by then).  On a background thread. */
static void
link_unref(skci_link *l)
{
    if (atomic_fetch_sub(&l->refs, 1) != 1) {
        return;
    }
    if (l->cfg.on_released != NULL) {
        l->cfg.on_released(l->cfg.arg);
    }
    pthread_mutex_destroy(&l->pipe_lk);
    pthread_mutex_destroy(&l->clk);
    pthread_mutex_destroy(&l->lk);
    if (l->tls != NULL) {
        nng_tls_config_free(l->tls);
    }
    free(l->push_url);
    free(l);
}

/* Blocking work on a link, on one of cfg.bg's threads. */
typedef struct link_job {
    skci_link *l;
    char *url;
    nng_msg *auth; /* JOB_PUSH_DIAL of an authenticated link */
    int what;      /* JOB_DIAL, JOB_PUSH_DIAL, JOB_CLOSE */
} link_job;

#define JOB_DIAL 0
#define JOB_PUSH_DIAL 1
#define JOB_CLOSE 2

static void *
link_job_main(void *arg)
{
    link_job *job = arg;
    skci_link *l = job->l;
    skci_bg *bg = l->cfg.bg;
    if (job->what == JOB_CLOSE) {
        link_close(l);
    } else if (job->what == JOB_DIAL) {
        int rc = link_dial(l, job->url);
        char detail[512];
        snprintf(detail, sizeof(detail), "%s", rc ? skc_last_error() : "");
        if (!atomic_load(&l->closed)) {
            l->cfg.on_dialed(l->cfg.arg, rc, detail);
        }
    } else {
        nng_msg *auth = job->auth;
        job->auth = NULL;
        int rc = auth != NULL ? link_push_dial_auth(l, job->url, auth)
                              : link_push_dial(l, job->url);
        if (rc != 0 && rc != SKC_ECLOSED && l->cfg.on_log != NULL &&
            !atomic_load(&l->closed)) {
            l->cfg.on_log(l->cfg.arg, SKC_LOG_WARN, skc_last_error());
        }
    }
    nng_msg_free(job->auth);
    free(job->url);
    free(job);
    link_unref(l);
    skci_bg_done(bg);
    return NULL;
}

/* Starts a job holding a reference (the caller's, for JOB_CLOSE); auth
 * is consumed. */
static int
link_job_start(skci_link *l, const char *url, int what, nng_msg *auth)
{
    link_job *job = calloc(1, sizeof(*job));
    if (job == NULL ||
        (url != NULL && (job->url = skci_strdup(url)) == NULL)) {
        free(job);
        nng_msg_free(auth);
        return skci_error(SKC_ENOMEM, "link job");
    }
    job->l = l;
    job->what = what;
    job->auth = auth;
    if (what != JOB_CLOSE) {
        atomic_fetch_add(&l->refs, 1);
    }
    if (skci_bg_run(l->cfg.bg, link_job_main, job) != 0) {
        if (what != JOB_CLOSE) {
            atomic_fetch_sub(&l->refs, 1); /* the owner still holds one */
        }
        nng_msg_free(job->auth);
        free(job->url);
        free(job);
        return skci_error(SKC_ENOMEM, "cannot start a thread");
    }
    return 0;
}

int
skci_link_dial(skci_link *l, const char *url)
{
    if (atomic_load(&l->closed)) {
        return skci_error(SKC_ECLOSED, "dial %s: link closed", url);
    }
    return link_job_start(l, url, JOB_DIAL, NULL);
}

int
skci_link_push_dial(skci_link *l, const char *url, skci_tmsg *auth)
{
    if (atomic_load(&l->closed)) {
        skci_tmsg_free(auth);
        return skci_error(SKC_ECLOSED, "dial %s: link closed", url);
    }
    if (atomic_load(&l->push_pipes) == 0) {
        /* the grace of sends starts now, not when the link was made */
        atomic_store(&l->push_down_since, (long long)skci_now_ms());
    }
    return link_job_start(l, url, JOB_PUSH_DIAL, (nng_msg *)auth);
}

int
skci_link_release(skci_link *l)
{
    if (l == NULL || atomic_exchange(&l->closed, 1)) {
        return 0;
    }
    return link_job_start(l, NULL, JOB_CLOSE, NULL);
}
