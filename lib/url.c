/* url.c -- addresses: a map address made into an NNG URL, and the few
 * questions skc asks of a URL (is it TCP-like, its port, the same URL at
 * another port, where a peer's send port is).  Pure; one set of rules.
 */
#include "url.h"

#include "error.h"
#include "util.h"

#include "skc/skc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const url_schemes[] = { "tcp", "tcp4", "tcp6", "ipc",
    "inproc", "tls+tcp", "ws", "wss" };

/* Schemes whose address ends in ":port". */
static const char *const url_tcpish[] = { "tcp", "tcp4", "tcp6", "tls+tcp",
    "ws", "wss" };

static void url_err(char *err, size_t errlen, const char *fmt, ...)
    SKCI_PRINTF(3, 4);

static void
url_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int
url_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int
url_is_alnum(int c)
{
    return url_is_digit(c) || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z') || c == '_';
}

static int
url_bad(const char *addr, char *err, size_t errlen)
{
    url_err(err, errlen,
        "bad address '%s': expected host:port or a URL such as tcp://host:port",
        addr);
    return SKC_EINVAL;
}

static int
url_port_ok(const char *s)
{
    unsigned long v = 0;
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        if (n == 5 || !url_is_digit((unsigned char)s[n])) {
            return 0;
        }
        v = v * 10 + (unsigned long)(s[n] - '0');
    }
    return n > 0 && v <= 65535;
}

/* A hostname or dotted IPv4 address.  NNG resolves it later; we only
 * keep out bytes that cannot be part of one, so typos fail at load time.
 * '_' passes (url_is_alnum): getaddrinfo accepts it, and container names
 * use it. */
static int
url_host_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!url_is_alnum(c) && c != '.' && c != '-') {
            return 0;
        }
    }
    return n > 0;
}

/* Inside brackets: an IPv6 address, optionally with a %zone. */
static int
url_host6_ok(const char *s, size_t n)
{
    int colon = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ':') {
            colon = 1;
        } else if (!url_is_alnum(c) && c != '.' && c != '%' && c != '-') {
            return 0;
        }
    }
    return colon;
}

int
skci_addr_to_url(char **out, const char *addr, char *err, size_t errlen)
{
    const char *sep;
    const char *colon;
    size_t hostlen;
    size_t n;

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (out == NULL || addr == NULL) {
        url_err(err, errlen, "address: NULL argument");
        return SKC_EINVAL;
    }
    *out = NULL;
    n = strlen(addr);

    if ((sep = strstr(addr, "://")) != NULL) {
        size_t slen = (size_t)(sep - addr);
        int known = 0;
        for (size_t i = 0; i < sizeof(url_schemes) / sizeof(url_schemes[0]);
             i++) {
            if (strlen(url_schemes[i]) == slen &&
                memcmp(addr, url_schemes[i], slen) == 0) {
                known = 1;
            }
        }
        if (!known) {
            url_err(err, errlen,
                "bad address '%s': unsupported scheme '%.*s' (use tcp, tcp4, tcp6, ipc, inproc, tls+tcp, ws or wss)",
                addr, (int)(slen < 64 ? slen : 64), addr);
            return SKC_EINVAL;
        }
        if (sep[3] == '\0') {
            return url_bad(addr, err, errlen);
        }
        if ((*out = skci_strdup(addr)) == NULL) {
            url_err(err, errlen, "address: out of memory");
            return SKC_ENOMEM;
        }
        return 0;
    }

    if ((colon = strrchr(addr, ':')) == NULL || !url_port_ok(colon + 1)) {
        return url_bad(addr, err, errlen);
    }
    hostlen = (size_t)(colon - addr);
    if (hostlen > 0 && addr[0] == '[') {
        if (hostlen < 3 || addr[hostlen - 1] != ']' ||
            !url_host6_ok(addr + 1, hostlen - 2)) {
            return url_bad(addr, err, errlen);
        }
    } else if (memchr(addr, ':', hostlen) != NULL) {
        /* "::1:7000" cannot be split reliably; say how to write it. */
        url_err(err, errlen,
            "bad address '%s': put an IPv6 host in brackets, as in [::1]:7000",
            addr);
        return SKC_EINVAL;
    } else if (!url_host_ok(addr, hostlen)) {
        return url_bad(addr, err, errlen);
    }

    if ((*out = malloc(n + sizeof("tcp://"))) == NULL) {
        url_err(err, errlen, "address: out of memory");
        return SKC_ENOMEM;
    }
    memcpy(*out, "tcp://", 6);
    memcpy(*out + 6, addr, n + 1);
    return 0;
}

/* Length of url's scheme ("tcp" for "tcp://..."), 0 if it has none. */
static size_t
url_scheme_len(const char *url, size_t len)
{
    const char *sep = memmem(url, len, "://", 3);
    return sep != NULL ? (size_t)(sep - url) : 0;
}

static int
scheme_tcpish(const char *url, size_t len)
{
    size_t sl = url_scheme_len(url, len);
    for (size_t i = 0;
         sl > 0 && i < sizeof(url_tcpish) / sizeof(url_tcpish[0]); i++) {
        if (strlen(url_tcpish[i]) == sl &&
            memcmp(url, url_tcpish[i], sl) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Where the port of a TCP-like URL of len bytes starts (after ':'), or
 * NULL. */
static const char *
port_at(const char *url, size_t len)
{
    size_t sl = url_scheme_len(url, len);
    for (size_t i = len; sl > 0 && i > sl + 3; i--) {
        if (url[i - 1] == ':') {
            return url + i;
        }
        if (url[i - 1] == ']' || url[i - 1] == '/') {
            break;
        }
    }
    return NULL;
}

int
skci_url_is_tcpish(const char *url)
{
    return url != NULL && scheme_tcpish(url, strlen(url));
}

int
skci_url_port(const char *url)
{
    if (!skci_url_is_tcpish(url)) {
        return 0;
    }
    const char *p = port_at(url, strlen(url));
    return p != NULL ? atoi(p) : 0;
}

char *
skci_url_with_port(const char *url, int port)
{
    const char *p = skci_url_is_tcpish(url) ? port_at(url, strlen(url)) : NULL;
    if (p == NULL) {
        return skci_strdup(url);
    }
    size_t n = (size_t)(p - url);
    char *out = malloc(n + 8);
    if (out != NULL) {
        snprintf(out, n + 8, "%.*s%d", (int)n, url, port);
    }
    return out;
}

char *
skci_url_send_address(const char *map_url, const char *announced, size_t alen)
{
    size_t ml = strlen(map_url);
    size_t ms = url_scheme_len(map_url, ml);
    size_t as = url_scheme_len(announced, alen);
    const char *aport =
        scheme_tcpish(announced, alen) ? port_at(announced, alen) : NULL;
    if (ms == 0 || ms != as || memcmp(map_url, announced, ms) != 0 ||
        !scheme_tcpish(map_url, ml) || port_at(map_url, ml) == NULL ||
        aport == NULL) {
        char *u = malloc(alen + 1);
        if (u != NULL) {
            memcpy(u, announced, alen);
            u[alen] = '\0';
        }
        return u;
    }
    /* The map's host, the announced port. */
    const char *mport = port_at(map_url, ml);
    size_t hl = (size_t)(mport - map_url);
    size_t pl = alen - (size_t)(aport - announced);
    char *u = malloc(hl + pl + 1);
    if (u != NULL) {
        memcpy(u, map_url, hl);
        memcpy(u + hl, aport, pl);
        u[hl + pl] = '\0';
    }
    return u;
}
