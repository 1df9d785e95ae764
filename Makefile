# yimi-bot: `make run` runs the bot, `make test` runs every check. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean browser postgres

PIP_INSTALL = $(BIN)/python -m pip install -q --disable-pip-version-check

# The stamp is written last, so a set-up stopped half-way (Ctrl-C) is taken up again by the next
# `make run` or `make test`; a .venv without a working pip (stopped while `venv` was still
# installing it) is deleted and made again.
$(STAMP): pyproject.toml
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { \
		echo "creating $(VENV) (none yet, or a half-made one from an interrupted set-up)"; \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PIP_INSTALL) -U pip
	$(PIP_INSTALL) -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/yimi-bot run

browser:
	@# Debian's chromium for the simulator's browser test (never `playwright install`), a CJK
	@# font so its screenshots show Chinese and an emoji font so emoji are not empty boxes.
	@# Needs root; otherwise the test is skipped.
	@if test -x /usr/bin/chromium && fc-list 2>/dev/null | grep -qi wqy \
		&& fc-list 2>/dev/null | grep -qi "color emoji"; then :; \
	elif test "$$(id -u)" = 0 && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium fonts-wqy-microhei fonts-noto-color-emoji >/dev/null \
			|| echo "apt-get failed: chromium or its fonts not installed"; \
	else echo "chromium not installed (run make browser as root): the browser test will be skipped"; fi

postgres:
	@# Debian's PostgreSQL server for the tests on PostgreSQL (each run starts a throwaway
	@# server of its own on 127.0.0.1). Needs root; otherwise those tests are skipped.
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then :; \
	elif test "$$(id -u)" = 0 && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			postgresql >/dev/null || echo "apt-get failed: PostgreSQL not installed"; \
	else echo "PostgreSQL not installed (run make postgres as root): its tests will be skipped"; fi

.PHONY: sim-test
sim-test: $(STAMP) browser
	$(BIN)/pytest -q tests/test_simulator.py tests/test_simulator_wecom_browser.py

lint: $(STAMP)
	$(BIN)/ruff check bot tests bench
	$(BIN)/ruff format --check bot

typecheck: $(STAMP)
	$(BIN)/mypy

# Once the server is installed the PostgreSQL tests must run, not be skipped.
unit: $(STAMP)
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then \
		YIMI_REQUIRE_POSTGRES=1 $(BIN)/pytest -q; else $(BIN)/pytest -q; fi

test: $(STAMP) browser postgres lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/wecom_callback.py
	$(BIN)/python bench/related.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
