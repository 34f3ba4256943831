-- The DSN as libpq parses it, once, at engine creation (issue 17): each
-- layer of the precedence against the real server (engine option, DSN,
-- environment, dbpool's default; dbpool's -c settings appended to the
-- DSN's or the environment's options), malformed DSNs refused at creation,
-- and secrets kept out of every output for the forms the issue lists.
-- Engines here talk to PostgreSQL itself (helper.server_dsn): through
-- PgBouncer (pgbouncer = true) dbpool sends no startup options at all.
local dbpool = require "dbpool"
local helper = require "helper"
local socket = require "socket"

local scale = helper.time_scale

-- An engine straight to the server, on a DSN of the spec's making.
local function engine(opts)
  local o = { pool_size = 1, max_overflow = 0, pool_timeout = 10 * scale }
  for k, v in pairs(opts) do o[k] = v end
  o.name = o.name or helper.name("dsn")
  return dbpool.engine(o)
end

-- helper.server_dsn with more parameters ({ {keyword, value}, ... }), in its
-- own form: a URI's query, percent-encoded, or key='value'.
local function server_dsn(params)
  local dsn = helper.server_dsn
  local uri = dsn:find("^postgres") ~= nil
  local parts = {}
  for i, kv in ipairs(params) do
    if uri then
      parts[i] = kv[1] .. "=" .. (kv[2]:gsub("[^%w_.~-]", function(c) return ("%%%02X"):format(c:byte()) end))
    else
      parts[i] = kv[1] .. "='" .. (kv[2]:gsub("[\\']", "\\%0")) .. "'"
    end
  end
  if not uri then return dsn .. " " .. table.concat(parts, " ") end
  return dsn .. (dsn:find("?", 1, true) and "&" or "?") .. table.concat(parts, "&")
end

local function show(e, ...)
  local names = { ... }
  local list = {}
  for i, n in ipairs(names) do list[i] = ("current_setting('%s') AS s%d"):format(n, i) end
  local rows = assert(e:query("SELECT " .. table.concat(list, ", ")))
  local out = {}
  for i = 1, #names do out[i] = rows[1]["s" .. i] end
  return out
end

describe("connection parameters", function()
  it("keep the DSN's options and append the engine's -c settings", function()
    local dsn = server_dsn { { "options", "-c search_path=app_schema -c default_transaction_read_only=on" } }
    local e = engine { dsn = dsn, statement_timeout = 4321 }
    assert.are.same({ "app_schema", "on", "4321ms" },
      show(e, "search_path", "default_transaction_read_only", "statement_timeout"))
    dbpool.remove(e.name)
  end)

  it("let the engine's setting win where the DSN's options set the same one", function()
    local dsn = server_dsn { { "options", "-c statement_timeout=999 -c lock_timeout=777" } }
    local e = engine { dsn = dsn, statement_timeout = 4321 }
    assert.are.same({ "4321ms", "777ms" }, show(e, "statement_timeout", "lock_timeout"))
    dbpool.remove(e.name)
  end)

  it("let the engine's application_name win over the DSN's, and the DSN's over none", function()
    local dsn = server_dsn { { "application_name", "from_dsn" } }
    local e = engine { dsn = dsn }
    assert.are.same({ "from_dsn" }, show(e, "application_name"))
    local f = engine { dsn = dsn, application_name = "from_engine" }
    assert.are.same({ "from_engine" }, show(f, "application_name"))
    dbpool.remove(e.name)
    dbpool.remove(f.name)
  end)

  -- busted runs in this process: the environment is set for a child.
  it("append the engine's -c settings to PGOPTIONS from the environment", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local dbpool = require "dbpool"
      local e = dbpool.engine { name = "child", dsn = os.getenv("CHILD_DSN"), pool_size = 1,
                                statement_timeout = 4321 }
      local rows = assert(e:query("SELECT current_setting('work_mem') AS w, " ..
                                  "current_setting('statement_timeout') AS s"))
      io.write(rows[1].w, " ", rows[1].s)
    ]])
    f:close()
    local lua = jit and "luajit" or "lua5.4"
    local cmd = ("env PGOPTIONS='-c work_mem=7MB' CHILD_DSN='%s' %s %s 2>&1"):format(
      helper.server_dsn, lua, script)
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    os.remove(script)
    assert.are.equal("7MB 4321ms", out)
  end)

  describe("connect_timeout, against a listener that never answers", function()
    local listener, port
    before_each(function()
      listener = assert(socket.bind("127.0.0.1", 0))     -- the kernel accepts; nobody answers
      port = select(2, listener:getsockname())
    end)
    after_each(function() listener:close() end)

    -- One attempt, no breaker: the time is one connect's.
    local function timed_connect(opts)
      opts.retry, opts.breaker, opts.pool_timeout = { attempts = 1 }, { failures = 0 }, 30 * scale
      local e = engine(opts)
      local t0 = socket.gettime()
      local conn, msg, err = e:connect()
      local took = socket.gettime() - t0
      dbpool.remove(e.name)
      assert.is_nil(conn)
      assert.are.equal("connect", err.kind)
      return took, msg
    end

    it("is the DSN's when the engine gives none (not the default 10 s)", function()
      local took, msg = timed_connect { dsn = ("host=127.0.0.1 port=%d connect_timeout=2"):format(port) }
      assert.is_true(took >= 1.5 and took < 4 * scale, "took " .. took)
      assert.matches("connect_timeout (2 s)", msg, 1, true)
    end)

    it("is the engine's when it gives one, over the DSN's", function()
      local took = timed_connect { dsn = ("postgresql://127.0.0.1:%d/db?connect_timeout=5"):format(port),
                                   connect_timeout = 0.5 }
      assert.is_true(took >= 0.4 and took < 2 * scale, "took " .. took)
    end)

    it("is PGCONNECT_TIMEOUT's when neither the engine nor the DSN gives one", function()
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(([[
        local dbpool = require "dbpool"
        local socket = require "socket"
        local e = dbpool.engine { name = "child", dsn = "host=127.0.0.1 port=%d", pool_size = 1,
                                  pool_timeout = 30, retry = { attempts = 1 } }
        local t0 = socket.gettime()
        local conn, msg = e:connect()
        io.write(string.format("%%.2f ", socket.gettime() - t0), msg)
      ]]):format(port))
      f:close()
      local lua = jit and "luajit" or "lua5.4"
      local p = assert(io.popen(("env PGCONNECT_TIMEOUT=2 %s %s 2>&1"):format(lua, script)))
      local out = p:read("a")
      p:close()
      os.remove(script)
      local took = tonumber(out:match("^(%S+)"))
      assert.is_true(took ~= nil and took >= 1.5 and took < 4 * scale, out)
      assert.matches("connect_timeout (2 s)", out, 1, true)
    end)
  end)

  it("are refused at creation when libpq cannot parse the DSN, naming the engine", function()
    for _, dsn in ipairs {
      "POSTGRESQL://u:S3CRETpw@h/db", "postgressql://u:S3CRETpw@h", "postgresql://u:S3%zzCRETpw@h",
      "host=h password=S3CRET pw", "host=h password='S3CRETpw", "postgresql://u:S3CRETpw@[::1/db",
      "postgressql://u:S3CRETpw=x@h",
    } do
      local name = helper.name("bad")
      local ok, err = pcall(dbpool.engine, { name = name, dsn = dsn })
      assert.is_false(ok, dsn)
      assert.matches("engine '" .. name .. "': option 'dsn' is not a valid libpq connection string: ",
                     err, 1, true)
      assert.is_nil(err:find("CRET", 1, true), err)
      assert.is_nil(dbpool.get(name))
    end
    local ok, err = pcall(dbpool.engine, { name = helper.name("bad"), dsn = "host=h hots=x" })
    assert.is_false(ok)
    assert.matches('invalid connection option "hots"', err, 1, true)
    ok, err = pcall(dbpool.engine, { name = helper.name("bad"), dsn = helper.server_dsn,
                                     replicas = { "host=h password='S3CRETpw" } })
    assert.is_false(ok)
    assert.matches("option 'replicas[1]' is not a valid libpq connection string", err, 1, true)
    assert.is_nil(err:find("CRET", 1, true), err)
  end)
end)

describe("secrets in the DSN", function()
  local MARK = "Zq7SECRETmark"

  -- Everything an engine shows: none may hold MARK.
  local function outputs(e)
    local out = { tostring(e), tostring(e.pool), e.pool:dsn(), e.pool:status(), e.options.dsn,
                  dbpool.metrics() }
    for _, r in ipairs(e.options.replicas or {}) do out[#out + 1] = r end
    local conn, msg, err = e:connect()
    assert.is_nil(conn)
    out[#out + 1], out[#out + 2] = msg, err and err.message
    for k, v in pairs(e:stats()) do out[#out + 1] = k .. "=" .. tostring(v) end
    local health = e:health()
    for _, reason in ipairs(health.reasons or {}) do out[#out + 1] = tostring(reason) end
    return out
  end

  it("are hidden for every form the issue lists", function()
    for _, dsn in ipairs {
      "host=127.0.0.1 port=1 user=u sslpassword=" .. MARK .. " password=" .. MARK .. "x",
      "postgresql://u:" .. MARK .. "@127.0.0.1:1/db?sslpassword=" .. MARK .. "2",
      "postgresql://u:S3?" .. MARK .. "@127.0.0.1:1",
      "postgresql://127.0.0.1:1/db?pass%77ord=" .. MARK,
      "postgresql://u:*@127.0.0.1:1/db?sslpassword=*" .. MARK,
    } do
      local log = helper.capture_log(function()
        local e = engine { dsn = dsn, echo_pool = true, min_idle = 1, retry = { attempts = 1 },
                           replicas = { dsn } }
        for _, text in ipairs(outputs(e)) do
          assert.is_nil(tostring(text):find(MARK, 1, true), text)
        end
        assert.matches("***", e.options.dsn, 1, true)
        dbpool.remove(e.name)
      end)
      assert.is_true(#log > 0)
      for _, l in ipairs(log) do assert.is_nil(l.message:find(MARK, 1, true), l.message) end
    end
  end)

  it("are found by keyword and position: a short password garbles no message", function()
    local e = engine { dsn = "host=127.0.0.1 port=1 user=u password=on", retry = { attempts = 1 } }
    local _, msg = e:connect()
    assert.matches("could not connect: connection to server at", msg, 1, true)
    assert.is_nil(msg:find("***", 1, true), msg)
    dbpool.remove(e.name)
  end)

  it("core.redact shows a DSN as an engine does, or says why libpq refuses it", function()
    local core = require "dbpool.core"
    assert.are.equal("postgresql://u:***@h:5432/db?sslmode=require",
      core.redact("postgresql://u:" .. MARK .. "@h:5432/db?sslmode=require"))
    assert.are.equal("host=h password=*** user=app", core.redact("host=h password='a b\\'c' user=app"))
    local shown, why = core.redact("postgressql://u:" .. MARK .. "@h")
    assert.is_nil(shown)
    assert.matches('missing "=" after "***"', why, 1, true)
  end)
end)
