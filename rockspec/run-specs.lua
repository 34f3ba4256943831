-- `luarocks test`: busted on the Lua that LuaRocks runs this script with,
-- so the installed rock is what the specs load.  spec/helper.lua is found
-- in spec/.  Arguments go to busted (default: every spec in spec/).
package.path = "./spec/?.lua;" .. package.path
require("busted.runner")({ standalone = false })
