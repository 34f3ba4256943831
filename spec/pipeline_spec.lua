-- conn:pipeline (DESIGN.md, Lua API): N statements in one round trip
-- (libpq's pipeline mode, one Sync), results[i] = rows; atomic outside a
-- transaction, part of the open one inside; a failure names the statement
-- (err.index) and returns no partial result.
local dbpool = require "dbpool"
local helper = require "helper"

-- A table of the server's (not TEMP: through PgBouncer's transaction
-- pooling the next statement may run on another server connection).
local function fresh_table(e)
  local name = helper.name("pl")
  assert(e:query(("CREATE TABLE %s (id int PRIMARY KEY, v text)"):format(name)))
  return name
end

local function count(e, tbl)
  return assert(e:query("SELECT count(*)::int AS n FROM " .. tbl))[1].n
end

describe("conn:pipeline", function()
  it("returns each statement's rows as conn:query gives them, in order", function()
    local e = helper.engine()
    local c = assert(e:connect())
    local results = assert(c:pipeline {
      { "SELECT 1 AS one" },
      { "SELECT $1::int + $2::int AS sum, $3::text AS t", 40, 2, "x" },
      { "SELECT g FROM generate_series(1, 3) g" },
      { "SELECT $1::text IS NULL AS isnull", dbpool.null },
    })
    assert.are.equal(4, #results)
    assert.are.equal(1, results[1][1].one)
    assert.are.equal(42, results[2][1].sum)
    assert.are.equal("x", results[2][1].t)
    assert.are.same({ "sum", "t" }, results[2].columns)
    assert.are.equal(3, #results[3])
    assert.are.equal(3, results[3][3].g)
    assert.is_true(results[4][1].isnull)
    c:close()
  end)

  it("gives rows.affected of each write, and an empty list gives an empty answer", function()
    local e = helper.engine()
    local tbl = fresh_table(e)
    local c = assert(e:connect())
    local results = assert(c:pipeline {
      { ("INSERT INTO %s VALUES (1, 'a'), (2, 'b')"):format(tbl) },
      { ("UPDATE %s SET v = 'c' WHERE id = $1"):format(tbl), 2 },
    })
    assert.are.equal(2, results[1].affected)
    assert.are.equal(1, results[2].affected)
    assert.are.same({}, c:pipeline {})
    c:close()
    assert.are.equal(2, count(e, tbl))
  end)

  it("commits nothing when one statement fails, names it in err.index and keeps the connection", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local tbl = fresh_table(e)
    local c = assert(e:connect())
    local pid = c:backend_pid()
    local results, msg, err = c:pipeline {
      { ("INSERT INTO %s VALUES (1, 'a')"):format(tbl) },
      { ("INSERT INTO %s VALUES (2, 'b')"):format(tbl) },
      { ("INSERT INTO %s VALUES (1, 'again')"):format(tbl) },
      { "SELECT 1 AS never" },
    }
    assert.is_nil(results)
    assert.are.equal("string", type(msg))
    assert.are.equal(3, err.index)
    assert.are.equal("23505", err.sqlstate)
    assert.are.equal("query", err.kind)
    assert.are.equal(msg, err.message)
    assert.matches("statement 3", msg, 1, true)
    assert.are.equal("idle", c:transaction_status())
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)   -- still usable
    if not helper.via_pgbouncer then assert.are.equal(pid, c:backend_pid()) end
    c:close()
    assert.are.equal(0, count(e, tbl))                  -- statements 1 and 2 rolled back
    assert.are.equal(0, e:stats().invalidations)
  end)

  it("inside an open transaction is part of it: rolled back with it, and a failure aborts it", function()
    local e = helper.engine()
    local tbl = fresh_table(e)
    local c = assert(e:connect())
    assert(c:exec("BEGIN"))
    assert(c:pipeline { { ("INSERT INTO %s VALUES (1, 'a')"):format(tbl) },
                        { ("INSERT INTO %s VALUES (2, 'b')"):format(tbl) } })
    assert.are.equal(2, assert(c:query("SELECT count(*)::int AS n FROM " .. tbl))[1].n)
    assert(c:exec("ROLLBACK"))
    assert.are.equal(0, count(e, tbl))

    assert(c:exec("BEGIN"))
    local results, _, err = c:pipeline { { ("INSERT INTO %s VALUES (3, 'c')"):format(tbl) },
                                         { "SELECT 1/0" } }
    assert.is_nil(results)
    assert.are.equal(2, err.index)
    assert.are.equal("inerror", c:transaction_status())
    assert(c:exec("ROLLBACK"))
    c:close()
    assert.are.equal(0, count(e, tbl))
  end)

  it("raises on an entry that is not {sql, ...}, sending nothing", function()
    local e = helper.engine()
    local c = assert(e:connect())
    local queries = e:stats().queries
    assert.has_error(function() c:pipeline { { "SELECT 1" }, "SELECT 2" } end)
    assert.has_error(function() c:pipeline { { 42 } } end)
    assert.has_error(function() c:pipeline("SELECT 1") end)
    assert.are.equal(queries, e:stats().queries)
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    c:close()
  end)

  it("raises on a COPY, sending nothing: the copy methods run COPY", function()
    local e = helper.engine()
    local c = assert(e:connect())
    assert.has_error(function() c:pipeline { { "SELECT 1" }, { " copy (SELECT 1) TO STDOUT" } } end,
      "bad argument #1 to 'pipeline' (statement 2 is a COPY, which a pipeline cannot run: use "
      .. "conn:copy_from or conn:copy_to)")
    assert.are.equal(2, assert(c:query("SELECT 2 AS two"))[1].two)
    c:close()
  end)

  it("counts every statement (max_queries rotates on them) and is bounded by query_timeout", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, max_queries = 10 }
    local c = assert(e:connect())
    local pid = c:backend_pid()
    local before = e:stats().queries
    local list = {}
    for i = 1, 10 do list[i] = { "SELECT $1::int AS i", i } end
    assert(c:pipeline(list))
    assert.are.equal(before + 10, e:stats().queries)
    c:close()
    c = assert(e:connect())
    if not helper.via_pgbouncer then assert.are_not.equal(pid, c:backend_pid()) end
    c:set_query_timeout(0.3)
    local t0 = require("dbpool.core").now()
    local results, msg, err = c:pipeline { { "SELECT 1" }, { "SELECT pg_sleep(5)" } }
    assert.is_nil(results)
    assert.are.equal("query_timeout", err.kind, msg)
    assert.is_true(require("dbpool.core").now() - t0 < 3 * helper.time_scale)
    assert.are.equal("closed", select(3, c:query("SELECT 1")).kind)
    c:close()
  end)
end)

-- One round trip, seen from outside: the system calls of a child process
-- running a 50-statement pipeline, traced by strace.
describe("conn:pipeline under strace", function()
  local function lua_interpreter()
    return rawget(_G, "jit") and "luajit" or "lua5.4"
  end

  local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

  -- The traced child: 50 statements as one pipeline, then the same 50 as
  -- queries, each part between markers written to stderr.
  local child = [[
local dbpool = require "dbpool"
local e = dbpool.engine { name = "strace", dsn = os.getenv("DSN"), pool_size = 1,
                          pgbouncer = os.getenv("PGB") == "1" }
local c = assert(e:connect())
assert(c:query("SELECT 1"))
local list = {}
for i = 1, 50 do list[i] = { "SELECT $1::int AS i", i } end
io.stderr:write("MARK-PIPELINE-START\n")
local results = assert(c:pipeline(list))
io.stderr:write("MARK-PIPELINE-END\n")
assert(#results == 50 and results[50][1].i == 50)
io.stderr:write("MARK-QUERIES-START\n")
for i = 1, 50 do assert(c:query("SELECT $1::int AS i", i)) end
io.stderr:write("MARK-QUERIES-END\n")
c:close()
]]

  -- The traced calls between two markers: a list of "send" and "recv" (a
  -- recv that got bytes; EAGAIN ones are left out).
  local function calls_between(trace, from, to)
    local inside, out = false, {}
    for line in trace:gmatch("[^\n]+") do
      if line:find(from, 1, true) then inside = true
      elseif line:find(to, 1, true) then break
      elseif inside then
        if line:match("sendto%(") or line:match("%f[%w]send%(") then
          out[#out + 1] = "send"
        elseif (line:match("recvfrom%(") or line:match("%f[%w]recv%(")) and not line:match("= %-1") then
          out[#out + 1] = "recv"
        end
      end
    end
    return out
  end

  it("sends all 50 statements before reading any result (50 queries take 50 sends)", function()
    local probe = io.popen("strace -f -o /dev/null true 2>&1; echo rc=$?")
    local said = probe:read("*a")
    probe:close()
    if not said:find("rc=0", 1, true) then
      pending("strace cannot trace a child here: " .. said:gsub("\n", " "))
      return
    end
    local script, trace = os.tmpname(), os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(child)
    f:close()
    local cmd = ("LUA_PATH=%s LUA_CPATH=%s DSN=%s PGB=%s strace -f -e trace=sendto,recvfrom,send,recv,write -o %s %s %s 2>&1")
      :format(shell_quote(package.path), shell_quote(package.cpath), shell_quote(helper.dsn),
              helper.via_pgbouncer and "1" or "0", trace, lua_interpreter(), script)
    local p = io.popen(cmd)
    local out = p:read("*a")
    local ok = p:close()
    assert.is_truthy(ok, out)
    local text = assert(io.open(trace)):read("*a")
    os.remove(script)
    os.remove(trace)

    local pipe = calls_between(text, "MARK-PIPELINE-START", "MARK-PIPELINE-END")
    local sends, last_send, first_recv = 0, 0, math.huge
    for i, call in ipairs(pipe) do
      if call == "send" then sends, last_send = sends + 1, i end
      if call == "recv" and i < first_recv then first_recv = i end
    end
    if os.getenv("DEBUG_STRACE") then print(table.concat(pipe, " ")) end
    assert.is_true(sends >= 1 and sends <= 2, "sends in the pipeline: " .. table.concat(pipe, " "))
    assert.is_true(last_send < first_recv, "a read came between the writes: " .. table.concat(pipe, " "))

    local queries = calls_between(text, "MARK-QUERIES-START", "MARK-QUERIES-END")
    local query_sends = 0
    for _, call in ipairs(queries) do if call == "send" then query_sends = query_sends + 1 end end
    assert.is_true(query_sends >= 50, "the same 50 statements one by one sent " .. query_sends)
  end)
end)
