"""Peer for the dbpool comparison benchmark: psycopg 3's psycopg_pool.ConnectionPool.

    /usr/bin/python3 bench/peers/psycopg_pool_bench.py MODE N

(Debian bookworm: python3-psycopg 3.1.7 and python3-psycopg-pool 3.1.7; use
/usr/bin/python3.  Debian ships psycopg's pure-Python implementation over
libpq via ctypes -- psycopg.pq.__impl__ == "python"; the optional C
accelerator, psycopg_c / psycopg[binary], is not packaged, so the figures are
for what a Debian user gets.)

MODE
  cycle       pool.getconn() + pool.putconn(conn): the pool's checkout and
              checkin themselves, no query.
  select1     getconn, conn.execute("SELECT 1").fetchone(), putconn.
  select1_ctx the documented idiom instead:
              `with pool.connection() as conn: conn.execute("SELECT 1").fetchone()`
              (adds the connection's own context manager: a commit() that is a
              local no-op when idle, plus usage statistics).

Settings (fastest honest):
  * min_size=max_size=1, one thread (the pool's own worker threads exist but
    stay idle: nothing is scheduled while a connection is always available).
  * kwargs={"autocommit": True}: without it psycopg sends BEGIN before the
    first statement and the pool must ROLLBACK the open transaction on return
    -- two extra round trips per checkout.  With it, SELECT 1 is one round
    trip and putconn() finds the connection IDLE and does nothing on the wire.
  * no reset= callback, no check (psycopg_pool 3.1 has no check-on-checkout
    option at all; 3.2 added one, off by default).
  * prepare_threshold left at its default (5): psycopg prepares the repeated
    SELECT 1 server-side after 5 executions; still one round trip.

DSN: $DBPOOL_TEST_DSN, a libpq URI, used as is.  Prints ONE line: seconds of
the timed loop (time.perf_counter).  Warm-up: pool.wait() for the connection,
then 1000 iterations.
"""
import os
import sys
import time

from psycopg_pool import ConnectionPool


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: psycopg_pool_bench.py cycle|select1|select1_ctx N")
    mode, n = sys.argv[1], int(sys.argv[2])
    dsn = os.environ.get("DBPOOL_TEST_DSN")
    if not dsn:
        sys.exit("DBPOOL_TEST_DSN is not set")

    pool = ConnectionPool(dsn, min_size=1, max_size=1, kwargs={"autocommit": True}, open=True)
    pool.wait(timeout=30)
    getconn, putconn = pool.getconn, pool.putconn

    def cycle():
        conn = getconn()
        putconn(conn)

    def select1():
        conn = getconn()
        row = conn.execute("SELECT 1").fetchone()
        putconn(conn)
        return row[0]

    def select1_ctx():
        with pool.connection() as conn:
            return conn.execute("SELECT 1").fetchone()[0]

    fn = {"cycle": cycle, "select1": select1, "select1_ctx": select1_ctx}.get(mode)
    if fn is None:
        sys.exit("mode must be cycle, select1 or select1_ctx")

    for _ in range(1000):
        fn()
    if mode != "cycle" and select1() != 1:
        sys.exit("SELECT 1 did not return 1")
    conn = getconn()
    if not conn.autocommit:
        sys.exit("connection is not in autocommit mode")
    putconn(conn)
    stats = pool.get_stats()
    if stats.get("connections_num", 0) != 1:
        sys.exit("expected exactly one connection opened, got stats %r" % stats)

    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    t = time.perf_counter() - t0

    pool.close()
    print("%.9f" % t)


if __name__ == "__main__":
    main()
