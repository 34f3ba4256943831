/* redact.c: dbp_redact's DSN and message scanners (redact.h); SQL is
 * redact_sql.c's.  The DSN scanner walks its text once, front to back, and
 * hands every span either to show() (copied) or to hide() (DBP_REDACTED in
 * its place); the queries dbp_dsn_hides and dbp_dsn_error_* run the same
 * walk with a visitor that looks at the hidden values and the keywords. */
#include "redact.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define MASK_LEN (sizeof DBP_REDACTED - 1)

typedef struct redactor redactor;

/* What a query wants to see of the walk: each hidden value (uri: as a URI
 * encodes it, else as key=value quotes it) and each keyword (after_secret:
 * it comes right after a secret's value, so it may be that value's tail). */
typedef struct visitor {
    void (*hidden)(redactor *r, const char *s, size_t n, bool uri);
    void (*key)(redactor *r, const char *s, size_t n, bool uri, bool after_secret);
    const char *want;             /* what the query looks for */
    size_t want_len;
    bool found;
} visitor;

struct redactor {
    dbp_redact_sink sink;
    void *ud;
    visitor *v;                   /* NULL: just redacting */
};

void dbp_secrets_init(dbp_secrets *s)
{
    memset(s, 0, sizeof *s);
}

void dbp_secrets_add(dbp_secrets *s, const char *val, size_t len)
{
    if (len == 0)
        return;                   /* an empty secret would match everywhere */
    if (s->n == DBP_SECRETS_MAX) {
        s->overflow = true;
        return;
    }
    s->val[s->n] = val;
    s->len[s->n++] = len;
}

static void show(redactor *r, const char *s, size_t n)
{
    if (n > 0)
        r->sink(r->ud, s, n);
}

/* A secret: DBP_REDACTED stands in its place. */
static void hide(redactor *r, const char *s, size_t n, bool uri)
{
    if (r->v != NULL && r->v->hidden != NULL)
        r->v->hidden(r, s, n, uri);
    r->sink(r->ud, DBP_REDACTED, MASK_LEN);
}

static void key(redactor *r, const char *s, size_t n, bool uri, bool after_secret)
{
    if (r->v != NULL && r->v->key != NULL)
        r->v->key(r, s, n, uri, after_secret);
}

/* libpq's keywords whose values are secret (dispchar "*"), in any case:
 * libpq refuses "PASSWORD=", but the text may still be shown.  A keyword a
 * later libpq adds is caught by conninfo.c's check (dbp_dsn_hides). */
static bool secret_key(const char *key, size_t n)
{
    return (n == 8 && strncasecmp(key, "password", 8) == 0) ||
           (n == 11 && strncasecmp(key, "sslpassword", 11) == 0);
}

static int hex(char c)
{
    return isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

/* The next byte of a URI part as libpq decodes it (%XX), from *p (before
 * end), which moves past it. */
static char uri_byte(const char **p, const char *end)
{
    const char *s = *p;

    if (*s == '%' && end - s > 2 && isxdigit((unsigned char)s[1]) &&
        isxdigit((unsigned char)s[2])) {
        *p = s + 3;
        return (char)(hex(s[1]) * 16 + hex(s[2]));
    }
    *p = s + 1;
    return *s;
}

/* A URI parameter's name, percent-decoded as libpq decodes it. */
static bool secret_param(const char *key, size_t n)
{
    char name[16];
    size_t len = 0;

    for (const char *p = key, *end = key + n; p < end; len++) {
        if (len == sizeof name)
            return false;
        name[len] = uri_byte(&p, end);
    }
    return secret_key(name, len);
}

/* ---- DSN: URI --------------------------------------------------------- */

/* "k=v&k=v": the value of each password parameter, and any parameter with
 * no '=' (it may be the tail of a password with an unencoded '&'). */
static void uri_params(redactor *r, const char *q)
{
    bool after_secret = false;

    while (*q) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        if (eq == NULL) {
            hide(r, q, len, true);
            after_secret = false;
        } else {
            key(r, q, (size_t)(eq - q), true, after_secret);
            after_secret = secret_param(q, (size_t)(eq - q));
            show(r, q, (size_t)(eq + 1 - q));
            if (after_secret)
                hide(r, eq + 1, len - (size_t)(eq + 1 - q), true);
            else
                show(r, eq + 1, len - (size_t)(eq + 1 - q));
        }
        q += len;
        if (*q == '&')
            show(r, q++, 1);
    }
}

/* The last '@' in the n bytes at s, or NULL. */
static const char *last_at(const char *s, size_t n)
{
    const char *at = NULL;

    for (const char *p = s; p < s + n; p++)
        if (*p == '@')
            at = p;
    return at;
}

/* Where a password the user may have meant ends in rest (just past
 * "://"), and whether libpq would read it otherwise (*split).  libpq ends
 * the userinfo at the first '@', and only when it comes before any '/'.
 * - '@' before the first '/', a ':' before it: "user:password@"; another
 *   '@' before the path, or before the query that follows, means a raw '@'
 *   in the password (or in the database name: refused too, the safe side).
 * - no '@' before the first '/', a ':' before it and a '@' after it: a raw
 *   '/' in the password ("u:k9/Xq@h"), or "h:5432/db@x"; refused alike.
 * NULL (and *split false) when rest has no password. */
static const char *password_end(const char *rest, bool *split)
{
    size_t slash = strcspn(rest, "/");
    const char *first = memchr(rest, '@', slash), *after;

    *split = false;
    if (first != NULL) {
        if (memchr(rest, ':', (size_t)(first - rest)) == NULL)
            return NULL;                  /* "user@host": no password */
        after = first + 1;
        const char *last = last_at(after, strcspn(after, "?"));
        const char *before_path = last_at(rest, slash);      /* "p@ss?x@h/db" */
        if (last == NULL || before_path > last)
            last = before_path;
        *split = last != first;
        return last;
    }
    if (rest[slash] != '/' || memchr(rest, ':', slash) == NULL ||
        (after = strrchr(rest + slash, '@')) == NULL)
        return NULL;
    *split = true;
    return after;
}

/* Where the userinfo the user meant may end: password_end's, else the
 * last '@' before the path; NULL: none. */
static const char *userinfo_end(const char *rest)
{
    bool split;
    const char *end = password_end(rest, &split);

    return end != NULL ? end : last_at(rest, strcspn(rest, "/"));
}

/* "scheme://user:password@host/db?params"; rest is just past "://".  The
 * userinfo ends where userinfo_end says, so an unencoded '@', '?' or '/'
 * in a password is hidden with the rest of it (libpq would split a '/' or a
 * second '@' elsewhere: dbp_uri_password_unencoded refuses such a DSN at
 * engine creation, but a text may still be shown); when no ':' comes
 * before that '@' there is no password there, and the '@' before the path
 * or query is taken ("h?password=x@y").  Without a path, a '@' in the query
 * may hide more than it must, which is the safe side. */
static void dsn_uri(redactor *r, const char *dsn, const char *rest)
{
    const char *at = userinfo_end(rest), *q;

    if (at != NULL && memchr(rest, ':', (size_t)(at - rest)) == NULL)
        at = last_at(rest, strcspn(rest, "/?"));
    show(r, dsn, (size_t)(rest - dsn));
    if (at != NULL) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if (colon != NULL) {
            show(r, rest, (size_t)(colon + 1 - rest));
            hide(r, colon + 1, (size_t)(at - colon - 1), true);
        } else {
            show(r, rest, (size_t)(at - rest));
        }
        rest = at;
    }
    q = strchr(rest, '?');
    if (q == NULL) {
        show(r, rest, strlen(rest));
        return;
    }
    show(r, rest, (size_t)(q + 1 - rest));
    uri_params(r, q + 1);
}

/* ---- DSN: key=value --------------------------------------------------- */

static const char *skip_blanks(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

/* The end of the value at p, as libpq reads it: '...' with backslash
 * escapes (unterminated: to the end), or up to a blank, a backslash
 * escaping the next byte. */
static const char *kv_value_end(const char *p)
{
    if (*p == '\'') {
        for (p++; *p != '\0' && *p != '\''; p++)
            if (*p == '\\' && p[1] != '\0')
                p++;
        return *p == '\'' ? p + 1 : p;
    }
    for (; *p != '\0' && !isspace((unsigned char)*p); p++)
        if (*p == '\\' && p[1] != '\0')
            p++;
    return p;
}

/* The rest of a text that lost its key=value shape: nothing in it can be
 * told apart from a value any more, so it is hidden as one. */
static void hide_rest(redactor *r, const char *p)
{
    if (*p != '\0')
        hide(r, p, strlen(p), false);
}

static void dsn_keyvalue(redactor *r, const char *p)
{
    bool after_secret = false;

    while (*p) {
        const char *start = p, *k, *val;
        size_t key_len;

        k = p = skip_blanks(p);
        while (*p != '\0' && *p != '=' && !isspace((unsigned char)*p))
            p++;
        key_len = (size_t)(p - k);
        p = skip_blanks(p);
        if (*p != '=') {
            /* A word with no '=' ("password s3cret"): shown, the rest
             * hidden; right after a password it may be the password's tail
             * ("password=two words" unquoted), so it is hidden too. */
            if (after_secret)
                p = k;
            show(r, start, (size_t)(p - start));
            hide_rest(r, p);
            return;
        }
        key(r, k, key_len, false, after_secret);
        val = p = skip_blanks(p + 1);
        p = kv_value_end(p);
        show(r, start, (size_t)(val - start));
        after_secret = secret_key(k, key_len);
        if (after_secret)
            hide(r, val, (size_t)(p - val), false);
        else
            show(r, val, (size_t)(p - val));
    }
}

bool dbp_uri_password_unencoded(const char *dsn)
{
    const char *rest = strncmp(dsn, "postgresql://", 13) == 0 ? dsn + 13
                       : strncmp(dsn, "postgres://", 11) == 0 ? dsn + 11 : NULL;
    bool split = false;

    if (rest != NULL)
        (void)password_end(rest, &split);
    return split;
}

/* A URI starts with one of libpq's two prefixes; in any case, since a text
 * libpq does not take for a URI may still be shown. */
static void dsn(redactor *r, const char *text)
{
    if (strncasecmp(text, "postgresql://", 13) == 0)
        dsn_uri(r, text, text + 13);
    else if (strncasecmp(text, "postgres://", 11) == 0)
        dsn_uri(r, text, text + 11);
    else
        dsn_keyvalue(r, text);
}

static void discard(void *ud, const char *s, size_t n)
{
    (void)ud, (void)s, (void)n;
}

/* ---- queries over a DSN's walk ----------------------------------------- */

/* Whether the hidden span s (n bytes) reads as want, as libpq decodes it:
 * %XX in a URI; in key=value a backslash escapes the next byte, and a
 * quoted value ends at its first unescaped quote. */
static bool decodes_to(const char *s, size_t n, bool uri, const char *want, size_t want_len)
{
    const char *p = s, *end = s + n, *w = want, *w_end = want + want_len;
    bool quoted = !uri && n > 0 && *s == '\'';

    if (quoted)
        p++;
    while (p < end) {
        char c;
        if (uri) {
            c = uri_byte(&p, end);
        } else if (*p == '\\' && p + 1 < end) {
            c = p[1];
            p += 2;
        } else if (quoted && *p == '\'') {
            break;
        } else {
            c = *p++;
        }
        if (w == w_end || *w++ != c)
            return false;
    }
    return w == w_end;
}

static void hides_visit(redactor *r, const char *s, size_t n, bool uri)
{
    if (decodes_to(s, n, uri, r->v->want, r->v->want_len))
        r->v->found = true;
}

bool dbp_dsn_hides(const char *text, const char *value, size_t len)
{
    visitor v = {hides_visit, NULL, value, len, false};
    redactor r = {discard, NULL, &v};

    if (text != NULL)
        dsn(&r, text);
    return v.found;
}

/* A keyword as the walk met it, raw or (URI) decoded, not after a secret. */
static void key_visit(redactor *r, const char *s, size_t n, bool uri, bool after_secret)
{
    if (after_secret)
        return;
    if ((n == r->v->want_len && memcmp(s, r->v->want, n) == 0) ||
        (uri && decodes_to(s, n, true, r->v->want, r->v->want_len)))
        r->v->found = true;
}

static bool dsn_has_key(const char *text, const char *tok, size_t n)
{
    visitor v = {NULL, key_visit, tok, n, false};
    redactor r = {discard, NULL, &v};

    dsn(&r, text);
    return v.found;
}

/* ---- messages: double-quoted tokens ------------------------------------ */

/* Whether the quoted token tok (n bytes) of a message may be shown. */
typedef bool (*token_ok)(const void *ctx, const char *tok, size_t n);

/* libpq's own quoted words in its messages about DSNs ("=" after ...,
 * matching "]", expected ":" or "/"). */
static bool libpq_literal(const char *tok, size_t n)
{
    return n == 1 && strchr("=]:/", *tok) != NULL;
}

/* text to r's sink, each "token" that keep refuses replaced by "***"; an
 * unterminated quote runs to the end and is judged the same way.  greedy:
 * a token from the DSN may itself hold '"', so the first one that is not
 * libpq_literal runs to the text's last quote (libpq quotes one such token
 * per message, its last). */
static void quoted_tokens(redactor *r, const char *text, size_t n, token_ok keep,
                          const void *ctx, bool greedy)
{
    const char *p = text, *end = text + n, *last = NULL;

    for (const char *q = text; q < end; q++)
        if (*q == '"')
            last = q;
    while (p < end) {
        const char *open = memchr(p, '"', (size_t)(end - p)), *close;
        if (open == NULL)
            break;
        close = memchr(open + 1, '"', (size_t)(end - open - 1));
        if (close == NULL)
            close = end;
        else if (greedy && last > close &&
                 !(libpq_literal(open + 1, (size_t)(close - open - 1)) &&
                   (close + 1 == end || strchr(" \t\n,.;)", close[1]) != NULL)))
            close = last;             /* '"="o%...': a quote inside the token, not "=" */
        show(r, p, (size_t)(open + 1 - p));
        if (keep(ctx, open + 1, (size_t)(close - open - 1)))
            show(r, open + 1, (size_t)(close - open - 1));
        else
            r->sink(r->ud, DBP_REDACTED, MASK_LEN);
        if (close == end)
            return;
        show(r, close, 1);
        p = close + 1;
    }
    show(r, p, (size_t)(end - p));
}

static bool not_a_secret(const void *ctx, const char *tok, size_t n)
{
    const dbp_secrets *k = ctx;

    for (int i = 0; k != NULL && i < k->n; i++)
        if (k->len[i] == n && memcmp(k->val[i], tok, n) == 0)
            return false;
    return true;
}

static bool dsn_error_token_ok(const void *ctx, const char *tok, size_t n)
{
    if (libpq_literal(tok, n))
        return true;
    /* Spelled as keywords are ("hots"): a URI or a "user:password" is not. */
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)tok[i]) && tok[i] != '_')
            return false;
    /* A keyword of the DSN, unless it is also what a secret reads as. */
    return n > 0 && dsn_has_key(ctx, tok, n) && !dbp_dsn_hides(ctx, tok, n);
}

static size_t without_line_ends(const char *text)
{
    size_t n = strlen(text);

    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    return n;
}

/* ---- the routine and its buffer ----------------------------------------- */

void dbp_redact(dbp_text kind, const char *text, const dbp_secrets *secrets,
                dbp_redact_sink sink, void *ud)
{
    redactor r = {sink, ud, NULL};

    if (text == NULL)
        return;
    switch (kind) {
    case DBP_TEXT_DSN:
        dsn(&r, text);
        break;
    case DBP_TEXT_SQL:
        dbp_redact_sql(text, sink, ud);
        break;
    case DBP_TEXT_MESSAGE:
        if (secrets != NULL && secrets->overflow) {
            sink(ud, DBP_REDACTED, MASK_LEN);     /* more secrets than we can hold */
            return;
        }
        quoted_tokens(&r, text, without_line_ends(text), not_a_secret, secrets, false);
        break;
    }
}

typedef struct buffer {
    char *out;
    size_t size, used;            /* used < size: room for the terminator */
} buffer;

static void buffer_add(void *ud, const char *s, size_t n)
{
    buffer *b = ud;

    if (n > b->size - 1 - b->used)
        n = b->size - 1 - b->used;
    memcpy(b->out + b->used, s, n);
    b->used += n;
    b->out[b->used] = '\0';
}

void dbp_redact_buf(dbp_text kind, const char *text, const dbp_secrets *secrets, char *out,
                    size_t size)
{
    buffer b = {out, size, 0};

    if (size == 0)
        return;
    out[0] = '\0';
    dbp_redact(kind, text, secrets, buffer_add, &b);
}

void dbp_redact_dsn(const char *dsn, char *out, size_t size)
{
    dbp_redact_buf(DBP_TEXT_DSN, dsn, NULL, out, size);
}

void dbp_redact_dsn_error(const char *dsn, const char *msg, char *out, size_t size)
{
    buffer b = {out, size, 0};
    redactor r = {buffer_add, &b, NULL};

    if (size == 0)
        return;
    out[0] = '\0';
    if (msg != NULL)
        quoted_tokens(&r, msg, without_line_ends(msg), dsn_error_token_ok,
                      dsn != NULL ? dsn : "", true);
}
