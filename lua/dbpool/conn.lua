-- dbpool.conn: the Conn methods made of several steps, conn:pipeline,
-- conn:stream, conn:copy_from and conn:copy_to, from the C steps of
-- csrc/lua_pipeline.c and csrc/lua_copy.c.  Each step either blocks in C
-- until it is done (wait -1: plain Lua, threads, init_by_lua) or returns
-- false at once, and then the caller waits for the connection's socket:
-- under nginx dbpool.ngx sets M.mode and M.wait so that the request
-- yields to the worker's event loop, as conn:query does.
--
-- Every wait is bounded by the statement's deadline (query_timeout, or
-- conn:set_query_timeout) in C.  A function of the app that raises (stream's
-- and copy_to's fn, copy_from's source) ends the operation first, leaving
-- the connection usable (COPY FROM failed with an error, the rest of the
-- rows read and dropped), then its error is raised again, as
-- engine:transaction does with fn's.
local core = require "dbpool.core"

local M = {}

local methods = core.conn_methods
local type, pcall, error, select, setmetatable = type, pcall, error, select, setmetatable

--- M.mode(what) -> "block" | "yield": how the running code waits (what
-- names the call, for a phase that can do neither: then it raises).
M.mode = function() return "block" end
--- M.wait(conn, look): one wait for conn's socket to be ready (yielding),
-- look the count of waits so far in this step.  Only called in mode "yield".
M.wait = nil
--- M.poll(look): one pause between looks at something no socket tells of
-- (a connect in progress), look the count so far.  Only in mode "yield".
M.poll = nil

-- Runs a step to its end: in C when blocking, else look, wait, look again.
local function run_step(conn, mode, step)
  if mode == "block" then return step(conn, -1) end
  local a, b, c = step(conn, 0)
  local look = 0
  while a == false do
    look = look + 1
    M.wait(conn, look)
    a, b, c = step(conn, 0)
  end
  return a, b, c
end

-- A failed check of ours, as nil, msg, err (kind "query").
local function fail(conn, msg)
  return nil, msg, setmetatable({ kind = "query", message = msg, engine = conn:pool_name() },
    core.Error)
end

local function check_callable(fn, method, what)
  local mt = getmetatable(fn)
  if type(fn) ~= "function" and not (mt and mt.__call) then
    error(("bad argument #2 to '%s' (%s expected, got %s)"):format(method, what, type(fn)), 3)
  end
end

-- Ends what fn's error interrupted (the connection stays usable; when even
-- that fails the connection is broken and goes at its return), then raises
-- fn's error again.
local drain = methods._drain
local function abandon(conn, mode, why)
  run_step(conn, mode, drain)
  error(why, 0)
end

-- A statement that starts with COPY (libpq's COPY protocol is the copy
-- methods' own: on the plain path the result's status refuses it).
local function is_copy(sql)
  return type(sql) == "string" and sql:match("^%s*[Cc][Oo][Pp][Yy]%f[^%w_]") ~= nil
end

-- ===== conn:pipeline ========================================================

local pipeline_send, pipeline_collect = methods._pipeline_send, methods._pipeline_collect

--- conn:pipeline{ {sql, ...}, ... } -> results | nil, msg, err.  Every
-- statement is sent before any result is read (libpq's pipeline mode, one
-- Sync): one round trip.  results[i] is statement i's rows, as conn:query
-- gives them.  Outside a transaction the batch is atomic: when one fails
-- none is committed, and the answer is nil, msg, err with err.index the
-- failing statement (1-based), no partial results; inside an open
-- transaction it is part of it (which is then aborted).  Raises, sending
-- nothing, on an entry that is not {sql, params...}.
function methods.pipeline(conn, list)
  local mode = M.mode("conn:pipeline()")
  if type(list) ~= "table" then
    error("bad argument #1 to 'pipeline' (table of {sql, ...} expected, got " .. type(list) .. ")", 2)
  end
  if #list == 0 then return {} end
  for i = 1, #list do
    if type(list[i]) == "table" and is_copy(list[i][1]) then
      error(("bad argument #1 to 'pipeline' (statement %d is a COPY, which a pipeline cannot "
        .. "run: use conn:copy_from or conn:copy_to)"):format(i), 2)
    end
  end
  local ok, msg, err = pipeline_send(conn, list)
  if not ok then return nil, msg, err end
  return run_step(conn, mode, pipeline_collect)
end

-- ===== conn:stream ==========================================================

local stream_send, stream_next = methods._stream_send, methods._stream_next

local function each_row(fn, batch)
  for i = 1, #batch do fn(batch[i]) end
end

--- conn:stream(sql, fn, ...) -> rows seen | nil, msg, err.  Runs sql with
-- the parameters ... and calls fn(row) for each row as it arrives (libpq's
-- single-row mode): no more than a few hundred rows are held at a time,
-- whatever the size of the result.  Rows are conn:query's.  An error from
-- the server after some rows (they were seen by fn) is nil, msg, err; fn
-- raising drains the rest of the result and raises fn's error again; the
-- connection stays usable either way.
function methods.stream(conn, sql, fn, ...)
  local mode = M.mode("conn:stream()")
  check_callable(fn, "stream", "function")
  if is_copy(sql) then
    error("bad argument #1 to 'stream' (COPY has conn:copy_to(sql, fn))", 2)
  end
  local ok, msg, err = stream_send(conn, sql, ...)
  if not ok then return nil, msg, err end
  local seen = 0
  while true do
    local stepped, batch
    -- A decoder raising while the batch is built: the rest of the result
    -- is read and dropped, as for fn raising, so the connection stays usable.
    stepped, batch, msg, err = pcall(run_step, conn, mode, stream_next)
    if not stepped then abandon(conn, mode, batch) end
    if batch == true then return seen end
    if not batch then return nil, msg, err end
    local done, why = pcall(each_row, fn, batch)
    if not done then
      if msg ~= true then abandon(conn, mode, why) end
      error(why, 0)
    end
    seen = seen + #batch
    if msg == true then return seen end     -- the result ended with this batch
  end
end

-- ===== COPY =================================================================

local copy_start, copy_ready, copy_end, copy_result =
  methods._copy_start, methods._copy_ready, methods._copy_end, methods._copy_result
local copy_put, copy_put_rows, copy_flush, copy_get =
  methods._copy_put, methods._copy_put_rows, methods._copy_flush, methods._copy_get

-- Starts sql and checks that it is a COPY the way `want` ("in", "out") says.
local function start_copy(conn, mode, sql, want, method)
  if type(sql) ~= "string" then
    error(("bad argument #1 to '%s' (string expected, got %s)"):format(method, type(sql)), 3)
  end
  local ok, msg, err = copy_start(conn, sql)
  if not ok then return nil, msg, err end
  local dir
  dir, msg, err = run_step(conn, mode, copy_ready)
  if not dir then return nil, msg, err end
  if dir ~= want then
    run_step(conn, mode, drain)
    return fail(conn, want == "in"
      and "conn:copy_from needs COPY ... FROM STDIN; this COPY sends rows: use conn:copy_to"
      or "conn:copy_to needs COPY ... TO STDOUT; this COPY takes rows: use conn:copy_from")
  end
  return true
end

-- Queues then sends everything source gives: true | nil, msg, err.
local function feed(conn, mode, source)
  local ok, msg, err
  if type(source) == "table" then
    local i, n = 1, #source
    while i <= n do
      i, msg, err = copy_put_rows(conn, source, i)
      if not i then return nil, msg, err end
      ok, msg, err = run_step(conn, mode, copy_flush)
      if not ok then return nil, msg, err end
    end
    return true
  end
  while true do
    local chunk = source()
    if chunk == nil then return true end
    if type(chunk) ~= "string" then
      error("copy_from: the source function must return COPY text (a string) or nil at the "
        .. "end, got " .. type(chunk), 0)
    end
    if #chunk > 0 then
      ok, msg, err = copy_put(conn, chunk)
      if not ok then return nil, msg, err end
      ok, msg, err = run_step(conn, mode, copy_flush)
      if not ok then return nil, msg, err end
    end
  end
end

--- conn:copy_from(sql, source) -> rows copied | nil, msg, err.  sql is a
-- COPY ... FROM STDIN in the text format; source is an array of rows
-- (arrays of numbers, strings, booleans and dbpool.null; row.n counts
-- trailing nils, which are NULL too), written as COPY text by dbpool, or a
-- function returning the next chunk of COPY text (rows need not end with
-- a chunk) and nil at the end.  A COPY the server refuses (bad data) is
-- nil, msg, err and nothing of it stays.  A source that raises, or a value
-- with no text form (raising, naming row and column), fails the COPY on the
-- server first; the connection stays usable.
function methods.copy_from(conn, sql, source)
  local mode = M.mode("conn:copy_from()")
  local mt = getmetatable(source)
  if type(source) ~= "table" and type(source) ~= "function" and not (mt and mt.__call) then
    error("bad argument #2 to 'copy_from' (an array of rows or a function expected, got "
      .. type(source) .. ")", 2)
  end
  local ok, msg, err = start_copy(conn, mode, sql, "in", "copy_from")
  if not ok then return nil, msg, err end
  local fed
  fed, ok, msg, err = pcall(feed, conn, mode, source)
  if not fed then abandon(conn, mode, ok) end      -- ok: the error raised
  if not ok then return nil, msg, err end         -- the link failed
  ok, msg, err = copy_end(conn)
  if not ok then return nil, msg, err end
  return run_step(conn, mode, copy_result)
end

local function each_line(fn, lines)
  for i = 1, #lines do fn(lines[i]) end
end

--- conn:copy_to(sql, fn) -> rows | nil, msg, err.  sql is a COPY ... TO
-- STDOUT in the text format; fn(line) is called for each row, line in COPY
-- text format without its newline.  fn raising reads and drops the rest,
-- then raises its error again; the connection stays usable.
function methods.copy_to(conn, sql, fn)
  local mode = M.mode("conn:copy_to()")
  check_callable(fn, "copy_to", "function")
  local ok, msg, err = start_copy(conn, mode, sql, "out", "copy_to")
  if not ok then return nil, msg, err end
  while true do
    local lines
    lines, msg, err = run_step(conn, mode, copy_get)
    if lines == true then break end
    if not lines then return nil, msg, err end
    local done, why = pcall(each_line, fn, lines)
    if not done then abandon(conn, mode, why) end
  end
  return run_step(conn, mode, copy_result)
end

return M
