-- spec/nginx/fastpath_cases.lua: statements that engine:query's FFI path
-- (lua/dbpool/fastpath.lua) and the classic binding must answer alike,
-- and the comparison, for spec/fastpath_spec.lua (LuaJIT outside nginx)
-- and spec/nginx/test_app.lua's /fastpath (inside nginx).
local M = {}
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

-- { sql, params... }: every type the FFI path reads itself, those it
-- leaves to lua_result.c, parameters it sends and those it leaves to the
-- classic path, and failures with every field of an error.
M.cases = {
  { "SELECT 1 AS one" },
  { "SELECT 1::int2 AS a, 2::int4 AS b, 3::int8 AS c, 4::oid AS d, -5 AS e" },
  { "SELECT 9007199254740993::int8 AS big, -9223372036854775808::int8 AS min, 9007199254740992::int8 AS edge" },
  { "SELECT 1.5::float8 AS f, 0.1::float4 AS g, 'NaN'::float8 AS nan, '-Infinity'::float8 AS ninf" },
  { "SELECT 12.25::numeric AS n, 'NaN'::numeric AS nn, 123456789012345678901234567890::numeric AS huge" },
  { "SELECT true AS t, false AS f, NULL::bool AS n" },
  { "SELECT 'x'::text AS a, ''::text AS empty, 'é'::varchar AS v, 'n'::name AS nm, NULL::text AS nul" },
  { "SELECT now()::date - now()::date AS zero, '2026-11-30 12:00'::timestamp AS ts, interval '1 day' AS iv" },
  { "SELECT g AS id, md5(g::text) AS name FROM generate_series(1, 20) g" },
  { "SELECT g FROM generate_series(1, 0) g" },
  { "SELECT" },
  { "SELECT 1 AS dup, 2 AS dup" },
  { "SELECT ARRAY[1, NULL, 3] AS a, '{a,b}'::text[] AS t" },
  { "SELECT '\\x00ff41'::bytea AS b" },
  { "SELECT '{\"a\": [1, null]}'::json AS j, '[1]'::jsonb AS jb" },
  { "SELECT $1::int + $2::int AS s, $3 AS t, $4::text AS u", 40, 2, "hi", "" },
  { "SELECT $1::int8 AS big", 4503599627370496 },
  { "SELECT $1::float8 AS f", 1.5 },
  { "SELECT $1::bool AS b", true },
  { "SELECT $1 AS n", 2 ^ 60 },
  { "SELECT 1 AS x WHERE false" },
  { "SET LOCAL work_mem = '4MB'" },                 -- a WARNING notice, logged either way
  { "SELEC 1" },
  { "SELECT 1 / 0" },
  { "SELECT $1::int", "not a number" },
  { "SELECT $1::text AS a", "x", "surplus" },
  { "DO $$ BEGIN RAISE EXCEPTION 'boom' USING DETAIL = 'the detail', HINT = 'the hint', ERRCODE = 'P0099'; END $$" },
  { "SELECT * FROM fastpath_no_such_table" },
}

-- Whether two values are the same: NaN equals NaN; tables compare by
-- content and metatable.  true, or false and where they differ.
function M.same(a, b, path)
  path = path or "result"
  if a ~= a and b ~= b then return true end                     -- NaN
  if type(a) ~= type(b) then
    return false, ("%s: %s (%s) vs %s (%s)"):format(path, tostring(a), type(a), tostring(b), type(b))
  end
  if type(a) ~= "table" then
    if a == b then return true end
    return false, ("%s: %s vs %s"):format(path, tostring(a), tostring(b))
  end
  if getmetatable(a) ~= getmetatable(b) then return false, path .. ": metatables differ" end
  for k, v in pairs(a) do
    local ok, why = M.same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. ": missing on the left" end
  end
  return true
end

-- Runs one case both ways: fast(sql, ...) and classic(sql, ...) each give
-- rows | nil, msg, err (or raise).  true, or false and the difference.
function M.compare(case, fast, classic)
  local n = #case
  local a = pack(pcall(fast, unpack(case, 1, n)))
  local b = pack(pcall(classic, unpack(case, 1, n)))
  if not a[1] or not b[1] then         -- a raise: the same message, where it names no line
    if a[1] ~= b[1] then return false, ("raised on one side only: %s / %s"):format(tostring(a[2]), tostring(b[2])) end
    local strip = function(m) return (tostring(m):gsub("^[^:]*:%d+: ", "")) end
    if strip(a[2]) == strip(b[2]) then return true end
    return false, ("raised differently: %s / %s"):format(tostring(a[2]), tostring(b[2]))
  end
  local ok, why = M.same({ a[2], a[3], a[4] }, { b[2], b[3], b[4] })
  if not ok then return false, case[1] .. ": " .. why end
  return true
end

return M
