-- Bad input is refused at the boundary (docs/bad-input.md): a string C
-- would cut at a zero byte raises naming the argument; a plain string
-- parameter is always text and dbpool.bytea(s) is binary, byte for byte;
-- every check happens before a connection is taken; parameters go up to
-- PostgreSQL's 65,535 on every Lua.
local dbpool = require "dbpool"
local helper = require "helper"
local sys = require "system"

describe("a zero byte", function()
  local e, c
  before_each(function()
    e = helper.engine { pool_size = 1, max_overflow = 0 }
    c = assert(e:connect())
  end)
  after_each(function() c:close() end)

  it("in SQL text raises, naming the argument, and runs nothing", function()
    local sql = "SELECT 1 AS one\0; SELECT pg_sleep(10)"
    for name, call in pairs {
      query = function() return c:query(sql) end,
      exec = function() return c:exec(sql) end,
      send = function() return c:send(sql) end,
      query_params = function() return c:query_params(sql, {}) end,
      engine_query = function() return e:query(sql) end,
      engine_query_params = function() return e:query_params(sql, {}) end,
    } do
      local ok, why = pcall(call)
      assert.is_false(ok, name)
      assert.matches("zero byte", why, 1, true)
    end
    assert.are.equal(0, e:stats().queries)
    assert.are.same({ { one = 1 } }, { assert(c:query("SELECT 1 AS one"))[1] })
  end)

  it("in a plain string parameter raises and points at dbpool.bytea", function()
    local ok, why = pcall(c.query, c, "SELECT $1::text AS s", "a\0b")
    assert.is_false(ok)
    assert.matches("parameter $1 contains a zero byte", why, 1, true)
    assert.matches("dbpool.bytea", why, 1, true)
    ok, why = pcall(c.query_params, c, "SELECT $1::text AS s", { "a\0b" })
    assert.is_false(ok)
    assert.matches("params[1] contains a zero byte", why, 1, true)
  end)

  it("in escape_literal and escape_identifier raises instead of cutting", function()
    for _, m in ipairs { "escape_literal", "escape_identifier" } do
      local ok, why = pcall(c[m], c, "admin\0-suffix")
      assert.is_false(ok, m)
      assert.matches("zero byte", why, 1, true)
    end
    assert.are.equal("'admin-suffix'", c:escape_literal("admin-suffix"))
  end)

  it("in an option name, a policy rule or an engine name to look up raises", function()
    for what, call in pairs {
      option_name = function() return helper.engine { ["pool_size\0junk"] = 3 } end,
      sub_option = function() return helper.engine { retry = { ["attempts\0x"] = 7 } } end,
      rule_option = function()
        return dbpool.check({ name = "a", dsn = "b" }, { { option = "pool_size\0x", min = 10 } })
      end,
      get = function() return dbpool.get("KG\0x") end,
    } do
      local ok, why = pcall(call)
      assert.is_false(ok, what)
      assert.matches("zero byte", why, 1, true)
    end
  end)

  it("in a replica DSN raises and registers nothing", function()
    local name = helper.name("rz")
    local ok, why = pcall(helper.engine, { name = name, replicas = { helper.dsn .. "\0junk" } })
    assert.is_false(ok)
    assert.matches("option 'replicas' must not contain a zero byte", why, 1, true)
    assert.is_nil(dbpool.get(name))
  end)

  it("in a name, a DSN, an option or a replica DSN raises at engine creation", function()
    for what, opts in pairs {
      name = { name = "KG\0x" },
      dsn = { dsn = helper.dsn .. "\0" },
      application_name = { application_name = "app\0x" },
      replicas = { replicas = { helper.dsn .. "\0" } },
    } do
      local ok, why = pcall(helper.engine, opts)
      assert.is_false(ok, what)
      assert.matches("zero byte", why, 1, true)
    end
  end)
end)

describe("byte strings", function()
  local e
  before_each(function() e = helper.engine { pool_size = 1, max_overflow = 0 } end)

  local function hex(s)
    return (s:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end))
  end

  it("round-trip through a bytea column unchanged: 1,000 random ones, hashes compared on the server", function()
    math.randomseed(os.time())
    local c = assert(e:connect())
    assert(c:exec("CREATE TEMP TABLE bytes (id int PRIMARY KEY, b bytea, hex text)"))
    local sent = {}
    for i = 1, 1000 do
      local n = math.random(0, 40)
      local bytes = {}
      for j = 1, n do bytes[j] = string.char(math.random(0, 255)) end
      -- the cases that broke text: escapes, a lone 0xff, zero bytes
      local s = ({ "\\x41", "\255", "\0\0\0\42", "\\\\", "" })[i] or table.concat(bytes)
      sent[i] = s
      assert(c:query("INSERT INTO bytes VALUES ($1, $2, $3)", i, dbpool.bytea(s), hex(s)))
    end
    local bad = assert(c:query([[SELECT count(*) AS n FROM bytes
      WHERE md5(b) <> md5(decode(hex, 'hex')) OR length(b) <> length(hex) / 2]]))
    assert.are.equal(0, bad[1].n)
    local rows = assert(c:query("SELECT id, b FROM bytes ORDER BY id"))
    assert.are.equal(1000, #rows)
    for i, row in ipairs(rows) do assert.are.equal(sent[i], row.b, "row " .. i) end
    -- what was read goes back unchanged
    for _, row in ipairs(rows) do
      assert(c:query("UPDATE bytes SET b = $2 WHERE id = $1", row.id, dbpool.bytea(row.b)))
    end
    bad = assert(c:query("SELECT count(*) AS n FROM bytes WHERE b <> decode(hex, 'hex')"))
    assert.are.equal(0, bad[1].n)
    c:close()
  end)

  it("a bytea parameter is typed bytea, so it needs no cast", function()
    local rows = assert(e:query("SELECT $1 AS b, pg_typeof($1)::text AS t", dbpool.bytea("\0\1")))
    assert.are.same({ "\0\1", "bytea" }, { rows[1].b, rows[1].t })
  end)

  it("a plain string is always text: 4 zero-free bytes bound to int4 are not read as 42", function()
    local rows, _, err = e:query("SELECT $1::int4 AS n", "\1\1\1\42")
    assert.is_nil(rows)
    assert.are.equal("22P02", err.sqlstate)        -- invalid text for an integer
  end)
end)

describe("query_params", function()
  local e
  before_each(function() e = helper.engine { pool_size = 1, max_overflow = 0 } end)

  it("takes parameters as one array; params.n counts trailing nils", function()
    local c = assert(e:connect())
    local rows = assert(c:query_params("SELECT $1::int AS a, $2::int AS b, $3::text AS c",
      { 7, nil, nil, n = 3 }))
    assert.are.same({ 7, dbpool.null, dbpool.null }, { rows[1].a, rows[1].b, rows[1].c })
    c:close()
    rows = assert(e:query_params("SELECT $1::text || $2::text AS s", { "a", "b" }))
    assert.are.equal("ab", rows[1].s)
  end)

  it("takes PostgreSQL's 65,535 parameters, and refuses one more clearly", function()
    local n, refs, params = 65535, {}, {}
    for i = 1, n do refs[i], params[i] = "$" .. i .. "::int", i end
    local sql = "SELECT array_length(ARRAY[" .. table.concat(refs, ",") .. "], 1) AS n, $65535::int AS last"
    local rows = assert(e:query_params(sql, params))
    assert.are.same({ n, n }, { rows[1].n, rows[1].last })
    params[n + 1] = 0
    local ok, why = pcall(e.query_params, e, sql, params)
    assert.is_false(ok)
    assert.matches("65536 parameters; PostgreSQL takes at most 65535", why, 1, true)
    assert.are.equal(0, e.pool:checkedout())
  end)

  it("refuses a params.n that is not a whole number", function()
    local ok, why = pcall(e.query_params, e, "SELECT 1", { n = "3" })
    assert.is_false(ok)
    assert.matches("params.n must be a whole number", why, 1, true)
  end)
end)

describe("a Conn still connecting", function()
  it("prints itself without touching the connection it does not have yet", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c, state = e.pool:try_connect(0, true)
    if state == "connecting" then
      assert.matches("dbpool.Conn%(.*, connecting%)", tostring(c))
    end
    c:close()
    assert.are.equal(0, e.pool:checkedout())
  end)
end)

describe("every public function checks its arguments before it takes a connection", function()
  it("raises at once while the pool is exhausted", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, pool_timeout = 5 }
    local held = assert(e:connect())
    for name, call in pairs {
      ["with(42)"] = function() return e:with(42) end,
      ["transaction('x')"] = function() return e:transaction("x") end,
      ["read(nil)"] = function() return e:read(nil) end,
      ["query(42)"] = function() return e:query(42) end,
      ["query(sql, {})"] = function() return e:query("SELECT $1", {}) end,
      ["query(sql, function)"] = function() return e:query("SELECT $1", print) end,
      ["query(sql with a zero byte)"] = function() return e:query("SELECT 1\0") end,
      ["query_params(sql, 5)"] = function() return e:query_params("SELECT 1", 5) end,
      ["query_params(sql, {{}})"] = function() return e:query_params("SELECT $1", { {} }) end,
      ["read_query(nil)"] = function() return e:read_query(nil) end,
      ["health({typo=1})"] = function() return e:health { typo = 1 } end,
      ["health(42)"] = function() return e:health(42) end,
      ["health({ping='yes'})"] = function() return e:health { ping = "yes" } end,
      ["budget(42)"] = function() return dbpool.budget(42) end,
      ["budget{live=42}"] = function() return dbpool.budget { live = 42, engines = { e } } end,
      ["budget{pgbouncer=42}"] = function() return dbpool.budget { live = e, engines = { e }, pgbouncer = 42 } end,
      ["budget{reserve='x'}"] = function() return dbpool.budget { reserve = "x", max_connections = 100 } end,
      ["query_params(sql, {n=math.huge})"] = function() return e:query_params("SELECT 1", { n = math.huge }) end,
      ["query_params(sql, {n=-1})"] = function() return e:query_params("SELECT 1", { n = -1 }) end,
      ["query_params(sql, {n=1.5})"] = function() return e:query_params("SELECT 1", { n = 1.5 }) end,
      ["read_query with 65,536 parameters"] = function()
        local p = {}
        for i = 1, 65536 do p[i] = i end
        return e:read_query("SELECT 1", (table.unpack or unpack)(p, 1, 65536))
      end,
    } do
      local t0 = sys.monotime()
      local ok = pcall(call)
      assert.is_false(ok, name .. " did not raise")
      assert.is_true(sys.monotime() - t0 < 1 * helper.time_scale, name .. " waited for a connection")
    end
    assert.are.equal(1, e.pool:checkedout())
    assert.are.equal(0, e:stats().timeouts)
    held:close()
  end)
end)
