/* redact_sql.c: DBP_TEXT_SQL (redact.h), what echo logs of a statement.
 *
 * Every constant is replaced by a placeholder, $n numbered after the
 * highest parameter the statement itself uses, as pg_stat_statements shows
 * statements: string constants in every quoting ('...', E'...', N'...',
 * B'...', X'...', U&'...', $tag$...$tag$) and numbers.  A secret may sit in
 * any of them (PASSWORD '...', dblink_connect('... password=...'),
 * pgp_sym_encrypt(data, 'key'), a card number), and no list of functions
 * and clauses would ever be complete.  Identifiers, keywords, operators,
 * parameters, quoted identifiers and comments are kept as written.
 *
 * The lexer follows PostgreSQL's (scan.l) as far as a constant's extent
 * goes; an unterminated constant runs to the end of the text, and so does
 * a '...' holding a backslash (whether it escapes the quote after it
 * depends on standard_conforming_strings, a session setting). */
#include "redact.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* A byte that may continue an identifier (PostgreSQL: letters, digits, _,
 * $ and every non-ASCII byte). */
static bool ident_byte(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$' || (unsigned char)c >= 0x80;
}

/* How a backslash inside '...' reads. */
typedef enum backslash {
    BACKSLASH_PLAIN,      /* a byte like any other: U&'...', B'...', X'...' */
    BACKSLASH_ESCAPES,    /* escapes the next byte: E'...' */
    BACKSLASH_UNKNOWN,    /* '...' and N'...': a plain byte when the session's
                             standard_conforming_strings is on (the default),
                             an escape when it is off, which echo cannot know */
} backslash;

/* The end of '...' whose opening quote is at q: '' is a quote inside.  Where
 * a backslash may or may not escape the quote after it, the constant runs
 * to the end of the text: either reading then hides every byte of it. */
static const char *quoted_end(const char *q, backslash how)
{
    for (q++; *q != '\0'; q++) {
        if (*q == '\\' && how == BACKSLASH_UNKNOWN)
            return q + strlen(q);
        if (*q == '\\' && how == BACKSLASH_ESCAPES && q[1] != '\0')
            q++;
        else if (*q == '\'' && q[1] == '\'')
            q++;
        else if (*q == '\'')
            return q + 1;
    }
    return q;
}

/* The end of $tag$...$tag$ starting at q, or NULL when q starts no
 * dollar quote (a parameter $1, or a '$' inside a word). */
static const char *dollar_end(const char *q)
{
    const char *t = q + 1;
    size_t tag_len;

    if (isdigit((unsigned char)*t))
        return NULL;
    while (*t != '\0' && *t != '$' && ident_byte(*t))
        t++;
    if (*t != '$')
        return NULL;
    tag_len = (size_t)(t + 1 - q);
    for (t++; *t != '\0'; t++)
        if (*t == '$' && strncmp(t, q, tag_len) == 0)
            return t + tag_len;
    return t;
}

/* The end of the string constant starting at p, or NULL when none does:
 * a prefix (E, N, B, X, U&) counts only at the start of a word. */
static const char *string_end(const char *p)
{
    char c = (char)toupper((unsigned char)*p);

    if (*p == '\'')
        return quoted_end(p, BACKSLASH_UNKNOWN);
    if (*p == '$')
        return dollar_end(p);
    if ((c == 'E' || c == 'N' || c == 'B' || c == 'X') && p[1] == '\'')
        return quoted_end(p + 1, c == 'E' ? BACKSLASH_ESCAPES
                                 : c == 'N' ? BACKSLASH_UNKNOWN : BACKSLASH_PLAIN);
    if (c == 'U' && p[1] == '&' && p[2] == '\'')
        return quoted_end(p + 2, BACKSLASH_PLAIN);
    return NULL;
}

static const char *digits(const char *p)
{
    while (isdigit((unsigned char)*p) || *p == '_')
        p++;
    return p;
}

/* The end of the number starting at p (a digit, or '.' and a digit):
 * 42, 1_000, 4.5, .5, 1e-3, 0x1F, 0o17, 0b101. */
static const char *number_end(const char *p)
{
    if (*p == '0' && strchr("xXoObB", p[1]) != NULL && p[1] != '\0' && isxdigit((unsigned char)p[2])) {
        for (p += 2; isxdigit((unsigned char)*p) || *p == '_'; p++)
            ;
        return p;
    }
    p = digits(p);
    if (*p == '.' && p[1] != '.')          /* "1..2" is not a number and a dot */
        p = digits(p + 1);
    if ((*p == 'e' || *p == 'E') &&
        (isdigit((unsigned char)p[1]) ||
         ((p[1] == '+' || p[1] == '-') && isdigit((unsigned char)p[2]))))
        p = digits(p + 2);
    return p;
}

/* The end of the comment starting at p, or NULL: -- to the line's end,
 * nested slash-star comments. */
static const char *comment_end(const char *p)
{
    int depth = 0;

    if (p[0] == '-' && p[1] == '-')
        return p + strcspn(p, "\n");
    if (p[0] != '/' || p[1] != '*')
        return NULL;
    while (*p != '\0') {
        if (p[0] == '/' && p[1] == '*') {
            depth++;
            p += 2;
        } else if (p[0] == '*' && p[1] == '/') {
            p += 2;
            if (--depth == 0)
                return p;
        } else {
            p++;
        }
    }
    return p;
}

/* The end of the token at p that is kept as written, or of the constant
 * (*constant set), p + 1 at the least; *param gets a parameter's number. */
static const char *token_end(const char *p, bool *constant, long *param)
{
    const char *e;

    *constant = false;
    *param = 0;
    if ((e = comment_end(p)) != NULL)
        return e;
    if (*p == '"') {                        /* a quoted identifier: "" inside */
        for (e = p + 1; *e != '\0'; e++)
            if (*e == '"' && e[1] == '"')
                e++;
            else if (*e == '"')
                return e + 1;
        return e;
    }
    if ((e = string_end(p)) != NULL) {
        *constant = true;
        return e;
    }
    if (*p == '$' && isdigit((unsigned char)p[1])) {
        for (e = p + 1; isdigit((unsigned char)*e); e++)
            if (*param < 1000000)
                *param = *param * 10 + (*e - '0');
        return e;
    }
    if (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) {
        *constant = true;
        return number_end(p);
    }
    if (ident_byte(*p)) {                   /* a word: digits in it are no number */
        for (e = p + 1; ident_byte(*e); e++)
            ;
        return e;
    }
    return p + 1;
}

/* The highest parameter number in sql, outside constants and comments. */
static long highest_param(const char *sql)
{
    long top = 0, n;
    bool constant;

    for (const char *p = sql; *p != '\0';) {
        p = token_end(p, &constant, &n);
        if (n > top)
            top = n;
    }
    return top;
}

void dbp_redact_sql(const char *sql, dbp_redact_sink sink, void *ud)
{
    long next = highest_param(sql) + 1, n;
    const char *p = sql, *from = sql;
    bool constant;
    char ph[24];

    while (*p != '\0') {
        const char *e = token_end(p, &constant, &n);
        if (constant) {
            if (p > from)
                sink(ud, from, (size_t)(p - from));
            snprintf(ph, sizeof ph, "$%ld", next++);
            sink(ud, ph, strlen(ph));
            from = e;
        }
        p = e;
    }
    if (p > from)
        sink(ud, from, (size_t)(p - from));
}
