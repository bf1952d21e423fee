/* core.c -- the node struct's own lifetime: the reference count that
 * deferred replies share with the user, and the check every entry point
 * makes before it touches a node.
 */
#include "core.h"
#include "error.h"

#include <stdlib.h>

int
skci_node_check(skc_node *n)
{
    if (n == NULL) {
        return skci_error(SKC_EINVAL, "node is NULL");
    }
    if (atomic_load(&n->closing)) {
        return skci_error(SKC_ECLOSED, "node '%s' is closing", n->name);
    }
    return 0;
}

void
skci_node_unref(skc_node *n)
{
    if (atomic_fetch_sub(&n->refs, 1) == 1) {
        skci_log_fini(n);
        pthread_mutex_destroy(&n->serve.lock);
        pthread_mutex_destroy(&n->open_lock);
        pthread_mutex_destroy(&n->watch.ctl);
        pthread_mutex_destroy(&n->watch.lock);
        free(n->peers.map_path);
        skci_auth_fini(&n->auth);
        free(n->tls.cert);
        free(n->tls.key);
        free(n->tls.ca);
        free(n->tls.server_name);
        free(n);
    }
}
