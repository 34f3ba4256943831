-- engine:listen (DESIGN.md, Lua API): a Listener on a connection of its
-- own, outside the pool's capacity and counters; l:wait bounded by its
-- timeout whatever the server does; reconnect and LISTEN again after a
-- disconnect, said once as kind "reconnected"; channel names quoted.
-- The Listener talks to PostgreSQL itself also when the suite runs through
-- PgBouncer (transaction pooling keeps no session to listen on).
local helper = require "helper"
local core = require "dbpool.core"

local function listener_engine(opts)
  opts = opts or {}
  opts.dsn = helper.server_dsn
  return helper.engine(opts)
end

local function notify(channel, payload)
  assert(helper.admin():query("SELECT pg_notify($1, $2)", channel, payload))
end

describe("engine:listen", function()
  it("delivers a notification with its channel, payload and the sender's pid", function()
    local e = listener_engine()
    local l = assert(e:listen("orders"))
    local sender = assert(helper.admin():connect())
    assert(sender:query("SELECT pg_notify('orders', 'order 42')"))
    local n = assert(l:wait(5))
    assert.are.equal("orders", n.channel)
    assert.are.equal("order 42", n.payload)
    assert.are.equal(sender:backend_pid(), n.pid)
    sender:close()
    l:close()
  end)

  it("answers nil, 'timeout' when nothing comes within the timeout", function()
    local e = listener_engine()
    local l = assert(e:listen("quiet"))
    local t0 = core.now()
    local n, msg, err = l:wait(0.3)
    local took = core.now() - t0
    assert.is_nil(n)
    assert.are.equal("timeout", msg)
    assert.are.equal("timeout", err.kind)
    assert.is_true(took >= 0.25 and took < 0.3 + 1 * helper.time_scale, "took " .. took)
    l:close()
  end)

  it("takes no slot of the pool and is in none of its counts", function()
    local e = listener_engine { pool_size = 1, max_overflow = 0 }
    local before = e:stats()
    local l = assert(e:listen("slots"))
    local c = assert(e:connect())                  -- the one slot is still free
    c:close()
    local after = e:stats()
    assert.are.equal(before.connects + 1, after.connects)   -- the pool's own, for c
    assert.are.equal(1, after.total)
    l:close()
  end)

  it("quotes channel names: a name with quotes and a semicolon is just a name", function()
    local e = listener_engine()
    local tricky = 'a"b; DROP TABLE x; --'
    local l = assert(e:listen(tricky))
    assert(l:listen("Mixed Case"))
    notify(tricky, "one")
    notify("Mixed Case", "two")
    local a, b = assert(l:wait(5)), assert(l:wait(5))
    assert.are.same({ tricky, "one" }, { a.channel, a.payload })
    assert.are.same({ "Mixed Case", "two" }, { b.channel, b.payload })
    assert.has_error(function() l:listen("") end)
    assert.has_error(function() l:listen("a\0b") end)
    assert.has_error(function() e:listen(42) end)
    l:close()
  end)

  it("stops delivering a channel after l:unlisten, and raises once closed", function()
    local e = listener_engine()
    local l = assert(e:listen("one"))
    assert(l:listen("two"))
    assert.are.same({ "one", "two" }, l:channels())
    assert(l:unlisten("one"))
    notify("one", "x")
    notify("two", "y")
    local n = assert(l:wait(5))
    assert.are.equal("two", n.channel)
    assert.are.equal("timeout", select(2, l:wait(0.2)))
    l:close()
    assert.has_error(function() l:wait(1) end)
  end)

  it("never gets what a pooled connection LISTENed to: that is another session's", function()
    local e = listener_engine { pool_size = 1, max_overflow = 0 }
    local l = assert(e:listen("shared"))
    local c = assert(e:connect())
    assert(c:exec("LISTEN shared"))                -- a pooled session listens too
    c:close()                                      -- DISCARD ALL on return (reset_session)
    notify("shared", "once")
    local n = assert(l:wait(5))
    assert.are.equal("once", n.payload)
    assert.are.equal("timeout", select(2, l:wait(0.3)))   -- delivered once, to l only
    c = assert(e:connect())
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    c:close()
    l:close()
  end)

  it("reconnects after its backend is terminated, LISTENs again, and says so once", function()
    local e = listener_engine()
    local l = assert(e:listen("again"))
    local pid = l:backend_pid()
    helper.terminate { pid }
    local n, msg, err = l:wait(5)
    assert.is_nil(n)
    assert.are.equal("reconnected", err.kind, msg)
    assert.are_not.equal(pid, l:backend_pid())
    notify("again", "after")
    n = assert(l:wait(5))                          -- no second "reconnected"
    assert.are.equal("after", n.payload)
    l:close()
  end)

  it("returns within its timeout from a stopped backend (SIGSTOP), and works once resumed", function()
    local e = listener_engine()
    local l = assert(e:listen("stopped"))
    local pid = l:backend_pid()
    finally(function() os.execute("kill -CONT " .. pid .. " 2>/dev/null") end)
    assert(os.execute("kill -STOP " .. pid))
    notify("stopped", "held")                      -- the stopped backend cannot pass it on
    local t0 = core.now()
    local n, msg = l:wait(0.5)
    assert.is_nil(n)
    assert.are.equal("timeout", msg)
    assert.is_true(core.now() - t0 < 0.5 + 1 * helper.time_scale)
    os.execute("kill -CONT " .. pid)
    n = assert(l:wait(5))
    assert.are.equal("held", n.payload)
    l:close()
  end)

  it("is refused for an engine with pgbouncer = true", function()
    local e = helper.engine { dsn = helper.server_dsn, pgbouncer = true }
    assert.has_error(function() e:listen("x") end)
  end)
end)
