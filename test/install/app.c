/* A program outside the skc tree: checks header/library versions agree and
 * makes one call between two nodes over inproc. */
#include <skc/skc.h>
#include <stdio.h>
#include <string.h>

static void
echo(skc_node *n, uint32_t svc, skc_msg *m, void *arg)
{
    (void)n;
    (void)svc;
    (void)arg;
    size_t len;
    const void *d = skc_msg_data(m, &len);
    skc_msg_reply(m, d, len);
}

int
main(void)
{
    if (skc_version() != SKC_VERSION_NUMBER) {
        fprintf(stderr, "version mismatch %u != %u\n", skc_version(),
            (unsigned)SKC_VERSION_NUMBER);
        return 1;
    }
    skc_node *a, *b;
    uint32_t h;
    char *addr;
    void *out;
    size_t len;
    if (skc_node_create(&a, NULL) || skc_service_create(a, &h, echo, NULL) ||
        skc_name_register(a, "@e", h) ||
        skc_node_open(a, &addr, "inproc://outside") ||
        skc_node_create(&b, NULL) || skc_node_map_set(b, "a", addr) ||
        skc_node_call(b, &out, &len, "a", "@e", "ping", 4, 2000)) {
        fprintf(stderr, "failed: %s\n", skc_last_error());
        return 1;
    }
    int ok = len == 4 && memcmp(out, "ping", 4) == 0;
    skc_free(out);
    skc_free(addr);
    skc_node_destroy(b);
    skc_node_destroy(a);
    printf("outside app: %s (skc %s)\n", ok ? "ok" : "BAD",
        skc_version_string());
    return ok ? 0 : 1;
}
