/* auth.c -- the cluster cookie's cryptography (HMAC-SHA256 through
 * mbedTLS) and what a node remembers while peers prove it: per connection
 * the challenge nonces and whether it is authenticated, per node the
 * send-port tickets handed out by authenticated HELLOs.
 *
 * Bounded: one entry per live connection (max_conns bounds them) and at
 * most SKCI_AUTH_TICKETS tickets, each used once and forgotten after
 * SKCI_AUTH_TICKET_TTL_MS; a full table drops the oldest ticket.
 */
#include "auth.h"

#include "error.h"

#include <mbedtls/md.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

typedef struct auth_pipe {
    int authed;
    int challenged;
    uint8_t nc[SKCI_AUTH_NONCE];
    uint8_t ns[SKCI_AUTH_NONCE];
    char name[256]; /* the authenticated client (HELLO) */
} auth_pipe;

static const char *const auth_labels[] = {
    "skc-cookie-v1 hello client",
    "skc-cookie-v1 hello server",
    "skc-cookie-v1 send connection",
};

int
skci_auth_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = getrandom(p, len, 0);
        if (r <= 0) {
            return -1;
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

int
skci_auth_proof(uint8_t out[SKCI_AUTH_MAC], const uint8_t *key, size_t keylen,
    int what, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
    const char *name, size_t namelen)
{
    const mbedtls_md_info_t *info =
        mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_md_context_t ctx;
    mbedtls_md_init(&ctx);
    const char *label = auth_labels[what];
    uint8_t nl[2] = { (uint8_t)(namelen & 0xff), (uint8_t)(namelen >> 8) };
    /* The label with its NUL, the fixed-size nonces, then the name with
     * its length: no two different inputs give the same bytes. */
    int rc = info == NULL || mbedtls_md_setup(&ctx, info, 1) != 0 ||
        mbedtls_md_hmac_starts(&ctx, key, keylen) != 0 ||
        mbedtls_md_hmac_update(
            &ctx, (const uint8_t *)label, strlen(label) + 1) != 0 ||
        mbedtls_md_hmac_update(&ctx, a, alen) != 0 ||
        (blen > 0 && mbedtls_md_hmac_update(&ctx, b, blen) != 0) ||
        mbedtls_md_hmac_update(&ctx, nl, 2) != 0 ||
        (namelen > 0 &&
            mbedtls_md_hmac_update(&ctx, (const uint8_t *)name, namelen) !=
                0) ||
        mbedtls_md_hmac_finish(&ctx, out) != 0;
    mbedtls_md_free(&ctx);
    return rc ? -1 : 0;
}

int
skci_auth_mac_equal(const uint8_t *x, const uint8_t *y)
{
    uint8_t d = 0;
    for (size_t i = 0; i < SKCI_AUTH_MAC; i++) {
        d |= (uint8_t)(x[i] ^ y[i]);
    }
    return d == 0;
}

void
skci_auth_init(skci_auth *a)
{
    pthread_mutex_init(&a->lock, NULL);
    skci_idmap_init(&a->pipes);
    memset(a->tickets, 0, sizeof(a->tickets));
}

static void
pipe_free(uint32_t id, void *val, void *arg)
{
    (void)id;
    (void)arg;
    free(val);
}

void
skci_auth_fini(skci_auth *a)
{
    skci_idmap_each(&a->pipes, pipe_free, NULL);
    skci_idmap_fini(&a->pipes);
    pthread_mutex_destroy(&a->lock);
    if (a->key != NULL) {
        memset(a->key, 0, a->keylen);
        free(a->key);
        a->key = NULL;
    }
    memset(a->tickets, 0, sizeof(a->tickets));
}

int
skci_auth_pipe_ok(skci_auth *a, uint32_t pipe)
{
    pthread_mutex_lock(&a->lock);
    auth_pipe *p = skci_idmap_get(&a->pipes, pipe);
    int ok = p != NULL && p->authed;
    pthread_mutex_unlock(&a->lock);
    return ok;
}

/* The pipe's entry, made when missing (lock held); NULL without memory. */
static auth_pipe *
pipe_get(skci_auth *a, uint32_t pipe)
{
    auth_pipe *p = skci_idmap_get(&a->pipes, pipe);
    if (p == NULL && (p = calloc(1, sizeof(*p))) != NULL &&
        skci_idmap_set(&a->pipes, pipe, p) != 0) {
        free(p);
        p = NULL;
    }
    return p;
}

int
skci_auth_challenge(skci_auth *a, uint32_t pipe,
    const uint8_t nc[SKCI_AUTH_NONCE], uint8_t ns[SKCI_AUTH_NONCE])
{
    if (skci_auth_random(ns, SKCI_AUTH_NONCE) != 0) {
        return SKC_EAUTH;
    }
    pthread_mutex_lock(&a->lock);
    auth_pipe *p = pipe_get(a, pipe);
    if (p != NULL) {
        /* A new challenge starts over, even on an authenticated pipe. */
        p->authed = 0;
        p->challenged = 1;
        memcpy(p->nc, nc, SKCI_AUTH_NONCE);
        memcpy(p->ns, ns, SKCI_AUTH_NONCE);
    }
    pthread_mutex_unlock(&a->lock);
    return p != NULL ? 0 : SKC_ENOMEM;
}

/* Enters a new ticket for client `name` (lock held): a free or expired
 * slot, else the one closest to expiry. */
static int
ticket_new(skci_auth *a, const char *name, uint8_t t[SKCI_AUTH_TICKET])
{
    if (skci_auth_random(t, SKCI_AUTH_TICKET) != 0) {
        return SKC_EAUTH;
    }
    int64_t now = skci_now_ms();
    skci_ticket *slot = &a->tickets[0];
    for (size_t i = 0; i < SKCI_AUTH_TICKETS; i++) {
        skci_ticket *k = &a->tickets[i];
        if (k->expires <= now) {
            slot = k;
            break;
        }
        if (k->expires < slot->expires) {
            slot = k;
        }
    }
    memcpy(slot->t, t, SKCI_AUTH_TICKET);
    slot->expires = now + SKCI_AUTH_TICKET_TTL_MS;
    snprintf(slot->name, sizeof(slot->name), "%s", name);
    return 0;
}

int
skci_auth_hello(skci_auth *a, uint32_t pipe, const char *name, size_t namelen,
    const uint8_t mac[SKCI_AUTH_MAC], const char *sname,
    uint8_t sproof[SKCI_AUTH_MAC], uint8_t ticket[SKCI_AUTH_TICKET], char *why,
    size_t whylen)
{
    uint8_t want[SKCI_AUTH_MAC];
    int rc = SKC_EAUTH;
    pthread_mutex_lock(&a->lock);
    auth_pipe *p = skci_idmap_get(&a->pipes, pipe);
    if (p == NULL || !p->challenged) {
        snprintf(why, whylen, "a HELLO with a proof but no challenge before");
    } else if (namelen >= sizeof(p->name)) {
        snprintf(why, whylen, "a node name of %zu bytes", namelen);
    } else if (skci_auth_proof(want, a->key, a->keylen, SKCI_PROOF_CLIENT,
                   p->nc, SKCI_AUTH_NONCE, p->ns, SKCI_AUTH_NONCE, name,
                   namelen) != 0 ||
        skci_auth_proof(sproof, a->key, a->keylen, SKCI_PROOF_SERVER, p->nc,
            SKCI_AUTH_NONCE, p->ns, SKCI_AUTH_NONCE, sname,
            strlen(sname)) != 0) {
        snprintf(why, whylen, "HMAC failed");
    } else if (!skci_auth_mac_equal(want, mac)) {
        snprintf(why, whylen, "wrong cluster cookie");
    } else {
        memcpy(p->name, name, namelen);
        p->name[namelen] = '\0';
        rc = ticket_new(a, p->name, ticket);
        if (rc != 0) {
            snprintf(why, whylen, "no random bytes for a ticket");
        }
    }
    if (p != NULL) {
        /* One HELLO per challenge: a second try needs a new one. */
        p->challenged = 0;
        p->authed = rc == 0;
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int
skci_auth_ticket(skci_auth *a, uint32_t pipe, uint8_t ticket[SKCI_AUTH_TICKET])
{
    pthread_mutex_lock(&a->lock);
    auth_pipe *p = skci_idmap_get(&a->pipes, pipe);
    int rc =
        p != NULL && p->authed ? ticket_new(a, p->name, ticket) : SKC_EAUTH;
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int
skci_auth_push(skci_auth *a, uint32_t pipe, const uint8_t *pl, size_t len,
    char *why, size_t whylen)
{
    if (len != SKCI_AUTH_PUSH_LEN) {
        snprintf(why, whylen, "an auth frame of %zu bytes (want %d)", len,
            SKCI_AUTH_PUSH_LEN);
        return SKC_EAUTH;
    }
    int64_t now = skci_now_ms();
    int rc = SKC_EAUTH;
    pthread_mutex_lock(&a->lock);
    skci_ticket *k = NULL;
    for (size_t i = 0; i < SKCI_AUTH_TICKETS && k == NULL; i++) {
        if (a->tickets[i].expires > now &&
            memcmp(a->tickets[i].t, pl, SKCI_AUTH_TICKET) == 0) {
            k = &a->tickets[i];
        }
    }
    uint8_t want[SKCI_AUTH_MAC];
    if (k == NULL) {
        snprintf(why, whylen, "an unknown, used or expired ticket");
    } else if (skci_auth_proof(want, a->key, a->keylen, SKCI_PROOF_PUSH, k->t,
                   SKCI_AUTH_TICKET, NULL, 0, k->name, strlen(k->name)) != 0 ||
        !skci_auth_mac_equal(want, pl + SKCI_AUTH_TICKET)) {
        snprintf(why, whylen, "wrong cluster cookie");
    } else {
        auth_pipe *p = pipe_get(a, pipe);
        if (p != NULL) {
            p->authed = 1;
            snprintf(p->name, sizeof(p->name), "%s", k->name);
            rc = 0;
        } else {
            snprintf(why, whylen, "out of memory");
        }
    }
    if (k != NULL) {
        k->expires = 0; /* used once, right or wrong */
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

void
skci_auth_pipe_gone(skci_auth *a, uint32_t pipe)
{
    pthread_mutex_lock(&a->lock);
    free(skci_idmap_del(&a->pipes, pipe));
    pthread_mutex_unlock(&a->lock);
}
