/* auth.h -- the cluster cookie: HMAC-SHA256 proofs for the HELLO and the
 * send port, and the per-connection state a node keeps while serving them
 * (docs/SECURITY.md, docs/PROTOCOL.md "Cluster cookie"). */
#ifndef SKC_LIB_AUTH_H
#define SKC_LIB_AUTH_H

#include "util.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SKCI_AUTH_NONCE 32  /* challenge nonces, each side */
#define SKCI_AUTH_MAC 32    /* HMAC-SHA256 */
#define SKCI_AUTH_TICKET 16 /* a send-port ticket */
#define SKCI_AUTH_KEY_MAX 1024
/* Authenticated HELLO reply: server proof + ticket, then the hello body. */
#define SKCI_AUTH_HELLO_BLOCK (SKCI_AUTH_MAC + SKCI_AUTH_TICKET)
/* A send-port auth frame's payload: ticket + proof. */
#define SKCI_AUTH_PUSH_LEN (SKCI_AUTH_TICKET + SKCI_AUTH_MAC)
#define SKCI_AUTH_TICKETS 256 /* outstanding tickets per node */
#define SKCI_AUTH_TICKET_TTL_MS 30000

/* What the proofs are about (each has its own label, so one proof can
 * never stand for another). */
#define SKCI_PROOF_CLIENT 0 /* the HELLO: the caller knows the cookie */
#define SKCI_PROOF_SERVER 1 /* the HELLO reply: so does the server */
#define SKCI_PROOF_PUSH 2   /* a send connection's first frame */

typedef struct skci_ticket {
    uint8_t t[SKCI_AUTH_TICKET];
    int64_t expires; /* ms; 0 = free slot */
    char name[256];  /* the client that got it (NUL-terminated) */
} skci_ticket;

/* A node's cookie and what it serves.  The key is set at create; the rest
 * under lock, a leaf (nothing is called under it). */
typedef struct skci_auth {
    uint8_t *key; /* NULL = no cookie */
    size_t keylen;
    pthread_mutex_t lock;
    skci_idmap pipes; /* lock: pipe id -> skci_auth_pipe */
    skci_ticket tickets[SKCI_AUTH_TICKETS]; /* lock */
} skci_auth;

/* Random bytes (getrandom).  0, or -1 when the system has none. */
int skci_auth_random(void *buf, size_t len);

/* HMAC-SHA256 with key over label `what`, the two byte strings a, b and
 * a name.  0, or -1 (mbedTLS failed). */
int skci_auth_proof(uint8_t out[SKCI_AUTH_MAC], const uint8_t *key,
    size_t keylen, int what, const uint8_t *a, size_t alen, const uint8_t *b,
    size_t blen, const char *name, size_t namelen);

/* 1 when the two MACs are equal (constant time). */
int skci_auth_mac_equal(const uint8_t *x, const uint8_t *y);

void skci_auth_init(skci_auth *a);
void skci_auth_fini(skci_auth *a);

/* Server side, by connection (pipe id). */
int skci_auth_pipe_ok(skci_auth *a, uint32_t pipe);
/* A challenge: remembers the client's nonce, writes a fresh server nonce
 * into ns.  0, or SKC_ENOMEM / SKC_EAUTH (no randomness). */
int skci_auth_challenge(skci_auth *a, uint32_t pipe,
    const uint8_t nc[SKCI_AUTH_NONCE], uint8_t ns[SKCI_AUTH_NONCE]);
/* An authenticated HELLO from client `name` with proof mac: on success the
 * pipe is authenticated, sproof is the server's proof (for server name
 * sname) and ticket a fresh send-port ticket.  0, or SKC_EAUTH with the
 * reason in why. */
int skci_auth_hello(skci_auth *a, uint32_t pipe, const char *name,
    size_t namelen, const uint8_t mac[SKCI_AUTH_MAC], const char *sname,
    uint8_t sproof[SKCI_AUTH_MAC], uint8_t ticket[SKCI_AUTH_TICKET], char *why,
    size_t whylen);
/* A new ticket for the client of an authenticated pipe (its send
 * connection was lost).  0 or SKC_EAUTH. */
int skci_auth_ticket(
    skci_auth *a, uint32_t pipe, uint8_t ticket[SKCI_AUTH_TICKET]);
/* A send connection's first frame (payload p, len bytes): on success the
 * pipe is authenticated (the ticket is used up).  0, or SKC_EAUTH with
 * the reason in why. */
int skci_auth_push(skci_auth *a, uint32_t pipe, const uint8_t *p, size_t len,
    char *why, size_t whylen);
/* The connection is gone. */
void skci_auth_pipe_gone(skci_auth *a, uint32_t pipe);

#endif
