-- Results by type OID and typed parameters (DESIGN.md "Results"): each type
-- goes through the real server and is compared with the server's own
-- answer, on Lua 5.4 and LuaJIT (int8 beyond 2^53 is a string there).
local dbpool = require "dbpool"
local helper = require "helper"

local jit = rawget(_G, "jit") ~= nil
local null = dbpool.null

-- The value of the one row, one column that sql gives.
local function one(e, sql, ...)
  local rows = assert(e:query(sql, ...))
  return rows[1][rows.columns[1]]
end

describe("result decoding", function()
  local e
  setup(function() e = helper.engine() end)

  it("gives int2, int4, int8 as integers, int8 at both extremes; beyond 2^53 a string on LuaJIT", function()
    local row = assert(e:query([[SELECT 32767::int2 AS a, (-2147483648)::int4 AS b,
      9223372036854775807::int8 AS c, (-9223372036854775808)::int8 AS d,
      9007199254740992::int8 AS e, 9007199254740993::int8 AS f, 26::oid AS g]]))[1]
    assert.are.equal(32767, row.a)
    assert.are.equal(-2147483648, row.b)
    assert.are.equal(9007199254740992, row.e)
    assert.are.equal(26, row.g)
    if jit then
      assert.are.same({ "9223372036854775807", "-9223372036854775808", "9007199254740993" },
        { row.c, row.d, row.f })
    else
      assert.are.equal(math.maxinteger, row.c)
      assert.are.equal(math.mininteger, row.d)
      assert.are.equal(9007199254740993, row.f)
      assert.are.equal("integer", math.type(row.f))
    end
    -- and the server reads them back as the same values
    assert.is_true(one(e, "SELECT $1::int8 = 9223372036854775807 AND $2::int8 = -9223372036854775808",
      row.c, row.d))
  end)

  it("gives float4, float8 and numeric as numbers, NaN and the infinities too", function()
    local row = assert(e:query([[SELECT 1.5::float4 AS a, 0.1::float8 AS b, 12.25::numeric AS c,
      'NaN'::float8 AS n, 'Infinity'::float8 AS pinf, '-Infinity'::float8 AS ninf,
      'NaN'::numeric AS nn]]))[1]
    assert.are.same({ 1.5, 0.1, 12.25 }, { row.a, row.b, row.c })
    assert.is_true(row.n ~= row.n)
    assert.is_true(row.nn ~= row.nn)
    assert.are.equal(math.huge, row.pinf)
    assert.are.equal(-math.huge, row.ninf)
    assert.is_true(one(e, [[SELECT $1::float8 = 'Infinity' AND $2::float8 = '-Infinity'
      AND $3::float8 = 'NaN' AND $4::float8 = 0.1]], math.huge, -math.huge, 0 / 0, row.b))
  end)

  it("keeps every digit of numeric with numeric = \"string\", in arrays too", function()
    local s = helper.engine { numeric = "string" }
    local digits = "1234567890123456789012345678901234567890.0123456789"
    local row = assert(s:query("SELECT $1::numeric AS v, ARRAY[$1::numeric, NULL, -0.5] AS a, "
      .. "2.5::float8 AS f", digits))[1]
    assert.are.equal(digits, row.v)
    assert.are.same({ digits, null, "-0.5" }, row.a)
    assert.are.equal(2.5, row.f)                      -- floats stay numbers
    assert.is_true(one(s, "SELECT $1::numeric = " .. digits, row.v))
    assert.are.equal("number", type(one(e, "SELECT $1::numeric", digits)))
  end)

  it("gives bool as booleans, NULL as dbpool.null, bytea as its bytes", function()
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    bytes = table.concat(bytes)
    local row = assert(e:query("SELECT true AS t, false AS f, NULL::int AS n, $1::bytea AS b, "
      .. "md5($1::bytea) AS h", dbpool.bytea(bytes)))[1]
    assert.are.same({ true, false, null, bytes }, { row.t, row.f, row.n, row.b })
    assert.is_true(one(e, "SELECT md5($1::bytea) = $2", dbpool.bytea(row.b), row.h))
  end)

  it("gives json and jsonb as Lua tables, JSON null as dbpool.null, and sends them back equal", function()
    local doc = [=[{"id": 7, "tags": ["a", "b,c", ""], "none": null, "nested": {"x": [1, [2, 3]]},
      "empty": [], "obj": {}, "s": "quote \" backslash \\ unicode \u00e9", "f": 1.5, "t": true}]=]
    local row = assert(e:query("SELECT $1::jsonb AS b, $1::json AS j", doc))[1]
    for _, v in ipairs { row.b, row.j } do
      assert.are.equal(7, v.id)
      assert.are.same({ "a", "b,c", "" }, v.tags)
      assert.are.equal(null, v.none)
      assert.are.same({ 1, { 2, 3 } }, v.nested.x)
      assert.are.equal("quote \" backslash \\ unicode \u{e9}", v.s)
      assert.are.same({ 1.5, true }, { v.f, v.t })
      assert.are.equal(0, #v.empty)
    end
    -- the server's own comparison: the decoded table, encoded again, is the same jsonb;
    -- but lua-cjson 2.1.0 (Debian's) has no array_mt: an empty JSON array comes
    -- back as an empty table, which encodes as {} (docs/decisions.md)
    if not require("cjson").array_mt then
      assert.is_true(one(e, "SELECT $1::jsonb = $2::jsonb || '{\"empty\": {}}'", dbpool.json(row.b), doc))
    else
      assert.is_true(one(e, "SELECT $1::jsonb = $2::jsonb", dbpool.json(row.b), doc))
    end
    assert.is_true(one(e, "SELECT $1::jsonb = '[1, null, \"x\"]'::jsonb", dbpool.json { 1, null, "x" }))
    assert.are.equal(null, one(e, "SELECT 'null'::jsonb"))
    assert.are.equal("x", one(e, [[SELECT '"x"'::json]]))
  end)

  it("gives one-dimensional arrays with NULL elements, the server agreeing element by element", function()
    local row = assert(e:query([[SELECT ARRAY[1, NULL, 3]::int[] AS i, ARRAY[true, NULL, false] AS b,
      ARRAY[1.5, NULL]::float8[] AS f, ARRAY[2.5]::numeric[] AS n, ARRAY['\x00ff'::bytea, NULL] AS y,
      ARRAY['{"a": [1]}'::jsonb, 'null'::jsonb, NULL] AS j, ARRAY[DATE '2024-02-29'] AS d,
      ARRAY[9223372036854775807]::int8[] AS big]]))[1]
    assert.are.same({ 1, null, 3 }, row.i)
    assert.are.same({ true, null, false }, row.b)
    assert.are.same({ 1.5, null }, row.f)
    assert.are.same({ 2.5 }, row.n)
    assert.are.same({ "\0\255", null }, row.y)
    assert.are.same({ 1 }, row.j[1].a)
    assert.are.same({ null, null }, { row.j[2], row.j[3] })
    assert.are.same({ "2024-02-29" }, row.d)
    assert.are.equal(jit and "9223372036854775807" or math.maxinteger, row.big[1])
    assert.is_true(one(e, [=[SELECT $1::int[] IS NOT DISTINCT FROM ARRAY[1, NULL, 3]
      AND $2::bool[] IS NOT DISTINCT FROM ARRAY[true, NULL, false]
      AND $3::bytea[] IS NOT DISTINCT FROM ARRAY['\x00ff'::bytea, NULL]
      AND $4::int8[] = ARRAY[9223372036854775807]]=],
      dbpool.array(row.i), dbpool.array(row.b), dbpool.array { dbpool.bytea(row.y[1]), null },
      dbpool.array(row.big)))
  end)

  it("gives text arrays with awkward elements exactly, and sends them back exactly", function()
    local awkward = { "a,b", "\"quoted\"", "back\\slash", "{braces}", "NULL", "null", "",
      " spaced ", "tab\there", "new\nline", "semi;colon", "é", "\\", "\"", "}", "{" }
    local n = #awkward
    local function array_of(first)                -- ARRAY[$first, ..., NULL]::text[]
      local marks = {}
      for i = 1, n do marks[i] = "$" .. (first + i - 1) end
      return "ARRAY[" .. table.concat(marks, ", ") .. ", NULL]::text[]"
    end
    local want = { n = n }
    for i, s in ipairs(awkward) do want[i] = s end
    local from_server = assert(e:query_params("SELECT " .. array_of(1) .. " AS v", want))[1].v
    want[n + 1], want.n = null, nil
    assert.are.same(want, from_server)
    local args = { n = n + 1, dbpool.array(want) }
    for i, s in ipairs(awkward) do args[i + 1] = s end
    assert.is_true(assert(e:query_params("SELECT $1::text[] IS NOT DISTINCT FROM " .. array_of(2)
      .. " AS same", args))[1].same)
  end)

  it("gives n-dimensional, empty and explicitly bounded arrays as nested Lua arrays", function()
    local row = assert(e:query([=[SELECT ARRAY[[1, 2], [3, NULL]] AS two, '{}'::int[] AS empty,
      '[0:1]={7,8}'::int[] AS bounded, '[1:1][-1:0]={{a,b}}'::text[] AS bounded2,
      ARRAY[[[1], [2]], [[3], [4]]] AS three, ARRAY[['x y', '"']] AS t2,
      '{(1,1),(0,0);(2,2),(1,1)}'::box[] AS boxes]=]))[1]
    assert.are.same({ { 1, 2 }, { 3, null } }, row.two)
    assert.are.same({}, row.empty)
    assert.are.same({ 7, 8 }, row.bounded)
    assert.are.same({ { "a", "b" } }, row.bounded2)
    assert.are.same({ { { 1 }, { 2 } }, { { 3 }, { 4 } } }, row.three)
    assert.are.same({ { "x y", "\"" } }, row.t2)
    assert.are.same({ "(1,1),(0,0)", "(2,2),(1,1)" }, row.boxes)
    assert.is_true(one(e, [=[SELECT $1::int[] IS NOT DISTINCT FROM ARRAY[[1, 2], [3, NULL]]
      AND $2::int[] = '{}' AND $3::int[] = ARRAY[[[1], [2]], [[3], [4]]]
      AND $4::text[] = ARRAY[['x y', '"']] AND $5::jsonb[] = ARRAY['{"a": 1}'::jsonb, '{}']]=],
      dbpool.array(row.two), dbpool.array(row.empty), dbpool.array(row.three), dbpool.array(row.t2),
      dbpool.array { dbpool.json { a = 1 }, dbpool.json {} }))
  end)

  it("leaves other types, and arrays of types it does not know, as their text", function()
    local row = assert(e:query([[SELECT '1 day'::interval AS i, '10.0.0.1'::inet AS a,
      '(1,2)'::point AS p, ARRAY['(1,2)'::point] AS ps]]))[1]
    assert.are.same({ "1 day", "10.0.0.1", "(1,2)", { "(1,2)" } }, { row.i, row.a, row.p, row.ps })
  end)

  it("knows built-in types by the server's own pg_type", function()
    local rows = assert(helper.admin():query([[SELECT typname, oid::int8 AS oid,
      typarray::int8 AS typarray FROM pg_type
      WHERE typnamespace = 'pg_catalog'::regnamespace AND typarray <> 0]]))
    local known = 0
    for _, row in ipairs(rows) do
      local oid, array_oid = require("dbpool.core").builtin_type(row.typname)
      if oid then
        known = known + 1
        assert.are.same({ row.oid, row.typarray }, { oid, array_oid }, row.typname)
      end
    end
    assert.is_true(known >= 70, "known: " .. known)
  end)
end)

describe("decoders", function()
  local mood
  setup(function()
    mood = helper.name("mood")
    assert(helper.admin():query(("CREATE TYPE %s AS ENUM ('sad', 'ok', 'happy')"):format(mood)))
  end)
  teardown(function()
    helper.admin():query(("DROP TYPE IF EXISTS %s"):format(mood))
  end)

  it("decode a built-in type by name and by OID, in arrays element by element, never NULL", function()
    local calls = 0
    local e = helper.engine { decoders = {
      int4 = function(s) calls = calls + 1; return "int4:" .. s end,
      [1082] = function(s) return { date = s } end,         -- date
      timestamptz = function(s) return "ts" end,
    } }
    local row = assert(e:query([[SELECT 7 AS i, NULL::int AS n, ARRAY[1, NULL, 2] AS a,
      DATE '2024-01-02' AS d, ARRAY[DATE '2024-01-03'] AS ds, 7::int8 AS big]]))[1]
    assert.are.same({ "int4:7", null, { "int4:1", null, "int4:2" } }, { row.i, row.n, row.a })
    assert.are.same({ date = "2024-01-02" }, row.d)
    assert.are.same({ { date = "2024-01-03" } }, row.ds)
    assert.are.equal(7, row.big)                             -- int8 is not int4
    assert.are.equal(3, calls)
  end)

  it("decode a type that is not built in by name (one pg_type lookup) and by OID, arrays too", function()
    local oid = assert(helper.admin():query("SELECT $1::regtype::oid::int8 AS oid", mood))[1].oid
    local by_name = helper.engine { decoders = { [mood] = function(s) return s:upper() end } }
    local sql = ("SELECT 'happy'::%s AS m, ARRAY['sad', NULL, 'ok']::%s[] AS ms"):format(mood, mood)
    local row = assert(by_name:query(sql))[1]
    assert.are.same({ "HAPPY", { "SAD", null, "OK" } }, { row.m, row.ms })
    local by_oid = helper.engine { decoders = { [oid] = function(s) return #s end } }
    local c = assert(by_oid:connect())
    row = assert(c:query(sql))[1]
    c:close()
    assert.are.same({ 5, { 3, null, 2 } }, { row.m, row.ms })
    -- without a decoder the enum and its array are text
    row = assert(helper.engine():query(sql))[1]
    assert.are.same({ "happy", "{sad,NULL,ok}" }, { row.m, row.ms })
  end)

  it("a decoder of the array type itself gets the array's text", function()
    local e = helper.engine { decoders = { _int4 = function(s) return "whole " .. s end } }
    assert.are.equal("whole {1,2}", one(e, "SELECT ARRAY[1, 2]"))
  end)

  it("a decoder that raises makes the query raise, naming the column; the connection stays usable", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0,
      decoders = { text = function(s) if s == "bad" then error("cannot decode " .. s) end return s end } }
    local c = assert(e:connect())
    local ok, err = pcall(c.query, c, "SELECT 'fine'::text AS a, 'bad'::text AS b")
    assert.is_false(ok)
    assert.matches("decoding column 'b' %(type OID 25%): .*cannot decode bad", err)
    assert.are.equal("fine", assert(c:query("SELECT 'fine'::text AS a"))[1].a)
    c:close()
    assert.are.equal(1, e.pool:checkedin())
  end)

  it("names typnames the server does not have with nil, msg, err, and tries again later", function()
    local e = helper.engine { decoders = { integer = function(s) return s end } }
    local rows, msg, err = e:query("SELECT 1")
    assert.is_nil(rows)
    assert.matches("names types the server does not have: 'integer'", msg, 1, true)
    assert.are.equal("query", err.kind)
    rows, msg = e:query("SELECT 1")
    assert.is_nil(rows)
    assert.matches("'integer'", msg, 1, true)
  end)

  it("are checked when the engine is made", function()
    local cases = {
      { { int4 = "tostring" }, "option 'decoders' must be a table of functions keyed by type name (pg_type.typname) or OID, got string at [int4]" },
      { { [1.5] = print }, "got the key 1.5 (an OID is a whole number from 1 to 4294967295)" },
      { { [true] = print }, "got a boolean key" },
      { 7, "option 'decoders' must be a table of functions keyed by type name (pg_type.typname) or OID, got number 7" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(helper.engine, { decoders = case[1] })
      assert.is_false(ok)
      assert.matches(case[2], err, 1, true)
    end
  end)

  it("of an engine made again in the same state must be the same functions", function()
    local name, f = helper.name("dec"), function(s) return s end
    helper.engine { name = name, decoders = { int4 = f } }
    assert.has_no.errors(function() helper.engine { name = name, decoders = { int4 = f } } end)
    local ok, err = pcall(helper.engine, { name = name, decoders = { int4 = function() end } })
    assert.is_false(ok)
    assert.matches("already exists with different options: decoders", err, 1, true)
  end)
end)

describe("typed parameters", function()
  it("dbpool.array and dbpool.json raise naming the function and what they got", function()
    local cases = {
      { dbpool.array, { "x" }, "bad argument #1 to 'array' (a Lua array expected, got string)" },
      { dbpool.array, { { 1, print } }, "bad argument #1 to 'array' (element [2] is a function" },
      { dbpool.array, { { { 1, 2 }, { 3 } } }, "element [2] has another length than the sub-arrays before it" },
      { dbpool.array, { { { 1 }, 2 } }, "element [2] is not an array where the elements before it are" },
      { dbpool.array, { { 1, a = 2 } }, "the array has the key 'a'" },
      { dbpool.array, { { "a\0b" } }, "element [1] contains a zero byte" },
      { dbpool.array, { { { { { { { { 1 } } } } } } } }, "PostgreSQL's arrays have at most 6" },
      { dbpool.json, {}, "bad argument #1 to 'json' (a table, string, number, boolean or dbpool.null expected, got no value)" },
      { dbpool.json, { n = 1 }, "got nil" },
      { dbpool.json, { { f = print } }, "bad argument #1 to 'json' (lua-cjson cannot encode it:" },
      { dbpool.json, { 0 / 0 }, "lua-cjson cannot encode it" },
      { dbpool.bytea, { 5 }, "bad argument #1 to 'bytea' (string expected, got number)" },
    }
    for _, case in ipairs(cases) do
      local args = case[2]
      local ok, err = pcall(case[1], (table.unpack or unpack)(args, 1, args.n or #args))
      assert.is_false(ok, case[3])
      assert.matches(case[3], err, 1, true)
    end
  end)

  it("dbpool.array leaves the type to the server: an int column takes it without a cast", function()
    local e = helper.engine()
    local c = assert(e:connect())
    assert(c:exec("CREATE TEMP TABLE arr (a int[], t text[][], j jsonb)"))
    assert(c:query("INSERT INTO arr VALUES ($1, $2, $3)", dbpool.array { 1, 2 },
      dbpool.array { { "a", null }, { "b", "c" } }, dbpool.json { k = { 1, 2 } }))
    local row = assert(c:query("SELECT a, t, j FROM arr"))[1]
    assert.are.same({ 1, 2 }, row.a)
    assert.are.same({ { "a", null }, { "b", "c" } }, row.t)
    assert.are.same({ 1, 2 }, row.j.k)
    c:close()
  end)
end)
