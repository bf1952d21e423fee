/* group.c -- map names that stand for several nodes: which member a call
 * goes to (failover, roundrobin, random), and which peers are watched.
 *
 * All under call_lock.  A member is picked among those that are up; with
 * none up, the first one that is not known to be down (it is connecting);
 * with none of those, nobody, and the reason names every member.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
skci_group_free(skci_group *grp)
{
    if (grp == NULL) {
        return;
    }
    for (size_t i = 0; i < grp->n; i++) {
        free(grp->members[i]);
    }
    free(grp->members);
    free(grp->last_pick);
    free(grp);
}

static int
member_up(const skci_peer *m)
{
    return m->map == SKCI_PEER_HAS_ADDR && m->health == SKC_PEER_UP &&
        m->link_state == SKCI_LINK_UP;
}

/* The i-th member that is up, counting from `from` (roundrobin). */
static skci_peer *
pick_up(skc_node *n, skci_group *grp, skci_peer *skip, size_t from, size_t *at)
{
    for (size_t k = 0; k < grp->n; k++) {
        size_t i = (from + k) % grp->n;
        skci_peer *m = skci_peer_get(n, grp->members[i], 0);
        if (m != NULL && m != skip && member_up(m)) {
            *at = i;
            return m;
        }
    }
    return NULL;
}

static skci_peer *
pick_random(skc_node *n, skci_group *grp, skci_peer *skip)
{
    size_t up = 0;
    for (size_t i = 0; i < grp->n; i++) {
        skci_peer *m = skci_peer_get(n, grp->members[i], 0);
        up += m != NULL && m != skip && member_up(m);
    }
    if (up == 0) {
        return NULL;
    }
    /* xorshift32: cheap, and good enough to spread load. */
    uint32_t x = grp->rnd ? grp->rnd : (uint32_t)skci_now_ns() | 1u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    grp->rnd = x;
    size_t want = x % up, at;
    for (size_t i = 0; i < grp->n; i++) {
        skci_peer *m = skci_peer_get(n, grp->members[i], 0);
        if (m != NULL && m != skip && member_up(m) && want-- == 0) {
            return m;
        }
    }
    return pick_up(n, grp, skip, 0, &at);
}

/* No member is up: the first one that may still come (connecting, or not
 * tried yet), or NULL with every member's state in why. */
static skci_peer *
pick_pending(
    skc_node *n, skci_peer *g, skci_peer *skip, char *why, size_t whylen)
{
    skci_group *grp = g->group;
    for (size_t i = 0; i < grp->n; i++) {
        skci_peer *m = skci_peer_get(n, grp->members[i], 1);
        if (m != NULL && m != skip && m->map == SKCI_PEER_HAS_ADDR &&
            m->health != SKC_PEER_DOWN) {
            return m;
        }
    }
    size_t off = (size_t)snprintf(why, whylen, "group '%s': ", g->name);
    for (size_t i = 0; i < grp->n && off < whylen; i++) {
        skci_peer *m = skci_peer_get(n, grp->members[i], 0);
        const char *st = m == NULL || m->map == SKCI_PEER_NOT_IN_MAP
            ? "not in the cluster map"
            : m->map == SKCI_PEER_MARKED_DOWN ? "down (marked down)"
            : m == skip                       ? "down (connection lost)"
                                              : NULL;
        if (st != NULL) {
            off += (size_t)snprintf(why + off, whylen - off,
                "member '%s' %s; ", grp->members[i], st);
        } else {
            off += (size_t)snprintf(why + off, whylen - off,
                "member '%s' (%s) down (%s); ", grp->members[i],
                skci_peer_addr(m), m->reason ? m->reason : "unknown");
        }
    }
    if (off < whylen) {
        snprintf(why + off, whylen - off, "no live member");
    }
    return NULL;
}

skci_peer *
skci_group_pick(
    skc_node *n, skci_peer *g, skci_peer *skip, char *why, size_t whylen)
{
    skci_group *grp = g->group;
    skci_peer *m;
    size_t at = 0;
    switch (grp->policy) {
    case SKCI_GROUP_ROUNDROBIN:
        if ((m = pick_up(n, grp, skip, grp->rr, &at)) != NULL) {
            grp->rr = at + 1;
        }
        break;
    case SKCI_GROUP_RANDOM:
        m = pick_random(n, grp, skip);
        break;
    default:
        m = pick_up(n, grp, skip, 0, &at);
        break;
    }
    if (m == NULL && (m = pick_pending(n, g, skip, why, whylen)) == NULL) {
        return NULL;
    }
    if (grp->policy == SKCI_GROUP_FAILOVER &&
        (grp->last_pick == NULL || strcmp(grp->last_pick, m->name) != 0)) {
        skci_peer *old = grp->last_pick != NULL
            ? skci_peer_get(n, grp->last_pick, 0)
            : NULL;
        if (old != NULL && old->health == SKC_PEER_UP) {
            skci_node_log(n, SKC_LOG_INFO,
                "group '%s': member '%s' (%s) is up; switching back to it from '%s'",
                g->name, m->name, skci_peer_addr(m), old->name);
        } else if (old != NULL) {
            skci_node_log(n, SKC_LOG_INFO,
                "group '%s': member '%s' down (%s); switching to '%s' (%s)",
                g->name, old->name, old->reason ? old->reason : "unknown",
                m->name, skci_peer_addr(m));
        }
        char *s = skci_strdup(m->name);
        if (s != NULL) {
            free(grp->last_pick);
            grp->last_pick = s;
        }
    }
    return m;
}

void
skci_group_set(skci_peer *g, skci_group *grp)
{
    skci_group_free(g->group);
    g->group = grp;
}

void
skci_groups_watch(skc_node *n)
{
    skci_strmap *m = &n->peers.byname;
    for (size_t i = 0; i < m->nb; i++) {
        for (skci_strmap_ent *e = m->b[i]; e; e = e->next) {
            ((skci_peer *)e->val)->watched = 0;
        }
    }
    for (size_t i = 0; i < m->nb; i++) {
        for (skci_strmap_ent *e = m->b[i]; e; e = e->next) {
            skci_peer *g = e->val;
            if (g->map != SKCI_PEER_GROUP) {
                continue;
            }
            for (size_t k = 0; k < g->group->n; k++) {
                skci_peer *p = skci_peer_get(n, g->group->members[k], 1);
                if (p == NULL || strcmp(p->name, n->name) == 0) {
                    continue; /* this node itself is not watched */
                }
                p->watched = 1;
                if (p->map == SKCI_PEER_HAS_ADDR &&
                    p->link_state == SKCI_LINK_NONE && p->redial_at == 0) {
                    skci_peer_dial(n, p);
                }
            }
        }
    }
}

char *
skci_group_text(const skci_group *grp)
{
    size_t len = 32;
    for (size_t i = 0; i < grp->n; i++) {
        len += strlen(grp->members[i]) * 4 + 4;
    }
    char *s = malloc(len);
    if (s == NULL) {
        return NULL;
    }
    size_t off = 0;
    s[off++] = '{';
    for (size_t i = 0; i < grp->n; i++) {
        if (i > 0) {
            s[off++] = ',';
        }
        s[off++] = '"';
        for (const char *c = grp->members[i]; *c; c++) {
            if (*c == '"' || *c == '\\') {
                s[off++] = '\\';
                s[off++] = *c;
            } else if ((unsigned char)*c < 0x20) {
                off += (size_t)snprintf(
                    s + off, len - off, "\\%03u", (unsigned)(unsigned char)*c);
            } else {
                s[off++] = *c;
            }
        }
        s[off++] = '"';
    }
    if (grp->policy != SKCI_GROUP_FAILOVER) {
        off += (size_t)snprintf(s + off, len - off, ",policy=\"%s\"",
            skci_group_policy_name(grp->policy));
    }
    s[off++] = '}';
    s[off] = '\0';
    return s;
}
