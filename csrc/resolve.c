/* resolve.c: the process-wide cache of host names to addresses, filled by
 * detached lookup threads (see resolve.h). */
#include "resolve.h"

#include "common.h"
#include "fork.h"
#include "lock.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_ADDRS 16          /* of one name; libpq tries them in turn */
#define NAME_MAX_LEN 255      /* a DNS name's longest text form */

typedef struct entry {
    struct entry *next;
    char name[NAME_MAX_LEN + 1];
    char *addrs;              /* "a,b,c", numeric; NULL until a lookup succeeded */
    int naddrs;
    int64_t resolved_ns;      /* when addrs was looked up */
    int64_t failed_ns;        /* when the last lookup failed; 0 after a success */
    bool pending;             /* a lookup thread of fork generation gen runs */
    unsigned gen;
    char why[160];            /* the last failure's reason */
} entry;

static dbp_lock mu = DBP_LOCK_INIT;
static pthread_once_t registered = PTHREAD_ONCE_INIT;
static entry *entries;

/* Held across fork() (fork.h): a child never inherits it locked. */
static void register_lock(void)
{
    dbp_fork_register(&mu);
}

static entry *find_locked(const char *name)
{
    for (entry *e = entries; e != NULL; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

/* A lookup started in the parent runs on no thread of a fork()ed child. */
static bool pending_here(const entry *e)
{
    return e->pending && e->gen == dbp_fork_generation();
}

/* The numeric addresses of res, deduplicated, comma-separated; NULL when
 * none or out of memory. */
static char *join_addresses(const struct addrinfo *res, int *count)
{
    char list[MAX_ADDRS][INET6_ADDRSTRLEN];
    size_t total = 0;
    int n = 0;

    for (const struct addrinfo *a = res; a != NULL && n < MAX_ADDRS; a = a->ai_next) {
        const void *raw = a->ai_family == AF_INET
                              ? (const void *)&((const struct sockaddr_in *)a->ai_addr)->sin_addr
                          : a->ai_family == AF_INET6
                              ? (const void *)&((const struct sockaddr_in6 *)a->ai_addr)->sin6_addr
                              : NULL;
        bool seen = false;
        if (raw == NULL || inet_ntop(a->ai_family, raw, list[n], sizeof list[n]) == NULL)
            continue;
        for (int i = 0; i < n && !seen; i++)
            seen = strcmp(list[i], list[n]) == 0;
        if (!seen)
            total += strlen(list[n++]) + 1;
    }
    char *out = n > 0 ? malloc(total) : NULL;
    if (out == NULL)
        return NULL;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i > 0)
            strcat(out, ",");
        strcat(out, list[i]);
    }
    *count = n;
    return out;
}

/* The lookup thread: getaddrinfo as libpq calls it (any family, stream
 * sockets), the result stored if the entry is still there. */
static void *lookup(void *arg)
{
    char *name = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    int count = 0;
    char *addrs = rc == 0 ? join_addresses(res, &count) : NULL;
    entry *e;

    if (res != NULL)
        freeaddrinfo(res);
    dbp_lock_acquire(&mu);
    if ((e = find_locked(name)) != NULL) {
        int64_t now = dbp_now_ns();
        e->pending = false;
        if (addrs != NULL) {
            free(e->addrs);
            e->addrs = addrs, e->naddrs = count, addrs = NULL;
            e->resolved_ns = now, e->failed_ns = 0;
        } else {
            e->failed_ns = now;
            snprintf(e->why, sizeof e->why, "%s", rc != 0 ? gai_strerror(rc) : "no address");
        }
    }
    dbp_lock_release(&mu);
    free(addrs);
    free(name);
    return NULL;
}

/* Starts e's lookup; the caller holds mu.  False when no thread could be
 * started (e->why says so). */
static bool start_lookup_locked(entry *e)
{
    pthread_attr_t attr;
    pthread_t thread;
    char *name = strdup(e->name);
    bool started = false;

    if (name != NULL && pthread_attr_init(&attr) == 0) {
        /* A small stack: getaddrinfo needs little, and nginx workers many. */
        pthread_attr_setstacksize(&attr, 256 * 1024);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&thread, &attr, lookup, name) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        free(name);
        e->failed_ns = dbp_now_ns();
        snprintf(e->why, sizeof e->why, "could not start a lookup thread");
        return false;
    }
    e->pending = true;
    e->gen = dbp_fork_generation();
    return true;
}

/* The state of one name, starting its lookup when due; the caller holds mu. */
static dbp_resolve_state name_state_locked(const char *name, int64_t now, dbp_error *err)
{
    entry *e = find_locked(name);

    if (e == NULL) {
        if ((e = calloc(1, sizeof *e)) == NULL)
            return dbp_error_set(err, DBP_NOMEM, "out of memory resolving a host name"),
                   DBP_RESOLVE_FAILED;
        snprintf(e->name, sizeof e->name, "%s", name);
        e->next = entries, entries = e;
    }
    bool stale = e->addrs == NULL ||
                 now - e->resolved_ns >= (int64_t)DBP_RESOLVE_REFRESH_S * 1000000000;
    bool retry_due = e->failed_ns == 0 ||
                     now - e->failed_ns >= (int64_t)DBP_RESOLVE_RETRY_S * 1000000000;
    if (stale && !pending_here(e) && retry_due)
        start_lookup_locked(e);
    if (e->addrs != NULL)
        return DBP_RESOLVE_READY;        /* fresh, or stale while refreshed */
    if (pending_here(e))
        return DBP_RESOLVE_PENDING;
    dbp_error_set(err, DBP_CONNECT, "could not connect: could not translate host name \"%s\" "
                  "to address: %s", e->name, e->why);
    return DBP_RESOLVE_FAILED;
}

/* A host list entry that needs a lookup: not empty, not a socket directory
 * (`/dir`, `@abstract`), not a numeric address. */
static bool is_name(const char *h)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return h[0] != '\0' && h[0] != '/' && h[0] != '@' && inet_pton(AF_INET, h, buf) != 1 &&
           inet_pton(AF_INET6, h, buf) != 1;
}

/* Copies the next comma-separated item of *list into item (size bytes) and
 * advances *list past it; false at the end or when the item does not fit. */
static bool next_item(const char **list, char *item, size_t size, bool *more)
{
    size_t len = strcspn(*list, ",");

    if (len >= size)
        return false;
    memcpy(item, *list, len);
    item[len] = '\0';
    *more = (*list)[len] == ',';
    *list += len + (*more ? 1 : 0);
    return true;
}

dbp_resolve_state dbp_resolve_hosts(const char *hosts, dbp_error *err)
{
    char name[NAME_MAX_LEN + 1];
    bool more = hosts != NULL && hosts[0] != '\0', pending = false, usable = !more;
    int64_t now = dbp_now_ns();

    pthread_once(&registered, register_lock);
    dbp_lock_acquire(&mu);
    while (more) {
        if (!next_item(&hosts, name, sizeof name, &more)) {
            dbp_error_set(err, DBP_CONNECT, "could not connect: a host name is longer than "
                          "%d bytes", NAME_MAX_LEN);
            continue;                     /* as libpq, which would fail it: the next host */
        }
        if (!is_name(name)) {
            usable = true;                /* an address or a socket: no lookup */
            continue;
        }
        switch (name_state_locked(name, now, err)) {
        case DBP_RESOLVE_READY: usable = true; break;
        case DBP_RESOLVE_PENDING: pending = true; break;
        case DBP_RESOLVE_FAILED: break;   /* libpq would skip it: so does the expansion */
        }
    }
    dbp_lock_release(&mu);
    /* Every name answered or failed before a connect starts, so that libpq
     * never looks one up itself; a list fails only when no host is left. */
    return pending ? DBP_RESOLVE_PENDING : usable ? DBP_RESOLVE_READY : DBP_RESOLVE_FAILED;
}

size_t dbp_resolve_expanded_size(const char *hosts, const char *ports)
{
    size_t items = 1, longest = INET6_ADDRSTRLEN;

    for (const char *h = hosts; h != NULL && *h != '\0'; h++)
        items += *h == ',';
    if (hosts != NULL && strlen(hosts) > longest)
        longest = strlen(hosts);
    if (ports != NULL && strlen(ports) > longest)
        longest = strlen(ports);
    return items * MAX_ADDRS * (longest + 1) + 1;
}

/* Appends text to out (size bytes, used so far *used), a comma first unless
 * first; false when it does not fit. */
static bool append(char *out, size_t size, size_t *used, bool first, const char *text)
{
    int w = snprintf(out + *used, size - *used, "%s%s", first ? "" : ",", text);

    if (w < 0 || (size_t)w >= size - *used)
        return false;
    *used += (size_t)w;
    return true;
}

/* The port of the i-th host: ports has none, one for all, or one per host. */
static void port_of(const char *ports, int i, char *port, size_t size)
{
    bool more = true;

    port[0] = '\0';
    if (ports == NULL || ports[0] == '\0')
        return;
    if (strchr(ports, ',') == NULL) {
        snprintf(port, size, "%s", ports);
        return;
    }
    for (int k = 0; k <= i && more; k++)
        if (!next_item(&ports, port, size, &more))
            port[0] = '\0';
}

/* Appends one host (its entries: one per address for a name) to the three
 * lists; the caller holds mu. */
static bool expand_one_locked(const char *h, const char *port, char *host_out, char *addr_out,
                              char *port_out, size_t size, size_t used[3], bool *first)
{
    entry *e = is_name(h) ? find_locked(h) : NULL;
    const char *addrs = e != NULL ? e->addrs : "";
    char addr[INET6_ADDRSTRLEN];
    bool more = true;

    if (is_name(h) && e != NULL && e->addrs == NULL && !pending_here(e) && e->failed_ns != 0)
        return true;                      /* it does not resolve: libpq would skip it too */
    if (is_name(h) && (e == NULL || e->addrs == NULL))
        return false;                     /* never looked up: libpq's turn */
    while (more) {
        if (!next_item(&addrs, addr, sizeof addr, &more))
            return false;
        if (!append(host_out, size, &used[0], *first, h) ||
            !append(addr_out, size, &used[1], *first, addr) ||
            !append(port_out, size, &used[2], *first, port))
            return false;
        *first = false;
    }
    return true;
}

bool dbp_resolve_expand(const char *hosts, const char *ports, char *host_out, char *addr_out,
                        char *port_out, size_t size)
{
    char h[NAME_MAX_LEN + 1], port[32];
    bool more = hosts != NULL && hosts[0] != '\0', first = true, ok = true, any_name = false;
    size_t used[3] = {0, 0, 0};

    if (size == 0 || !more)
        return false;
    host_out[0] = addr_out[0] = port_out[0] = '\0';
    pthread_once(&registered, register_lock);
    dbp_lock_acquire(&mu);
    for (int i = 0; more && ok; i++) {
        ok = next_item(&hosts, h, sizeof h, &more);
        if (ok) {
            any_name = any_name || is_name(h);
            port_of(ports, i, port, sizeof port);
            ok = expand_one_locked(h, port, host_out, addr_out, port_out, size, used, &first);
        }
    }
    dbp_lock_release(&mu);
    return ok && any_name && !first;      /* first: every host was skipped */
}

void dbp_resolve_flush(void)
{
    pthread_once(&registered, register_lock);
    dbp_lock_acquire(&mu);
    while (entries != NULL) {
        entry *e = entries;
        entries = e->next;
        free(e->addrs);
        free(e);
    }
    dbp_lock_release(&mu);
}
