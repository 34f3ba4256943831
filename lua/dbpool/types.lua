-- dbpool.types: the engine option `decoders` made usable by the C result
-- reader, and lua-cjson set up for json results and dbpool.json.
--
-- Result values are decoded in C (csrc/lua_result.c) by type OID.  A
-- decoder keyed by OID is used as it is; one keyed by pg_type.typname needs
-- the OID: built-in types have fixed OIDs (csrc/pgtype.c knows them, no
-- query), other types (enums, domains, extensions) get one query of pg_type
-- at the engine's first checkout in this Lua state, for every name not
-- built in and for the array types of OID keys not built in (so that their
-- arrays decode element by element).  Through PgBouncer that is one plain
-- parameterised SELECT, as any other.  Decoders are functions: each Lua
-- state keeps its own (core.set_decoders), and the registry does not
-- compare them across states.  docs/decisions.md, "Decoders by name".
local core = require "dbpool.core"
local cjson = require "cjson"

local M = {}

-- dbpool's own lua-cjson instance: an app's cjson settings do not change
-- what rows decode to.  Empty JSON arrays keep lua-cjson's array_mt where
-- it has one (OpenResty's), so they encode back as [], and so do arrays
-- from PostgreSQL.  Numbers are encoded with as many digits as this
-- lua-cjson allows (16 in OpenResty's; 14 in lua-cjson 2.1.0, Debian's).
local json = cjson.new()
if json.decode_array_with_array_mt then json.decode_array_with_array_mt(true) end
for _, digits in ipairs { 16, 15, 14 } do
  if pcall(json.encode_number_precision, digits) then break end
end
core.set_json(json.decode, json.encode, json.array_mt)

-- The decoders of options, by OID, as C reads them: [oid] = fn, and
-- .arrays = { [array oid] = element oid } for types not built in; plus the
-- names and OIDs that still need pg_type (nil when none do).
local function by_oid(decoders)
  local ctx, names, oids = { arrays = {} }, {}, {}
  for key, fn in pairs(decoders) do
    local oid = core.builtin_type(key)
    if oid then
      ctx[oid] = fn
    elseif type(key) == "number" then
      ctx[key] = fn
      oids[#oids + 1] = key           -- its array type: from pg_type
    else
      names[#names + 1] = key
    end
  end
  if #names == 0 and #oids == 0 then return ctx, nil end
  table.sort(names)
  return ctx, { names = names, oids = oids, decoders = decoders }
end

local LOOKUP = [[
SELECT oid::int8 AS oid, typname, typarray::int8 AS typarray
FROM pg_catalog.pg_type
WHERE typname = ANY($1::text[]) OR oid = ANY($2::oid[])]]

-- Looks the pending names and OIDs up on conn and fills ctx.  true, or
-- nil, msg, err (the query's failure, or names no type has).
local function look_up(conn, ctx, pending, engine_name)
  local rows, msg, err = conn:query(LOOKUP, core.array(pending.names), core.array(pending.oids))
  if not rows then return nil, msg, err end
  local found = {}
  for _, row in ipairs(rows) do
    local fn = pending.decoders[row.typname]
    if fn then
      ctx[row.oid] = fn
      found[row.typname] = true
    end
    if row.typarray ~= 0 and ctx[row.oid] then ctx.arrays[row.typarray] = row.oid end
  end
  local missing = {}
  for _, name in ipairs(pending.names) do
    if not found[name] then missing[#missing + 1] = "'" .. name .. "'" end
  end
  if #missing > 0 then
    local message = ("dbpool: option 'decoders' of engine '%s' names types the server does not "
      .. "have: %s (a key is a pg_type.typname, such as int4 or timestamptz, not SQL's integer; "
      .. "or an OID)"):format(engine_name, table.concat(missing, ", "))
    return nil, message, setmetatable({ kind = "query", message = message, engine = engine_name },
      core.Error)
  end
  return true
end

-- The engine methods that check out a connection: while names are
-- pending, each first looks them up (on a connection of its own).
local CHECKOUTS = { "connect", "with", "transaction", "query", "query_params", "read",
  "read_query" }

-- M.attach(engine, Engine): gives engine's pool (and replicas) the decoders
-- of engine.options in this Lua state; while some need pg_type, engine's
-- checkout methods look them up first, once (until it succeeds).
function M.attach(engine, Engine)
  local decoders = engine.options and engine.options.decoders
  local ctx, pending
  if decoders and next(decoders) ~= nil then ctx, pending = by_oid(decoders) end
  core.set_decoders(engine.pool, ctx)
  for _, pool in ipairs(engine.replicas or {}) do core.set_decoders(pool, ctx) end
  for _, method in ipairs(CHECKOUTS) do rawset(engine, method, nil) end
  if not pending then return end
  local function resolve(self)
    local conn, msg, err = Engine.connect(self)
    if not conn then return nil, msg, err end
    local ok, lmsg, lerr = look_up(conn, ctx, pending, self.name)
    conn:close()
    if not ok then return nil, lmsg, lerr end
    for _, method in ipairs(CHECKOUTS) do rawset(self, method, nil) end
    return true
  end
  for _, method in ipairs(CHECKOUTS) do
    rawset(engine, method, function(self, ...)
      local ok, msg, err = resolve(self)
      if not ok then return nil, msg, err end
      return Engine[method](self, ...)
    end)
  end
end

-- True when two `decoders` options hold the same functions by the same keys.
function M.same(a, b)
  a, b = a or {}, b or {}
  for k, v in pairs(a) do if b[k] ~= v then return false end end
  for k, v in pairs(b) do if a[k] ~= v then return false end end
  return true
end

return M
