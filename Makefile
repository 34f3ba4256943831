# dbpool: one C source tree, two Lua ABIs (Lua 5.4 and LuaJIT 2.1).
#   make            build/5.4/dbpool/core.so and build/jit/dbpool/core.so
#   make test       everything: C tests (plain, ASan+UBSan, TSan) and busted
#                   specs on both Luas, against a throwaway PostgreSQL
#   make demo       examples/quickstart.lua (throwaway PostgreSQL unless
#                   DATABASE_URL is set)
# Both installs missing Debian packages first (scripts/install-deps.sh).

CC      ?= cc
WARN     = -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
BASE     = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) -MMD -MP
PG_INC  := $(shell pkg-config --cflags libpq 2>/dev/null)
LUA54_INC := $(shell pkg-config --cflags lua5.4 2>/dev/null)
JIT_INC := $(shell pkg-config --cflags luajit 2>/dev/null)
LIBS     = -lpq -lpthread -lm

CORE  = error config policy redact conn conn_exec result stmt_cache breaker lock fork cap evloop shstats \
        pool pool_slots pool_connect pool_leak pool_stmt metrics registry
LUAB  = lua_core lua_util lua_config lua_registry lua_pool lua_conn lua_params lua_log lua_result lua_error lua_policy \
        lua_ngx_wait
CORE_SRC = $(CORE:%=csrc/%.c)

CORE_OBJ  = $(CORE:%=build/core/%.o)
LUA54_OBJ = $(LUAB:%=build/5.4/obj/%.o)
JIT_OBJ   = $(LUAB:%=build/jit/obj/%.o)

MODULES = build/5.4/dbpool/core.so build/jit/dbpool/core.so

.PHONY: all deps test demo demo-openresty bench bench-bin bench-openresty clean exports
all: $(MODULES)

build/core/%.o: csrc/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(BASE) $(PG_INC) -c $< -o $@

build/5.4/obj/%.o: csrc/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(BASE) $(PG_INC) $(LUA54_INC) -c $< -o $@

build/jit/obj/%.o: csrc/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(BASE) $(PG_INC) $(JIT_INC) -c $< -o $@

# The event-driven wait under nginx (csrc/lua_ngx_wait.c) needs nginx's
# configured headers; nginx runs LuaJIT, so only that module gets it.  When
# the headers cannot be had (scripts/ngx-headers.sh says why), the file
# builds without them and requests poll instead.
NGX_DIR = build/ngx
NGX_INC = $(foreach d,src/core src/event src/event/modules src/os/unix objs,-isystem $(NGX_DIR)/$(d))
$(NGX_DIR)/.done: scripts/ngx-headers.sh
	@if scripts/ngx-headers.sh $(NGX_DIR); then echo yes >$@; else mkdir -p $(@D); echo no >$@; fi
build/jit/obj/lua_ngx_wait.o: csrc/lua_ngx_wait.c $(NGX_DIR)/.done
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(BASE) $(PG_INC) $(JIT_INC) \
	  $(if $(filter yes,$(shell cat $(NGX_DIR)/.done 2>/dev/null)),-DDBP_WITH_NGX $(NGX_INC)) -c $< -o $@

# Modules do not link liblua: the host program provides the Lua API.
# -z nodelete: the registry's pools belong to the process, not to the Lua
# state that loaded the module; lua_close must not unload code and globals
# that other states (or open connections) still depend on.
SOFLAGS = -shared -Wl,-z,nodelete
build/5.4/dbpool/core.so: $(CORE_OBJ) $(LUA54_OBJ)
	@mkdir -p $(@D)
	$(CC) $(SOFLAGS) -o $@ $^ $(LIBS)

build/jit/dbpool/core.so: $(CORE_OBJ) $(JIT_OBJ)
	@mkdir -p $(@D)
	$(CC) $(SOFLAGS) -o $@ $^ $(LIBS)

# ---- C tests of the core (no Lua), plain and under sanitizers -------------
CTESTS = $(basename $(notdir $(wildcard spec/c/test_*.c)))
SAN_asan = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_tsan = -fsanitize=thread
SAN_plain =
CTEST_BINS = $(foreach v,plain asan tsan,$(CTESTS:%=build/ctest/$(v)/%))

# $$-prerequisites need .SECONDEXPANSION declared before the rule.
.SECONDEXPANSION:
build/ctest/%: spec/c/$$(notdir $$*).c $(CORE_SRC) spec/c/testlib.h $(wildcard csrc/*.h)
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) $(SAN_$(patsubst %/,%,$(dir $*))) \
	    -Icsrc $(PG_INC) -o $@ $< $(CORE_SRC) $(LIBS)

ctests: $(CTEST_BINS)

deps:
	@bash scripts/install-deps.sh

# Only luaopen_dbpool_core may be exported.
exports: $(MODULES)
	@for m in $(MODULES); do \
	  syms=$$(nm -D --defined-only $$m | awk '$$2 ~ /^[TDB]$$/ {print $$3}'); \
	  [ "$$syms" = "luaopen_dbpool_core" ] || { echo "$$m exports: $$syms"; exit 1; }; \
	done; echo "exports: only luaopen_dbpool_core"

test: deps
	@bash scripts/test.sh

demo: deps
	@bash scripts/demo.sh

# The OpenResty example (examples/openresty) on a throwaway server and nginx.
demo-openresty: deps all
	@bash scripts/demo-openresty.sh

# How an nginx worker should wait for PostgreSQL (bench/openresty/results.md).
bench-openresty: deps all
	@scripts/with-pg.sh bench/openresty/run.sh

# Benchmarks (bench/), each on its own throwaway server; run with nothing
# else on the machine.  Results are recorded by hand in bench/results/.
bench: deps bench-bin
	@scripts/install-deps.sh strace gnuplot-nox
	@scripts/with-pg.sh bench/run.sh
	@for lua in lua5.4 luajit; do scripts/with-pg.sh bench/preping.sh $$lua; done
	@scripts/with-pg.sh bench/metrics.sh

# C benchmark programs: the cycle with metrics, and with them compiled out;
# the Lua 5.4 module with metrics compiled out, for the same comparison.
BENCH_BIN = build/bench/cycle build/bench/cycle_nometrics build/bench/contention \
            build/bench/nometrics/dbpool/core.so
bench-bin: $(BENCH_BIN)
build/bench/contention: bench/contention.c $(CORE_SRC) $(wildcard csrc/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -std=c11 -D_GNU_SOURCE $(WARN) -Icsrc $(PG_INC) -o $@ $< $(CORE_SRC) $(LIBS)
build/bench/nometrics/dbpool/core.so: $(CORE_SRC) $(LUAB:%=csrc/%.c) $(wildcard csrc/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(BASE) -DDBP_NO_METRICS -shared -Wl,-z,nodelete -Icsrc $(PG_INC) $(LUA54_INC) \
	    -o $@ $(CORE_SRC) $(LUAB:%=csrc/%.c) $(LIBS)
build/bench/cycle: bench/cycle.c $(CORE_SRC) $(wildcard csrc/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -std=c11 -D_GNU_SOURCE $(WARN) -Icsrc $(PG_INC) -o $@ $< $(CORE_SRC) $(LIBS)
build/bench/cycle_nometrics: bench/cycle.c $(CORE_SRC) $(wildcard csrc/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -std=c11 -D_GNU_SOURCE $(WARN) -DDBP_NO_METRICS -Icsrc $(PG_INC) -o $@ $< $(CORE_SRC) $(LIBS)

clean:
	rm -rf build

-include $(wildcard build/*/*.d build/*/obj/*.d)
