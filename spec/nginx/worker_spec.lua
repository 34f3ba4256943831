-- spec/nginx/worker_spec.lua: one nginx worker, several requests at once.
-- dbpool must let the worker's event loop run while a request waits for the
-- database or for a pool slot (DESIGN.md, "Never stalls an event loop").
-- Runs only under scripts/with-nginx.sh spec/nginx/nginx.conf (inside
-- scripts/with-pg.sh); defines no test otherwise:
--   scripts/with-pg.sh scripts/with-nginx.sh spec/nginx/nginx.conf \
--     luajit /usr/bin/busted -o TAP spec/nginx
--
-- Timing: request A is sent, then B 0.3 s later, while A still has at least
-- 0.7 s to go.  Overlap is judged on the server's own clock (each answer
-- carries when its handler started and finished), so a slow, busy machine
-- makes the margins wider, not the verdict wrong.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("spec/nginx/nginx.conf") then return end

local LEAD = 0.3       -- seconds between sending A and sending B

local answer, describe_pair = client.answer, client.describe_pair
local function a_then_b(path_a, path_b) return client.a_then_b(path_a, path_b, LEAD) end

describe("one nginx worker, concurrent requests", function()
  setup(function()
    -- First connections (and the JIT) out of the way before anything is timed.
    for _ = 1, 2 do
      assert.are.equal(200, client.get("/fast").status)
      assert.are.equal(200, client.get("/slot/use").status)
    end
  end)

  -- The control: proves the harness can see two requests of one worker
  -- overlap, so a failure below is dbpool's, not the harness's.
  it("(control) a request sleeping in ngx.sleep does not delay a fast query", function()
    local ja, jb, ra, rb = a_then_b("/yield?ms=1500", "/fast")
    local detail = describe_pair(ja, jb, ra, rb)
    assert.are.equal(200, ra.status, detail)
    assert.are.equal(200, rb.status, detail)
    assert.are.equal(ja.pid, jb.pid, "one worker serves both")
    assert.is_true(jb.finished < ja.finished, "B finished while A slept\n" .. detail)
    assert.is_true(rb.seconds < 1.0, "B took under 1 s\n" .. detail)
  end)

  it("a slow query in one request does not delay a fast query in another request of the same worker", function()
    local ja, jb, ra, rb = a_then_b("/slow?ms=1500", "/fast")
    local detail = describe_pair(ja, jb, ra, rb)
    assert.are.equal(200, ra.status, detail)
    assert.are.equal(200, rb.status, detail)
    assert.are.equal(ja.pid, jb.pid, "one worker serves both")
    assert.is_true(jb.started < ja.finished,
      "B's handler must start while A's query runs (a blocked worker starts it after)\n" .. detail)
    assert.is_true(jb.finished < ja.finished, "B finished before A\n" .. detail)
    assert.is_true(rb.seconds < 1.0, "B took under 1 s\n" .. detail)
  end)

  it("a request waiting for a slot is served when another request of the same worker releases one", function()
    -- A holds SLOT's only connection for 1 s while yielding; B needs it.
    -- SLOT's pool_timeout is 3 s, so B is served about 0.7 s after it asked.
    local ja, jb, ra, rb = a_then_b("/slot/hold?ms=1000", "/slot/use")
    local detail = describe_pair(ja, jb, ra, rb)
    assert.are.equal(200, ra.status, detail)
    assert.are.equal(ja.pid, jb.pid, "one worker serves both")
    assert.are.equal(200, rb.status, "B must get the connection A releases\n" .. detail)
    assert.is_true(ra.seconds < 2.0, "A was not held up by B's wait\n" .. detail)
    assert.is_true(rb.seconds < 2.0, "B was served soon after A released\n" .. detail)
  end)

  it("shares one pool between the worker's main VM and its run_worker_thread VMs", function()
    local r = answer(client.start("/shared"))
    assert.is_nil(r.error, r.error)
    local v = r.result
    -- One connection in engine SLOT: both VMs used the same backend ...
    assert.are.equal(v.main_pid, v.thread_pid)
    -- ... and the same counters: the thread's checkout is counted once, and
    -- the main VM sees it.
    assert.are.equal(v.checkouts_before + 1, v.thread_checkouts)
    assert.are.equal(v.thread_checkouts, v.checkouts_after)
  end)

  it("wakes a waiting statement by its socket, not by polling", function()
    local before = answer(client.start("/wait/counts")).result
    assert.is_true(before.event_driven, "built without nginx's headers? (scripts/ngx-headers.sh)")
    -- 250 ms, not a multiple of the waits' 0.1 s cap: at 300 ms the result
    -- raced the third cap expiry, which then collected it before its wake.
    local slow = answer(client.start("/slow?ms=250"))
    assert.is_nil(slow.error, slow.error)
    local after = answer(client.start("/wait/counts")).result
    local wakes = after.wakes - before.wakes
    -- Polling looks about 250 times in 250 ms; a woken wait a few times.
    assert.is_true(wakes >= 1 and wakes <= 10, ("%d wakes for one 250 ms statement"):format(wakes))
    assert.is_true(after.watching <= 4 + 1 + 1 + 1, "more watches than connections")
    -- At most one wake per statement: the socket is watched for writes only
    -- while libpq has output to send (else every ACK would wake it too).
    for _ = 1, 20 do assert.are.equal(200, client.get("/fast").status) end
    local later = answer(client.start("/wait/counts")).result
    assert.is_true(later.wakes - after.wakes <= 20 + 1,
      ("%d wakes for 20 SELECT 1"):format(later.wakes - after.wakes))
  end)

  it("is woken as the socket takes more of a statement bigger than its send buffer", function()
    local before = answer(client.start("/wait/counts")).result
    local r = answer(client.start("/big?mb=16", 30))
    assert.is_nil(r.error, r.error)
    assert.are.equal(16 * 1024 * 1024, r.result)
    local after = answer(client.start("/wait/counts")).result
    -- Watching reads only, the one wake would be the answer's (the rest of
    -- the 16 MB would go out at the 0.1 s cap of each wait).
    local wakes = after.wakes - before.wakes
    assert.is_true(wakes >= 3, ("%d wakes while sending 16 MB"):format(wakes))
  end)

  it("ends the timers of engines removed in the worker", function()
    local r = answer(client.start("/timer/churn?n=30", 30))
    assert.is_nil(r.error, r.error)
    local v = r.result
    assert.is_true(v.after <= v.before + 2,
      ("%d pending timers after %d engines made and removed, %d before"):format(v.after, v.n, v.before))
  end)

  it("hands a returned connection to the waiting request before a newer one", function()
    local r = answer(client.start("/slot/fair"))
    assert.is_nil(r.error, r.error)
    assert.are.same({ "waiter", "newcomer" }, r.result)
  end)

  it("reads a result far bigger than one read of the socket without waiting out the wake cap", function()
    local r = answer(client.start("/big/result?n=40000", 60))
    assert.is_nil(r.error, r.error)
    local v = r.result
    assert.are.same({ 40000, 40000 }, { v.rows, v.last })
    -- An edge-triggered watch wakes once per arrival: data left in the
    -- socket after a read must be read on at once, not at the 0.1 s cap of
    -- each wait (which took 18 s for these rows).
    assert.is_true(v.seconds < 5, ("%.1f s for 40000 rows, %d cap expiries"):format(v.seconds, v.cap_expiries))
  end)

  it("takes the watch away with the connection of a waiter that was killed", function()
    local r = answer(client.start("/wait/killed"))
    assert.is_nil(r.error, r.error)
    local v = r.result
    assert.are.equal(v.before.watching + 1, v.during.watching, "the waiting statement was watched")
    assert.are.equal(v.before.watching, v.after_gc.watching, "its watch went with its connection")
    assert.is_true(v.query_seconds < 1, "the one connection was free again at once")
    assert.are.equal(1, v.leaks)
    -- The leak report names the app's line, not dbpool's yielding checkout.
    local named = false
    for _, line in ipairs(client.error_lines { "warn" }) do
      if line:find("engine KILL: connection checked out at [^ ]*test_app%.lua:%d+ was never closed") then
        named = true
      end
    end
    assert.is_true(named, "no leak report naming test_app.lua")
  end)

  it("frees on the event loop the watch of a connection closed on a worker thread", function()
    local r = answer(client.start("/wait/thread_close"))
    assert.is_nil(r.error, r.error)
    local v = r.result
    assert.are_not.equal(v.first, v.thread_pid, "the thread replaced the recycled connection")
    assert.are.equal(v.thread_pid, v.last)
    assert.are.equal(v.watched.reaped, v.queued.reaped, "the thread did not touch nginx")
    assert.are.equal(v.watched.reaped + 1, v.after.reaped, "the loop freed it at its next watch")
    assert.are.equal(v.watched.watching, v.after.watching)
  end)

  it("survives PostgreSQL restarting under a watched statement: an error, then service, no leak", function()
    local before = answer(client.start("/wait/counts")).result
    local slow = client.start("/slow?ms=5000")
    client.sleep(0.5)                          -- its statement is running, its socket watched
    local root = os.getenv("DBPOOL_ROOT") or "."
    assert(os.execute(root .. "/scripts/pg-ctl.sh restart"), "pg-ctl.sh restart failed")
    local js, rs = answer(slow)
    assert.are.equal(503, rs.status, "the statement cannot survive its server")
    assert.are.equal("query", js.kind)
    assert.matches("^failed: ", js.error)     -- "failed: " .. msg: msg is a string
    assert.is_true(rs.seconds < 4.5, "the wait ended with the connection, not with the statement")
    -- libpq closed the socket when it read the end: the watch goes without
    -- touching epoll for a descriptor number that may be reused.
    local ok = 0
    for _ = 1, 8 do ok = ok + (client.get("/fast").status == 200 and 1 or 0) end
    assert.are.equal(8, ok)
    local after = answer(client.start("/wait/counts")).result
    assert.is_true(after.watching <= before.watching + 1, ("watches %d -> %d"):format(
      before.watching, after.watching))
  end)

  -- Last but one: the workers after it are new ones.
  it("lets a graceful reload retire workers whose connections nginx watches, without an alert", function()
    local before = answer(client.start("/slow?ms=50"))
    assert.is_nil(before.error, before.error)
    assert.is_true(answer(client.start("/wait/counts")).result.watching >= 1)
    assert(os.execute("kill -HUP " .. assert(os.getenv("DBPOOL_NGINX_PID"))))
    local deadline, after = os.time() + 10, nil
    repeat
      client.sleep(0.2)
      after = answer(client.start("/slow?ms=50"))
    until after.pid ~= before.pid or os.time() > deadline
    assert.are_not.equal(before.pid, after.pid, "no new worker after the reload")
    assert.is_nil(after.error, after.error)
    client.sleep(0.5)                          -- the old worker's exit is logged by now
  end)

  it("leaves no [crit], [alert] or [emerg] line (no worker crashed)", function()
    local lines = client.error_lines { "crit", "alert", "emerg" }
    assert.are.same({}, lines, table.concat(lines, "\n"))
  end)
end)
