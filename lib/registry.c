/* registry.c -- services, their handles and names.
 *
 * Handles are per node, start at 1 and are never reused during the node's
 * life, so a stale handle fails the lookup instead of reaching a new
 * service.  Names are kept with their prefix ("@x" cluster, ".x" local).
 */
#include "core.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
skci_registry_init(skc_node *n)
{
    pthread_rwlock_init(&n->reg.lock, NULL);
    skci_idmap_init(&n->reg.services);
    skci_strmap_init(&n->reg.names);
    n->reg.next_handle = 1;
}

static void
free_service(uint32_t h, void *val, void *arg)
{
    (void)h;
    (void)arg;
    skci_service *s = val;
    /* Mailboxes were emptied by dispatch_stop. */
    free(s);
}

void
skci_registry_fini(skc_node *n)
{
    skci_idmap_each(&n->reg.services, free_service, NULL);
    skci_idmap_fini(&n->reg.services);
    skci_strmap_fini(&n->reg.names);
    pthread_rwlock_destroy(&n->reg.lock);
}

/* "@x"/".x" key for a name target; buf has SKCI_NAME_MAX + 2 bytes. */
static void
registry_key(char *buf, const skci_target *t)
{
    buf[0] = t->type == SKCI_TARGET_LOCAL ? '.' : '@';
    memcpy(buf + 1, t->name, t->name_len);
    buf[1 + t->name_len] = '\0';
}

/* The service a target names, or NULL (reg.lock held). */
static skci_service *
registry_lookup(skc_node *n, const skci_target *t)
{
    uint32_t h = 0;
    if (t->type == SKCI_TARGET_HANDLE) {
        h = t->handle;
    } else if (t->type == SKCI_TARGET_CLUSTER ||
        t->type == SKCI_TARGET_LOCAL) {
        char key[SKCI_NAME_MAX + 2];
        registry_key(key, t);
        h = (uint32_t)(uintptr_t)skci_strmap_get(&n->reg.names, key);
    }
    return h ? skci_idmap_get(&n->reg.services, h) : NULL;
}

skci_service *
skci_registry_find(skc_node *n, const skci_target *t)
{
    pthread_rwlock_rdlock(&n->reg.lock);
    skci_service *s = registry_lookup(n, t);
    if (s != NULL) {
        pthread_mutex_lock(&n->dq.lock);
        if (s->dead) {
            s = NULL;
        } else {
            s->refs++;
        }
        pthread_mutex_unlock(&n->dq.lock);
    }
    pthread_rwlock_unlock(&n->reg.lock);
    return s;
}

/* Finds the target's service and delivers m to it under the registry
 * read lock: the registry's reference keeps the service alive, so this
 * takes dq.lock once per message instead of three times. */
int
skci_registry_deliver(skc_node *n, const skci_target *t, skc_msg *m)
{
    int rc = SKC_ENOSERVICE;
    pthread_rwlock_rdlock(&n->reg.lock);
    skci_service *s = registry_lookup(n, t);
    if (s != NULL) {
        rc = skci_dispatch_deliver(n, s, m);
    }
    pthread_rwlock_unlock(&n->reg.lock);
    if (rc == 1) {
        /* The turn's reference keeps s alive without reg.lock, which the
         * handler may need (names, services). */
        skci_dispatch_run(n, s, m);
        rc = 0;
    }
    return rc;
}

void
skci_service_release(skc_node *n, skci_service *s)
{
    pthread_mutex_lock(&n->dq.lock);
    int last = --s->refs == 0;
    pthread_mutex_unlock(&n->dq.lock);
    if (last) {
        free(s);
    }
}

int
skc_service_create(skc_node *node, uint32_t *out, skc_handler_fn fn, void *arg)
{
    return skc_service_create_ex(node, out, fn, arg, 0);
}

int
skc_service_create_ex(skc_node *node, uint32_t *out, skc_handler_fn fn,
    void *arg, uint32_t flags)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (out == NULL || fn == NULL) {
        return skci_error(SKC_EINVAL, "%s is NULL", out ? "handler" : "out");
    }
    if ((flags & ~(uint32_t)SKC_SERVICE_INLINE) != 0) {
        return skci_error(SKC_EINVAL, "unknown service flags 0x%x",
            (unsigned)(flags & ~(uint32_t)SKC_SERVICE_INLINE));
    }
    skci_service *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return skci_error(SKC_ENOMEM, "service");
    }
    s->task.run = skci_dispatch_run_service;
    s->fn = fn;
    s->arg = arg;
    s->inline_ok = (flags & SKC_SERVICE_INLINE) != 0;
    s->refs = 1; /* the registry's */
    pthread_rwlock_wrlock(&node->reg.lock);
    if (node->reg.next_handle == 0) {
        pthread_rwlock_unlock(&node->reg.lock);
        free(s);
        return skci_error(SKC_ELIMIT, "service handles exhausted");
    }
    s->handle = node->reg.next_handle++;
    rc = skci_idmap_set(&node->reg.services, s->handle, s);
    pthread_rwlock_unlock(&node->reg.lock);
    if (rc != 0) {
        free(s);
        return skci_error(SKC_ENOMEM, "service table");
    }
    *out = s->handle;
    return 0;
}

struct name_sweep {
    uint32_t handle;
    char **keys;
    size_t n, cap;
};

static void
collect_names(const char *key, void *val, void *arg)
{
    struct name_sweep *sw = arg;
    if ((uint32_t)(uintptr_t)val != sw->handle) {
        return;
    }
    if (sw->n == sw->cap) {
        size_t nc = sw->cap ? sw->cap * 2 : 4;
        char **k = realloc(sw->keys, nc * sizeof(*k));
        if (k == NULL) {
            return;
        }
        sw->keys = k;
        sw->cap = nc;
    }
    sw->keys[sw->n++] = skci_strdup(key);
}

int
skc_service_destroy(skc_node *node, uint32_t service)
{
    if (node == NULL) {
        return skci_error(SKC_EINVAL, "node is NULL");
    }
    pthread_rwlock_wrlock(&node->reg.lock);
    skci_service *s = skci_idmap_del(&node->reg.services, service);
    if (s == NULL) {
        pthread_rwlock_unlock(&node->reg.lock);
        return skci_error(SKC_ENOSERVICE, "node '%s' has no service :%08x",
            node->name, service);
    }
    struct name_sweep sw = { service, NULL, 0, 0 };
    skci_strmap_each(&node->reg.names, collect_names, &sw);
    for (size_t i = 0; i < sw.n; i++) {
        if (sw.keys[i] != NULL) {
            skci_strmap_del(&node->reg.names, sw.keys[i]);
        }
        free(sw.keys[i]);
    }
    free(sw.keys);
    pthread_rwlock_unlock(&node->reg.lock);

    pthread_mutex_lock(&node->dq.lock);
    s->dead = 1;
    skci_list mail = { NULL, NULL, 0 };
    skci_mail_take(node, s, &mail);
    while (s->running && !pthread_equal(s->runner, pthread_self())) {
        pthread_cond_wait(&node->dq.idle_cond, &node->dq.lock);
    }
    int last = --s->refs == 0;
    pthread_mutex_unlock(&node->dq.lock);
    if (last) {
        free(s);
    }
    skci_lnode *e;
    while ((e = skci_list_pop(&mail)) != NULL) {
        skc_msg *m = SKCI_LIST_ENTRY(e, skc_msg, mail);
        char why[700];
        snprintf(why, sizeof(why),
            "service %s on node '%s' was destroyed before it handled the request",
            m->target, node->name);
        skci_msg_drop(m, SKC_ENOREPLY, why);
    }
    return 0;
}

/* Parses a name for (un)registration into its "@x"/".x" key. */
static int
name_key(char *key, const char *name)
{
    skci_target t;
    int rc = skci_target_parse(&t, name, 1);
    if (rc != 0) {
        return rc;
    }
    if (t.type == SKCI_TARGET_HANDLE) {
        return skci_error(SKC_EINVAL, "'%s' is a handle, not a name", name);
    }
    registry_key(key, &t);
    return 0;
}

int
skc_name_register(skc_node *node, const char *name, uint32_t service)
{
    int rc;
    char key[SKCI_NAME_MAX + 2];
    if ((rc = skci_node_check(node)) != 0 || (rc = name_key(key, name)) != 0) {
        return rc;
    }
    pthread_rwlock_wrlock(&node->reg.lock);
    if (skci_idmap_get(&node->reg.services, service) == NULL) {
        pthread_rwlock_unlock(&node->reg.lock);
        return skci_error(SKC_ENOSERVICE, "node '%s' has no service :%08x",
            node->name, service);
    }
    uint32_t cur = (uint32_t)(uintptr_t)skci_strmap_get(&node->reg.names, key);
    if (cur != 0 && cur != service) {
        pthread_rwlock_unlock(&node->reg.lock);
        return skci_error(SKC_EEXIST,
            "name %s is already registered to :%08x on node '%s'", key, cur,
            node->name);
    }
    rc = skci_strmap_set(&node->reg.names, key, (void *)(uintptr_t)service);
    pthread_rwlock_unlock(&node->reg.lock);
    if (rc != 0) {
        return skci_error(SKC_ENOMEM, "name table");
    }
    return 0;
}

int
skc_name_unregister(skc_node *node, const char *name)
{
    int rc;
    char key[SKCI_NAME_MAX + 2];
    if (node == NULL) {
        return skci_error(SKC_EINVAL, "node is NULL");
    }
    if ((rc = name_key(key, name)) != 0) {
        return rc;
    }
    pthread_rwlock_wrlock(&node->reg.lock);
    void *v = skci_strmap_del(&node->reg.names, key);
    pthread_rwlock_unlock(&node->reg.lock);
    if (v == NULL) {
        return skci_error(SKC_ENOSERVICE,
            "name %s is not registered on node '%s'", key, node->name);
    }
    return 0;
}

int
skc_name_lookup(skc_node *node, uint32_t *out, const char *name)
{
    int rc;
    char key[SKCI_NAME_MAX + 2];
    if (node == NULL || out == NULL) {
        return skci_error(SKC_EINVAL, "%s is NULL", node ? "out" : "node");
    }
    *out = 0;
    if ((rc = name_key(key, name)) != 0) {
        return rc;
    }
    pthread_rwlock_rdlock(&node->reg.lock);
    uint32_t h = (uint32_t)(uintptr_t)skci_strmap_get(&node->reg.names, key);
    pthread_rwlock_unlock(&node->reg.lock);
    if (h == 0) {
        return skci_error(SKC_ENOSERVICE,
            "name %s is not registered on node '%s'", key, node->name);
    }
    *out = h;
    return 0;
}
