# `make demo` and `make test` set everything up on a fresh machine themselves: the demo
# installs ilyd and its runtime dependencies only, the tests add the test extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNSTAMP  := $(VENV)/.installed-runtime
PYSTAMP   := $(VENV)/.installed-test
NODESTAMP := node_modules/.installed
SYSSTAMP  := var/.system-deps

.PHONY: demo test lint system-deps clean

# ilyd is installed in $(BIN), which is not on PATH: `. $(BIN)/activate` puts it there
# (the demo's own hints name $(BIN)/ilyd).
demo: $(RUNSTAMP)
	@echo "ilyd is $(BIN)/ilyd (run '. $(BIN)/activate' to have 'ilyd' on PATH)"
	$(BIN)/ilyd demo

# The tests mostly wait (on devorg, daemons, sockets): two processes, each taking whole
# files (module fixtures such as a devorg are set up once per file), halve the wall time.
TEST_PROCESSES ?= 2

test: $(PYSTAMP) $(NODESTAMP) $(SYSSTAMP)
	$(BIN)/ruff check ilyd tests bench
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile

lint: $(PYSTAMP)
	$(BIN)/ruff check ilyd tests bench

$(RUNSTAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(PYSTAMP): $(RUNSTAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# faye (a real Bayeux server) and jsforce (a real Salesforce client) for interop tests.
$(NODESTAMP): package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

# Debian tools the tests use: promtool (package prometheus) and systemd-analyze.
# Installed when running as root with apt; otherwise the tests that need them skip
# (and fail under CI=true, where they must run).
system-deps: $(SYSSTAMP)
$(SYSSTAMP):
	@mkdir -p var
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v systemd-analyze >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus systemd >/dev/null; \
	  else \
	    echo "note: promtool/systemd-analyze missing and not root: those tests will skip"; \
	  fi; \
	fi
	@touch $@

clean:
	rm -rf $(VENV) node_modules var build *.egg-info
