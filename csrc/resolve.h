/* resolve.h: host names resolved ahead of use, off the caller's thread.
 *
 * libpq resolves a DSN's host names inside PQconnectStartParams and
 * PQconnectPoll with a blocking getaddrinfo(): inside an nginx worker that
 * stalls the event loop, every request of the worker with it, for as long as
 * the name server takes.  A host that must not block (ngx.lua) asks
 * dbp_resolve_hosts before a connect; lookups then run on detached threads
 * into a process-wide cache, and dbp_resolve_expand gives libpq the cached
 * addresses as `hostaddr`, with `host` keeping the name for TLS host
 * verification and the passfile, as libpq documents for the pair.
 *
 * An entry is used for DBP_RESOLVE_REFRESH_S seconds; after that a connect
 * still uses it while a background lookup refreshes it (a name server that
 * fails keeps the last good addresses), so a worker never waits for a name
 * it once knew.  A process that never calls dbp_resolve_hosts has an empty
 * cache, and libpq resolves as usual (a thread of a plain Lua app may
 * block). */
#ifndef DBP_RESOLVE_H
#define DBP_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Seconds a lookup's addresses are used before a background refresh. */
#define DBP_RESOLVE_REFRESH_S 30
/* Seconds after a failed lookup before the next one is started. */
#define DBP_RESOLVE_RETRY_S 1

typedef enum dbp_resolve_state {
    DBP_RESOLVE_READY,       /* every name has addresses: a connect won't look up */
    DBP_RESOLVE_PENDING,     /* a lookup is under way: ask again later */
    DBP_RESOLVE_FAILED,      /* a name's lookup failed and none ever succeeded: err says */
} dbp_resolve_state;

/* What a connect to hosts (libpq's `host` list: comma-separated names,
 * numeric addresses and socket directories; NULL or "" is the default
 * socket) needs before it can start without a lookup.  Starts a lookup on a
 * thread of its own for each name that has no entry, or whose entry is
 * older than DBP_RESOLVE_REFRESH_S (then still READY).  PENDING while any
 * name has no answer yet; READY once at least one host can be connected to
 * (a name that does not resolve is skipped, as libpq skips it); FAILED when
 * none can, err (kind `connect`) naming a name and the resolver's reason.
 * Never blocks on I/O. */
dbp_resolve_state dbp_resolve_hosts(const char *hosts, dbp_error *err);

/* A size that dbp_resolve_expand's lists for hosts and ports always fit. */
size_t dbp_resolve_expanded_size(const char *hosts, const char *ports);

/* libpq's host, hostaddr and port lists for a connect to hosts/ports (the
 * DSN's values; ports NULL, one port, or one per host) from the cache: a
 * name with n addresses becomes n entries, each with its address as hostaddr,
 * so libpq still tries every address in turn; numeric addresses and socket
 * directories pass with an empty hostaddr; a name whose lookup failed is
 * left out (libpq would skip it).  Returns false, writing nothing
 * useful, when a name has no cached address or a list would not fit in size
 * bytes: the connect then leaves the lookup to libpq. */
bool dbp_resolve_expand(const char *hosts, const char *ports, char *host_out, char *addr_out,
                        char *port_out, size_t size);

/* Forgets every entry (specs: a new name server answers differently). */
void dbp_resolve_flush(void);

#endif
