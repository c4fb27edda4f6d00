# chainexec: PGXS build.
#   make && make install            build and install into the server found by pg_config
#   make installcheck               pg_regress suite (sql/, expected/) against a running server
#   scripts/test.sh                 every suite on a throwaway cluster (what CI runs)
EXTENSION = chainexec
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" chainexec.control)

MODULE_big = chainexec
# src/pure: the language (JSON, expressions, templates, JSON Schema, the
#           definition compiler); plain C, no server calls, unit tested and fuzzed
# src/engine: the execution state machine (store, transition, steps, control, events)
# src/api:    SQL-callable entry points that are not state changes (definitions,
#           starting executions, waiting, channels, the drop trigger)
# src/worker: background workers (launcher, executor loop, shared memory)
# src/chainexec.c: module entry (_PG_init, settings)
SRC_DIRS = src/pure src/engine src/api src/worker
PURE_OBJS = $(patsubst %.c,%.o,$(wildcard src/pure/*.c))
SERVER_OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c src/engine/*.c src/api/*.c src/worker/*.c))
OBJS = $(PURE_OBJS) $(SERVER_OBJS)

DATA = $(wildcard chainexec--*.sql)
PG_CPPFLAGS = -I$(srcdir)/src $(foreach d,$(SRC_DIRS),-I$(srcdir)/$(d)) -DCE_EXTVERSION='"$(EXTVERSION)"'
PG_CFLAGS += -Wno-unused-parameter

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=plpgsql

# Isolation specs (test/specs/*.spec): concurrent claims
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --load-extension=chainexec

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The watcher, a libpq client installed next to the server's programs, with
# a symbolic link to it in WATCH_LINKDIR (default /usr/local/bin), since the
# server's bindir is not on PATH on Debian and Ubuntu: after "make install",
# "chainexec_watch" works by name.  "make install WATCH_LINKDIR=" makes no
# link (packagers: install one where your distribution wants it).
WATCHER = chainexec_watch
WATCH_LINKDIR ?= /usr/local/bin
ifneq ($(wildcard tools/chainexec_watch.c),)
all: tools/$(WATCHER)
tools/$(WATCHER): tools/chainexec_watch.c
	$(CC) $(CFLAGS) -I$(shell $(PG_CONFIG) --includedir) -o $@ $< -L$(shell $(PG_CONFIG) --libdir) -lpq
install: install-watcher
install-watcher: tools/$(WATCHER)
	$(INSTALL_PROGRAM) tools/$(WATCHER) '$(DESTDIR)$(bindir)/$(WATCHER)'
ifneq ($(strip $(WATCH_LINKDIR)),)
ifneq ($(abspath $(WATCH_LINKDIR)),$(abspath $(bindir)))
	$(MKDIR_P) '$(DESTDIR)$(WATCH_LINKDIR)'
	ln -sfn '$(bindir)/$(WATCHER)' '$(DESTDIR)$(WATCH_LINKDIR)/$(WATCHER)'
endif
endif
uninstall: uninstall-watcher
uninstall-watcher:
	rm -f '$(DESTDIR)$(bindir)/$(WATCHER)'
ifneq ($(strip $(WATCH_LINKDIR)),)
	if [ -L '$(DESTDIR)$(WATCH_LINKDIR)/$(WATCHER)' ]; then rm -f '$(DESTDIR)$(WATCH_LINKDIR)/$(WATCHER)'; fi
endif
.PHONY: install-watcher uninstall-watcher
EXTRA_CLEAN += tools/$(WATCHER)
endif
EXTRA_CLEAN += results regression.diffs regression.out

# Rebuild objects when a header changes.
$(OBJS): $(wildcard src/*.h src/*/*.h)
