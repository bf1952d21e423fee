/* mapapply.c -- cluster-map changes: each one checked first, then all
 * applied at once under call_lock (nothing is half-applied).
 *
 * A change sets a name to an address, to down (false), to a group of
 * other names, or sets an option; peers then react (peer.c, group.c).
 */
#include "core.h"
#include "error.h"
#include "etcd.h"
#include "map.h"
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One validated change. */
struct map_change {
    const char *name;
    int kind; /* SKCI_MAP_ADDR (url set) / SKCI_MAP_DOWN / SKCI_MAP_GROUP */
    char *url;
    skci_group *grp; /* SKCI_MAP_GROUP */
    int option;      /* 1 = __nowaiting, 2 = another option */
    int bval;
    char where[160]; /* "origin:line: " for messages, or "" */
};

static int
check_name(const char *name, const char *what, const char *where)
{
    if (name == NULL || name[0] == '\0') {
        return skci_error(SKC_EINVAL, "%scluster map: empty %s", where, what);
    }
    if (strlen(name) > SKCI_NAME_MAX) {
        return skci_error(SKC_EINVAL, "%scluster map: %s longer than %d bytes",
            where, what, SKCI_NAME_MAX);
    }
    return 0;
}

/* Builds a group from members[0..count-1]. */
static int
group_prepare(struct map_change *ch, const char *const *members, size_t count,
    int policy)
{
    if (count == 0) {
        return skci_error(SKC_EINVAL,
            "%sgroup '%s': a group needs at least one member", ch->where,
            ch->name);
    }
    skci_group *grp = calloc(1, sizeof(*grp));
    if (grp == NULL ||
        (grp->members = calloc(count, sizeof(char *))) == NULL) {
        free(grp);
        return skci_error(SKC_ENOMEM, "cluster map");
    }
    ch->grp = grp;
    grp->policy = policy;
    for (size_t i = 0; i < count; i++) {
        int rc = check_name(members[i], "group member", ch->where);
        if (rc != 0) {
            return rc;
        }
        if (strncmp(members[i], "__", 2) == 0 ||
            strcmp(members[i], ch->name) == 0) {
            return skci_error(SKC_EINVAL,
                "%sgroup '%s': '%s' cannot be a member", ch->where, ch->name,
                members[i]);
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(members[k], members[i]) == 0) {
                return skci_error(SKC_EINVAL,
                    "%sgroup '%s': member '%s' listed twice", ch->where,
                    ch->name, members[i]);
            }
        }
        if ((grp->members[i] = skci_strdup(members[i])) == NULL) {
            return skci_error(SKC_ENOMEM, "cluster map");
        }
        grp->n = i + 1;
    }
    return 0;
}

static int
map_prepare(struct map_change *ch, const char *name, int kind,
    const char *value, const char *where)
{
    memset(ch, 0, sizeof(*ch));
    ch->name = name;
    snprintf(ch->where, sizeof(ch->where), "%s", where);
    int rc = check_name(name, "node name", where);
    if (rc != 0) {
        return rc;
    }
    if (strncmp(name, "__", 2) == 0) {
        ch->option = strcmp(name, "__nowaiting") == 0 ? 1 : 2;
        if (kind == SKCI_MAP_TRUE) {
            ch->bval = 1;
        } else if (kind == SKCI_MAP_ADDR && value != NULL) {
            ch->bval = strcmp(value, "true") == 0;
        }
        return 0;
    }
    ch->kind = kind;
    if (kind == SKCI_MAP_DOWN || kind == SKCI_MAP_GROUP) {
        return 0; /* a group's members: group_prepare */
    }
    if (kind != SKCI_MAP_ADDR || value == NULL) {
        return skci_error(SKC_EINVAL,
            "%snode '%s': expected an address string or false", where, name);
    }
    char err[512];
    rc = skci_addr_to_url(&ch->url, value, err, sizeof(err));
    if (rc != 0) {
        return skci_error(rc, "%snode '%s': %s", where, name, err);
    }
    return 0;
}

/* What name will be once the changes apply: SKCI_PEER_* (call_lock). */
static int
kind_after(
    skc_node *n, const struct map_change *ch, size_t count, const char *name)
{
    for (size_t i = count; i-- > 0;) {
        if (!ch[i].option && strcmp(ch[i].name, name) == 0) {
            return ch[i].kind == SKCI_MAP_GROUP ? SKCI_PEER_GROUP
                : ch[i].kind == SKCI_MAP_DOWN   ? SKCI_PEER_MARKED_DOWN
                                                : SKCI_PEER_HAS_ADDR;
        }
    }
    skci_peer *p = skci_peer_get(n, name, 0);
    return p != NULL ? p->map : SKCI_PEER_NOT_IN_MAP;
}

/* No group may have a group as a member once the changes apply
 * (call_lock held).  0, or SKC_ESYNTAX naming both. */
static int
check_groups(skc_node *n, const struct map_change *ch, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const skci_group *grp = ch[i].grp;
        for (size_t k = 0; grp != NULL && k < grp->n; k++) {
            if (kind_after(n, ch, count, grp->members[k]) == SKCI_PEER_GROUP) {
                return skci_error(SKC_ESYNTAX,
                    "%sgroup '%s': member '%s' is itself a group", ch[i].where,
                    ch[i].name, grp->members[k]);
            }
        }
    }
    /* Groups already in the map, whose members may have become groups. */
    for (size_t b = 0; b < n->peers.byname.nb; b++) {
        for (skci_strmap_ent *e = n->peers.byname.b[b]; e; e = e->next) {
            skci_peer *g = e->val;
            if (g->map != SKCI_PEER_GROUP ||
                kind_after(n, ch, count, g->name) != SKCI_PEER_GROUP) {
                continue;
            }
            for (size_t i = 0; i < count; i++) {
                for (size_t k = 0;
                     ch[i].kind == SKCI_MAP_GROUP && k < g->group->n; k++) {
                    if (strcmp(g->group->members[k], ch[i].name) == 0) {
                        return skci_error(SKC_ESYNTAX,
                            "%s'%s' cannot become a group: it is a member of group '%s'",
                            ch[i].where, ch[i].name, g->name);
                    }
                }
            }
        }
    }
    return 0;
}

/* Makes p a group (calls queued on it go to a member). */
static void
apply_group(skc_node *n, skci_peer *p, struct map_change *ch)
{
    int was = p->map;
    if (was == SKCI_PEER_HAS_ADDR || was == SKCI_PEER_NOT_IN_MAP) {
        char why[SKCI_DETAIL_MAX];
        snprintf(why, sizeof(why),
            "'%s' became a group while the request was in flight; the outcome is unknown",
            p->name);
        skci_peer_detach(n, p);
        skci_call_fail_list(n, &p->sent, SKC_ECONNLOST, why);
    }
    p->map = SKCI_PEER_GROUP;
    free(p->url);
    p->url = NULL;
    skci_group_set(p, ch->grp);
    ch->grp = NULL;
    char *text = skci_group_text(p->group);
    skci_node_log(n, SKC_LOG_INFO, "cluster map: %s = %s", p->name,
        text ? text : "(group)");
    free(text);
    /* Calls waiting for the name go to a member. */
    skci_list waiting = { NULL, NULL, 0 };
    skci_list_move(&waiting, &p->queued);
    skci_lnode *e;
    while ((e = skci_list_pop(&waiting)) != NULL) {
        skci_call *c = SKCI_CALL_OF(e);
        c->state = 0;
        c->group = p;
        char why[SKCI_DETAIL_MAX];
        skci_peer *m = skci_group_pick(n, p, NULL, why, sizeof(why));
        if (m != NULL) {
            skci_peer_route(n, m, c);
        } else {
            c->peer = NULL;
            skci_call_finish(n, c, SKC_EUNREACHABLE, NULL, NULL, 0, why);
        }
    }
}

/* Sets p's entry to an address or down. */
static void
apply_node(skc_node *n, skci_peer *p, struct map_change *ch)
{
    int nmap =
        ch->kind == SKCI_MAP_DOWN ? SKCI_PEER_MARKED_DOWN : SKCI_PEER_HAS_ADDR;
    if (p->map == nmap &&
        (nmap == SKCI_PEER_MARKED_DOWN || strcmp(p->url, ch->url) == 0)) {
        return;
    }
    if (p->map == SKCI_PEER_GROUP) {
        skci_group_set(p, NULL);
    }
    p->map = nmap;
    free(p->url);
    p->url = ch->url;
    ch->url = NULL;
    skci_node_log(n, SKC_LOG_INFO, "cluster map: %s = %s", p->name,
        p->url ? p->url : "false");
    skci_peer_map_changed(n, p);
}

/* Applies validated changes atomically (all under call_lock). */
static int
map_apply(skc_node *n, struct map_change *ch, size_t count)
{
    skci_call_lock(n);
    /* Create peers first so that no allocation can fail half-way. */
    for (size_t i = 0; i < count; i++) {
        if (ch[i].option) {
            continue;
        }
        if (skci_peer_get(n, ch[i].name, 1) == NULL) {
            skci_call_unlock(n);
            return skci_error(SKC_ENOMEM, "cluster map");
        }
        for (size_t k = 0; ch[i].grp != NULL && k < ch[i].grp->n; k++) {
            if (skci_peer_get(n, ch[i].grp->members[k], 1) == NULL) {
                skci_call_unlock(n);
                return skci_error(SKC_ENOMEM, "cluster map");
            }
        }
    }
    int rc = check_groups(n, ch, count);
    if (rc != 0) {
        skci_call_unlock(n);
        return rc;
    }
    int nowaiting_was = n->peers.nowaiting;
    int groups = 0;
    for (size_t i = 0; i < count; i++) {
        if (ch[i].option == 1) {
            n->peers.nowaiting = ch[i].bval;
            continue;
        }
        if (ch[i].option) {
            continue; /* unknown options are accepted, as in skynet */
        }
        skci_peer *p = skci_peer_get(n, ch[i].name, 0);
        groups |= p->map == SKCI_PEER_GROUP || ch[i].grp != NULL;
        if (ch[i].grp != NULL) {
            apply_group(n, p, &ch[i]);
        } else {
            apply_node(n, p, &ch[i]);
        }
    }
    if (groups) {
        skci_groups_watch(n);
    }
    if (n->peers.nowaiting && !nowaiting_was) {
        skci_nowaiting_changed(n);
    }
    skci_call_unlock(n);
    return 0;
}

static void
map_changes_free(struct map_change *ch, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(ch[i].url);
        skci_group_free(ch[i].grp);
    }
    free(ch);
}

int
skci_map_apply_list(skc_node *n, const skci_map_list *l, const char *origin)
{
    struct map_change *ch = calloc(l->n ? l->n : 1, sizeof(*ch));
    if (ch == NULL) {
        return skci_error(SKC_ENOMEM, "cluster map");
    }
    int rc = 0;
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        char where[600];
        snprintf(where, sizeof(where), "%s:%d: ", origin, l->v[i].line);
        const skci_map_entry *e = &l->v[i];
        rc = map_prepare(&ch[i], e->name, e->kind, e->value, where);
        if (rc == 0 && ch[i].kind == SKCI_MAP_GROUP) {
            rc = group_prepare(&ch[i], (const char *const *)e->members,
                e->nmembers, e->policy);
        }
    }
    if (rc == 0) {
        rc = map_apply(n, ch, l->n);
    }
    map_changes_free(ch, l->n);
    return rc;
}

static int
map_parse_apply(skc_node *n, const char *text, size_t len, const char *origin)
{
    skci_map_list l = { NULL, 0 };
    char err[600];
    int rc = skci_map_parse(&l, text, len, origin, err, sizeof(err));
    if (rc != 0) {
        return skci_error(rc, "%s", err);
    }
    rc = skci_map_apply_list(n, &l, origin);
    skci_map_list_free(&l);
    return rc;
}

static int
map_load_file(skc_node *n, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    char err[600];
    int rc = skci_map_read_file(&text, &len, path, err, sizeof(err));
    if (rc != 0) {
        return skci_error(rc, "%s", err);
    }
    rc = map_parse_apply(n, text, len, path);
    free(text);
    return rc;
}

int
skci_map_reload_from(skc_node *n, const char *path)
{
    return map_load_file(n, path);
}

int
skc_node_map_load(skc_node *node, const char *path)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (path == NULL || path[0] == '\0') {
        return skci_error(SKC_EINVAL, "map path is empty");
    }
    if ((rc = map_load_file(node, path)) != 0) {
        return rc;
    }
    char *p = skci_strdup(path);
    skci_call_lock(node);
    free(node->peers.map_path);
    node->peers.map_path = p;
    skci_call_unlock(node);
    skci_watch_path_changed(node);
    return 0;
}

int
skc_node_map_reload(skc_node *node)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    skci_call_lock(node);
    char *path = skci_strdup(node->peers.map_path);
    skci_call_unlock(node);
    if (path == NULL) {
        return skci_error(SKC_ESTATE,
            "node '%s' has no cluster map file to reload", node->name);
    }
    rc = map_load_file(node, path);
    free(path);
    return rc;
}

int
skc_node_map_parse(skc_node *node, const char *text, const char *origin)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (text == NULL) {
        return skci_error(SKC_EINVAL, "map text is NULL");
    }
    return map_parse_apply(
        node, text, strlen(text), origin ? origin : "<string>");
}

int
skc_node_map_update(skc_node *node, const char *const *names,
    const char *const *addrs, size_t count)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (count > 0 && (names == NULL || addrs == NULL)) {
        return skci_error(SKC_EINVAL, "names or addrs is NULL");
    }
    struct map_change *ch = calloc(count ? count : 1, sizeof(*ch));
    if (ch == NULL) {
        return skci_error(SKC_ENOMEM, "cluster map");
    }
    for (size_t i = 0; i < count && rc == 0; i++) {
        rc = map_prepare(&ch[i], names[i],
            addrs[i] ? SKCI_MAP_ADDR : SKCI_MAP_DOWN, addrs[i], "");
    }
    if (rc == 0) {
        rc = map_apply(node, ch, count);
    }
    map_changes_free(ch, count);
    return rc;
}

int
skc_node_map_set(skc_node *node, const char *name, const char *addr)
{
    return skc_node_map_update(node, &name, &addr, 1);
}

int
skc_node_map_get(skc_node *node, char **out_addr, const char *name)
{
    if (node == NULL || out_addr == NULL || name == NULL) {
        return skci_error(SKC_EINVAL, "node, out_addr or name is NULL");
    }
    *out_addr = NULL;
    if (strcmp(name, "__nowaiting") == 0) {
        skci_call_lock(node);
        *out_addr = skci_user_strdup(node->peers.nowaiting ? "true" : "false");
        skci_call_unlock(node);
        return *out_addr ? 0 : skci_error(SKC_ENOMEM, "map_get");
    }
    skci_call_lock(node);
    skci_peer *p = skci_peer_get(node, name, 0);
    int state = p ? p->map : SKCI_PEER_NOT_IN_MAP;
    char *url = state == SKCI_PEER_HAS_ADDR ? skci_user_strdup(p->url) : NULL;
    if (state == SKCI_PEER_GROUP) {
        char *text = skci_group_text(p->group);
        url = text != NULL ? skci_user_strdup(text) : NULL;
        free(text);
    }
    skci_call_unlock(node);
    if (state == SKCI_PEER_NOT_IN_MAP) {
        return skci_error(
            SKC_ENONODE, "node '%s' is not in the cluster map", name);
    }
    if ((state == SKCI_PEER_HAS_ADDR || state == SKCI_PEER_GROUP) &&
        url == NULL) {
        return skci_error(SKC_ENOMEM, "map_get");
    }
    *out_addr = url;
    return 0;
}

int
skc_node_map_set_group(skc_node *node, const char *name,
    const char *const *members, size_t count, const char *policy)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (count > 0 && members == NULL) {
        return skci_error(SKC_EINVAL, "members is NULL");
    }
    int pol = SKCI_GROUP_FAILOVER;
    if (policy != NULL && skci_group_policy_parse(policy, &pol) != 0) {
        return skci_error(SKC_EINVAL,
            "group '%s': unknown policy '%s' (failover, roundrobin or random)",
            name ? name : "", policy);
    }
    struct map_change ch;
    rc = map_prepare(&ch, name, SKCI_MAP_GROUP, NULL, "");
    if (rc == 0 && ch.option) {
        rc = skci_error(
            SKC_EINVAL, "cluster map: option '%s' cannot be a group", name);
    }
    if (rc == 0) {
        rc = group_prepare(&ch, members, count, pol);
    }
    if (rc == 0) {
        rc = map_apply(node, &ch, 1);
    }
    skci_group_free(ch.grp);
    free(ch.url);
    return rc;
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
skc_node_map_names(skc_node *node, char **out)
{
    if (node == NULL || out == NULL) {
        return skci_error(SKC_EINVAL, "node or out is NULL");
    }
    *out = NULL;
    skci_call_lock(node);
    size_t count = 0, len = 1;
    const char **v = calloc(node->peers.byname.count + 1, sizeof(char *));
    for (size_t b = 0; v != NULL && b < node->peers.byname.nb; b++) {
        for (skci_strmap_ent *e = node->peers.byname.b[b]; e; e = e->next) {
            skci_peer *p = e->val;
            if (p->map != SKCI_PEER_NOT_IN_MAP) {
                v[count++] = p->name;
                len += strlen(p->name) + 1;
            }
        }
    }
    char *text = v != NULL ? skci_user_alloc(len) : NULL;
    if (text != NULL) {
        qsort(v, count, sizeof(*v), name_cmp);
        size_t o = 0;
        for (size_t i = 0; i < count; i++) {
            size_t l = strlen(v[i]);
            memcpy(text + o, v[i], l);
            text[o + l] = '\n';
            o += l + 1;
        }
        text[o] = '\0';
    }
    skci_call_unlock(node);
    free(v);
    if (text == NULL) {
        return skci_error(SKC_ENOMEM, "map_names");
    }
    *out = text;
    return 0;
}

int
skc_node_map_source(skc_node *node, char **out)
{
    if (node == NULL || out == NULL) {
        return skci_error(SKC_EINVAL, "node or out is NULL");
    }
    char src[SKCI_DETAIL_MAX] = "";
    if (skci_etcd_source(node, src, sizeof(src)) != 0) {
        skci_call_lock(node);
        if (node->peers.map_path != NULL) {
            snprintf(src, sizeof(src), "file %s", node->peers.map_path);
        }
        skci_call_unlock(node);
    }
    if ((*out = skci_user_strdup(src)) == NULL) {
        return skci_error(SKC_ENOMEM, "map_source");
    }
    return 0;
}
