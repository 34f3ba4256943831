/*
 * Peer for the dbpool comparison benchmark: plain libpq, no pool.  The floor.
 *
 *   raw_libpq MODE N          (DSN from $DBPOOL_TEST_DSN, a libpq conninfo/URI)
 *
 * MODE
 *   select1  one persistent PGconn; per iteration PQexecParams("SELECT 1", 0
 *            params) -- one round trip (Parse/Bind/Describe/Execute/Sync in a
 *            single send) -- the value is read and checked, then PQclear.
 *   select1_prepared
 *            the same, but through a named statement prepared once
 *            (PQprepare before the warm-up, then PQexecPrepared: Bind/
 *            Describe/Execute/Sync): the server skips parse and plan, as it
 *            does for pgjdbc and psycopg 3 once they have auto-prepared the
 *            statement (after 5 executions).  Still one round trip.
 *   connect  connect-per-request: per iteration PQconnectdb + the same
 *            SELECT 1 + PQfinish (a fresh TCP connection, backend fork and
 *            start-up every time: what an app without any pool pays).
 *   cycle    not applicable (there is no pool to check out of): prints 0 and
 *            exits 0, so a driver can still tabulate it.
 *
 * Prints ONE line: the seconds the timed loop took (CLOCK_MONOTONIC).
 * Warm-up before timing: the connection is opened and 100 queries run (for
 * "connect", 5 full connect/query/finish cycles).
 *
 * Build: cc -O2 -Wall -Wextra -Werror -I/usr/include/postgresql \
 *           -o raw_libpq bench/peers/raw_libpq.c -lpq
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *what, PGconn *conn)
{
	fprintf(stderr, "raw_libpq: %s: %s", what, conn ? PQerrorMessage(conn) : "\n");
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static PGconn *open_conn(const char *dsn)
{
	PGconn *conn = PQconnectdb(dsn);
	if (PQstatus(conn) != CONNECTION_OK)
		die("connect", conn);
	return conn;
}

/* SELECT 1 with the extended protocol, result fetched and checked. */
static void select1(PGconn *conn)
{
	PGresult *res = PQexecParams(conn, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		die("SELECT 1", conn);
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "1") != 0)
		die("SELECT 1 returned something other than 1", NULL);
	PQclear(res);
}

static void select1_prepared(PGconn *conn)
{
	PGresult *res = PQexecPrepared(conn, "s1", 0, NULL, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		die("EXECUTE s1", conn);
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "1") != 0)
		die("SELECT 1 returned something other than 1", NULL);
	PQclear(res);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s select1|select1_prepared|connect|cycle N\n", argv[0]);
		return 2;
	}
	const char *mode = argv[1];
	long n = strtol(argv[2], NULL, 10);
	const char *dsn = getenv("DBPOOL_TEST_DSN");
	if (!dsn || !*dsn) {
		fprintf(stderr, "raw_libpq: DBPOOL_TEST_DSN is not set\n");
		return 2;
	}
	if (n <= 0) {
		fprintf(stderr, "raw_libpq: N must be a positive integer\n");
		return 2;
	}

	if (strcmp(mode, "cycle") == 0) {
		printf("0\n");   /* no pool: checkout/checkin does not exist here */
		return 0;
	}
	if (strcmp(mode, "select1") == 0 || strcmp(mode, "select1_prepared") == 0) {
		PGconn *conn = open_conn(dsn);
		void (*query)(PGconn *) = select1;
		if (strcmp(mode, "select1_prepared") == 0) {
			PGresult *res = PQprepare(conn, "s1", "SELECT 1", 0, NULL);
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				die("PREPARE s1", conn);
			PQclear(res);
			query = select1_prepared;
		}
		for (int i = 0; i < 100; i++)
			query(conn);
		double t0 = now();
		for (long i = 0; i < n; i++)
			query(conn);
		double t = now() - t0;
		PQfinish(conn);
		printf("%.9f\n", t);
		return 0;
	}
	if (strcmp(mode, "connect") == 0) {
		for (int i = 0; i < 5; i++) {
			PGconn *conn = open_conn(dsn);
			select1(conn);
			PQfinish(conn);
		}
		double t0 = now();
		for (long i = 0; i < n; i++) {
			PGconn *conn = open_conn(dsn);
			select1(conn);
			PQfinish(conn);
		}
		printf("%.9f\n", now() - t0);
		return 0;
	}
	fprintf(stderr, "raw_libpq: unknown mode '%s' (select1, select1_prepared, connect or cycle)\n", mode);
	return 2;
}
