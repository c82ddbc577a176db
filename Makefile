# The two commands of the README:
#   make run    set up (once) and start CodeSphere on its embedded defaults
#   make test   install what the tests need and run every check
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080
PYTEST_ARGS ?=
DATA   ?= data

.PHONY: run test lint typecheck pytest pytest-pure web-test test-deps bench clean

# The sync core is compiled with mypyc when installed (setup.py): editing one of its modules
# reinstalls, or Python would go on importing the old build.
COMPILED_MODULES := $(shell sed -n 's/^ *"\(codesphere\.[a-z_.]*\)",$$/\1/p' server/codesphere/build.py)
COMPILED_SOURCES := $(patsubst %,server/%.py,$(subst .,/,$(COMPILED_MODULES)))

$(BIN)/codesphere: pyproject.toml setup.py $(COMPILED_SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

run: $(BIN)/codesphere web/dist/index.html
	$(BIN)/codesphere serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

lint: $(BIN)/codesphere
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench

typecheck: $(BIN)/codesphere
	$(BIN)/mypy

pytest: $(BIN)/codesphere web/dist/index.html test-deps
	CODESPHERE_EXPECT_CORE=compiled $(BIN)/pytest -p no:cacheprovider -q $(PYTEST_ARGS)

# The sync core's tests once more on its Python sources, as a pure install runs them.
pytest-pure: $(BIN)/codesphere
	rm -rf build/pure && mkdir -p build/pure && cp -r server/codesphere build/pure/
	find build/pure -name '*.so' -delete
	PYTHONPATH=build/pure CODESPHERE_EXPECT_CORE=pure $(BIN)/pytest -p no:cacheprovider -q \
		tests/core tests/protocol

# The browser client's TypeScript: strict type checks, then its tests against a real server.
web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

# The page the server serves at / (rebuilt when its sources change).
WEB_SOURCES := $(shell find web/src web/scripts web/static -type f 2>/dev/null) web/package.json
web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web && npm run --silent build

# The browser tests drive Debian's Chromium (Playwright cannot download browsers here) and the
# Neovim tests Debian's Neovim 0.7.2 (0.11 comes from PyPI with the test extras).
test-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/nvim ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium neovim >/dev/null; \
	else echo "The tests need Chromium and Neovim: sudo apt-get install chromium neovim" >&2; exit 1; fi

web-test: web/node_modules/.package-lock.json $(BIN)/codesphere
	cd web && npm run --silent typecheck && npm run --silent typecheck:core
	cd web && CODESPHERE_BIN=$(abspath $(BIN))/codesphere npm test --silent

test: lint typecheck pytest pytest-pure web-test

bench: $(BIN)/codesphere
	$(BIN)/python bench/trace_replay.py

clean:
	rm -rf $(VENV) build server/codesphere_core__mypyc.*.so .pytest_cache .mypy_cache .ruff_cache .hypothesis web/node_modules web/dist web/dist-test
