# govshare developer entry points. From a fresh clone (python3 >= 3.11, node 20, npm):
#   make setup     create .venv from requirements.lock and node_modules from package-lock.json
#   make test      run the whole test suite (PYTEST_ARGS="-k compiler -x" to pass arguments)
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

.PHONY: setup test compile demo lock clean distclean

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

test: setup
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
