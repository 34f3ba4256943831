/* conn_tags.c: what a statement's command tag says about the session
 * (conn_internal.h's dbp_conn_note_tag): whether reset_session must send
 * DISCARD ALL before the next borrower, and which of our prepared
 * statements DISCARD or DEALLOCATE took from the server.  Part of the
 * libpq seam: every result of conn_exec.c passes here. */
#include "conn_internal.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Is tag the command word (followed by the end or a space: "SELECT 1")? */
static bool tag_is(const char *tag, const char *word)
{
    size_t n = strlen(word);
    return strncmp(tag, word, n) == 0 && (tag[n] == '\0' || tag[n] == ' ');
}

/* Commands that may leave state in the session for the next borrower
 * (DESIGN.md, reset_session): SET (also SET ROLE, SESSION AUTHORIZATION),
 * RESET, LISTEN, PREPARE, DECLARE CURSOR, CREATE TABLE (a temporary table
 * has the same tag), LOAD. */
static bool tag_changes_session(const char *tag)
{
    switch (tag[0]) {        /* every result passes here: one look for most tags */
    case 'S': return tag_is(tag, "SET");
    case 'R': return tag_is(tag, "RESET");
    case 'L': return tag_is(tag, "LISTEN") || tag_is(tag, "LOAD");
    case 'P': return tag_is(tag, "PREPARE");
    case 'D': return tag_is(tag, "DECLARE CURSOR");
    case 'C': return tag_is(tag, "CREATE TABLE");
    default: return false;
    }
}

/* DEALLOCATE <name>: forgets our statements that sent_sql deallocates. */
static void forget_deallocated(dbp_conn *c)
{
    for (const char *p = c->sent_sql; p != NULL && (p = strcasestr(p, "deallocate")) != NULL;) {
        char name[24];
        size_t n = 0;
        p += 10;
        while (isspace((unsigned char)*p))
            p++;
        if (strncasecmp(p, "prepare", 7) == 0 && isspace((unsigned char)p[7]))
            for (p += 7; isspace((unsigned char)*p); p++)
                ;
        while ((isalnum((unsigned char)p[n]) || p[n] == '_') && n < sizeof name - 1)
            n++;
        memcpy(name, p, n);
        name[n] = '\0';
        dbp_stmt *s = n > 0 ? dbp_stmt_by_name(c->stmts, name) : NULL;
        if (strcasecmp(name, "all") == 0)
            dbp_stmt_forget_all(c->stmts);
        else if (s != NULL)
            dbp_stmt_forget(c->stmts, s);
    }
}

void dbp_conn_note_tag(dbp_conn *c, const char *tag)
{
    if (tag_changes_session(tag))
        c->session_dirty = true;
    if (tag[0] != 'D')                   /* DISCARD, DEALLOCATE: the rest is about them */
        return;
    if (tag_is(tag, "DISCARD ALL")) {
        c->session_dirty = false;
        c->ran_statement = false;
    }
    if (c->stmts == NULL)
        return;
    if (tag_is(tag, "DISCARD ALL") || tag_is(tag, "DEALLOCATE ALL"))
        dbp_stmt_forget_all(c->stmts);
    else if (tag_is(tag, "DEALLOCATE"))
        forget_deallocated(c);
}
