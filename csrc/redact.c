/* redact.c: dbp_redact and its scanners (redact.h).  Each scanner walks
 * its text once, front to back, and hands every span either to show()
 * (copied, with known secrets hidden) or to hide() (DBP_REDACTED in its
 * place, and the span noted when dbp_secrets_from_dsn is collecting). */
#include "redact.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define MASK_LEN (sizeof DBP_REDACTED - 1)

typedef struct redactor {
    const dbp_secrets *secrets;   /* hidden wherever they appear; may be NULL */
    dbp_secrets *found;           /* dbp_secrets_from_dsn: hidden spans go here */
    dbp_redact_sink sink;
    void *ud;
} redactor;

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

/* The length of the longest secret at s (n bytes left), 0 for none. */
static size_t secret_at(const dbp_secrets *k, const char *s, size_t n)
{
    size_t best = 0;

    for (int i = 0; i < k->n; i++)
        if (k->len[i] > best && k->len[i] <= n && memcmp(s, k->val[i], k->len[i]) == 0)
            best = k->len[i];
    return best;
}

/* n bytes of s shown as they are, except for the known secrets in them. */
static void show(redactor *r, const char *s, size_t n)
{
    size_t from = 0, i = 0;

    if (r->secrets == NULL || r->secrets->n == 0) {
        if (n > 0)
            r->sink(r->ud, s, n);
        return;
    }
    while (i < n) {
        size_t hit = secret_at(r->secrets, s + i, n - i);
        if (hit == 0) {
            i++;
            continue;
        }
        if (i > from)
            r->sink(r->ud, s + from, i - from);
        r->sink(r->ud, DBP_REDACTED, MASK_LEN);
        i += hit;                 /* past the secret: the mask is never read */
        from = i;
    }
    if (n > from)
        r->sink(r->ud, s + from, n - from);
}

static void note(redactor *r, const char *s, size_t n)
{
    if (r->found != NULL)
        dbp_secrets_add(r->found, s, n);
}

/* A password: DBP_REDACTED stands in its place. */
static void hide(redactor *r, const char *s, size_t n)
{
    note(r, s, n);
    r->sink(r->ud, DBP_REDACTED, MASK_LEN);
}

/* libpq's keywords whose values are secret (dispchar "*"), in any case:
 * libpq refuses "PASSWORD=", but the text may still be shown. */
static bool secret_key(const char *key, size_t n)
{
    return (n == 8 && strncasecmp(key, "password", 8) == 0) ||
           (n == 11 && strncasecmp(key, "sslpassword", 11) == 0);
}

static int hex(char c)
{
    return isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

/* A URI parameter's name, percent-decoded as libpq decodes it. */
static bool secret_param(const char *key, size_t n)
{
    char name[16];
    size_t len = 0;

    for (size_t i = 0; i < n; i++, len++) {
        if (len == sizeof name)
            return false;
        if (key[i] == '%' && i + 2 < n && isxdigit((unsigned char)key[i + 1]) &&
            isxdigit((unsigned char)key[i + 2])) {
            name[len] = (char)(hex(key[i + 1]) * 16 + hex(key[i + 2]));
            i += 2;
        } else {
            name[len] = key[i];
        }
    }
    return secret_key(name, len);
}

/* ---- DSN: URI --------------------------------------------------------- */

/* "k=v&k=v": the value of each password parameter, and any parameter with
 * no '=' (it may be the tail of a password with an unencoded '&'). */
static void uri_params(redactor *r, const char *q)
{
    while (*q) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        if (eq == NULL) {
            hide(r, q, len);
        } else if (secret_param(q, (size_t)(eq - q))) {
            show(r, q, (size_t)(eq + 1 - q));
            hide(r, eq + 1, len - (size_t)(eq + 1 - q));
        } else {
            show(r, q, len);
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

/* "scheme://user:password@host/db?params"; rest is just past "://".  The
 * userinfo ends at the last '@' before the path, so an unencoded '@' or '?'
 * in a password is hidden with the rest of it; when no ':' comes before
 * that '@' there is no password there, and the '@' before the path or query
 * is taken ("h?password=x@y").  Without a path, a '@' in the query may hide
 * more than it must, which is the safe side. */
static void dsn_uri(redactor *r, const char *dsn, const char *rest)
{
    const char *at = last_at(rest, strcspn(rest, "/")), *q;

    if (at != NULL && memchr(rest, ':', (size_t)(at - rest)) == NULL)
        at = last_at(rest, strcspn(rest, "/?"));
    show(r, dsn, (size_t)(rest - dsn));
    if (at != NULL) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if (colon != NULL) {
            show(r, rest, (size_t)(colon + 1 - rest));
            hide(r, colon + 1, (size_t)(at - colon - 1));
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

/* A password value: hidden whole, and noted without its quotes, as libpq
 * would echo it. */
static void hide_value(redactor *r, const char *val, const char *end)
{
    if (*val == '\'' && end > val) {
        const char *in = val + 1, *in_end = end > in && end[-1] == '\'' ? end - 1 : end;
        note(r, in, (size_t)(in_end - in));
    }
    hide(r, val, (size_t)(end - val));
}

/* The rest of a text that lost its key=value shape: nothing in it can be
 * told apart from a value any more.  Hidden as one; each word noted, since
 * libpq's message quotes one. */
static void hide_rest(redactor *r, const char *p)
{
    if (*p == '\0')
        return;
    r->sink(r->ud, DBP_REDACTED, MASK_LEN);
    while (*(p = skip_blanks(p)) != '\0') {
        size_t n = strcspn(p, " \t\n\r\f\v");
        note(r, p, n);
        p += n;
    }
}

static void dsn_keyvalue(redactor *r, const char *p)
{
    bool after_secret = false;

    while (*p) {
        const char *start = p, *key, *val;
        size_t key_len;

        key = p = skip_blanks(p);
        while (*p != '\0' && *p != '=' && !isspace((unsigned char)*p))
            p++;
        key_len = (size_t)(p - key);
        p = skip_blanks(p);
        if (*p != '=') {
            /* A word with no '=' ("password s3cret"): shown, the rest
             * hidden; right after a password it may be the password's tail
             * ("password=two words" unquoted), so it is hidden too. */
            if (after_secret)
                p = key;
            show(r, start, (size_t)(p - start));
            hide_rest(r, p);
            return;
        }
        val = p = skip_blanks(p + 1);
        p = kv_value_end(p);
        show(r, start, (size_t)(val - start));
        after_secret = secret_key(key, key_len);
        if (after_secret)
            hide_value(r, val, p);
        else
            show(r, val, (size_t)(p - val));
    }
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

/* ---- SQL --------------------------------------------------------------- */

/* The end of the string constant at q: '...' ('' inside), E'...' (and
 * backslash escapes), $tag$...$tag$; an unterminated one ends with the
 * text.  NULL when q starts none. */
static const char *sql_constant_end(const char *q)
{
    bool escapes = false;

    if ((*q == 'E' || *q == 'e') && q[1] == '\'') {
        escapes = true;
        q++;
    }
    if (*q == '\'') {
        for (q++; *q != '\0'; q++) {
            if (escapes && *q == '\\' && q[1] != '\0')
                q++;
            else if (*q == '\'' && q[1] == '\'')
                q++;
            else if (*q == '\'')
                return q + 1;
        }
        return q;
    }
    if (*q == '$' && !isdigit((unsigned char)q[1])) {
        const char *t = q + 1;
        while (isalnum((unsigned char)*t) || *t == '_')
            t++;
        if (*t != '$')
            return NULL;
        size_t tag_len = (size_t)(t + 1 - q);
        for (t++; *t != '\0'; t++)
            if (strncmp(t, q, tag_len) == 0)
                return t + tag_len;
        return t;
    }
    return NULL;
}

/* The word PASSWORD, in any case, not the end of a longer word. */
static bool password_word(const char *text, const char *p)
{
    return (*p == 'p' || *p == 'P') && strncasecmp(p, "password", 8) == 0 &&
           (p == text || !isalnum((unsigned char)p[-1]));
}

static void sql(redactor *r, const char *text)
{
    const char *p = text, *from = text;

    while (*p) {
        if (!password_word(text, p)) {
            p++;
            continue;
        }
        const char *q = skip_blanks(p + 8), *end = sql_constant_end(q);
        p += 8;
        if (end == NULL)
            continue;
        show(r, from, (size_t)(q - from));
        r->sink(r->ud, "'", 1);
        hide(r, q, (size_t)(end - q));
        r->sink(r->ud, "'", 1);
        p = from = end;
    }
    show(r, from, (size_t)(p - from));
}

/* ---- the routine and its buffer ----------------------------------------- */

void dbp_redact(dbp_text kind, const char *text, const dbp_secrets *secrets,
                dbp_redact_sink sink, void *ud)
{
    redactor r = {secrets, NULL, sink, ud};
    size_t n;

    if (text == NULL)
        return;
    if (secrets != NULL && secrets->overflow) {
        sink(ud, DBP_REDACTED, MASK_LEN);   /* more secrets than we can hold */
        return;
    }
    switch (kind) {
    case DBP_TEXT_DSN:
        dsn(&r, text);
        break;
    case DBP_TEXT_SQL:
        sql(&r, text);
        break;
    case DBP_TEXT_MESSAGE:
        n = strlen(text);
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
            n--;
        show(&r, text, n);
        break;
    }
}

static void discard(void *ud, const char *s, size_t n)
{
    (void)ud, (void)s, (void)n;
}

void dbp_secrets_from_dsn(dbp_secrets *s, const char *text)
{
    redactor r = {NULL, s, discard, NULL};

    dbp_secrets_init(s);
    if (text != NULL)
        dsn(&r, text);
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
