/*
 * Peer for the dbpool comparison benchmark: HikariCP over pgjdbc, the JVM's
 * default choice.  (Debian bookworm: libhikaricp-java 2.7.9,
 * libpostgresql-jdbc-java 42.5.5, libslf4j-java 1.7.32 for slf4j-api and
 * slf4j-nop, OpenJDK 17.)
 *
 *   javac -cp /usr/share/java/HikariCP.jar -d OUT bench/peers/HikariBench.java
 *   java -cp OUT:/usr/share/java/HikariCP.jar:/usr/share/java/postgresql.jar:\
 *        /usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar HikariBench MODE N
 *
 * MODE
 *   cycle    ds.getConnection() + close(): HikariCP's checkout and checkin.
 *   select1  getConnection, prepareStatement("SELECT 1"), executeQuery, read
 *            the row (getInt), close result set, statement and connection
 *            (try-with-resources: what JDBC code looks like).  pgjdbc's
 *            per-connection statement cache makes the prepareStatement call
 *            cheap, and after prepareThreshold (default 5) executions it uses
 *            a named server-side statement; either way one round trip.
 *
 * Settings (fastest honest):
 *   * maximumPoolSize=1, minimumIdle=1, one thread.
 *   * autoCommit=true (Hikari's default, stated explicitly): no BEGIN, and on
 *     close() Hikari rolls back only a dirty non-autocommit connection, so
 *     the checkin does nothing on the wire.
 *   * Hikari's alive check at checkout only runs for a connection idle longer
 *     than aliveBypassWindowMs (500 ms); in this loop it never runs.  Leak
 *     detection off (default).
 *
 * DSN: $DBPOOL_TEST_DSN (postgresql://user[:pw]@host:port/db) converted to
 * jdbc:postgresql://host:port/db?user=...[&password=...].
 * Warm-up: iterations of the mode until both 50,000 have run and 1 s has
 * passed (the JIT compiles the hot paths; the cheap cycle loop needs a few
 * million iterations before C2 settles, 50,000 alone left it ~4x slow), then
 * the timed loop.  Prints ONE line: seconds of the timed loop
 * (System.nanoTime).
 */
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;

import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;

public final class HikariBench {
    static final int WARMUP_MIN = 50_000;
    static final long WARMUP_NANOS = 1_000_000_000L;

    static String jdbcUrl(String dsn) {
        URI u = URI.create(dsn);
        if (!"postgresql".equals(u.getScheme()) && !"postgres".equals(u.getScheme()))
            throw new IllegalArgumentException("DBPOOL_TEST_DSN must be a postgresql:// URI");
        String host = u.getHost() == null ? "localhost" : u.getHost();
        int port = u.getPort() < 0 ? 5432 : u.getPort();
        String db = u.getPath() == null || u.getPath().length() <= 1 ? "postgres" : u.getPath().substring(1);
        StringBuilder url = new StringBuilder("jdbc:postgresql://" + host + ":" + port + "/" + db);
        String info = u.getUserInfo();
        if (info != null) {
            int colon = info.indexOf(':');
            String user = colon < 0 ? info : info.substring(0, colon);
            url.append("?user=").append(URLEncoder.encode(user, StandardCharsets.UTF_8));
            if (colon >= 0)
                url.append("&password=")
                   .append(URLEncoder.encode(info.substring(colon + 1), StandardCharsets.UTF_8));
        }
        return url.toString();
    }

    static void cycle(HikariDataSource ds) throws SQLException {
        Connection c = ds.getConnection();
        c.close();
    }

    static int select1(HikariDataSource ds) throws SQLException {
        try (Connection c = ds.getConnection();
             PreparedStatement st = c.prepareStatement("SELECT 1");
             ResultSet rs = st.executeQuery()) {
            if (!rs.next()) throw new SQLException("SELECT 1 returned no row");
            return rs.getInt(1);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: HikariBench cycle|select1 N");
            System.exit(2);
        }
        String mode = args[0];
        long n = Long.parseLong(args[1]);
        boolean sel;
        if (mode.equals("select1")) sel = true;
        else if (mode.equals("cycle")) sel = false;
        else { System.err.println("mode must be cycle or select1"); System.exit(2); return; }
        String dsn = System.getenv("DBPOOL_TEST_DSN");
        if (dsn == null || dsn.isEmpty()) { System.err.println("DBPOOL_TEST_DSN is not set"); System.exit(2); }

        HikariConfig cfg = new HikariConfig();
        cfg.setJdbcUrl(jdbcUrl(dsn));
        cfg.setMaximumPoolSize(1);
        cfg.setMinimumIdle(1);
        cfg.setAutoCommit(true);
        cfg.setPoolName("peer-bench");
        try (HikariDataSource ds = new HikariDataSource(cfg)) {
            long sink = 0, warm = 0, w0 = System.nanoTime();
            while (warm < WARMUP_MIN || System.nanoTime() - w0 < WARMUP_NANOS) {
                for (int i = 0; i < 1000; i++) {
                    if (sel) sink += select1(ds); else cycle(ds);
                }
                warm += 1000;
            }
            if (select1(ds) != 1) throw new IllegalStateException("SELECT 1 did not return 1");
            if (sel && sink != warm) throw new IllegalStateException("warm-up results wrong");

            sink = 0;
            long t0 = System.nanoTime();
            if (sel) {
                for (long i = 0; i < n; i++) sink += select1(ds);
            } else {
                for (long i = 0; i < n; i++) cycle(ds);
            }
            long t = System.nanoTime() - t0;
            if (sel && sink != n) throw new IllegalStateException("timed results wrong");
            if (ds.getHikariPoolMXBean().getTotalConnections() != 1)
                throw new IllegalStateException("expected exactly one pooled connection");
            System.out.printf("%.9f%n", t / 1e9);
        }
    }
}
