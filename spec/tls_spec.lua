-- TLS as README's Security section says to set it: sslmode=verify-full with
-- sslrootcert, against a server of this spec's own with ssl = on and a
-- certificate from a throwaway CA (scripts/tls-certs.sh, scripts/pg-start.sh
-- with DBPOOL_PG_SSL_DIR).  The server is always stopped, also when a test
-- fails (lazy_teardown), and pg-start.sh cleans up a start that failed.
local dbpool = require "dbpool"
local helper = require "helper"

local root = os.getenv("DBPOOL_ROOT") or "."

-- Runs a shell command; returns its stdout, or raises with what it printed.
local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"exit status $?\""))
  local out = p:read("*a")
  p:close()
  local body, status = out:match("^(.-)exit status (%d+)\n?$")
  if status ~= "0" then error(("%s failed (exit %s):\n%s"):format(cmd, status, out), 2) end
  return body
end

describe("TLS with sslmode=verify-full", function()
  if helper.via_pgbouncer then
    -- TLS runs between libpq and the server this spec starts itself, which no
    -- PgBouncer fronts: through PgBouncer it would repeat the same test.
    pending("not through PgBouncer: this spec starts a TLS server of its own")
    return
  end

  local certs, server = nil, {}

  lazy_setup(function()
    certs = sh("mktemp -d /tmp/dbpool-tls.XXXXXX"):gsub("%s+$", "")
    sh(("%s/scripts/tls-certs.sh '%s'"):format(root, certs))
    -- Only the export lines are on stdout (stderr says where it started).
    local exports = sh(("DBPOOL_PG_SSL_DIR='%s' %s/scripts/pg-start.sh"):format(certs, root))
    for k, v in exports:gmatch("export ([%w_]+)='([^']*)'") do server[k] = v end
    assert(server.DBPOOL_PG_TMP and server.DBPOOL_PG_PORT, "pg-start.sh gave no server: " .. exports)
  end)

  lazy_teardown(function()
    if server.DBPOOL_PG_TMP then sh(("%s/scripts/pg-stop.sh '%s'"):format(root, server.DBPOOL_PG_TMP)) end
    if certs then sh(("rm -rf '%s'"):format(certs)) end
  end)

  -- An engine on the TLS server with these libpq keywords; one try, no waiting.
  local function engine(keywords)
    return dbpool.engine { name = helper.name("tls"), pool_size = 1, max_overflow = 0,
      dsn = ("port=%s user=postgres dbname=postgres sslmode=verify-full %s")
        :format(server.DBPOOL_PG_PORT, keywords),
      pool_timeout = 20 * helper.time_scale, retry = { attempts = 1 } }
  end

  it("connects with sslrootcert = the CA that signed the server's certificate, over TLS", function()
    local e = engine(("host=127.0.0.1 sslrootcert=%s/ca.crt"):format(certs))
    local rows = assert(e:query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
    assert.are.equal(true, rows[1].ssl)
    assert.matches("^TLSv1%.[23]$", rows[1].version)
    -- The name in the certificate's other entry works as well.
    e = engine(("host=localhost sslrootcert=%s/ca.crt"):format(certs))
    assert.are.equal(true, assert(e:query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))[1].ssl)
  end)

  it("refuses a server whose certificate another CA signed: kind connect, naming the problem", function()
    local e = engine(("host=127.0.0.1 sslrootcert=%s/other-ca.crt"):format(certs))
    local conn, msg, err = e:connect()
    assert.is_nil(conn)
    assert.are.equal("connect", err.kind)
    assert.matches("certificate verify failed", msg, 1, true)
  end)

  it("refuses a host name the certificate does not name", function()
    -- hostaddr is where libpq connects; host is the name it checks.
    local e = engine(("host=not-in-the-cert.invalid hostaddr=127.0.0.1 sslrootcert=%s/ca.crt")
      :format(certs))
    local conn, msg, err = e:connect()
    assert.is_nil(conn)
    assert.are.equal("connect", err.kind)
    assert.matches('server certificate for "127.0.0.1" (and 1 other name) does not match host name '
      .. '"not-in-the-cert.invalid"', msg, 1, true)
  end)

  it("refuses verify-full with no CA to check against", function()
    local e = engine("host=127.0.0.1 sslrootcert=/nonexistent/root.crt")
    local conn, msg, err = e:connect()
    assert.is_nil(conn)
    assert.are.equal("connect", err.kind)
    assert.matches("root certificate file \"/nonexistent/root.crt\" does not exist", msg, 1, true)
  end)
end)
