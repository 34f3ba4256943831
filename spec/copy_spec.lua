-- conn:copy_from and conn:copy_to (DESIGN.md, Lua API): COPY's text format
-- both ways, rows escaped by dbpool; a failed COPY (bad data, a source or
-- fn that raises, the server's error) leaves the connection usable and the
-- pool consistent, with pre-ping, deadlines and reset_session.
local dbpool = require "dbpool"
local helper = require "helper"
local core = require "dbpool.core"

local function fresh_table(e, columns)
  local name = helper.name("cp")
  assert(e:query(("CREATE TABLE %s (%s)"):format(name, columns or
    "id int PRIMARY KEY, t text, b boolean, f float8, big int8")))
  return name
end

local function count(e, tbl)
  return assert(e:query("SELECT count(*)::int AS n FROM " .. tbl))[1].n
end

local null = dbpool.null
local tricky = {
  { 1, "tab\there", true, 1.5, "9007199254740993" },   -- int8 as text: exact on LuaJIT too
  { 2, "line\nbreak\r\nand CR", false, -0.1, -42 },
  { 3, "back\\slash \\N \\. end", null, 1e300, 0 },
  { 4, null, true, null, null },
  { 5, "", false, 0, 1 },
  { 6, "utf-8: äöü ✓", true, 3.141592653589793, 2 },
  { 7, "\\", true, -1e-300, 3, n = 5 },
}

describe("conn:copy_from", function()
  it("writes an array of rows in COPY's text format: every value comes back as sent", function()
    local e = helper.engine()
    local tbl = fresh_table(e)
    local c = assert(e:connect())
    assert.are.equal(#tricky, assert(c:copy_from(("COPY %s FROM STDIN"):format(tbl), tricky)))
    local rows = assert(c:query(("SELECT id, t, b, f, big::text AS big FROM %s ORDER BY id"):format(tbl)))
    for i, want in ipairs(tricky) do
      assert.are.equal(want[1], rows[i].id)
      assert.are.equal(want[2], rows[i].t, "row " .. i)
      assert.are.equal(want[3], rows[i].b, "row " .. i)
      assert.are.equal(want[4], rows[i].f, "row " .. i)
    end
    assert.are.equal("9007199254740993", rows[1].big)
    assert.are.equal(null, rows[4].big)
    c:close()
  end)

  it("takes COPY text from a function, in chunks that need not end on a row", function()
    local e = helper.engine()
    local tbl = fresh_table(e, "id int, t text")
    local text = "1\tone\n2\ttwo\\twith tab\n3\t\\N\n"
    local i = 0
    local c = assert(e:connect())
    local n = assert(c:copy_from(("COPY %s FROM STDIN"):format(tbl), function()
      i = i + 1
      if i > #text then return nil end
      return text:sub(i, i)                        -- one byte at a time
    end))
    assert.are.equal(3, n)
    local rows = assert(c:query(("SELECT * FROM %s ORDER BY id"):format(tbl)))
    assert.are.equal("two\twith tab", rows[2].t)
    assert.are.equal(null, rows[3].t)
    c:close()
  end)

  it("copies 10,000 rows in chunks and says how many", function()
    local e = helper.engine()
    local tbl = fresh_table(e, "id int, t text")
    local rows = {}
    for i = 1, 10000 do rows[i] = { i, ("row %d %s"):format(i, ("x"):rep(50)) } end
    local c = assert(e:connect())
    assert.are.equal(10000, assert(c:copy_from(("COPY %s FROM STDIN"):format(tbl), rows)))
    c:close()
    assert.are.equal(10000, count(e, tbl))
  end)

  it("returns the server's refusal of bad data, copies nothing, and keeps the connection", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local tbl = fresh_table(e, "id int, t text")
    local c = assert(e:connect())
    local pid = c:backend_pid()
    local n, msg, err = c:copy_from(("COPY %s FROM STDIN"):format(tbl),
                                    { { 1, "a" }, { "not a number", "b" }, { 3, "c" } })
    assert.is_nil(n)
    assert.are.equal("22P02", err.sqlstate, msg)
    assert.are.equal("query", err.kind)
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    c:close()
    assert.are.equal(0, count(e, tbl))
    assert.are.equal(0, e:stats().invalidations)
    if not helper.via_pgbouncer then assert.are.same({ pid }, helper.pids_of(e, 1)) end
  end)

  it("fails the COPY on the server when the source raises, then raises its error", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local tbl = fresh_table(e, "id int, t text")
    local c = assert(e:connect())
    local calls = 0
    local ok, why = pcall(c.copy_from, c, ("COPY %s FROM STDIN"):format(tbl), function()
      calls = calls + 1
      if calls == 3 then error("source broke") end
      return calls .. "\tx\n"
    end)
    assert.is_false(ok)
    assert.matches("source broke", tostring(why), 1, true)
    -- a value without a text form raises, naming row and column
    ok, why = pcall(c.copy_from, c, ("COPY %s FROM STDIN"):format(tbl), { { 1, "a" }, { 2, {} } })
    assert.is_false(ok)
    assert.matches("row 2, column 2", tostring(why), 1, true)
    assert.are.equal("idle", c:transaction_status())
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    c:close()
    assert.are.equal(0, count(e, tbl))
    assert.are.equal(0, e:stats().invalidations)
  end)

  it("says which API a COPY of the other direction needs, and raises on a bad source", function()
    local e = helper.engine()
    local tbl = fresh_table(e, "id int")
    local c = assert(e:connect())
    local n, msg = c:copy_from(("COPY %s TO STDOUT"):format(tbl), {})
    assert.is_nil(n)
    assert.matches("copy_to", msg, 1, true)
    n, msg = c:copy_from("SELECT 1", {})
    assert.is_nil(n)
    assert.matches("COPY", msg, 1, true)
    assert.has_error(function() c:copy_from(("COPY %s FROM STDIN"):format(tbl), "1\n") end)
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    c:close()
  end)
end)

describe("conn:copy_to", function()
  it("calls fn with each row in COPY text format, without its newline, and returns the count", function()
    local e = helper.engine()
    local tbl = fresh_table(e)
    local c = assert(e:connect())
    assert(c:copy_from(("COPY %s FROM STDIN"):format(tbl), tricky))
    local lines = {}
    local n = assert(c:copy_to(("COPY (SELECT * FROM %s ORDER BY id) TO STDOUT"):format(tbl),
      function(line) lines[#lines + 1] = line end))
    assert.are.equal(#tricky, n)
    assert.are.equal(#tricky, #lines)
    assert.are.equal("1\ttab\\there\tt\t1.5\t9007199254740993", lines[1])
    assert.are.equal("4\t\\N\tt\t\\N\t\\N", lines[4])
    -- and back: what copy_to gives, copy_from takes
    local copy = fresh_table(e)
    local i = 0
    assert.are.equal(#tricky, assert(c:copy_from(("COPY %s FROM STDIN"):format(copy), function()
      i = i + 1
      return lines[i] and lines[i] .. "\n"
    end)))
    local diff = assert(c:query(("SELECT count(*)::int AS n FROM (SELECT * FROM %s EXCEPT SELECT * FROM %s) d")
      :format(tbl, copy)))
    assert.are.equal(0, diff[1].n)
    c:close()
  end)

  it("drains the rest when fn raises, raises its error, and the connection stays usable", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c = assert(e:connect())
    local ok, why = pcall(c.copy_to, c, "COPY (SELECT g FROM generate_series(1, 100000) g) TO STDOUT",
      function(line) if line == "7" then error("stop at 7") end end)
    assert.is_false(ok)
    assert.matches("stop at 7", tostring(why), 1, true)
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    local n, msg = c:copy_to("COPY (SELECT 1/0) TO STDOUT", print)
    assert.is_nil(n)
    assert.matches("division by zero", msg, 1, true)
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    c:close()
    assert.are.equal(0, e:stats().invalidations)
  end)
end)

describe("COPY with the pool's machinery", function()
  it("works with pool_pre_ping and reset_session = 'always': the connection is reused", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, pool_pre_ping = true,
                              pre_ping_bypass = 0, reset_session = "always" }
    local tbl = fresh_table(e, "id int")
    local c = assert(e:connect())
    local pid = c:backend_pid()
    assert.are.equal(2, assert(c:copy_from(("COPY %s FROM STDIN"):format(tbl), { { 1 }, { 2 } })))
    c:close()
    c = assert(e:connect())
    local seen = {}
    assert.are.equal(2, assert(c:copy_to(("COPY %s TO STDOUT"):format(tbl), function(l) seen[#seen + 1] = l end)))
    assert.are.same({ "1", "2" }, seen)
    if not helper.via_pgbouncer then assert.are.equal(pid, c:backend_pid()) end
    c:close()
    assert.are.equal(0, e:stats().invalidations)
  end)

  it("is bounded by query_timeout: the COPY is cancelled and the connection closed", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, query_timeout = 0.3 }
    local c = assert(e:connect())
    local t0 = core.now()
    local n, msg, err = c:copy_to("COPY (SELECT pg_sleep(5)) TO STDOUT", print)
    assert.is_nil(n)
    assert.are.equal("query_timeout", err.kind, msg)
    assert.is_true(core.now() - t0 < 3 * helper.time_scale)
    assert.are.equal("closed", select(3, c:query("SELECT 1")).kind)
    c:close()
    assert.are.equal(1, assert(e:query("SELECT 1 AS one"))[1].one)
  end)

  it("discards a connection returned in the middle of a COPY", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local tbl = fresh_table(e, "id int")
    local c = assert(e:connect())
    local before = e:stats().invalidations
    local ok = pcall(c.copy_from, c, ("COPY %s FROM STDIN"):format(tbl), function()
      c:close()
      return "1\n"
    end)
    assert.is_false(ok)
    assert.are.equal(before + 1, e:stats().invalidations)
    assert.are.equal(0, count(e, tbl))
  end)
end)
