-- The server's notices (RAISE NOTICE, WARNING, a startup notice) reach
-- dbpool.log, never the app's stderr: libpq's default receiver prints them
-- there, and dbpool replaces it from the first byte of a connection.
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
  it("reach dbpool.log from a statement: NOTICE as info, WARNING as warn, with detail and hint", function()
    local e = helper.engine()
    local conn = assert(e:connect())
    local log = helper.capture_log(function()
      assert(conn:query([[DO $$ BEGIN RAISE NOTICE 'x'; RAISE WARNING 'careful'
        USING DETAIL = 'the detail', HINT = 'the hint'; END $$]]))
    end)
    conn:close()
    local seen = notices(log)
    assert.are.equal(2, #seen)
    assert.are.same({ message = ("engine %s: server NOTICE: x"):format(e.name), level = "info" }, seen[1])
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

  it("never reach the app's stderr, the startup's notices included (a child process)", function()
    -- The DSN's application_name (not the option, which is checked at
    -- creation) is longer than the server keeps: it answers the startup
    -- with a NOTICE, before the connection is ready.
    local script = os.tmpname() .. ".lua"
    local f = assert(io.open(script, "wb"))
    f:write([[
local dbpool = require "dbpool"
dbpool.log = function(message, level) io.stdout:write("LOG ", level, " ", message, "\n") end
local dsn = os.getenv("SPEC_DSN")
dsn = dsn .. (dsn:find("?", 1, true) and "&" or "?") .. "application_name=" .. ("a"):rep(70)
local e = dbpool.engine { name = "NOTICES", dsn = dsn, pool_size = 1,
                          pgbouncer = os.getenv("SPEC_PGBOUNCER") == "1" }
local conn = assert(e:connect())
assert(conn:query("DO $$ BEGIN RAISE NOTICE 'x'; END $$"))
conn:close()
print("done")
]])
    f:close()
    local err_file = os.tmpname()
    local i = -1
    while arg[i - 1] do i = i - 1 end                         -- the interpreter of this run
    local cmd = ("SPEC_DSN='%s' SPEC_PGBOUNCER=%s '%s' '%s' 2>'%s'"):format(helper.dsn,
      helper.via_pgbouncer and "1" or "0", arg[i], script, err_file)
    local p = assert(io.popen(cmd))
    local out = p:read("*a")
    p:close()
    local ef = assert(io.open(err_file, "rb"))
    local err = ef:read("*a")
    ef:close()
    os.remove(script)
    os.remove(err_file)
    assert.matches("done\n", out, 1, true)
    assert.are.equal("", err)
    assert.matches("LOG info engine NOTICES: server NOTICE: x\n", out, 1, true)
    if not helper.via_pgbouncer then       -- PgBouncer answers the startup itself
      assert.matches('LOG info engine NOTICES: server NOTICE: identifier "' .. ("a"):rep(70)
        .. '" will be truncated', out, 1, true)
    end
  end)
end)
