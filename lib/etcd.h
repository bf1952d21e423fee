/* etcd.h -- the cluster map kept in etcd v3 (etcd.c): the node's side of
 * it.  The keys and values it reads and writes are etcd_keys.h's (included
 * here: the layout is part of this source's contract); the HTTP/JSON
 * client under it is etcd_client.h.
 */
#ifndef SKC_LIB_ETCD_H
#define SKC_LIB_ETCD_H

#include "skc/skc.h"

#include "etcd_keys.h"
#include "map.h"

#include <stddef.h>

typedef struct skci_etcd skci_etcd;

/* Starts the map source named by o->etcd (o->etcd != NULL): reads the
 * prefix once (waiting up to a few seconds; an etcd that does not answer
 * is logged and retried in the background) and starts the thread that
 * watches it.  0, or SKC_EINVAL (bad option, or built without etcd
 * support), SKC_ENOMEM (detail set). */
int skci_etcd_start(skc_node *n, const skc_node_opts *o);
/* Stops the thread and revokes this node's lease (destroy, no lock). */
void skci_etcd_stop(skc_node *n);
/* The node listens on url under its name: announce it (first open only).
 * 0 (announced, or etcd did not answer: retried in the background), or
 * SKC_EEXIST (a live node has the name), SKC_EINVAL (no name). */
int skci_etcd_announce(skc_node *n, const char *url);
/* What skc_node_open(node, name) listens on with etcd; NULL without. */
const char *skci_etcd_listen(const skc_node *n);
/* "etcd <endpoint> prefix <prefix>" into buf; 0, or -1 without etcd. */
int skci_etcd_source(const skc_node *n, char *buf, size_t len);

#endif
