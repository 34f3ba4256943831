-- Fork safety with a real fork() (lua-posix): the child drops what it
-- inherited without a byte on the parent's sockets and opens its own; the
-- parent's connections keep working.
local helper = require "helper"
local dbpool = require "dbpool"

-- Debian 12's lua-posix is built for Lua 5.1 (LuaJIT) to 5.3, not 5.4: there
-- this file defines no test, and spec/c/test_pool.c's test_fork covers the
-- core with a real fork() on every run.
local has_posix, unistd = pcall(require, "posix.unistd")
if not has_posix then return end
local wait = require("posix.sys.wait").wait

-- Runs fn in a child process; returns what it returned (a string) or the
-- error it raised.  The child never returns into busted.
local function in_child(fn)
  local r, w = assert(unistd.pipe())
  local pid = assert(unistd.fork())
  if pid == 0 then
    unistd.close(r)
    local ok, out = pcall(fn)
    unistd.write(w, (ok and "ok " or "error ") .. tostring(out))
    unistd.close(w)
    unistd._exit(0)
  end
  unistd.close(w)
  local chunks = {}
  repeat
    local chunk = unistd.read(r, 4096)
    chunks[#chunks + 1] = chunk
  until not chunk or chunk == ""
  unistd.close(r)
  local _, how, status = wait(pid)
  assert.are.same({ "exited", 0 }, { how, status })
  return table.concat(chunks)
end

describe("after fork()", function()
  it("the child opens its own connections and the parent's keep working", function()
    local e = helper.engine { pool_size = 2, max_overflow = 0 }
    local idle = assert(e:connect())
    local held = assert(e:connect())               -- checked out across the fork
    local idle_pid, held_pid = idle:backend_pid(), held:backend_pid()
    idle:close()                                   -- idle across the fork

    local report = in_child(function()
      -- The inherited checkout refuses to touch the parent's socket ...
      local rows, _, err = held:query("SELECT 1")
      assert(rows == nil and err.kind == "closed", "inherited connection was usable")
      assert(err.message:find("before fork()", 1, true), err.message)
      held:close()                                   -- ... and is forgotten silently
      -- The idle one was forgotten too: this is a new backend.
      local pid = assert(e:query("SELECT pg_backend_pid() AS pid"))[1].pid
      assert(pid ~= idle_pid and pid ~= held_pid, "child got an inherited backend")
      local st = e:stats()
      assert(st.total == 1 and st.checkedin == 1, "child counts: total " .. st.total)
      return pid
    end)
    local child_pid = tonumber(report:match("^ok (%d+)$"))
    assert.is_truthy(child_pid, report)

    -- Nothing was sent on the parent's sockets: both backends still serve it.
    assert(held:query("SELECT 1"))
    assert.are.equal(held_pid, held:backend_pid())
    held:close()
    local c = assert(e:connect())
    assert.are.equal(idle_pid, c:backend_pid())
    assert(c:query("SELECT 1"))
    c:close()
    local st = e:stats()
    assert.are.same({ 2, 2, 0 }, { st.total, st.checkedin, st.query_errors })
    -- The child's backend went away with the child (its pool closed nothing
    -- politely, but the server sees the socket close at exit).
    assert.are.equal(2, helper.settled_backends(e.name, 2))
  end)

  it("the child of a pool_size = \"auto\" process runs its own sizing steps, with no checkout", function()
    local sys = require "system"
    local e = helper.engine { pool_size = "auto", max_overflow = 0,
                              auto = { min = 2, max = 4, interval = 0.2 } }
    local deadline = sys.monotime() + 20 * helper.time_scale
    while e:stats().total < 2 and sys.monotime() < deadline do sys.sleep(0.02) end
    local before = e:stats()
    assert.are.equal(2, before.total, "the parent's first step warms auto.min")

    local report = in_child(function()
      -- Only its sizing step (the child's own thread) can open these: the
      -- child checks nothing out.
      local limit = sys.monotime() + 20 * helper.time_scale
      local st = e:stats()
      while not (st.checkedin == 2 and st.connects >= before.connects + 2)
        and sys.monotime() < limit do
        sys.sleep(0.02)
        st = e:stats()
      end
      assert(st.checkedin == 2 and st.connects >= before.connects + 2,
        ("the child's pool: %d idle, %d connects (the parent's %d)"):format(st.checkedin,
          st.connects, before.connects))
      return st.checkedin
    end)
    assert.are.equal("ok 2", report)
    local st = e:stats()
    assert.are.same({ 2, 2 }, { st.total, st.checkedin }, "the parent's pool is untouched")
    dbpool.remove(e.name)
  end)
end)
