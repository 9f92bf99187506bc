# make demo   set up .venv, then generate/process/serve the demo tenant (prints the URL)
# make test   set up .venv (+ Debian Chromium, PostgreSQL, Dovecot and rsyslog when we may use apt), then run every test
# make bench  run the benchmarks;  make clean  remove .venv (never data/)
# make lock   re-resolve requirements.lock after changing pins in pyproject.toml

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
export UV_SYSTEM_CERTS := 1
# root runs apt-get directly; otherwise passwordless sudo; otherwise empty (print the command)
APT = $(shell if [ "$$(id -u)" = 0 ]; then echo "env DEBIAN_FRONTEND=noninteractive apt-get"; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then echo "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get"; fi)
# uv on PATH, else the one in .venv (installed on first use)
UV = $(shell command -v uv || echo $(VENV)/bin/uv)

.PHONY: demo test bench clean env chromium postgresql dovecot rsyslog lock

demo: env
	$(VENV)/bin/workbench demo $(ARGS)

test: env chromium postgresql dovecot rsyslog
	$(PY) -m pytest $(ARGS)

bench: env
	$(PY) -m benchmarks.bench_lake
	$(PY) -m benchmarks.bench_generator

clean:
	rm -rf $(VENV)

env: $(STAMP)

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: $(PYTHON) must be Python 3.11+"; exit 1; }
	@echo "+ $(PYTHON) -m venv $(VENV)"
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  if [ -n "$(APT)" ]; then $(APT) install -y python3-venv && $(PYTHON) -m venv $(VENV); \
	  else echo "error: python3 -m venv failed; run: sudo apt-get install -y python3-venv"; exit 1; fi; }

# Installs the pinned set, then removes rfc3987-syntax: it costs ~2.75 s on every
# `import jsonschema` and nothing needs it (stack-notes G14).
$(STAMP): pyproject.toml requirements.lock | $(PY)
	@if [ -x "$(UV)" ] || $(PY) -m pip install -q "uv==$(UV_VERSION)" 2>/dev/null; then \
	  echo "+ uv pip install -c requirements.lock -e .[dev]"; \
	  $(UV) pip install -q -p $(PY) -c requirements.lock -e '.[dev]' && \
	  $(UV) pip uninstall -q -p $(PY) rfc3987-syntax; \
	else \
	  echo "+ pip install -c requirements.lock -e .[dev]  (could not install uv==$(UV_VERSION))"; \
	  $(PY) -m pip install -q -c requirements.lock -e '.[dev]' && \
	  $(PY) -m pip uninstall -q -y rfc3987-syntax; \
	fi
	mkdir -p $(VENV)/share/jupyter/lab/settings
	echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
	  > $(VENV)/share/jupyter/lab/settings/overrides.json
	$(PY) -c 'from workbench.serve import install_offline_template as i; i()'
	touch $@

chromium:
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if [ -n "$(APT)" ]; then \
	  $(APT) update -q && $(APT) install -y -q chromium chromium-driver \
	    || echo "warning: installing Chromium failed; browser tests will skip (fail under CI=true)"; \
	else \
	  echo "Chromium missing; run: sudo apt-get update && sudo apt-get install -y chromium chromium-driver"; \
	  echo "(continuing: browser tests will skip)"; \
	fi

# Debian's PostgreSQL server binaries: the store tests initdb and start a throwaway cluster
# with them (tests/conftest.py); not needed when WORKBENCH_TEST_PG_URL names a server.
postgresql:
	@if [ -n "$${WORKBENCH_TEST_PG_URL:-}" ]; then exit 0; fi; \
	for bin in /usr/lib/postgresql/*/bin; do \
	  if [ -x "$$bin/initdb" ] && [ -x "$$bin/pg_ctl" ]; then exit 0; fi; \
	done; \
	if [ -n "$(APT)" ]; then \
	  $(APT) update -q && $(APT) install -y -q postgresql \
	    || echo "warning: installing PostgreSQL failed; postgres tests will skip (fail under CI=true)"; \
	else \
	  echo "PostgreSQL server missing; run: sudo apt-get update && sudo apt-get install -y postgresql"; \
	  echo "(or set WORKBENCH_TEST_PG_URL; continuing: postgres tests will skip)"; \
	fi

# Debian's Dovecot IMAP server: the password-attack simulation tests start a throwaway one on
# loopback with it (tests/test_simulator_password_attacks.py).
dovecot:
	@if command -v dovecot >/dev/null || [ -x /usr/sbin/dovecot ]; then exit 0; fi; \
	if [ -n "$(APT)" ]; then \
	  $(APT) update -q && $(APT) install -y -q dovecot-imapd \
	    || echo "warning: installing Dovecot failed; password-attack tests will skip (fail under CI=true)"; \
	else \
	  echo "Dovecot missing; run: sudo apt-get update && sudo apt-get install -y dovecot-imapd"; \
	  echo "(continuing: password-attack tests will skip)"; \
	fi

# Debian's rsyslog: the SIEM delivery tests start a throwaway rsyslogd on loopback as the syslog
# receiver (tests/test_siem_delivery.py).
rsyslog:
	@if command -v rsyslogd >/dev/null || [ -x /usr/sbin/rsyslogd ]; then exit 0; fi; \
	if [ -n "$(APT)" ]; then \
	  $(APT) update -q && $(APT) install -y -q rsyslog \
	    || echo "warning: installing rsyslog failed; syslog delivery tests will skip (fail under CI=true)"; \
	else \
	  echo "rsyslog missing; run: sudo apt-get update && sudo apt-get install -y rsyslog"; \
	  echo "(continuing: syslog delivery tests will skip)"; \
	fi

lock: | $(PY)
	@[ -x "$(UV)" ] || $(PY) -m pip install -q "uv==$(UV_VERSION)"
	$(UV) pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
