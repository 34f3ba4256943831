# dbpool: one C source tree, two Lua ABIs (Lua 5.4 and LuaJIT 2.1).
#   make            build/5.4/dbpool/core.so and build/jit/dbpool/core.so,
#                   with nginx's event-loop wait only if `make ngx` fetched
#                   nginx's headers before (else it says what is missing)
#   make ngx        the same, with nginx's headers (scripts/ngx-headers.sh)
#   make test       everything: C tests (plain, ASan+UBSan, TSan) and busted
#                   specs on both Luas, against a throwaway PostgreSQL
#   make demo       examples/quickstart.lua (throwaway PostgreSQL unless
#                   DATABASE_URL is set)
#   make demo-scale  the seed's 10,000-user deployment under load, measured
#                   (examples/scale; writes bench/results/scale.md)
#   make docs       the API reference (LDoc, docs/config.ld) in build/docs
#   make rock       what `luarocks make` runs (rockspec/dbpool-scm-1.rockspec)
# test and demo install missing Debian packages first (scripts/install-deps.sh).

CC      ?= cc
WARN     = -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
BASE     = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) -MMD -MP
PG_INC  := $(shell pkg-config --cflags libpq 2>/dev/null)
LUA54_INC := $(shell pkg-config --cflags lua5.4 2>/dev/null)
JIT_INC := $(shell pkg-config --cflags luajit 2>/dev/null)
LIBS     = -lpq -lpthread -lm

CORE  = error config config_compare policy redact redact_sql conninfo notice pgtype resolve conn conn_exec conn_tags conn_ops \
        conn_pipeline conn_copy conn_stream conn_notify result stmt_cache breaker lock fork arena cap refill \
        shstats autosize pool pool_slots pool_connect pool_leak pool_stmt metrics registry ffi_call
LUAB  = lua_core lua_util lua_config lua_registry lua_pool lua_conn lua_pipeline lua_copy lua_listen \
        lua_params lua_array lua_log lua_result lua_decode lua_error lua_policy lua_ngx_wait lua_autosize \
        lua_ffi
CORE_SRC = $(CORE:%=csrc/%.c)

CORE_OBJ  = $(CORE:%=build/core/%.o)
LUA54_OBJ = $(LUAB:%=build/5.4/obj/%.o)
JIT_OBJ   = $(LUAB:%=build/jit/obj/%.o)

MODULES = build/5.4/dbpool/core.so build/jit/dbpool/core.so
# nginx's configured headers, when `make ngx` fetched them (see lua_ngx_wait.o).
NGX_DIR  = build/ngx
NGX_INC  = $(foreach d,src/core src/event src/event/modules src/os/unix objs,-isystem $(NGX_DIR)/$(d))
NGX_MODE := $(if $(wildcard $(NGX_DIR)/objs/ngx_auto_config.h),yes,no)

.PHONY: all ngx deps test demo demo-openresty demo-scale bench bench-bin bench-openresty bench-instructions bench-autosize bench-decode bench-protocol bench-floor \
        clean exports faults docs rock rock-check rock-install FORCE
all: $(MODULES)
ifeq ($(NGX_MODE),no)
	@echo "dbpool: build/jit/dbpool/core.so has no event-loop wait for nginx (no nginx headers" \
	      "in $(NGX_DIR)): under OpenResty a waiting request polls, every event-loop turn and" \
	      "then every millisecond, instead of being woken by nginx. \`make ngx\` adds it."
endif

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
# configured headers; nginx runs LuaJIT, so only that module gets it.  Plain
# `make` uses them when `make ngx` has fetched them into build/ngx
# (scripts/ngx-headers.sh: Debian's nginx-dev, OpenSSL, PCRE and zlib
# headers) and otherwise builds the file without them: requests then poll.
ngx:
	@scripts/ngx-headers.sh $(NGX_DIR) || \
	  echo "dbpool: no nginx headers (above says why): requests under nginx will poll"
	@$(MAKE) --no-print-directory all
# A file rewritten only when its text changes, so that what depends on it is
# rebuilt when a setting changes (git's GIT-CFLAGS): $(call stamp,TEXT).
stamp = @mkdir -p $(@D); printf '%s\n' '$(1)' | cmp -s - $@ || printf '%s\n' '$(1)' >$@
build/jit/ngx-mode: FORCE
	$(call stamp,$(NGX_MODE))
build/jit/obj/lua_ngx_wait.o: csrc/lua_ngx_wait.c build/jit/ngx-mode
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(BASE) $(PG_INC) $(JIT_INC) \
	  $(if $(filter yes,$(NGX_MODE)),-DDBP_WITH_NGX $(NGX_INC)) -c $< -o $@

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
build/ctest/%: spec/c/$$(notdir $$*).c $(CORE_SRC) $(wildcard spec/c/*.h) $(wildcard csrc/*.h)
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) $(SAN_$(patsubst %/,%,$(dir $*))) \
	    -Icsrc $(PG_INC) -o $@ $< $(CORE_SRC) $(LIBS)

ctests: $(CTEST_BINS) build/dns_stub

# The slow name server of spec/nginx/dns_spec.lua (scripts/with-dns-stub.sh).
build/dns_stub: spec/nginx/dns_stub.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) -o $@ $<

deps:
	@bash scripts/install-deps.sh

# Only luaopen_dbpool_core may be exported (by the rock's module too, when built).
exports: $(MODULES)
	@for m in $(MODULES) $(wildcard build/rock/dbpool/core.so); do \
	  syms=$$(nm -D --defined-only $$m | awk '$$2 ~ /^[TDB]$$/ {print $$3}'); \
	  [ "$$syms" = "luaopen_dbpool_core" ] || { echo "$$m exports: $$syms"; exit 1; }; \
	done; echo "exports: only luaopen_dbpool_core"

test: deps
	@bash scripts/test.sh

demo: deps
	@bash scripts/demo.sh

# The OpenResty example (examples/openresty) on a throwaway server and nginx.
demo-openresty: deps ngx
	@bash scripts/demo-openresty.sh

# The seed's 10,000-user deployment on this machine, measured (issue 23):
# nginx + dbpool + PgBouncer + primary + standby under wrk at 1,000, 5,000
# and 10,000 connections, a burst and a failover; writes
# bench/results/scale.md.  About 4 minutes; run it on a quiet machine.
demo-scale: deps ngx
	@examples/scale/run.sh

# How an nginx worker should wait for PostgreSQL (bench/openresty/results.md).
bench-openresty: deps ngx
	@scripts/with-pg.sh bench/openresty/run.sh

# Benchmarks (bench/), each on its own throwaway server; run with nothing
# else on the machine.  Results are recorded by hand in bench/results/.
bench: deps bench-bin
	@scripts/install-deps.sh strace gnuplot-nox
	@scripts/with-pg.sh bench/run.sh
	@for lua in lua5.4 luajit; do scripts/with-pg.sh bench/preping.sh $$lua; done
	@scripts/with-pg.sh bench/metrics.sh

# Issue 19's point 5 alone: engine:query against raw libpq on Lua 5.4 and
# on LuaJIT with and without the FFI path (bench/results/floor.md).
bench-floor: all
	@scripts/with-pg.sh bench/floor.sh

# Issue 20's bulk paths (bench/protocol.lua): COPY vs INSERTs vs a pipeline,
# a 10-statement pipeline vs 10 round trips, on both Luas, each on its own
# throwaway server.  Sizes: COPY_ROWS, INSERT_ROWS, PIPELINE_ROWS, ROUNDS.
# Record the output in bench/results/protocol.md.
bench-protocol: deps all
	@for lua in luajit lua5.4; do \
	  LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;" \
	  LUA_CPATH="$(CURDIR)/build/$$( [ $$lua = luajit ] && echo jit || echo 5.4 )/?.so;;" \
	  scripts/with-pg.sh $$lua bench/protocol.lua || exit 1; done

# Instructions per operation, this tree against BENCH_BASE (a git ref,
# default HEAD~1): bench/results/instructions.md.  Load does not change them.
BENCH_BASE ?= HEAD~1
bench-instructions: deps all bench-bin
	@scripts/with-pg.sh bench/instructions.sh $(BENCH_BASE)

# pool_size = "auto" against a fixed pool of the same max, under 1 -> 50 -> 5
# workers, over and within capacity, runs in ABBA order: about 10 minutes
# (AUTOSIZE_SECONDS per run, AUTOSIZE_ROUNDS runs of each pool per scenario)
# on its own server; the report goes to bench/results/autosize.md.
AUTOSIZE_SECONDS ?= 45
AUTOSIZE_ROUNDS ?= 3
bench-autosize: deps build/bench/autosize
	@scripts/with-pg.sh build/bench/autosize $(AUTOSIZE_SECONDS) $(AUTOSIZE_ROUNDS) > build/bench/autosize.out
	@{ sed '/^<!-- results -->/q' bench/results/autosize.md; cat build/bench/autosize.out; } \
	  > build/bench/autosize.md && mv build/bench/autosize.md bench/results/autosize.md
	@cat bench/results/autosize.md

build/bench/autosize: bench/autosize.c $(CORE_SRC) $(wildcard csrc/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -std=c11 -D_GNU_SOURCE $(WARN) -Icsrc $(PG_INC) -o $@ $< $(CORE_SRC) $(LIBS)

# JSON and array decoding per row against pgmoon's decoders of the same
# values, under LuaJIT (bench/decode.lua; issue 20).  pgmoon is read from
# PGMOON_DIR, never copied here; its arrays need LPeg.  DECODE_ROWS and
# DECODE_REPS set the size (a quick check: DECODE_ROWS=200 DECODE_REPS=1).
PGMOON_DIR  ?= ../shared/third_party/pgmoon
DECODE_ROWS ?= 20000
DECODE_REPS ?= 7
bench-decode: deps all
	@scripts/install-deps.sh lua-lpeg
	@LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;" LUA_CPATH="$(CURDIR)/build/jit/?.so;;" \
	  PGMOON_DIR="$(PGMOON_DIR)" scripts/with-pg.sh luajit bench/decode.lua $(DECODE_ROWS) $(DECODE_REPS)

# The fault soak (bench/results/faults.md): about 70 s on its own server.
faults: deps
	@bash bench/faults.sh

build/bench/faults: bench/faults.c $(CORE_SRC) $(wildcard csrc/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -std=c11 -D_GNU_SOURCE $(WARN) -Icsrc $(PG_INC) -o $@ $< $(CORE_SRC) $(LIBS)

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

# The API reference from the doc comments of lua/dbpool and docs/api (the C
# classes), with Debian's lua-ldoc; any LDoc warning fails the build.
docs:
	@scripts/install-deps.sh lua-ldoc
	@cd docs && ldoc --fatalwarnings -q -c config.ld .
	@echo "dbpool: API reference in build/docs/index.html"

# ---- LuaRocks ----------------------------------------------------------------
# rockspec/dbpool-scm-1.rockspec has build.type = "make": `luarocks make`
# runs `make rock` and `make rock-install` with LUA_INCDIR, PQ_INCDIR and
# CFLAGS of the Lua it builds for, so the rock gets this file's flags
# (docs/decisions.md, "The rock is built by this Makefile").  One module, for
# that Lua, in build/rock; no nginx event-loop wait (requests poll).
ROCK_FLAGS = $(CFLAGS) $(BASE) -I$(PQ_INCDIR) -I$(PQ_INCDIR)/postgresql -I$(LUA_INCDIR)
ROCK_OBJ   = $(CORE:%=build/rock/obj/%.o) $(LUAB:%=build/rock/obj/%.o)
rock: rock-check build/rock/dbpool/core.so
# PUC Lua 5.1 lacks API the binding uses (luaL_traceback, luaL_testudata, ...)
# that LuaJIT 2.1 has: a 5.1-ABI module is built against LuaJIT's headers only.
rock-check:
	@[ -f "$(LUA_INCDIR)/lua.h" ] || { echo "dbpool: no lua.h in LUA_INCDIR ($(LUA_INCDIR))" >&2; exit 1; }
	@if grep -qE 'define[[:space:]]+LUA_VERSION_NUM[[:space:]]+501' "$(LUA_INCDIR)/lua.h" && \
	    [ ! -f "$(LUA_INCDIR)/luajit.h" ]; then \
	  echo "dbpool: PUC Lua 5.1 is not supported (it lacks luaL_traceback, luaL_testudata," \
	       "luaL_setfuncs and luaL_setmetatable, which LuaJIT 2.1 has). Build for Lua 5.4 (--lua-version=5.4), or for LuaJIT 2.1 with" \
	       "--lua-version=5.1 LUA_INCDIR=/usr/include/luajit-2.1" >&2; exit 1; fi
	@[ -f "$(PQ_INCDIR)/libpq-fe.h" ] || [ -f "$(PQ_INCDIR)/postgresql/libpq-fe.h" ] || \
	  { echo "dbpool: libpq-fe.h is in neither $(PQ_INCDIR) nor $(PQ_INCDIR)/postgresql: install" \
	         "libpq's headers (Debian: libpq-dev) or pass PQ_INCDIR=DIR" >&2; exit 1; }
build/rock/flags: FORCE
	$(call stamp,$(ROCK_FLAGS))
build/rock/obj/%.o: csrc/%.c build/rock/flags
	@mkdir -p $(@D)
	$(CC) $(ROCK_FLAGS) -c $< -o $@
build/rock/dbpool/core.so: $(ROCK_OBJ)
	@mkdir -p $(@D)
	$(CC) $(SOFLAGS) -o $@ $^ -L$(PQ_LIBDIR) $(LIBS)
rock-install:     # after `make rock`, as luarocks runs them
	install -d $(INST_LIBDIR)/dbpool $(INST_LUADIR)/dbpool
	install -m 755 build/rock/dbpool/core.so $(INST_LIBDIR)/dbpool/core.so
	install -m 644 lua/dbpool/*.lua $(INST_LUADIR)/dbpool/

clean:
	rm -rf build

-include $(wildcard build/*/*.d build/*/obj/*.d)
FORCE:
