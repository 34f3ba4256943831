"""Peer for the dbpool comparison benchmark: SQLAlchemy's QueuePool over psycopg2.

    /usr/bin/python3 bench/peers/sqlalchemy_pool.py MODE N

(Debian bookworm: python3-sqlalchemy 1.4.46, python3-psycopg2 2.9.5; use
/usr/bin/python3, the interpreter those packages are installed for.)

MODE
  cycle         engine.pool.connect() + .close(): the QueuePool checkout and
                checkin themselves (the _ConnectionFairy path, reset on return
                included), no query.
  select1       the same checkout, then a DBAPI cursor: execute("SELECT 1"),
                fetchone(), cursor close, checkin.  The fastest honest way to
                run a query through SQLAlchemy's pool.
  select1_core  what typical SQLAlchemy Core code does instead:
                `with engine.connect() as c: c.execute(text("SELECT 1")).scalar()`
                (Connection object, compiled-statement cache, Result object);
                shows what the layers above the pool cost.

Settings (fastest honest):
  * pool_size=1, max_overflow=0, one thread.
  * isolation_level="AUTOCOMMIT": without it psycopg2 sends BEGIN before the
    first statement of every checkout and the reset on return then has an open
    transaction to roll back -- two extra round trips per checkout.  With it,
    SELECT 1 is one round trip.
  * pool_pre_ping=False (the default): no ping at checkout.
  * reset_on_return left at its default, "rollback": it calls the DBAPI
    connection's rollback(), which psycopg2 answers locally (no round trip)
    when no transaction is open -- always the case here under AUTOCOMMIT -- so
    keeping the default costs only the Python call path, which is part of
    what a QueuePool user pays.
  * echo off, no event listeners.

DSN: $DBPOOL_TEST_DSN (postgresql://...), the scheme rewritten to
postgresql+psycopg2://.  Prints ONE line: seconds of the timed loop
(time.perf_counter).  Warm-up: the connection is opened (first connect runs
SQLAlchemy's dialect initialisation queries) and 1000 iterations run.
"""
import os
import sys
import time

from sqlalchemy import create_engine, text


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: sqlalchemy_pool.py cycle|select1|select1_core N")
    mode, n = sys.argv[1], int(sys.argv[2])
    dsn = os.environ.get("DBPOOL_TEST_DSN")
    if not dsn:
        sys.exit("DBPOOL_TEST_DSN is not set")
    url = "postgresql+psycopg2://" + dsn.split("://", 1)[1]

    engine = create_engine(
        url,
        pool_size=1,
        max_overflow=0,
        pool_pre_ping=False,
        isolation_level="AUTOCOMMIT",
    )
    pool = engine.pool

    def cycle():
        c = pool.connect()
        c.close()

    def select1():
        c = pool.connect()
        cur = c.cursor()
        cur.execute("SELECT 1")
        row = cur.fetchone()
        cur.close()
        c.close()
        return row[0]

    stmt = text("SELECT 1")

    def select1_core():
        with engine.connect() as c:
            return c.execute(stmt).scalar()

    fn = {"cycle": cycle, "select1": select1, "select1_core": select1_core}.get(mode)
    if fn is None:
        sys.exit("mode must be cycle, select1 or select1_core")

    # Warm-up; also check the settings took effect.
    for _ in range(1000):
        fn()
    if mode != "cycle" and select1() != 1:
        sys.exit("SELECT 1 did not return 1")
    c = pool.connect()
    dbapi = getattr(c, "dbapi_connection", None) or c.connection
    if not dbapi.autocommit:
        sys.exit("psycopg2 connection is not in autocommit mode")
    c.close()
    if pool.checkedout() != 0 or pool.size() != 1:
        sys.exit("unexpected pool state: " + pool.status())

    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    t = time.perf_counter() - t0

    engine.dispose()
    print("%.9f" % t)


if __name__ == "__main__":
    main()
