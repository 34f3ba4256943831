-- bench/decode.lua ROWS REPS: JSON and array decoding per row, dbpool
-- against pgmoon's decoders on the same values, under LuaJIT (issue 20).
-- Run as `make bench-decode` (a throwaway server; pgmoon from
-- ../shared/third_party/pgmoon, never copied into the project).
--
-- dbpool decodes while it builds the rows, in C: its cost per row is the
-- CPU time of a query whose columns come back typed minus the same query
-- with every column cast to text (same server work, same libpq parsing,
-- same row tables; only the decoding differs).  pgmoon's is the CPU time
-- of its own per-field dispatch (pgmoon's parse_data_row: PG_TYPES by OID,
-- then tonumber, == "t" or type_deserializers: lua-cjson for json, its
-- LPeg grammar for arrays) over those very text values.  Each figure is
-- the fastest of REPS runs, in microseconds per row; os.clock counts this
-- process only, so the server's time is not in it.
local ROWS = tonumber(arg[1]) or 20000
local REPS = tonumber(arg[2]) or 7
local dsn = assert(os.getenv("DBPOOL_TEST_DSN"), "run under scripts/with-pg.sh")
local pgmoon_dir = os.getenv("PGMOON_DIR") or "../shared/third_party/pgmoon"
package.path = pgmoon_dir .. "/?.lua;" .. pgmoon_dir .. "/?/init.lua;" .. package.path

assert(rawget(_G, "jit"), "bench/decode.lua compares under LuaJIT: run it with luajit")
local dbpool = require "dbpool"
local pgmoon = require "pgmoon"

local e = dbpool.engine { name = "bench_decode", dsn = dsn, pool_size = 1, max_overflow = 0 }
local pg = pgmoon.new {}                    -- no connection: its decoders only

-- What an API row carries: a JSON document, an int[], a text[] with
-- characters that need quoting, a float8[].
local COLUMNS = {
  { name = "doc", oid = 3802, sql = [[jsonb_build_object('id', i, 'name', 'item ' || i,
      'price', i * 1.25, 'active', i % 2 = 0, 'tags', jsonb_build_array('red', 'large', 'sale'),
      'dims', jsonb_build_object('w', i % 100, 'h', 20, 'unit', 'cm'), 'note', NULL)]] },
  { name = "ints", oid = 1007, sql = "ARRAY[i, i + 1, i + 2, NULL, i * 7, 42, -1, 0]" },
  { name = "texts", oid = 1009, sql = [=[ARRAY['plain', 'with space', 'a,b', 'q"uote', NULL,
      'item ' || i]]=] },
  { name = "floats", oid = 1022, sql = "ARRAY[i * 0.5, 1e10, -2.25, 3.14159]::float8[]" },
}

local function select_sql(cols, as_text)
  local list = {}
  for i, c in ipairs(cols) do
    list[i] = ("(%s)%s AS %s"):format(c.sql, as_text and "::text" or "", c.name)
  end
  return ("SELECT %s FROM generate_series(1, %d) AS i"):format(table.concat(list, ", "), ROWS)
end

local function fastest(fn)
  local best = math.huge
  for _ = 1, REPS do
    collectgarbage()
    local t0 = os.clock()
    fn()
    best = math.min(best, os.clock() - t0)
  end
  return best
end

local conn = assert(e:connect())
local function dbpool_per_row(cols)
  local typed, text = select_sql(cols, false), select_sql(cols, true)
  assert(#assert(conn:query(typed)) == ROWS)
  local t_typed = fastest(function() assert(conn:query(typed)) end)
  local t_text = fastest(function() assert(conn:query(text)) end)
  return (t_typed - t_text) / ROWS * 1e6
end

-- pgmoon's parse_data_row dispatch, on the text of each field.
local function pgmoon_per_row(cols)
  local rows = assert(conn:query(select_sql(cols, true)))
  local kinds = {}
  for i, c in ipairs(cols) do kinds[i] = pg.PG_TYPES[c.oid] or "string" end
  local deserializers = pg.type_deserializers
  local t = fastest(function()
    for r = 1, #rows do
      local row, out = rows[r], {}
      for i, c in ipairs(cols) do
        local value, kind = row[c.name], kinds[i]
        if kind == "number" then value = tonumber(value)
        elseif kind == "boolean" then value = value == "t"
        elseif kind ~= "string" then value = deserializers[kind](pg, value, kind) end
        out[c.name] = value
      end
    end
  end)
  return t / ROWS * 1e6
end

print(("# Decoding per row, dbpool and pgmoon (%s), %d rows, fastest of %d")
  :format(jit.version, ROWS, REPS))
print()
print("| columns | dbpool µs/row | pgmoon µs/row | pgmoon / dbpool |")
print("|---|---|---|---|")
local sets = { { COLUMNS[1] }, { COLUMNS[2] }, { COLUMNS[3] }, { COLUMNS[4] }, COLUMNS }
for _, cols in ipairs(sets) do
  local names = {}
  for i, c in ipairs(cols) do names[i] = c.name end
  local d, p = dbpool_per_row(cols), pgmoon_per_row(cols)
  print(("| %s | %.2f | %.2f | %.1fx |"):format(table.concat(names, " + "), d, p, p / d))
end
conn:close()
