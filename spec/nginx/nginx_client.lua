-- spec/nginx/nginx_client.lua: HTTP requests to the nginx of
-- scripts/with-nginx.sh ($DBPOOL_NGINX_PORT), for the specs in spec/nginx/.
--
-- Each request is a curl process started with io.popen, so several can be
-- in flight at once: client.start(path) returns at once, :wait() collects
-- the answer.  Works on Lua 5.4 and LuaJIT alike, with no socket library.
local cjson = require "cjson"

local client = {}
client.port = os.getenv("DBPOOL_NGINX_PORT")
client.error_log = os.getenv("DBPOOL_NGINX_ERROR_LOG")
client.conf = os.getenv("DBPOOL_NGINX_CONF")

-- Is the nginx under test serving TEMPLATE (a path ending)?
function client.serving(template)
  return client.port ~= nil and client.conf ~= nil
    and client.conf:sub(-#template) == template
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local Request = {}
Request.__index = Request

-- client.start(path [, timeout]) -> request in flight
function client.start(path, timeout)
  local body_file = os.tmpname()
  local url = ("http://127.0.0.1:%s%s"):format(client.port, path)
  -- -w prints status, total seconds and content type after the body is saved.
  local cmd = ("curl -sS -m %d -o %s -w '%%{http_code} %%{time_total} %%{content_type}' %s 2>&1")
    :format(timeout or 30, shell_quote(body_file), shell_quote(url))
  return setmetatable({ path = path, body_file = body_file, pipe = assert(io.popen(cmd)) }, Request)
end

-- request:wait() -> { status =, seconds =, content_type =, body =, json = (decoded or nil) }
function Request:wait()
  local out = self.pipe:read("*a")
  self.pipe:close()
  local f = io.open(self.body_file, "rb")
  local body = f and f:read("*a") or ""
  if f then f:close() end
  os.remove(self.body_file)
  local status, seconds, ctype = out:match("(%d%d%d) ([%d.]+) ?(.*)$")
  assert(status, ("curl %s failed: %s"):format(self.path, out))
  local ok, decoded = pcall(cjson.decode, body)
  return { path = self.path, status = tonumber(status), seconds = tonumber(seconds),
           content_type = ctype, body = body, json = ok and decoded or nil }
end

-- client.get(path) -> the answer of one request
function client.get(path, timeout)
  return client.start(path, timeout):wait()
end

function client.sleep(seconds)
  os.execute(("sleep %.3f"):format(seconds))
end

-- Lines of nginx's error log at or above [error] ([error], [crit], [alert], [emerg]).
function client.error_lines(levels)
  levels = levels or { "error", "crit", "alert", "emerg" }
  local found = {}
  local f = assert(io.open(client.error_log, "r"))
  for line in f:lines() do
    for _, level in ipairs(levels) do
      if line:find("[" .. level .. "]", 1, true) then found[#found + 1] = line; break end
    end
  end
  f:close()
  return found
end

-- The pids of nginx's workers (DBPOOL_NGINX_PID's children), as numbers.
function client.worker_pids()
  local pids = {}
  local p = assert(io.popen("pgrep -P " .. assert(os.getenv("DBPOOL_NGINX_PID"))))
  for line in p:lines() do pids[#pids + 1] = tonumber(line) end
  p:close()
  return pids
end

-- Pipes text into CMD; returns ok, combined output.
function client.pipe_to(cmd, text)
  local input = os.tmpname()
  local f = assert(io.open(input, "wb"))
  f:write(text)
  f:close()
  -- The status is echoed: LuaJIT's pipe:close() does not return it.
  local p = assert(io.popen(cmd .. " <" .. shell_quote(input) .. " 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  os.remove(input)
  local status = tonumber(out:match("exit=(%d+)%s*$"))
  return status == 0, (out:gsub("exit=%d+%s*$", ""))
end

-- client.answer(req) -> json, response: a request's answer, which must be JSON.
function client.answer(req)
  local r = req:wait()
  assert(type(r.json) == "table", r.path .. " is not JSON: " .. r.body)
  return r.json, r
end

-- client.a_then_b(path_a, path_b, lead) -> ja, jb, ra, rb: sends A, then B
-- lead seconds later; both answers (decoded JSON with pid/started/finished/
-- result/error, and the raw responses).
function client.a_then_b(path_a, path_b, lead)
  local a = client.start(path_a)
  client.sleep(lead)
  local b = client.start(path_b)
  local ja, ra = client.answer(a)
  local jb, rb = client.answer(b)
  return ja, jb, ra, rb
end

-- client.describe_pair(ja, jb, ra, rb) -> text: both requests' timings, for
-- a failed assertion's message.
function client.describe_pair(ja, jb, ra, rb)
  return ("A %s: status %d, handler %.3f..%.3f, client %.3f s%s\n"
       .. "B %s: status %d, handler %.3f..%.3f, client %.3f s%s"):format(
    ra.path, ra.status, ja.started, ja.finished, ra.seconds, ja.error and (", error: " .. ja.error) or "",
    rb.path, rb.status, jb.started, jb.finished, rb.seconds, jb.error and (", error: " .. jb.error) or "")
end

return client
