-- README.md's Lua code blocks, each run as it is, in a Lua process of its
-- own (engines are per process), on the interpreter and module path of this
-- run, against the throwaway server (DATABASE_URL_KG, DATABASE_URL_US).  A
-- block that calls describe() is a busted spec and runs under busted.  So a
-- stale example fails the build.
local dbpool = require "dbpool"
local helper = require "helper"

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- { { line = n, code = "..." }, ... } for every ```lua block.
local function lua_blocks(text)
  local blocks, current, n = {}, nil, 0
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    n = n + 1
    if current then
      if line:match("^```%s*$") then
        blocks[#blocks + 1] = current
        current = nil
      else
        current.code = current.code .. line .. "\n"
      end
    elseif line:match("^```lua%s*$") then
      current = { line = n + 1, code = "" }
    end
  end
  assert(current == nil, "README.md: a ```lua block is not closed")
  return blocks
end

-- The interpreter running this spec (lua5.4, luajit), as the command line named it.
local function interpreter()
  local i = -1
  while arg[i - 1] do i = i - 1 end
  return arg[i]
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs cmd, returns its exit status and everything it printed.
local function run(cmd)
  local p = assert(io.popen(cmd .. ' 2>&1; echo "exit status $?"'))
  local out = p:read("*a")
  p:close()
  local status = tonumber(out:match("exit status (%d+)\n?$"))
  return status, out
end

-- The table the blocks read: item 7, in the KG market's database.
local function reset_items()
  local setup = dbpool.engine { name = helper.name("readme"), dsn = os.getenv("DATABASE_URL_KG") }
  assert(setup:with(function(conn)
    return conn:exec("DROP TABLE IF EXISTS item; " ..
      "CREATE TABLE item (id int PRIMARY KEY, name text); " ..
      "INSERT INTO item VALUES (7, 'apple')")
  end))
  setup:dispose()
end

describe("README.md", function()
  local blocks = lua_blocks(read_file("README.md"))

  it("has Lua code blocks", function()
    assert.is_true(#blocks >= 3)
  end)

  for _, block in ipairs(blocks) do
    it("runs the Lua block at line " .. block.line, function()
      assert(os.getenv("DATABASE_URL_KG"), "DATABASE_URL_KG is not set: run through scripts/with-pg.sh")
      reset_items()
      local file = os.tmpname() .. (block.code:find("describe(", 1, true) and "_spec.lua" or ".lua")
      local f = assert(io.open(file, "wb"))
      f:write(block.code)
      f:close()
      local cmd = shell_quote(interpreter())
      if block.code:find("describe(", 1, true) then
        cmd = cmd .. " rockspec/run-specs.lua -o TAP " .. shell_quote(file)
      else
        cmd = cmd .. " " .. shell_quote(file)
      end
      local status, out = run(cmd)
      os.remove(file)
      assert(status == 0, ("README.md line %d: exit status %s\n%s"):format(block.line, tostring(status), out))
      if block.code:find("describe(", 1, true) then          -- a spec that ran no test proves nothing
        assert(out:find("\nok %d") or out:find("^ok %d"), ("README.md line %d: no test ran\n%s"):format(block.line, out))
      end
    end)
  end
end)
