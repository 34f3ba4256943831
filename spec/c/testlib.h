/* testlib.h: the smallest test harness that will do for spec/c.
 *
 * Each check prints one TAP line, "ok N - description" or "not ok N -
 * description" followed by "# ..." detail lines, and done_testing() prints
 * the plan ("1..N") and a summary, returning the exit status: nonzero when
 * any check failed.  Checks may be made from any thread (one mutex keeps
 * lines whole), though the tests keep them on the main thread where they can.
 *
 *   ok(cond, "fmt", ...)               is_int(got, want, "fmt", ...)
 *   is_str(got, want, "fmt", ...)      between(got, lo, hi, "fmt", ...)  lo <= got < hi
 *   like(s, needle, "fmt", ...)        unlike(s, needle, "fmt", ...)
 *   diag("fmt", ...)                   bail_out("fmt", ...)  (exits 1)
 *   tl_now()  monotonic seconds        tl_sleep(seconds)
 *   tl_env_or_bail("NAME")             a required environment variable
 */
#ifndef DBP_TESTLIB_H
#define DBP_TESTLIB_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

static pthread_mutex_t tl_mu = PTHREAD_MUTEX_INITIALIZER;
static int tl_run, tl_failed;   /* guarded by tl_mu */

/* Prints the result line and returns cond.  Caller holds tl_mu. */
static inline int tl_result_locked(int cond, const char *file, int line, const char *fmt,
                                   va_list ap)
{
    char desc[1024];

    vsnprintf(desc, sizeof desc, fmt, ap);
    for (char *c = desc; *c; c++)   /* one line per result, whatever the text */
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    tl_run++;
    printf("%sok %d - %s\n", cond ? "" : "not ", tl_run, desc);
    if (!cond) {
        tl_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    return cond;
}

/* Prints "#   label text", continuing a multi-line text on "#" lines so
 * that the output stays valid TAP.  Caller holds tl_mu. */
static inline void tl_note_locked(const char *label, const char *text)
{
    const char *line = text;

    for (int first = 1;; first = 0) {
        const char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        printf("# %14s %.*s\n", first ? label : "", len, line);
        if (nl == NULL)
            break;
        line = nl + 1;
    }
}

static inline TL_PRINTF(4, 5) int tl_ok(int cond, const char *file, int line,
                                        const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&tl_mu);
    va_start(ap, fmt);
    tl_result_locked(cond, file, line, fmt, ap);
    va_end(ap);
    fflush(stdout);
    pthread_mutex_unlock(&tl_mu);
    return cond;
}

static inline TL_PRINTF(5, 6) int tl_is_int(long long got, long long want, const char *file,
                                            int line, const char *fmt, ...)
{
    va_list ap;
    int cond = got == want;

    pthread_mutex_lock(&tl_mu);
    va_start(ap, fmt);
    tl_result_locked(cond, file, line, fmt, ap);
    va_end(ap);
    if (!cond)
        printf("# %14s %lld\n# %14s %lld\n", "got:", got, "expected:", want);
    fflush(stdout);
    pthread_mutex_unlock(&tl_mu);
    return cond;
}

static inline TL_PRINTF(5, 6) int tl_is_str(const char *got, const char *want,
                                            const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    int cond = (got == NULL || want == NULL) ? got == want : strcmp(got, want) == 0;

    pthread_mutex_lock(&tl_mu);
    va_start(ap, fmt);
    tl_result_locked(cond, file, line, fmt, ap);
    va_end(ap);
    if (!cond) {
        tl_note_locked("got:", got ? got : "NULL");
        tl_note_locked("expected:", want ? want : "NULL");
    }
    fflush(stdout);
    pthread_mutex_unlock(&tl_mu);
    return cond;
}

static inline TL_PRINTF(6, 7) int tl_between(double got, double lo, double hi, const char *file,
                                             int line, const char *fmt, ...)
{
    va_list ap;
    int cond = got >= lo && got < hi;

    pthread_mutex_lock(&tl_mu);
    va_start(ap, fmt);
    tl_result_locked(cond, file, line, fmt, ap);
    va_end(ap);
    if (!cond)
        printf("# %14s %.4f\n# %14s >= %.4f and < %.4f\n", "got:", got, "expected:", lo, hi);
    fflush(stdout);
    pthread_mutex_unlock(&tl_mu);
    return cond;
}

/* want_found: 1 for like (needle must occur), 0 for unlike. */
static inline TL_PRINTF(6, 7) int tl_like(int want_found, const char *s, const char *needle,
                                          const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    int found = s != NULL && strstr(s, needle) != NULL;
    int cond = want_found ? found : !found;

    pthread_mutex_lock(&tl_mu);
    va_start(ap, fmt);
    tl_result_locked(cond, file, line, fmt, ap);
    va_end(ap);
    if (!cond) {
        tl_note_locked("text:", s ? s : "NULL");
        tl_note_locked(want_found ? "lacks:" : "contains:", needle);
    }
    fflush(stdout);
    pthread_mutex_unlock(&tl_mu);
    return cond;
}

/* Every line of a (possibly multi-line) message as a "# " comment, so that
 * libpq's two-line errors keep the output valid TAP. */
static inline TL_PRINTF(1, 2) void diag(const char *fmt, ...)
{
    va_list ap;
    char buf[2048];
    const char *line = buf;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&tl_mu);
    for (;;) {
        const char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        printf("# %.*s\n", len, line);
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    fflush(stdout);
    pthread_mutex_unlock(&tl_mu);
}

/* Stops the whole program: for a missing precondition, never a silent skip. */
static inline TL_PRINTF(1, 2) __attribute__((noreturn)) void bail_out(const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&tl_mu);
    printf("Bail out! ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    pthread_mutex_unlock(&tl_mu);
    exit(1);
}

/* Prints the plan and a summary; returns the process exit status. */
static inline int done_testing(void)
{
    int failed;

    pthread_mutex_lock(&tl_mu);
    failed = tl_failed;
    printf("1..%d\n", tl_run);
    if (failed)
        printf("# FAILED %d of %d checks\n", failed, tl_run);
    else
        printf("# all %d checks passed\n", tl_run);
    fflush(stdout);
    pthread_mutex_unlock(&tl_mu);
    return failed ? 1 : 0;
}

static inline double tl_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void tl_sleep(double seconds)
{
    struct timespec ts;

    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static inline const char *tl_env_or_bail(const char *name)
{
    const char *v = getenv(name);

    if (v == NULL || v[0] == '\0')
        bail_out("%s is not set: run under scripts/with-pg.sh (these tests need a real "
                 "PostgreSQL and never skip)", name);
    return v;
}

#define ok(cond, ...) tl_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) \
    tl_is_int((long long)(got), (long long)(want), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...) tl_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)
#define between(got, lo, hi, ...) \
    tl_between((double)(got), (double)(lo), (double)(hi), __FILE__, __LINE__, __VA_ARGS__)
#define like(s, needle, ...) tl_like(1, (s), (needle), __FILE__, __LINE__, __VA_ARGS__)
#define unlike(s, needle, ...) tl_like(0, (s), (needle), __FILE__, __LINE__, __VA_ARGS__)

#endif
