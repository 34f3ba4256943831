-- The server's notices (RAISE NOTICE, WARNING, a startup notice) reach
-- dbpool.log, never the app's stderr by themselves: libpq's default
-- receiver prints them there, and dbpool replaces it from the first byte of
-- a connection.  NOTICE and the like are "debug", which the default
-- dbpool.log does not print outside nginx; WARNING is "warn".
local dbpool = require "dbpool"
local helper = require "helper"

local function notices(log)
  local seen = {}
  for _, l in ipairs(log) do
    if l.message:find(": server ", 1, true) then seen[#seen + 1] = l end
  end
  return seen
end

describe("server notices", function()
  it("reach dbpool.log from a statement: NOTICE as debug, WARNING as warn, with detail and hint", function()
    local e = helper.engine()
    local conn = assert(e:connect())
    local log = helper.capture_log(function()
      assert(conn:query([[DO $$ BEGIN RAISE NOTICE 'x'; RAISE WARNING 'careful'
        USING DETAIL = 'the detail', HINT = 'the hint'; END $$]]))
    end)
    conn:close()
    local seen = notices(log)
    assert.are.equal(2, #seen)
    assert.are.same({ message = ("engine %s: server NOTICE: x"):format(e.name), level = "debug" }, seen[1])
    assert.are.same({ message = ("engine %s: server WARNING: careful DETAIL: the detail HINT: the hint")
      :format(e.name), level = "warn" }, seen[2])
  end)

  it("reach dbpool.log from engine:query, conn:exec and send/collect, also when the statement fails", function()
    local e = helper.engine()
    local log = helper.capture_log(function()
      assert(e:query("DO $$ BEGIN RAISE NOTICE 'from engine:query'; END $$"))
      assert(e:with(function(c)
        assert(c:exec("DO $$ BEGIN RAISE NOTICE 'from exec'; END $$"))
        assert(c:send("DO $$ BEGIN RAISE NOTICE 'from send'; END $$"))
        local rows
        repeat rows = c:collect(0.05) until rows
        local ok, msg = c:query("DO $$ BEGIN RAISE NOTICE 'before the error'; PERFORM 1 / 0; END $$")
        assert(ok == nil and msg:find("division by zero", 1, true))
        return true
      end))
    end)
    local texts = {}
    for i, l in ipairs(notices(log)) do texts[i] = l.message:match("server NOTICE: (.*)$") end
    assert.are.same({ "from engine:query", "from exec", "from send", "before the error" }, texts)
  end)

  it("are kept up to 32 between two calls, and the rest counted", function()
    local e = helper.engine()
    local log = helper.capture_log(function()
      assert(e:query("DO $$ BEGIN FOR i IN 1..40 LOOP RAISE NOTICE 'n%', i; END LOOP; END $$"))
    end)
    assert.are.equal(33, #log)
    assert.matches("server NOTICE: n1$", log[1].message)
    assert.matches("server NOTICE: n32$", log[32].message)
    assert.are.same({ message = ("engine %s: 8 more server notices dropped (dbpool keeps 32 "
      .. "between two calls)"):format(e.name), level = "warn" }, log[33])
    -- The queue is empty again: the next statement logs only its own.
    log = helper.capture_log(function()
      assert(e:query("DO $$ BEGIN RAISE NOTICE 'alone'; END $$"))
    end)
    assert.are.equal(1, #log)
  end)

  it("reach dbpool.log from the connect's first byte and never stderr by themselves; "
    .. "the default dbpool.log prints only warnings (child processes)", function()
    -- The DSN asks for every DEBUG message (client_min_messages, a startup
    -- option): the server sends some while the connection starts, before
    -- it is ready.  Not through PgBouncer, which refuses startup options
    -- and answers the startup itself.
    local script = os.tmpname() .. ".lua"
    local f = assert(io.open(script, "wb"))
    f:write([[
local dbpool = require "dbpool"
local dsn = os.getenv("SPEC_DSN")
if os.getenv("SPEC_PGBOUNCER") ~= "1" then
  dsn = dsn .. (dsn:find("?", 1, true) and "&" or "?") .. "options=-c%20client_min_messages%3Ddebug5"
end
if os.getenv("SPEC_DEFAULT_LOG") then    -- dbpool's own: warnings on stderr, notices nowhere
  local e = dbpool.engine { name = "DEFAULT", dsn = dsn, pool_size = 1,
                            pgbouncer = os.getenv("SPEC_PGBOUNCER") == "1" }
  assert(e:query("DO $$ BEGIN RAISE NOTICE 'x'; RAISE WARNING 'shown'; END $$"))
  print("done")
  os.exit(0)
end
dbpool.log = function(message, level) io.stdout:write("LOG ", level, " ", message, "\n") end
local e = dbpool.engine { name = "NOTICES", dsn = dsn, pool_size = 1,
                          pgbouncer = os.getenv("SPEC_PGBOUNCER") == "1" }
local conn = assert(e:connect())
assert(conn:query("DO $$ BEGIN RAISE NOTICE 'x'; END $$"))
conn:close()
print("done")
]])
    f:close()
    local i = -1
    while arg[i - 1] do i = i - 1 end                         -- the interpreter of this run
    -- Runs the script; returns its stdout and its stderr.
    local function child(env)
      local err_file = os.tmpname()
      local cmd = ("%s SPEC_DSN='%s' SPEC_PGBOUNCER=%s '%s' '%s' 2>'%s'"):format(env, helper.dsn,
        helper.via_pgbouncer and "1" or "0", arg[i], script, err_file)
      local p = assert(io.popen(cmd))
      local out = p:read("*a")
      p:close()
      local ef = assert(io.open(err_file, "rb"))
      local err = ef:read("*a")
      ef:close()
      os.remove(err_file)
      return out, err
    end
    local out, err = child("")
    local default_out, default_err = child("SPEC_DEFAULT_LOG=1")
    os.remove(script)
    assert.matches("done\n", out, 1, true)
    assert.are.equal("", err)
    assert.matches("LOG debug engine NOTICES: server NOTICE: x\n", out, 1, true)
    if not helper.via_pgbouncer then       -- PgBouncer answers the startup itself
      assert.matches('LOG debug engine NOTICES: server DEBUG: CommitTransaction', out, 1, true)
    end
    -- With dbpool.log as it comes: the warning on stderr, no notice anywhere.
    assert.are.equal("done\n", default_out)
    assert.are.equal("dbpool [warn] engine DEFAULT: server WARNING: shown\n", default_err)
  end)
end)
