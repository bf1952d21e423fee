/* url.h -- addresses and URLs, one set of rules (url.c).  Pure. */
#ifndef SKC_LIB_URL_H
#define SKC_LIB_URL_H

#include <stddef.h>

/* Normalises a map address into an NNG URL (malloc'd into *out):
 *   "host:port" -> "tcp://host:port", "[v6]:port" -> "tcp://[v6]:port",
 *   "scheme://..." unchanged (scheme must be tcp, tcp4, tcp6, ipc, inproc,
 *   tls+tcp, ws, wss), anything else is an error.
 * Returns 0, SKC_EINVAL (text in err), SKC_ENOMEM. */
int skci_addr_to_url(char **out, const char *addr, char *err, size_t errlen);

/* 1 for URLs whose address ends in ":port" (tcp, tcp4, tcp6, tls+tcp,
 * ws, wss). */
int skci_url_is_tcpish(const char *url);

/* The port of a TCP-like URL, 0 if it has none. */
int skci_url_port(const char *url);

/* url with its port replaced (a copy of url when it has none); malloc'd,
 * NULL without memory. */
char *skci_url_with_port(const char *url, int port);

/* Where a peer reached at map_url takes sends, given the send URL it
 * announced (alen bytes): for TCP-like URLs of one scheme the map's host
 * with the announced port (the peer may listen on 0.0.0.0), otherwise the
 * announced URL.  malloc'd, NULL without memory. */
char *skci_url_send_address(
    const char *map_url, const char *announced, size_t alen);

#endif
