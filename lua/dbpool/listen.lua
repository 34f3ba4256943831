-- dbpool.listen: engine:listen(channel) -> Listener, for LISTEN/NOTIFY.
--
-- A Listener has a connection of its own, opened with the engine's options
-- (its DSN, connect-time settings, keepalives) but outside its pool: it
-- takes no slot and is in no count.  Notifications reach only the session
-- that LISTENs, so those that a pooled connection received are never a
-- Listener's (the pool drops them).  l:wait(timeout) is bounded by
-- timeout whatever the server does (a stopped server, a silent network):
-- every step of it, reconnecting included, has that deadline.  After a
-- disconnect, wait connects again, LISTENs again to every channel, and
-- says so once, as nil, msg, err of kind "reconnected": notifications sent
-- in between are lost (PostgreSQL queues them for listening sessions only).
-- Under nginx every wait yields (dbpool.conn's mode and wait, which
-- dbpool.ngx sets), as a statement's does.
local core = require "dbpool.core"
local ops = require "dbpool.conn"

local now = core.now
local Listener = {}
Listener.__index = Listener

local function fail(self, kind, msg)
  return nil, msg, setmetatable({ kind = kind, message = msg, engine = self.engine }, core.Error)
end

local function timed_out(self)
  return nil, "timeout", setmetatable({ kind = "timeout", message = "timeout",
                                        engine = self.engine }, core.Error)
end

-- Runs step(box, ...) until it is not false: blocking (wait: the seconds
-- left), or yielding between looks; nil, "timeout" past deadline.
local function drive(self, mode, deadline, step)
  local box = self._box
  if mode == "block" then
    local left = deadline == math.huge and -1 or math.max(deadline - now(), 0)
    local a, b, c = step(box, left)
    if a == false then return timed_out(self) end
    return a, b, c
  end
  local look = 0
  while true do
    local a, b, c = step(box, 0)
    if a ~= false then return a, b, c end
    local left = deadline - now()
    if left <= 0 then return timed_out(self) end
    look = look + 1
    ops.wait(box, look, deadline == math.huge and nil or left)
  end
end

-- A connect within deadline (and connect_timeout).
local function connect(self, mode, deadline)
  local box = self._box
  if mode == "block" then return box:_open(math.max(deadline - now(), 0)) end
  local connect_timeout = box:_timing()
  if connect_timeout > 0 and now() + connect_timeout < deadline then
    deadline = now() + connect_timeout
  end
  -- The DSN's host names looked up on threads first, as a pooled connect
  -- under nginx does (csrc/resolve.h): libpq then does no blocking lookup.
  local look = 0
  while true do
    local ready, rmsg, rerr = box:_resolve_ahead()
    if ready then break end
    if ready == nil then return nil, rmsg, rerr end
    if now() >= deadline then return fail(self, "connect", "could not connect: no answer in time") end
    look = look + 1
    ops.poll(look)
  end
  local ok, msg, err = box:_open(false)
  if not ok then return nil, msg, err end
  look = 0
  while true do
    ok, msg, err = box:_connect_step()
    if ok then return true end
    if ok == nil then return nil, msg, err end
    if now() >= deadline then
      box:_close()
      return fail(self, "connect", "could not connect: no answer in time")
    end
    look = look + 1
    ops.poll(look)              -- libpq may change sockets while it connects: no watch yet
  end
end

-- One statement (LISTEN, UNLISTEN) within deadline and ping_timeout.
local function run(self, mode, deadline, sql)
  local box = self._box
  local _, ping_timeout = box:_timing()
  local limit = deadline - now()
  if ping_timeout > 0 and ping_timeout < limit then limit = ping_timeout end
  if limit <= 0 then return timed_out(self) end
  local ok, msg, err = box:_send(sql, limit)
  if not ok then return nil, msg, err end
  ok, msg, err = drive(self, mode, math.huge, box._collect)   -- the statement's deadline bounds it
  if not ok then box:_close() end          -- a LISTEN half done: start again next time
  return ok, msg, err
end

local function listen_sql(self, verb, channel)
  return verb .. " " .. self._box:_escape(channel)
end

-- Connects and LISTENs to every channel, within deadline.
local function open(self, mode, deadline)
  local ok, msg, err = connect(self, mode, deadline)
  if not ok then return nil, msg, err end
  for _, channel in ipairs(self._channels) do
    ok, msg, err = run(self, mode, deadline, listen_sql(self, "LISTEN", channel))
    if not ok then return nil, msg, err end
  end
  return true
end

local function check_channel(channel, method)
  if type(channel) ~= "string" or channel == "" or channel:find("\0", 1, true) then
    error(("bad argument #1 to '%s' (a channel name expected: a non-empty string without "
      .. "zero bytes, got %s)"):format(method, type(channel) == "string" and ("%q"):format(channel)
      or type(channel)), 3)
  end
  -- The server cuts a longer name to 63 bytes (NAMEDATALEN - 1) for LISTEN,
  -- while pg_notify refuses it: the Listener would wait for nothing.
  if #channel > 63 then
    error(("bad argument #1 to '%s' (a channel name is at most 63 bytes, got %d)")
      :format(method, #channel), 3)
  end
end

local function check_open(self)
  if self._closed then error("dbpool.Listener is closed", 3) end
end

--- l:wait(timeout) -> n | nil, "timeout" | nil, msg, err.  The next
-- notification, n = {channel=, payload=, pid=} (pid: the sender's backend),
-- waiting at most timeout seconds.  After a disconnect: nil, msg, err of
-- kind "reconnected" once the Listener is connected and listening again
-- (nil, msg, err of kind "connect" or "timeout" while it is not yet).
function Listener:wait(timeout)
  check_open(self)
  if type(timeout) ~= "number" or not (timeout >= 0) then
    error("bad argument #1 to 'wait' (seconds expected: a number >= 0, got " .. tostring(timeout) .. ")", 2)
  end
  local mode = ops.mode("listener:wait()")
  local deadline = now() + timeout
  local box = self._box
  if not box:_connected() then
    local ok, msg, err = open(self, mode, deadline)
    if not ok then return nil, msg, err end
  end
  if self._lost then
    self._lost = false
    return fail(self, "reconnected", "reconnected after a disconnect and listening again: "
      .. "notifications sent in between are lost")
  end
  local n, msg, err = drive(self, mode, deadline, box._wait)
  if n or msg == "timeout" then return n, msg, err end
  self._lost = true                          -- the link went: the next steps reconnect
  local ok, omsg, oerr = open(self, mode, deadline)
  if not ok then return nil, omsg, oerr end
  self._lost = false
  return fail(self, "reconnected", "reconnected after a disconnect (" .. tostring(msg):match("[^\n]*")
    .. ") and listening again: notifications sent in between are lost")
end

local function change(self, verb, channel, method)
  check_open(self)
  check_channel(channel, method)
  local mode = ops.mode("listener:" .. method .. "()")
  local list = self._channels
  for i = #list, 1, -1 do if list[i] == channel then table.remove(list, i) end end
  if verb == "LISTEN" then list[#list + 1] = channel end
  if not self._box:_connected() then return true end   -- the next wait connects and LISTENs
  local _, ping_timeout = self._box:_timing()
  local ok, msg, err = run(self, mode, now() + (ping_timeout > 0 and ping_timeout or 30),
                           listen_sql(self, verb, channel))
  if not ok then return nil, msg, err end
  return true
end

--- l:listen(channel) -> true | nil, msg, err: LISTEN to one more channel
-- (its name quoted: any string is just a name).
function Listener:listen(channel) return change(self, "LISTEN", channel, "listen") end

--- l:unlisten(channel) -> true | nil, msg, err: UNLISTEN that channel.
function Listener:unlisten(channel) return change(self, "UNLISTEN", channel, "unlisten") end

--- l:close(): closes the Listener's connection; later use raises.
function Listener:close()
  self._closed = true
  self._box:_close()
end

--- l:backend_pid() -> the server process of its connection, or nil while
-- it has none.
function Listener:backend_pid()
  return self._box:_backend_pid()
end

--- l:channels() -> the channels it LISTENs to, in order.
function Listener:channels()
  local copy = {}
  for i, c in ipairs(self._channels) do copy[i] = c end
  return copy
end

function Listener:__tostring()
  return ("dbpool.Listener(%s, %s)"):format(self.engine,
    self._closed and "closed" or table.concat(self._channels, ","))
end

local M = {}

--- M.listen(engine, channel) -> Listener | nil, msg, err: connected and
-- LISTENing to channel, within connect_timeout and ping_timeout.
function M.listen(engine, channel)
  check_channel(channel, "listen")
  local mode = ops.mode("engine:listen()")
  local self = setmetatable({ engine = engine.name, _box = core.listener(engine.pool),
                              _channels = { channel }, _lost = false }, Listener)
  local connect_timeout, ping_timeout = self._box:_timing()
  local budget = (connect_timeout > 0 and connect_timeout or 30) + (ping_timeout > 0 and ping_timeout or 30)
  local ok, msg, err = open(self, mode, now() + budget)
  if not ok then
    self._box:_close()
    return nil, msg, err
  end
  return self
end

M.Listener = Listener
return M
