/*
 * layout.c -- prints what a binding mirrors from skc.h: constants, struct
 * sizes and field offsets, one "kind name value [value]" per line.
 * test/python/test_abi.py compares it with the ctypes declarations of the
 * Python package, so a change to skc.h that a binding must follow is caught.
 */
#include <skc/skc.h>

#include <stdio.h>

#define CONST(x) printf("const %s %ld\n", #x, (long) (x))
#define SIZE(t) printf("size %s %lu\n", #t, (unsigned long) sizeof(t))
#define FIELD(t, f)                                                          \
    printf("field %s.%s %lu %lu\n", #t, #f, (unsigned long) offsetof(t, f),  \
        (unsigned long) sizeof(((t *) 0)->f))

int
main(void)
{
    CONST(SKC_VERSION_MAJOR);
    CONST(SKC_VERSION_MINOR);
    CONST(SKC_VERSION_PATCH);
    CONST(SKC_VERSION_NUMBER);

    CONST(SKC_OK);
    CONST(SKC_EINVAL);
    CONST(SKC_ENOMEM);
    CONST(SKC_ENONODE);
    CONST(SKC_ENODEDOWN);
    CONST(SKC_EUNREACHABLE);
    CONST(SKC_ENOSERVICE);
    CONST(SKC_EHANDLER);
    CONST(SKC_ETIMEDOUT);
    CONST(SKC_ETOOBIG);
    CONST(SKC_ECONNLOST);
    CONST(SKC_ECLOSED);
    CONST(SKC_EPROTO);
    CONST(SKC_EBUSY);
    CONST(SKC_EEXIST);
    CONST(SKC_ETRANSPORT);
    CONST(SKC_ESYNTAX);
    CONST(SKC_EIO);
    CONST(SKC_ENOREPLY);
    CONST(SKC_ELIMIT);
    CONST(SKC_ESTATE);
    CONST(SKC_EAUTH);

    CONST(SKC_LOG_ERROR);
    CONST(SKC_LOG_WARN);
    CONST(SKC_LOG_INFO);
    CONST(SKC_LOG_DEBUG);
    CONST(SKC_CALLER_DRIVEN);
    CONST(SKC_MSG_CALL);
    CONST(SKC_MSG_SEND);
    CONST(SKC_PEER_UNKNOWN);
    CONST(SKC_PEER_CONNECTING);
    CONST(SKC_PEER_UP);
    CONST(SKC_PEER_DOWN);

    CONST(SKC_T_NIL);
    CONST(SKC_T_BOOL);
    CONST(SKC_T_INT);
    CONST(SKC_T_UINT);
    CONST(SKC_T_FLOAT);
    CONST(SKC_T_STR);
    CONST(SKC_T_BIN);
    CONST(SKC_T_ARRAY);
    CONST(SKC_T_MAP);
    CONST(SKC_T_EXT);

    SIZE(skc_node_opts);
    FIELD(skc_node_opts, size);
    FIELD(skc_node_opts, name);
    FIELD(skc_node_opts, call_timeout_ms);
    FIELD(skc_node_opts, max_msg_size);
    FIELD(skc_node_opts, workers);
    FIELD(skc_node_opts, max_inflight);
    FIELD(skc_node_opts, max_serving);
    FIELD(skc_node_opts, max_conns);
    FIELD(skc_node_opts, log);
    FIELD(skc_node_opts, log_arg);
    FIELD(skc_node_opts, log_level);
    FIELD(skc_node_opts, heartbeat_ms);
    FIELD(skc_node_opts, heartbeat_misses);
    FIELD(skc_node_opts, send_port);
    FIELD(skc_node_opts, log_burst);
    FIELD(skc_node_opts, max_deadline_ms);
    FIELD(skc_node_opts, max_mailbox);
    FIELD(skc_node_opts, max_mailbox_bytes);
    FIELD(skc_node_opts, max_queued_bytes);
    FIELD(skc_node_opts, hello_timeout_ms);
    FIELD(skc_node_opts, idle_timeout_ms);
    FIELD(skc_node_opts, etcd);
    FIELD(skc_node_opts, etcd_prefix);
    FIELD(skc_node_opts, etcd_ttl_s);
    FIELD(skc_node_opts, etcd_cafile);
    FIELD(skc_node_opts, etcd_certfile);
    FIELD(skc_node_opts, etcd_keyfile);
    FIELD(skc_node_opts, etcd_listen);
    FIELD(skc_node_opts, cluster_cookie);
    FIELD(skc_node_opts, cluster_cookie_file);
    FIELD(skc_node_opts, tls_cert);
    FIELD(skc_node_opts, tls_key);
    FIELD(skc_node_opts, tls_ca);
    FIELD(skc_node_opts, tls_server_name);
    FIELD(skc_node_opts, names_only);
    FIELD(skc_node_opts, large_msg);
    FIELD(skc_node_opts, channels);

    SIZE(skc_item);
    FIELD(skc_item, size);
    FIELD(skc_item, type);
    FIELD(skc_item, i);
    FIELD(skc_item, u);
    FIELD(skc_item, d);
    FIELD(skc_item, ptr);
    FIELD(skc_item, len);
    FIELD(skc_item, count);
    FIELD(skc_item, ext_type);
    return 0;
}
