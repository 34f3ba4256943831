-- dbpool.fastpath: engine:query under LuaJIT through its FFI (DESIGN.md,
-- "Inside nginx").  Every call into the classic Lua C API stops LuaJIT's
-- trace; these calls do not, so checkout, statement, return and building
-- the rows run compiled, as lua-resty-core does for nginx's own API.  The C
-- side is csrc/ffi_call.h: the core's own checkout, statement and return,
-- reached through a table of function pointers (core.so exports nothing
-- but luaopen_dbpool_core).
--
-- The fast path takes only what it can do exactly as the classic binding
-- does; for everything else it answers SLOW and the caller runs the classic
-- path, so that both give the same results and errors by construction:
--   - SQL and parameters: a string without zero bytes; parameters that are
--     strings without zero bytes or integral numbers below 2^53 (sent as
--     lua_params.c sends them).  Anything else (tables, booleans, nulls,
--     bad arguments, which must raise) is SLOW before any checkout;
--   - engines with echo, echo_pool or leak_threshold (they log through
--     Lua) are SLOW;
--   - rows: text, integers, floats, booleans and numeric are read here,
--     as lua_result.c reads them; a result with another type (arrays,
--     bytea, json) or while some pool has decoders is built by
--     lua_result.c itself (core._ffi_push_result);
--   - server notices are logged by the classic binding.
-- Nothing here runs on Lua 5.4, which keeps the classic binding.
local ffi = require "ffi"
local core = require "dbpool.core"

local M = {}

-- Declared once per process image: a second load of this module (a harness
-- that clears package.loaded) finds the types there already.
if not pcall(ffi.typeof, "dbp_ffi_api") then ffi.cdef [[
typedef struct dbp_pool dbp_pool;
typedef struct dbp_slot dbp_slot;
typedef struct pg_result dbp_result;
typedef struct dbp_error {
  int status; char sqlstate[6]; char severity[16]; char message[512]; char detail[512];
  char hint[256];
} dbp_error;
typedef struct dbp_call {
  dbp_pool *pool; dbp_slot *slot; dbp_result *res; dbp_error err;
  const char *values[32];
  char site_src[60]; int site_line;
} dbp_call;
typedef struct dbp_ffi_pool_info {
  const char *name; int slow; int numeric_text; double yield_after;
} dbp_ffi_pool_info;
typedef struct dbp_ffi_api {
  size_t call_size;
  void (*pool_info)(const dbp_pool *p, dbp_ffi_pool_info *out);
  int (*checkout)(dbp_call *c, bool wait);
  int (*exec)(dbp_call *c, const char *sql, int nparams);
  int (*send)(dbp_call *c, const char *sql, int nparams);
  int (*collect)(dbp_call *c, int64_t wait_ns);
  bool (*has_notices)(dbp_call *c);
  bool (*release)(dbp_call *c);
  void (*invalidate)(dbp_call *c);
  int (*ngx_watch)(dbp_call *c, int new_id, void *new_sem, const char **why);
  int (*rows)(const dbp_result *r);
  int (*columns)(const dbp_result *r);
  const char *(*column_name)(const dbp_result *r, int col);
  unsigned (*column_type)(const dbp_result *r, int col);
  const char *(*field)(const dbp_result *r, int row, int col, size_t *len);
  int64_t (*affected)(const dbp_result *r);
  int (*number)(const dbp_result *r, int row, int col, int kind, double *out);
  int (*type_kind)(unsigned oid);
  unsigned (*array_elem)(unsigned oid);
  bool (*decoders_maybe)(void);
  void (*result_free)(dbp_result *r);
  const char *(*status_kind)(int status);
  double (*now)(void);
} dbp_ffi_api;
]] end

local api = ffi.cast("const dbp_ffi_api *", core._ffi_api())
assert(tonumber(api.call_size) == ffi.sizeof("dbp_call"),
  "dbpool: dbpool.fastpath's dbp_call does not match core.so's (rebuild both)")
M.api = api

local C_string, new_tab = ffi.string, require "table.new"
local select, type, find, format, floor = select, type, string.find, string.format, math.floor
local setmetatable, tonumber = setmetatable, tonumber
local null, Error = core.null, core.Error

-- dbp_status (csrc/common.h) and dbp_type_kind (csrc/pgtype.h).
local OK, AGAIN, PENDING = 0, 2, 7
local TEXT, BOOL, INT, FLOAT, NUMERIC = 0, 1, 2, 3, 4
M.OK, M.AGAIN, M.PENDING = OK, AGAIN, PENDING

-- The answer that sends the caller down the classic path.
local SLOW = setmetatable({}, { __tostring = function() return "dbpool.fastpath.SLOW" end })
M.SLOW = SLOW

-- ---- pools ----------------------------------------------------------------

-- Pool handle -> what the fast path knows of it (options never change
-- after creation).  Weak keys: a removed engine's pool is not kept.
local infos = setmetatable({}, { __mode = "k" })

local function learn(pool)
  local address = type(pool) == "userdata" and core._ffi_pool(pool)
  if not address then return nil end   -- not a Pool: the classic path raises
  local out = ffi.new("dbp_ffi_pool_info")
  local ptr = ffi.cast("dbp_pool *", address)
  api.pool_info(ptr, out)
  local info = {
    ptr = ptr, name = C_string(out.name), slow = out.slow ~= 0,
    numeric_text = out.numeric_text ~= 0,
    yield_after_ns = floor(out.yield_after * 1e9),
  }
  infos[pool] = info
  return info
end

-- M.info(pool) -> the pool's fast-path facts (learnt once), or nil when
-- pool is no Pool handle.
function M.info(pool)
  return infos[pool] or learn(pool)
end

-- ---- calls: one per engine:query in flight, reused ------------------------
--
-- A call is a box { c = the dbp_call cdata, texts, kinds, names, len, num }
-- (scratch for arguments and rows): everything one query writes while it runs is its own, so a query
-- that runs in between (a finalizer's, a log function's) changes nothing of
-- another's.

-- A call dropped while it holds a checkout (its request was killed mid-wait)
-- gives the connection back when collected: the slot is never lost, and
-- the leak is counted and reported with the app's line, as a Conn's.
local function finalize(c)
  if c.slot ~= nil then core._ffi_leaked(c) end
  if c.res ~= nil then
    api.result_free(c.res)
    c.res = nil
  end
end

local spare_calls, nspare = {}, 0

function M.take_call(info)
  local call
  if nspare > 0 then
    call = spare_calls[nspare]
    spare_calls[nspare] = nil
    nspare = nspare - 1
  else
    call = { c = ffi.gc(ffi.new("dbp_call"), finalize), texts = {}, kinds = {}, names = {},
             len = ffi.new("size_t[1]"), num = ffi.new("double[1]") }
  end
  call.c.pool = info.ptr
  return call
end

function M.put_call(call)
  call.c.pool = nil
  nspare = nspare + 1
  spare_calls[nspare] = call
end

-- ---- arguments -------------------------------------------------------------

local MAX_FAST_PARAMS = 32            -- DBP_CALL_MAX_PARAMS
local TWO53 = 2 ^ 53

-- M.params(call, n, ...) -> true with call.c.values set, or false when the
-- classic path must read them (it also raises for what is wrong).  Number
-- texts stay in call.texts while the values point at them.
function M.params(call, n, ...)
  if n > MAX_FAST_PARAMS then return false end
  local values, texts = call.c.values, call.texts
  for i = 1, n do
    local v = select(i, ...)
    local t = type(v)
    if t == "number" then
      if v ~= floor(v) or v >= TWO53 or v <= -TWO53 then return false end
      v = format("%.0f", v)              -- lua_params.c's text of an integral number
    elseif t ~= "string" or find(v, "\0", 1, true) then
      return false
    end
    texts[i] = v
    values[i - 1] = v
  end
  return true
end

-- True when sql may go down the fast path.
function M.plain_sql(sql)
  return type(sql) == "string" and not find(sql, "\0", 1, true)
end

-- ---- results ---------------------------------------------------------------

-- nil, msg, err from the call's dbp_error, as lua_error.c's dbp_lua_fail.
function M.fail(info, call)
  local e = call.c.err
  local msg = C_string(e.message)
  local err = { message = msg, engine = info.name, kind = C_string(api.status_kind(e.status)) }
  if e.sqlstate[0] ~= 0 then err.sqlstate = C_string(e.sqlstate) end
  if e.severity[0] ~= 0 then err.severity = C_string(e.severity) end
  if e.detail[0] ~= 0 then err.detail = C_string(e.detail) end
  if e.hint[0] ~= 0 then err.hint = C_string(e.hint) end
  return nil, msg, setmetatable(err, Error)
end

-- The rows of the call's result, as lua_result.c builds them; frees it.
function M.rows(info, call)
  local c = call.c
  local res = c.res
  if api.decoders_maybe() then return core._ffi_push_result(c) end
  local kinds, names = call.kinds, call.names
  local ncols = api.columns(res)
  for j = 0, ncols - 1 do
    local k = api.type_kind(api.column_type(res, j))
    if k == NUMERIC then k = info.numeric_text and TEXT or FLOAT end
    if k > FLOAT then return core._ffi_push_result(c) end      -- bytea, json, arrays
    kinds[j] = k
  end
  local len, num = call.len, call.num
  local nrows = api.rows(res)
  local rows = new_tab(nrows, 2)
  local columns = new_tab(ncols, 0)
  for j = 0, ncols - 1 do
    local name = C_string(api.column_name(res, j))
    names[j] = name
    columns[j + 1] = name
  end
  rows.columns = columns
  local affected = tonumber(api.affected(res))
  if affected >= 0 then rows.affected = affected end
  for i = 0, nrows - 1 do
    local row = new_tab(0, ncols)
    for j = 0, ncols - 1 do
      local p = api.field(res, i, j, len)
      local v
      if p == nil then
        v = null
      else
        local k = kinds[j]
        if k == TEXT then
          v = C_string(p, len[0])
        elseif k == BOOL then
          v = p[0] == 116                                       -- 't'
        elseif api.number(res, i, j, k, num) ~= 0 then
          v = num[0]
        else
          v = C_string(p, len[0])                               -- int8 beyond 2^53
        end
      end
      row[names[j]] = v
    end
    rows[i + 1] = row
  end
  c.res = nil
  api.result_free(res)
  return rows
end

-- ---- the blocking path (LuaJIT outside nginx) ------------------------------

-- M.query(pool, sql, ...) -> rows | nil, msg, err | SLOW: checkout
-- (waiting up to pool_timeout), one statement, return, as pool:query.
function M.query(pool, sql, ...)
  local info = infos[pool] or learn(pool)
  if not info or info.slow or not M.plain_sql(sql) then return SLOW end
  local n = select("#", ...)
  local call = M.take_call(info)
  if n > 0 and not M.params(call, n, ...) then
    M.put_call(call)
    return SLOW
  end
  local c = call.c
  local st = api.checkout(c, true)
  if st ~= OK then
    local _, msg, err = M.fail(info, call)
    M.put_call(call)
    return nil, msg, err
  end
  st = api.exec(c, sql, n)
  if api.has_notices(c) then core._ffi_log_notices(c) end
  api.release(c)                       -- before the rows are built, as pool:query
  local rows, msg, err
  if st == OK then rows = M.rows(info, call) else rows, msg, err = M.fail(info, call) end
  M.put_call(call)
  return rows, msg, err
end

return M
