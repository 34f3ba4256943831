/* lua_ngx_wait.c: under nginx, the worker's own event loop watches libpq's
 * socket and wakes the request that waits for its statement, so that the
 * request need not poll (docs/decisions.md, OpenResty).
 *
 * A connection gets one watch, made the first time a request waits on it:
 * an nginx connection for libpq's descriptor, registered edge-triggered for
 * reading (and for writing too once libpq had output it could not send:
 * watching writes always would wake the request at every ACK of its
 * statement), whose handler posts an ngx.semaphore.  The watch
 * lives as long as the connection (conn.c's close hook takes it away before
 * PQfinish).  The semaphores come from a per-worker set that is never
 * freed, so a wake that nobody waits for is only a spurious one, which the
 * waiting loop (lua/dbpool/ngx.lua) tolerates.
 *
 * Only the worker's event loop thread may touch nginx.  A connection closed
 * on another thread (ngx.run_worker_thread shares the pool) queues its
 * watch; the loop frees it at its next watch, after the descriptor is gone.
 *
 * Built with nginx's configured headers (scripts/ngx-headers.sh) into the
 * LuaJIT module.  Every nginx symbol is weak, so that module still loads in
 * a plain LuaJIT, where core.ngx_wait_ready() is false; without the headers
 * this file compiles to that answer alone. */
#ifdef DBP_WITH_NGX
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#endif

#include <dlfcn.h>

#include "lua_conn.h"
#include "lua_listen.h"
#include "lua_ngx_wait.h"
#include "lua_util.h"

#ifdef DBP_WITH_NGX
#include "conn.h"

/* lua-nginx-module's, as resty.core declares it. */
int ngx_http_lua_ffi_sema_post(void *sem, int n);

#pragma weak ngx_http_lua_ffi_sema_post
#pragma weak ngx_get_connection
#pragma weak ngx_free_connection
#pragma weak ngx_log_error_core
#pragma weak ngx_cycle
#pragma weak ngx_event_actions
#pragma weak ngx_exiting
#pragma weak ngx_quit

typedef struct watch {
    ngx_connection_t *c;
    int fd;                  /* libpq's descriptor when it was watched */
    int sem_id;
    bool detached;           /* the worker is shutting down: nginx forgot it */
    struct watch *next;      /* on the zombie list */
} watch;

/* Per process: every nginx worker is one. */
static void **sems;                      /* [id] = ngx_http_lua_sema_t *, from id 1 */
static int nsems, sems_cap;
static int *free_ids;                    /* semaphores of freed watches */
static int nfree, free_cap;
static pthread_mutex_t zombie_mu = PTHREAD_MUTEX_INITIALIZER;
static watch *zombies;                   /* closed on another thread; guarded by zombie_mu */
/* For core.ngx_wait_counts(); the loop thread's only. */
static lua_Integer n_watching, n_made, n_wakes, n_reaped;

static bool in_nginx(void)
{
    return &ngx_http_lua_ffi_sema_post != NULL && &ngx_get_connection != NULL &&
           &ngx_free_connection != NULL && &ngx_event_actions != NULL && &ngx_cycle != NULL &&
           ngx_event_actions.add != NULL && ngx_event_actions.del_conn != NULL;
}

/* A worker runs its event loop on its main thread; ngx.run_worker_thread's
 * threads are others. */
static bool on_loop_thread(void)
{
    return gettid() == getpid();
}

static bool grow(void **array, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return true;
    int n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*array, (size_t)n * elem);
    if (p == NULL)
        return false;
    *array = p;
    *cap = n;
    return true;
}

/* A graceful shutdown (reload, quit) closes the worker's idle connections
 * through their read handler, and then reports any still open as an
 * alert: take the watch out of nginx's sight.  The socket stays libpq's
 * and stays in epoll (the process is going); its events now count as stale,
 * and waits on it poll (conn:_ngx_watch refuses a detached watch). */
static void detach(watch *w)
{
    w->detached = true;
    w->c->fd = (ngx_socket_t)-1;
}

/* The connection's socket is readable or writable: wake its waiter. */
static void on_ready(ngx_event_t *ev)
{
    ngx_connection_t *c = ev->data;
    watch *w = c->data;

    if (c->close) {
        detach(w);
        return;
    }
    n_wakes++;
    (void)ngx_http_lua_ffi_sema_post(sems[w->sem_id], 1);
}

/* On the loop thread.  registered: the descriptor is still libpq's and in
 * epoll, so take it out; otherwise it is closed (epoll dropped it by itself)
 * and its number may be someone else's by now. */
static void release(watch *w, bool registered)
{
    ngx_connection_t *c = w->c;

    if (registered && !w->detached)
        (void)ngx_del_conn(c, 0);
    /* Braces: ngx_delete_posted_event is several statements. */
    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }
    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }
    c->fd = w->fd;                       /* as it was taken, if detached */
    ngx_free_connection(c);
    c->fd = (ngx_socket_t)-1;            /* events still in flight are stale */
    free_ids[nfree++] = w->sem_id;       /* room made when the id was handed out */
    free(w);
    n_watching--;
}

static void reap_zombies(void)
{
    watch *list;

    pthread_mutex_lock(&zombie_mu);
    list = zombies;
    zombies = NULL;
    pthread_mutex_unlock(&zombie_mu);
    while (list != NULL) {
        watch *next = list->next;
        release(list, false);
        n_reaped++;
        list = next;
    }
}

/* conn.c's close hook, on whichever thread closes the connection. */
static void on_close(void *arg, dbp_close_how how, int fd)
{
    watch *w = arg;

    if (how == DBP_CLOSE_FORGET)         /* a forked child: nginx's state is the parent's */
        return;
    if (on_loop_thread()) {
        release(w, fd == w->fd);
        return;
    }
    pthread_mutex_lock(&zombie_mu);
    w->next = zombies;
    zombies = w;
    pthread_mutex_unlock(&zombie_mu);
}

/* The watch's semaphore id, first adding writes to what it watches when
 * libpq waits to send; 0 with *why when nginx refuses. */
static int arm_write(watch *w, dbp_conn *conn, const char **why)
{
    ngx_connection_t *c = w->c;

    if (dbp_conn_wants_write(conn) && !c->write->active &&
        ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_CLEAR_EVENT) != NGX_OK) {
        *why = "nginx could not watch the socket for writing";
        return 0;
    }
    return w->sem_id;
}

/* A semaphore id for a new watch: a freed one, else new_id with its
 * semaphore new_sem; -1 on a caller's mistake, -2 for memory. */
static int take_sem_id(int new_id, void *new_sem)
{
    if (nfree > 0)
        return free_ids[--nfree];
    if (new_id != nsems + 1 || new_sem == NULL)
        return -1;
    if (!grow((void **)&sems, &sems_cap, new_id + 1, sizeof *sems) ||
        !grow((void **)&free_ids, &free_cap, new_id, sizeof *free_ids))
        return -2;
    sems[new_id] = new_sem;
    return nsems = new_id;
}

/* Makes conn's watch on socket fd, posting semaphore id: the id, or 0 with
 * *why (the id is freed again then). */
static int make_watch(dbp_conn *conn, int fd, int id, const char **why)
{
    ngx_connection_t *c;
    watch *w;

    if ((w = calloc(1, sizeof *w)) == NULL || (c = ngx_get_connection(fd, ngx_cycle->log)) == NULL) {
        free(w);
        free_ids[nfree++] = id;
        *why = "no free nginx connection (worker_connections)";
        return 0;
    }
    w->c = c;
    w->fd = fd;
    w->sem_id = id;
    n_watching++;
    c->data = w;
    c->read->handler = c->write->handler = on_ready;
    c->read->log = c->write->log = c->log;
    c->idle = 1;                         /* see detach() */
    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_CLEAR_EVENT) != NGX_OK) {
        release(w, false);
        *why = "nginx could not watch the socket";
        return 0;
    }
    dbp_conn_set_close_hook(conn, on_close, w);
    n_made++;
    return arm_write(w, conn, why);
}

int dbp_ngx_watch(dbp_conn *conn, int new_id, void *new_sem, const char **why)
{
    watch *w;
    int fd, id;

    if (!in_nginx()) {
        *why = "not inside nginx";
        return 0;
    }
    if (!on_loop_thread()) {
        *why = "not on the event loop's thread";
        return 0;
    }
    if ((&ngx_exiting != NULL && ngx_exiting) || (&ngx_quit != NULL && ngx_quit)) {
        /* shutting down: nginx closed its idle connections already */
        *why = "the worker is shutting down";
        return 0;
    }
    reap_zombies();
    if ((w = dbp_conn_close_hook_arg(conn)) != NULL) {
        if (w->detached) {
            *why = "the worker is shutting down";
            return 0;
        }
        return arm_write(w, conn, why);
    }
    if ((fd = dbp_conn_socket(conn)) < 0) {
        *why = "the connection has no socket";
        return 0;
    }
    if ((id = take_sem_id(new_id, new_sem)) < 0) {
        *why = id == -1 ? "a new watch needs the next semaphore id" : "out of memory";
        return -1;
    }
    return make_watch(conn, fd, id, why);
}

/* conn:_ngx_watch(new_id, new_sem) -> id | nil, why (also a Listener's).  The id of the semaphore
 * that the connection's socket posts, making the watch if there is none
 * yet.  new_id (the next id) and new_sem (its ngx.semaphore's address) are
 * used only when no freed id can be reused. */
static int conn_watch(lua_State *L)
{
    dbp_conn *conn = dbp_lua_test_listener_conn(L, 1);   /* a Listener's, or a Conn's */

    if (conn == NULL)
        conn = dbp_lua_check_watched_conn(L);
    int new_id = (int)luaL_checkinteger(L, 2);
    void *new_sem = (void *)(uintptr_t)luaL_checknumber(L, 3);
    const char *why = NULL;
    int id;

    if (!in_nginx())
        return luaL_error(L, "dbpool: conn:_ngx_watch() works only inside nginx");
    id = dbp_ngx_watch(conn, new_id, new_sem, &why);
    if (id < 0)
        return luaL_error(L, "dbpool: conn:_ngx_watch(): %s (expected id %d and a semaphore)", why,
                          nsems + 1);
    if (id == 0) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    lua_pushinteger(L, id);
    return 1;
}

/* core.ngx_wait_counts() -> { watching, made, wakes, reaped, semaphores }
 * of this worker: what the specs check. */
static int ngx_wait_counts(lua_State *L)
{
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, n_watching);
    lua_setfield(L, -2, "watching");
    lua_pushinteger(L, n_made);
    lua_setfield(L, -2, "made");
    lua_pushinteger(L, n_wakes);
    lua_setfield(L, -2, "wakes");
    lua_pushinteger(L, n_reaped);
    lua_setfield(L, -2, "reaped");
    lua_pushinteger(L, nsems);
    lua_setfield(L, -2, "semaphores");
    return 1;
}

/* core.ngx_wait_ready() -> true when conn:_ngx_watch() can work here. */
static int ngx_wait_ready(lua_State *L)
{
    lua_pushboolean(L, in_nginx());
    return 1;
}

#else  /* built without nginx's headers: the request polls */

int dbp_ngx_watch(dbp_conn *conn, int new_id, void *new_sem, const char **why)
{
    (void)conn;
    (void)new_id;
    (void)new_sem;
    *why = "built without nginx's headers";
    return 0;
}

static int conn_watch(lua_State *L)
{
    return luaL_error(L, "dbpool: conn:_ngx_watch(): built without nginx's headers");
}

static int ngx_wait_counts(lua_State *L)
{
    lua_newtable(L);
    return 1;
}

static int ngx_wait_ready(lua_State *L)
{
    lua_pushboolean(L, 0);
    return 1;
}

#endif

/* ===== Either build ==================================================== */

/* nginx closes the Lua VM from its cycle pool's cleanup, after a worker's
 * or the master's exit code has pointed ngx_cycle at ngx_exit_cycle: a
 * zeroed cycle with a log and no pool.  So a cycle without a pool is the
 * sign.  Read through dlsym, so that a build without nginx's headers knows
 * it too; the pool has been ngx_cycle_t's second member since nginx 0.1. */
bool dbp_ngx_cycle_closed(void)
{
    void *const volatile *var = dlsym(RTLD_DEFAULT, "ngx_cycle");
    void *const *cycle;

    if (var == NULL || (cycle = *var) == NULL)   /* not nginx, or not started */
        return false;
    return cycle[1] == NULL;
}

/* core.ngx_sleep0_ok() -> true when ngx.sleep(0) is the next turn of the
 * event loop: nginx carries OpenResty's delayed events patch (its symbol
 * is there).  Without it ngx.sleep(0) warns at every call. */
static int ngx_sleep0_ok(lua_State *L)
{
    lua_pushboolean(L, dlsym(RTLD_DEFAULT, "ngx_posted_delayed_events") != NULL);
    return 1;
}


void dbp_lua_open_ngx_wait(lua_State *L)
{
    lua_pushcfunction(L, ngx_sleep0_ok);
    lua_setfield(L, -2, "ngx_sleep0_ok");
    lua_pushcfunction(L, ngx_wait_ready);
    lua_setfield(L, -2, "ngx_wait_ready");
    lua_pushcfunction(L, ngx_wait_counts);
    lua_setfield(L, -2, "ngx_wait_counts");
    /* conn:_ngx_watch, an internal Conn method */
    luaL_getmetatable(L, DBP_CONN_MT);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, conn_watch);
    lua_setfield(L, -2, "_ngx_watch");
    lua_pop(L, 2);
    luaL_getmetatable(L, DBP_LISTENER_MT);           /* and a Listener's: l:_ngx_watch */
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, conn_watch);
    lua_setfield(L, -2, "_ngx_watch");
    lua_pop(L, 2);
}
