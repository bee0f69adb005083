# govshare developer entry points. From a fresh clone (python3 >= 3.11, node 20, npm):
#   make setup     create .venv from requirements.lock and node_modules from package-lock.json
#   make test      run the whole test suite (PYTEST_ARGS="-k compiler -x" to pass arguments); installs
#                  the Debian packages its tests need (Chromium for the browser tests, wrk for the
#                  benchmark runners' smoke test) when they are missing and the user is root
#                  (otherwise it stops at once with the command to run)
#   make compile   compile the contracts with Hardhat and with ledger.compiler (offline)
#   make demo      run the end-to-end demo
#   make lock      regenerate requirements.lock from pyproject.toml in a throwaway venv
#   make clean     remove build outputs (keeps .venv and node_modules; `make distclean` drops those too)

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
LOCK_VENV ?= /tmp/govshare-lockvenv

export HARDHAT_DISABLE_TELEMETRY_PROMPT ?= true

#: Debian packages the tests need: Debian's Chromium and its driver for the browser tests (never a
#: downloaded browser), a CJK font so that screenshots show the Chinese labels, and wrk for the
#: smoke test of the oracle benchmark, with gcc for its open-loop load generator (a C program).
TEST_PACKAGES := chromium chromium-driver fonts-wqy-microhei wrk gcc
TEST_FILES := /usr/bin/chromium /usr/bin/chromedriver /usr/share/fonts/truetype/wqy/wqy-microhei.ttc /usr/bin/wrk /usr/bin/cc

.PHONY: setup test-tools test compile demo lock clean distclean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "govshare needs Python >= 3.11, $(PYTHON) is " + sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.lock
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

test-tools:
	@missing=""; for f in $(TEST_FILES); do [ -e "$$f" ] || missing="$$missing $$f"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing $(TEST_PACKAGES) for the tests (missing:$$missing)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(TEST_PACKAGES); \
	else \
	  echo "make test needs Debian packages its tests use (missing:$$missing). Run:" >&2; \
	  echo "  sudo apt-get install -y $(TEST_PACKAGES)" >&2; exit 1; \
	fi

test: setup test-tools
	$(PY) -m pytest $(PYTEST_ARGS)

compile: setup
	npx --no-install hardhat compile
	$(PY) -c 'from ledger.compiler import compile_contracts, DEPLOYABLE; r = compile_contracts(); print(f"ledger.compiler ({r.compiler} {r.version}):", ", ".join(f"{n} {len(r[n].deployed_bytecode)} B" for n in DEPLOYABLE))'

demo: setup
	$(VENV)/bin/govshare demo

lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --disable-pip-version-check -q -U 'setuptools>=77'
	$(LOCK_VENV)/bin/pip install --disable-pip-version-check -q -e '.[test]'
	{ sed -n '/^#/p' requirements.lock; \
	  $(LOCK_VENV)/bin/pip freeze --all --exclude-editable | grep -v -i '^pip=='; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf $(LOCK_VENV)

clean:
	rm -rf build cache artifacts .pytest_cache *.egg-info
	find . -path ./node_modules -prune -o -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules
